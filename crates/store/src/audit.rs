//! Raw audit events as received, the keys of events already through detection, and small
//! named state documents (the detector's cursor, learned baselines).

use sqlx::{AssertSqlSafe, Row};

use crate::{Backend, Result, Store, StoreError, now_ms};

/// A webhook batch to keep: the EventList as received, zstd-compressed by the caller.
#[derive(Debug, Clone)]
pub struct NewAuditBatch {
    pub cluster_id: String,
    pub received_ms: i64,
    pub events: i64,
    pub body: Vec<u8>,
}

/// A kept batch, in arrival order.
#[derive(Debug, Clone)]
pub struct AuditBatch {
    pub seq: i64,
    pub cluster_id: String,
    pub received_ms: i64,
    pub events: i64,
    pub body: Vec<u8>,
}

/// A kept batch from its row (`seq, cluster_id, received_ms, events, body`).
pub(crate) fn batch_row(r: &sqlx::any::AnyRow) -> Result<AuditBatch> {
    Ok(AuditBatch {
        seq: r.try_get("seq")?,
        cluster_id: r.try_get("cluster_id")?,
        received_ms: r.try_get("received_ms")?,
        events: r.try_get("events")?,
        body: r.try_get("body")?,
    })
}

/// Bytes of one detected-event key (a 128-bit hash).
pub const SEEN_KEY_BYTES: usize = 16;

/// One stored row of detected-event keys: what a round detected of one cluster.
#[derive(Debug, Clone)]
pub struct SeenKeys {
    /// The detector generation that holds them (dropped together).
    pub generation: i64,
    pub cluster_id: String,
    pub seen_ms: i64,
    /// Keys of `SEEN_KEY_BYTES` each, concatenated.
    pub keys: Vec<u8>,
}

impl Store {
    /// Keeps several batches in one transaction; when it returns they are on disk. Returns
    /// their sequence numbers, in order.
    pub async fn append_audit_batches(&self, batches: &[NewAuditBatch]) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Sequence numbers must become visible in order, or the detector's cursor could
            // pass a batch still being committed: appends take turns (SQLite has one writer
            // anyway).
            sqlx::query("SELECT pg_advisory_xact_lock(7079710111)")
                .execute(&mut *tx)
                .await?;
        }
        let mut seqs = Vec::with_capacity(batches.len());
        for b in batches {
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO audit_batches (cluster_id, received_ms, events, body) VALUES ($1, $2, $3, $4) RETURNING seq",
            )
            .bind(&b.cluster_id)
            .bind(b.received_ms)
            .bind(b.events)
            .bind(&b.body)
            .fetch_one(&mut *tx)
            .await?;
            seqs.push(seq);
        }
        tx.commit().await?;
        Ok(seqs)
    }

    /// Batches after `cursor`, oldest first, at most `limit`.
    pub async fn audit_batches_after(&self, cursor: i64, limit: i64) -> Result<Vec<AuditBatch>> {
        let rows = sqlx::query(
            "SELECT seq, cluster_id, received_ms, events, body FROM audit_batches
             WHERE seq > $1 AND bus_id IS NULL ORDER BY seq LIMIT $2",
        )
        .bind(cursor)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(batch_row).collect()
    }

    /// Events kept after `cursor` and not yet through detection.
    pub async fn audit_events_after(&self, cursor: i64) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(events) AS BIGINT) FROM audit_batches WHERE seq > $1 AND bus_id IS NULL",
        )
        .bind(cursor)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unwrap_or(0))
    }

    /// Batches and events kept, for one cluster or for all.
    pub async fn audit_batch_count(&self, cluster_id: Option<&str>) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(events), 0) AS BIGINT) AS events FROM audit_batches
             WHERE ($1 IS NULL OR cluster_id = $1)",
        )
        .bind(cluster_id.map(str::to_string))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("events")?))
    }

    /// Drops raw batches received before `before_ms` that detection has passed.
    pub async fn purge_audit_batches(&self, before_ms: i64, cursor: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_batches WHERE received_ms < $1 AND seq <= $2")
            .bind(before_ms)
            .bind(cursor)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets pods last seen before `before_ms`.
    pub async fn purge_pod_images(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM pod_images WHERE seen_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets detected-event keys stored before `before_ms` (a retry older than that is not
    /// expected).
    pub async fn purge_seen_keys(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_seen_keys WHERE seen_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The stored rows of detected-event keys since `since_ms`, oldest first, for the clusters
    /// `wanted` says, newest first up to `max_keys` keys in all (then put back in order).
    pub async fn seen_keys(
        &self,
        since_ms: i64,
        max_keys: usize,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<SeenKeys>> {
        let rows = sqlx::query(
            "SELECT generation, cluster_id, seen_ms, keys FROM audit_seen_keys WHERE seen_ms >= $1 ORDER BY id DESC",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        let mut held = 0usize;
        for r in rows {
            let cluster_id: String = r.try_get("cluster_id")?;
            if !wanted(&cluster_id) {
                continue;
            }
            let keys: Vec<u8> = r.try_get("keys")?;
            held += keys.len() / SEEN_KEY_BYTES;
            if held > max_keys {
                break;
            }
            out.push(SeenKeys {
                generation: r.try_get("generation")?,
                cluster_id,
                seen_ms: r.try_get("seen_ms")?,
                keys,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Reads a named state document.
    pub async fn state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT value FROM state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Named state documents whose key starts with `prefix`.
    pub async fn states(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows =
            sqlx::query("SELECT key, value FROM state WHERE key LIKE $1 ESCAPE '\\' ORDER BY key")
                .bind(format!("{}%", like_escape(prefix)))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn put_state(&self, key: &str, value: &[u8]) -> Result<()> {
        put_state(&self.pool, key, value).await
    }

    /// The named state document, written with `value` first if there is none (the first of
    /// several servers starting together decides).
    pub async fn state_or_insert(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO state (key, value, updated_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(self.state(key).await?.unwrap_or_else(|| value.to_vec()))
    }

    /// Raises the fence `key` to `token`; false when it already stands higher (a newer holder
    /// of what it guards has taken over).
    pub async fn fence(&self, key: &str, token: u64) -> Result<bool> {
        fence(&self.pool, key, token).await
    }
}

/// A detection round: the keys of the events it detects and the findings it writes commit
/// together with the cursor, so a crash in between repeats the round instead of losing or doubling it.
pub struct DetectionRound<'s> {
    pub(crate) tx: sqlx::Transaction<'s, sqlx::Any>,
    pub(crate) backend: Backend,
}

impl Store {
    /// A round whose first statement writes (the detector's findings and keys): deferred, so
    /// the write lock is taken by that statement.
    pub async fn begin_round(&self) -> Result<DetectionRound<'static>> {
        Ok(DetectionRound {
            tx: self.pool.begin().await?,
            backend: self.backend,
        })
    }

    /// A round that reads before it writes (a scan's results): on SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`), as every other read-then-write transaction does.
    pub async fn begin_write_round(&self) -> Result<DetectionRound<'static>> {
        Ok(DetectionRound {
            tx: self.begin_write().await?,
            backend: self.backend,
        })
    }
}

impl DetectionRound<'_> {
    /// Stores the keys of the events (and batches) this round detects for a cluster, as one
    /// row of its generation.
    pub async fn keep_seen_keys(
        &mut self,
        cluster_id: &str,
        generation: i64,
        seen_ms: i64,
        keys: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_seen_keys (generation, cluster_id, seen_ms, keys) VALUES ($1, $2, $3, $4)",
        )
        .bind(generation)
        .bind(cluster_id)
        .bind(seen_ms)
        .bind(keys)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Within the round: drops the stored keys of generations no longer held.
    pub async fn forget_seen_generations(&mut self, generations: &[i64]) -> Result<()> {
        if generations.is_empty() {
            return Ok(());
        }
        let list = generations
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // Numbers only: formatted from i64s above.
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM audit_seen_keys WHERE generation IN ({list})"
        )))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn put_state(&mut self, key: &str, value: &[u8]) -> Result<()> {
        put_state(&mut *self.tx, key, value).await
    }

    /// Within the round: raises the fence `key` to `token`; false when a newer holder raised
    /// it higher (the round must then roll back).
    pub async fn fence(&mut self, key: &str, token: u64) -> Result<bool> {
        fence(&mut *self.tx, key, token).await
    }

    /// Remembers the images of a pod of a cluster (seen created or replaced).
    pub async fn remember_pod(
        &mut self,
        cluster_id: &str,
        namespace: &str,
        pod: &str,
        images: &[String],
        seen_ms: i64,
    ) -> Result<()> {
        let images = serde_json::to_string(images).map_err(|e| StoreError::Corrupt {
            what: format!("images of pod {namespace}/{pod}"),
            error: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO pod_images (cluster_id, namespace, pod, images, seen_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (cluster_id, namespace, pod) DO UPDATE SET images = excluded.images, seen_ms = excluded.seen_ms",
        )
        .bind(cluster_id)
        .bind(namespace)
        .bind(pod)
        .bind(images)
        .bind(seen_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The images of a pod of a cluster, as last seen; `None` when it was not seen.
    pub async fn pod_images(
        &mut self,
        cluster_id: &str,
        namespace: &str,
        pod: &str,
    ) -> Result<Option<Vec<String>>> {
        let images: Option<String> = sqlx::query_scalar(
            "SELECT images FROM pod_images WHERE cluster_id = $1 AND namespace = $2 AND pod = $3",
        )
        .bind(cluster_id)
        .bind(namespace)
        .bind(pod)
        .fetch_optional(&mut *self.tx)
        .await?;
        images
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    what: format!("images of pod {namespace}/{pod}"),
                    error: e.to_string(),
                })
            })
            .transpose()
    }

    /// Keeps a batch that arrived over the bus, once: a redelivered one (same `bus_id`) adds
    /// no row.
    pub async fn archive_batch(&mut self, batch: &AuditBatch, bus_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_batches (cluster_id, received_ms, events, body, bus_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (bus_id) DO NOTHING",
        )
        .bind(&batch.cluster_id)
        .bind(batch.received_ms)
        .bind(batch.events)
        .bind(&batch.body)
        .bind(bus_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

async fn put_state<'e, E>(db: E, key: &str, value: &[u8]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO state (key, value, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}

/// Fence tokens are stored as 20 decimal digits, so that comparing the bytes compares the
/// numbers (on both backends).
async fn fence<'e, E>(db: E, key: &str, token: u64) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "INSERT INTO state (key, value, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms
         WHERE state.value <= excluded.value",
    )
    .bind(key)
    .bind(format!("{token:020}").into_bytes())
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
