-- An entity's own edges within a scope (its profile's sums and hourly calls): the primary
-- key puts the hour last, so without this index the lookup reads every edge the entity ever
-- had (a cluster's 45 days of history: a million rows for one day's profile).
CREATE INDEX graph_edges_from ON graph_edges (tenant_id, from_id, hour);
