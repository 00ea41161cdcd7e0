-- Osprey's first schema (SQLite). Times are Unix milliseconds; JSON documents are TEXT.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('administrator', 'member')),
    created_ms INTEGER NOT NULL
);

CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer', 'ingest')),
    cluster_id TEXT REFERENCES clusters (id),
    hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX tokens_tenant ON tokens (tenant_id);

-- Raw audit events as received: one row per webhook batch, zstd-compressed EventList JSON.
CREATE TABLE audit_batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id TEXT NOT NULL REFERENCES clusters (id),
    received_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX audit_batches_received ON audit_batches (received_ms);

-- Audit events already through detection (audit id and stage), so a retried batch adds nothing.
CREATE TABLE audit_seen (
    cluster_id TEXT NOT NULL,
    event_key TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, event_key)
) WITHOUT ROWID;
CREATE INDEX audit_seen_time ON audit_seen (seen_ms);

CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    cluster_id TEXT,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    severity REAL NOT NULL,
    title TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'archived')),
    workflow TEXT NOT NULL CHECK (workflow IN ('new', 'acknowledged', 'resolved')),
    sample INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX findings_updated ON findings (updated_ms, id);
CREATE INDEX findings_tenant_updated ON findings (tenant_id, updated_ms, id);
CREATE INDEX findings_cluster ON findings (cluster_id);

CREATE TABLE finding_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    finding_id TEXT NOT NULL REFERENCES findings (id),
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    change TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX finding_history_finding ON finding_history (finding_id, seq);

-- Small named documents: the detector's cursor, learned baselines per cluster.
CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Osprey's own administrative actions; rows are never changed or removed.
CREATE TABLE admin_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER admin_log_no_update BEFORE UPDATE ON admin_log
BEGIN SELECT RAISE(ABORT, 'admin_log is append-only'); END;
CREATE TRIGGER admin_log_no_delete BEFORE DELETE ON admin_log
BEGIN SELECT RAISE(ABORT, 'admin_log is append-only'); END;
