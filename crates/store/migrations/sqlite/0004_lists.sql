-- Trusted and threat IP lists, as uploaded (plain lines of addresses and CIDR ranges, or STIX
-- 2.1 JSON); an administrator tenant's apply to every member's clusters.
CREATE TABLE ip_lists (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('trusted', 'threat')),
    body TEXT NOT NULL,
    entries INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Saved filters that archive new audit findings they match (condition in the rule language);
-- an administrator tenant's apply to every member's clusters.
CREATE TABLE suppression_rules (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    condition TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
