-- The investigation graph. Entities of each tenant: when they were first and last seen, and
-- their properties (a JSON object, replaced when newer ones are seen).
CREATE TABLE graph_entities (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    properties TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX graph_entities_type ON graph_entities (tenant_id, type, id);

-- Relationships counted per hour by outcome: one row per tenant, edge and hour.
CREATE TABLE graph_edges (
    tenant_id TEXT NOT NULL,
    from_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    to_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    success BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    unauthorized BIGINT NOT NULL,
    forbidden BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, from_id, relation, to_id, hour)
);
CREATE INDEX graph_edges_to ON graph_edges (tenant_id, to_id, hour);
CREATE INDEX graph_edges_hour ON graph_edges (hour);
