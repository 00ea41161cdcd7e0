-- Retro-hunts: rules and threat lists run over the raw audit events kept, as jobs. A server
-- claims a queued hunt (one per tenant at a time) and holds it by a lease it renews with its
-- progress; a hunt whose lease ran out (its server stopped) is claimed again, at most three
-- times in all.
CREATE TABLE retro_hunts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    cluster_id TEXT,
    since_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    -- Rule YAML as in --rules.
    rules TEXT,
    -- The name of one of the tenant's IP lists.
    threat_list TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- Why a hunt failed.
    detail TEXT NOT NULL,
    events_scanned INTEGER NOT NULL,
    batches_scanned INTEGER NOT NULL,
    -- JSON lists: the findings the hunt stored; what the caller should know about its result.
    finding_ids TEXT NOT NULL,
    notices TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until_ms INTEGER,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER
);
CREATE INDEX retro_hunts_queue ON retro_hunts (state, created_ms);
CREATE INDEX retro_hunts_tenant ON retro_hunts (tenant_id, created_ms);
