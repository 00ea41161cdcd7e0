-- Osprey's first schema (PostgreSQL). Times are Unix milliseconds; JSON documents are TEXT.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('administrator', 'member')),
    created_ms BIGINT NOT NULL
);

CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer', 'ingest')),
    cluster_id TEXT REFERENCES clusters (id),
    hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant_id);

-- Raw audit events as received: one row per webhook batch, zstd-compressed EventList JSON.
CREATE TABLE audit_batches (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id TEXT NOT NULL REFERENCES clusters (id),
    received_ms BIGINT NOT NULL,
    events BIGINT NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX audit_batches_received ON audit_batches (received_ms);

-- Audit events already through detection (audit id and stage), so a retried batch adds nothing.
CREATE TABLE audit_seen (
    cluster_id TEXT NOT NULL,
    event_key TEXT NOT NULL,
    seen_ms BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, event_key)
);
CREATE INDEX audit_seen_time ON audit_seen (seen_ms);

CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    cluster_id TEXT,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    severity DOUBLE PRECISION NOT NULL,
    title TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    count BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'archived')),
    workflow TEXT NOT NULL CHECK (workflow IN ('new', 'acknowledged', 'resolved')),
    sample BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX findings_updated ON findings (updated_ms, id);
CREATE INDEX findings_tenant_updated ON findings (tenant_id, updated_ms, id);
CREATE INDEX findings_cluster ON findings (cluster_id);

CREATE TABLE finding_history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    finding_id TEXT NOT NULL REFERENCES findings (id),
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    change TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX finding_history_finding ON finding_history (finding_id, seq);

-- Small named documents: the detector's cursor, learned baselines per cluster.
CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Osprey's own administrative actions; rows are never changed or removed.
CREATE TABLE admin_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE FUNCTION admin_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_log is append-only';
END;
$$;
CREATE TRIGGER admin_log_append_only BEFORE UPDATE OR DELETE ON admin_log
FOR EACH ROW EXECUTE FUNCTION admin_log_append_only();
