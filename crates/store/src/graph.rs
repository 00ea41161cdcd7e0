//! The investigation graph's tables: entities (first and last seen, properties) and edges
//! counted per hour by outcome, per tenant. Rows are written in a detection round's
//! transaction, so a batch counts once with its findings; counts of an edge and hour add up.
//! What the rows mean is `osprey-graph`'s: here they are ids, names and numbers.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use crate::{Backend, DetectionRound, Result, Store, StoreError};

/// Calls counted by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphCounts {
    pub success: i64,
    pub failed: i64,
    pub unauthorized: i64,
    pub forbidden: i64,
}

impl GraphCounts {
    fn add(&mut self, o: &GraphCounts) {
        self.success = self.success.saturating_add(o.success);
        self.failed = self.failed.saturating_add(o.failed);
        self.unauthorized = self.unauthorized.saturating_add(o.unauthorized);
        self.forbidden = self.forbidden.saturating_add(o.forbidden);
    }
}

/// An edge in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRow {
    pub from_id: String,
    pub relation: String,
    pub to_id: String,
    /// Hours since the epoch.
    pub hour: i64,
    pub counts: GraphCounts,
}

/// An entity's edges at one end, summed per relation and other end over some hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSumRow {
    pub relation: String,
    pub other: String,
    pub counts: GraphCounts,
    pub first_hour: i64,
    pub last_hour: i64,
}

/// An entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRow {
    /// `{type}/{key…}`.
    pub id: String,
    pub kind: String,
    pub first_ms: i64,
    pub last_ms: i64,
    /// A JSON object; `None` keeps what is stored.
    pub properties: Option<serde_json::Value>,
}

/// Which end of its edges an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeEnd {
    From,
    To,
}

/// Rows per multi-row statement on SQLite. SQLite finds a `$N` parameter by walking its list
/// of parameters (when the statement is prepared and when each value is bound), so a
/// statement's cost grows with the square of its parameters: some 500 keep that small.
const EDGES_PER_STATEMENT: usize = 64;
const ENTITIES_PER_STATEMENT: usize = 100;
/// Rows per statement on PostgreSQL, where each statement is a round trip (under its limit
/// of 65,535 parameters).
const ROWS_PER_STATEMENT_POSTGRES: usize = 1_000;

/// Rows per multi-row statement on `backend`: `sqlite` on SQLite.
fn rows_per_statement(backend: Backend, sqlite: usize) -> usize {
    match backend {
        Backend::Sqlite => sqlite,
        Backend::Postgres => ROWS_PER_STATEMENT_POSTGRES,
    }
}

impl DetectionRound<'_> {
    /// Rows per multi-row statement: `sqlite` on SQLite.
    fn rows_per_statement(&self, sqlite: usize) -> usize {
        rows_per_statement(self.backend, sqlite)
    }
}
/// The four counts summed, as [`counts_row`] reads them (PostgreSQL sums BIGINT as NUMERIC,
/// hence the casts).
const SUMMED_COUNTS: &str = "CAST(SUM(success) AS BIGINT) AS success, CAST(SUM(failed) AS BIGINT) AS failed,
     CAST(SUM(unauthorized) AS BIGINT) AS unauthorized, CAST(SUM(forbidden) AS BIGINT) AS forbidden";
/// What [`entity_row`] reads.
const ENTITY_COLUMNS: &str = "id, type, first_ms, last_ms, properties";

impl DetectionRound<'_> {
    /// Adds edge counts of a tenant (an edge and hour given twice counts both).
    pub async fn add_edges(&mut self, tenant_id: &str, edges: &[EdgeRow]) -> Result<()> {
        // One row per key in a statement: PostgreSQL refuses to update a row twice in one.
        let mut merged: BTreeMap<(&str, &str, &str, i64), GraphCounts> = BTreeMap::new();
        for e in edges {
            merged
                .entry((&e.from_id, &e.relation, &e.to_id, e.hour))
                .or_default()
                .add(&e.counts);
        }
        let rows: Vec<_> = merged.into_iter().collect();
        for chunk in rows.chunks(self.rows_per_statement(EDGES_PER_STATEMENT)) {
            let mut sql = String::from(
                "INSERT INTO graph_edges (tenant_id, from_id, relation, to_id, hour, success, failed, unauthorized, forbidden) VALUES ",
            );
            push_tenant_rows(&mut sql, chunk.len(), 8);
            sql.push_str(
                " ON CONFLICT (tenant_id, from_id, relation, to_id, hour) DO UPDATE SET
                 success = graph_edges.success + excluded.success,
                 failed = graph_edges.failed + excluded.failed,
                 unauthorized = graph_edges.unauthorized + excluded.unauthorized,
                 forbidden = graph_edges.forbidden + excluded.forbidden",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id);
            for ((from, relation, to, hour), c) in chunk {
                q = q
                    .bind(*from)
                    .bind(*relation)
                    .bind(*to)
                    .bind(*hour)
                    .bind(c.success)
                    .bind(c.failed)
                    .bind(c.unauthorized)
                    .bind(c.forbidden);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Records entities of a tenant as seen: first and last seen widen; properties given
    /// replace those stored.
    pub async fn see_entities(&mut self, tenant_id: &str, entities: &[EntityRow]) -> Result<()> {
        let mut merged: BTreeMap<&str, (&str, i64, i64, Option<String>)> = BTreeMap::new();
        for e in entities {
            let properties = e
                .properties
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|err| StoreError::Corrupt {
                    what: format!("properties of {}", e.id),
                    error: err.to_string(),
                })?;
            let slot = merged
                .entry(&e.id)
                .or_insert((&e.kind, e.first_ms, e.last_ms, None));
            slot.1 = slot.1.min(e.first_ms);
            slot.2 = slot.2.max(e.last_ms);
            if properties.is_some() {
                slot.3 = properties;
            }
        }
        let rows: Vec<_> = merged.into_iter().collect();
        for chunk in rows.chunks(self.rows_per_statement(ENTITIES_PER_STATEMENT)) {
            let mut sql = String::from(
                "INSERT INTO graph_entities (tenant_id, id, type, first_ms, last_ms, properties) VALUES ",
            );
            push_tenant_rows(&mut sql, chunk.len(), 5);
            sql.push_str(
                " ON CONFLICT (tenant_id, id) DO UPDATE SET
                 first_ms = CASE WHEN excluded.first_ms < graph_entities.first_ms
                     THEN excluded.first_ms ELSE graph_entities.first_ms END,
                 last_ms = CASE WHEN excluded.last_ms > graph_entities.last_ms
                     THEN excluded.last_ms ELSE graph_entities.last_ms END,
                 properties = COALESCE(excluded.properties, graph_entities.properties)",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id);
            for (id, (kind, first, last, properties)) in chunk {
                q = q
                    .bind(*id)
                    .bind(*kind)
                    .bind(*first)
                    .bind(*last)
                    .bind(properties.clone());
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

impl DetectionRound<'_> {
    /// The stored properties of entities of a tenant (those that have any), read in the
    /// round's transaction: a round that changes some of a pod's properties merges them.
    pub async fn graph_properties(
        &mut self,
        tenant_id: &str,
        ids: &[&str],
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(self.rows_per_statement(ENTITIES_PER_STATEMENT)) {
            let mut sql = String::from(
                "SELECT id, properties FROM graph_entities WHERE tenant_id = $1 AND properties IS NOT NULL AND id IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i + 2));
            }
            sql.push(')');
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                let id: String = r.try_get("id")?;
                let text: String = r.try_get("properties")?;
                let value = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    what: format!("properties of {id}"),
                    error: e.to_string(),
                })?;
                out.push((id, value));
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The edges of an entity of a tenant at one end, in hours `start_hour..end_hour`, and of
    /// one relation when given; by hour, relation and other end.
    pub async fn graph_edges(
        &self,
        tenant_id: &str,
        end: EdgeEnd,
        entity_id: &str,
        relation: Option<&str>,
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<EdgeRow>> {
        let column = match end {
            EdgeEnd::From => "from_id",
            EdgeEnd::To => "to_id",
        };
        // `column` is one of two literals above.
        let sql = format!(
            "SELECT from_id, relation, to_id, hour, success, failed, unauthorized, forbidden
             FROM graph_edges
             WHERE tenant_id = $1 AND {column} = $2 AND hour >= $3 AND hour < $4
               AND ($5 IS NULL OR relation = $5)
             ORDER BY hour, relation, from_id, to_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(entity_id)
            .bind(start_hour)
            .bind(end_hour)
            .bind(relation.map(str::to_string))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EdgeRow {
                    from_id: r.try_get("from_id")?,
                    relation: r.try_get("relation")?,
                    to_id: r.try_get("to_id")?,
                    hour: r.try_get("hour")?,
                    counts: counts_row(r)?,
                })
            })
            .collect()
    }

    /// An entity's edges of a tenant at one end in hours `start_hour..end_hour`, summed per
    /// relation and other end, with the first and last hour of each.
    pub async fn graph_edge_sums(
        &self,
        tenant_id: &str,
        end: EdgeEnd,
        entity_id: &str,
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<EdgeSumRow>> {
        let (mine, other) = match end {
            EdgeEnd::From => ("from_id", "to_id"),
            EdgeEnd::To => ("to_id", "from_id"),
        };
        // Both column names are literals above.
        let sql = format!(
            "SELECT relation, {other} AS other, {SUMMED_COUNTS},
                    MIN(hour) AS first_hour, MAX(hour) AS last_hour
             FROM graph_edges
             WHERE tenant_id = $1 AND {mine} = $2 AND hour >= $3 AND hour < $4
             GROUP BY relation, {other}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(entity_id)
            .bind(start_hour)
            .bind(end_hour)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EdgeSumRow {
                    relation: r.try_get("relation")?,
                    other: r.try_get("other")?,
                    counts: counts_row(r)?,
                    first_hour: r.try_get("first_hour")?,
                    last_hour: r.try_get("last_hour")?,
                })
            })
            .collect()
    }

    /// An entity's own API calls of a tenant per hour in `start_hour..end_hour`.
    pub async fn graph_call_hours(
        &self,
        tenant_id: &str,
        entity_id: &str,
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<(i64, GraphCounts)>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT hour, {SUMMED_COUNTS}
             FROM graph_edges
             WHERE tenant_id = $1 AND from_id = $2 AND relation = 'api_call'
               AND hour >= $3 AND hour < $4
             GROUP BY hour ORDER BY hour"
        )))
        .bind(tenant_id)
        .bind(entity_id)
        .bind(start_hour)
        .bind(end_hour)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("hour")?, counts_row(r)?)))
            .collect()
    }

    /// The hours in `start_hour..end_hour` in which an entity of a tenant went over its
    /// edge limit (it has edges to `overflow`).
    pub async fn graph_overflow_hours(
        &self,
        tenant_id: &str,
        entity_id: &str,
        overflow: &str,
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT hour FROM graph_edges
             WHERE tenant_id = $1 AND from_id = $2 AND to_id = $3 AND hour >= $4 AND hour < $5
             ORDER BY hour",
        )
        .bind(tenant_id)
        .bind(entity_id)
        .bind(overflow)
        .bind(start_hour)
        .bind(end_hour)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("hour")?)).collect()
    }

    /// Which of `edges` (from, relation, to) a tenant has in hours `start_hour..end_hour`:
    /// what a profile compares its scope with. Each is a seek on the primary key, so the
    /// cost follows the edges asked about, not the hours of history.
    ///
    /// `LIMIT 1 OFFSET 0` keeps the `EXISTS` a seek per edge on PostgreSQL, whatever its
    /// statistics say: it may turn a plain `EXISTS` into a hash semi join, and with statistics
    /// older than the table (autovacuum off, or behind a bulk load) it hashed every edge of
    /// the 45 days (890,000 rows, 1 s for one cluster profile) to look up 150. An offset is a
    /// limit PostgreSQL does not drop from an `EXISTS`; SQLite seeks per edge either way.
    pub async fn graph_edges_present(
        &self,
        tenant_id: &str,
        edges: &[(String, String, String)],
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for chunk in edges.chunks(rows_per_statement(self.backend, EDGES_PER_STATEMENT)) {
            let mut sql = String::from("WITH k (from_id, relation, to_id) AS (VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let p = 4 + 3 * i;
                sql.push_str(&format!("(${p}, ${}, ${})", p + 1, p + 2));
            }
            sql.push_str(
                ") SELECT k.from_id, k.relation, k.to_id FROM k WHERE EXISTS (
                   SELECT 1 FROM graph_edges e
                   WHERE e.tenant_id = $1 AND e.from_id = k.from_id AND e.relation = k.relation
                     AND e.to_id = k.to_id AND e.hour >= $2 AND e.hour < $3
                   LIMIT 1 OFFSET 0)",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(start_hour)
                .bind(end_hour);
            for (from, relation, to) in chunk {
                q = q
                    .bind(from.as_str())
                    .bind(relation.as_str())
                    .bind(to.as_str());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push((
                    r.try_get("from_id")?,
                    r.try_get("relation")?,
                    r.try_get("to_id")?,
                ));
            }
        }
        Ok(out)
    }

    /// When the first entity of a type of a tenant was first seen (the tenant's first
    /// cluster: when its data begins).
    pub async fn graph_first_seen(&self, tenant_id: &str, kind: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(first_ms) AS first FROM graph_entities WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant_id)
        .bind(kind)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("first")?)
    }

    /// An entity of a tenant.
    pub async fn graph_entity(&self, tenant_id: &str, id: &str) -> Result<Option<EntityRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTITY_COLUMNS} FROM graph_entities WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entity_row).transpose()
    }

    /// Entities of a tenant whose id starts with `prefix` (`pod/c1/default/` lists a
    /// namespace's pods), of one type when given, in id order after `after`, at most `limit`.
    pub async fn search_graph_entities(
        &self,
        tenant_id: &str,
        kind: Option<&str>,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EntityRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTITY_COLUMNS} FROM graph_entities
             WHERE tenant_id = $1 AND ($2 IS NULL OR type = $2)
               AND substr(id, 1, length($3)) = $3 AND id > $4
             ORDER BY id LIMIT $5"
        )))
        .bind(tenant_id)
        .bind(kind.map(str::to_string))
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entity_row).collect()
    }

    /// Drops entities last seen before `before_ms`.
    pub async fn purge_graph_entities(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM graph_entities WHERE last_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Drops edge counts of hours before `before_hour`.
    pub async fn purge_graph_edges(&self, before_hour: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM graph_edges WHERE hour < $1")
            .bind(before_hour)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Appends the `VALUES` rows of a multi-row insert whose first column is the tenant (`$1`) and
/// whose `width` other columns take the parameters after it: `($1, $2, $3), ($1, $4, $5)`.
fn push_tenant_rows(sql: &mut String, rows: usize, width: usize) {
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("($1");
        for c in 0..width {
            sql.push_str(&format!(", ${}", 2 + i * width + c));
        }
        sql.push(')');
    }
}

fn entity_row(r: &sqlx::any::AnyRow) -> Result<EntityRow> {
    let id: String = r.try_get("id")?;
    let properties: Option<String> = r.try_get("properties")?;
    let properties = properties
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            what: format!("properties of {id}"),
            error: e.to_string(),
        })?;
    Ok(EntityRow {
        kind: r.try_get("type")?,
        first_ms: r.try_get("first_ms")?,
        last_ms: r.try_get("last_ms")?,
        properties,
        id,
    })
}

/// The four counts of a row (`success`, `failed`, `unauthorized`, `forbidden`).
fn counts_row(r: &sqlx::any::AnyRow) -> Result<GraphCounts> {
    Ok(GraphCounts {
        success: r.try_get("success")?,
        failed: r.try_get("failed")?,
        unauthorized: r.try_get("unauthorized")?,
        forbidden: r.try_get("forbidden")?,
    })
}
