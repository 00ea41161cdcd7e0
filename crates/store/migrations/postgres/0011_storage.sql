-- Kept batch bodies and detected-event keys are zstd output and random digests: PostgreSQL's
-- own compression (pglz) cannot shrink them, but tried on every insert (1-2 % of the
-- machine under sustained ingest). Stored out of line as they are.
ALTER TABLE audit_batches ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE audit_seen_keys ALTER COLUMN keys SET STORAGE EXTERNAL;
-- The current hour's edges and the entities seen are updated every detection round: free
-- space in their pages lets an update stay on its page (a HOT update, no index writes).
ALTER TABLE graph_edges SET (fillfactor = 70);
ALTER TABLE graph_entities SET (fillfactor = 70);
