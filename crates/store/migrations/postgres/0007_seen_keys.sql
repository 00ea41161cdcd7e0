-- Detection remembers the events (and batches) it has detected in memory, in generations of
-- 128-bit keys; each round stores its new keys as one row per cluster, in the round's
-- transaction, instead of one indexed row per event. A generation dropped from memory drops
-- its rows.
DROP TABLE audit_seen;
CREATE TABLE audit_seen_keys (
    id BIGSERIAL PRIMARY KEY,
    generation BIGINT NOT NULL,
    cluster_id TEXT NOT NULL,
    seen_ms BIGINT NOT NULL,
    keys BYTEA NOT NULL
);
CREATE INDEX audit_seen_keys_generation ON audit_seen_keys (generation);
CREATE INDEX audit_seen_keys_time ON audit_seen_keys (seen_ms);
