-- Where findings go: generic webhooks (HMAC-signed), Alertmanager, CloudEvents receivers.
CREATE TABLE outputs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'alertmanager', 'cloudevents')),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    severity_min DOUBLE PRECISION NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- The outbox: one row per finding event to deliver to an output, written in the transaction
-- that stored the finding; delivered, retried with backoff, or given up on ('dead').
CREATE TABLE deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    output_id TEXT NOT NULL REFERENCES outputs (id) ON DELETE CASCADE,
    finding_id TEXT NOT NULL REFERENCES findings (id),
    event TEXT NOT NULL CHECK (event IN ('created', 'updated')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    done_ms BIGINT
);
CREATE INDEX deliveries_due ON deliveries (state, due_ms);
CREATE INDEX deliveries_output ON deliveries (output_id, state, seq);
