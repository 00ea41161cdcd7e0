-- Retro-hunts: rules and threat lists run over the raw audit events kept, as jobs. A server
-- claims a queued hunt (one per tenant at a time) and holds it by a lease it renews with its
-- progress; a hunt whose lease ran out (its server stopped) is claimed again, at most three
-- times in all.
CREATE TABLE retro_hunts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    cluster_id TEXT,
    since_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    -- Rule YAML as in --rules.
    rules TEXT,
    -- The name of one of the tenant's IP lists.
    threat_list TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- Why a hunt failed.
    detail TEXT NOT NULL,
    events_scanned BIGINT NOT NULL,
    batches_scanned BIGINT NOT NULL,
    -- JSON lists: the findings the hunt stored; what the caller should know about its result.
    finding_ids TEXT NOT NULL,
    notices TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until_ms BIGINT,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT
);
CREATE INDEX retro_hunts_queue ON retro_hunts (state, created_ms);
CREATE INDEX retro_hunts_tenant ON retro_hunts (tenant_id, created_ms);
