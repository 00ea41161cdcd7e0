-- The RBAC objects of each cluster (roles, cluster roles and their bindings), as a cluster
-- snapshot listed them or an audited write returned them, for impact: who can exec into a
-- pod or read its secrets. A deleted object stays as a row without a body until a snapshot
-- replaces the cluster's objects, so an event older than the deletion cannot bring it back.
CREATE TABLE graph_rbac (
    tenant_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON of the object as osprey-graph reads it; NULL once deleted.
    body TEXT,
    -- The time of the event or snapshot that said so.
    changed_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, cluster_id, kind, namespace, name)
);
