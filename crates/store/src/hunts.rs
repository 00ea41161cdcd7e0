//! Retro-hunts: the job rows, and the kept audit batches a hunt reads.
//!
//! A hunt is queued by the API and claimed by one server with one conditional `UPDATE` (as scan
//! jobs are); the claim sets a lease the hunter renews with its progress. A hunt whose lease
//! ran out — its server stopped — is claimed again from the start, at most `MAX_ATTEMPTS`
//! times in all; then it fails with the reason. A tenant runs one hunt at a time. The findings
//! a hunt makes and its end commit together (`DetectionRound::finish_hunt`), so a hunt claimed
//! again never stores its findings twice.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::scans::{corrupt, ids_json, ids_of};
use crate::{AuditBatch, DetectionRound, Result, Store, new_id, now_ms};

/// Claims of one hunt, in all: a hunt whose server stopped this often fails.
pub const MAX_HUNT_ATTEMPTS: i64 = 3;

osprey_model::text_enum!(
    /// Where a hunt stands.
    HuntState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
        /// Stopped on request: it stored nothing.
        Cancelled = "cancelled",
    }
);

/// A hunt to queue.
#[derive(Debug, Clone)]
pub struct NewRetroHunt {
    pub tenant_id: String,
    /// One cluster of the tenant; every cluster of the tenant when absent.
    pub cluster_id: Option<String>,
    pub since_ms: i64,
    pub until_ms: i64,
    pub rules: Option<String>,
    pub threat_list: Option<String>,
    /// The token that asked for it.
    pub created_by: String,
}

/// A stored hunt.
#[derive(Debug, Clone, Serialize)]
pub struct RetroHunt {
    pub id: String,
    pub tenant_id: String,
    pub cluster_id: Option<String>,
    pub since_ms: i64,
    pub until_ms: i64,
    pub rules: Option<String>,
    pub threat_list: Option<String>,
    pub state: HuntState,
    pub detail: String,
    pub events_scanned: i64,
    pub batches_scanned: i64,
    pub finding_ids: Vec<String>,
    pub notices: Vec<String>,
    pub attempts: i64,
    pub created_by: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

/// How a hunt ended well.
#[derive(Debug, Clone, Default)]
pub struct HuntResult {
    pub events_scanned: i64,
    pub batches_scanned: i64,
    pub finding_ids: Vec<String>,
    pub notices: Vec<String>,
}

const HUNT_COLUMNS: &str = "id, tenant_id, cluster_id, since_ms, until_ms, rules, threat_list, state, detail, events_scanned, batches_scanned, finding_ids, notices, attempts, created_by, created_ms, started_ms, finished_ms";

fn hunt_row(r: &AnyRow) -> Result<RetroHunt> {
    let id: String = r.try_get("id")?;
    let state: String = r.try_get("state")?;
    let finding_ids: String = r.try_get("finding_ids")?;
    let notices: String = r.try_get("notices")?;
    Ok(RetroHunt {
        tenant_id: r.try_get("tenant_id")?,
        cluster_id: r.try_get("cluster_id")?,
        since_ms: r.try_get("since_ms")?,
        until_ms: r.try_get("until_ms")?,
        rules: r.try_get("rules")?,
        threat_list: r.try_get("threat_list")?,
        state: HuntState::parse(&state).ok_or_else(|| corrupt("hunt state", &state))?,
        detail: r.try_get("detail")?,
        events_scanned: r.try_get("events_scanned")?,
        batches_scanned: r.try_get("batches_scanned")?,
        finding_ids: ids_of(&finding_ids, &format!("findings of retro-hunt {id}"))?,
        notices: ids_of(&notices, &format!("notices of retro-hunt {id}"))?,
        attempts: r.try_get("attempts")?,
        created_by: r.try_get("created_by")?,
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        id,
    })
}

impl Store {
    /// Queues a hunt.
    pub async fn enqueue_hunt(&self, h: &NewRetroHunt) -> Result<RetroHunt> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO retro_hunts (id, tenant_id, cluster_id, since_ms, until_ms, rules, threat_list, state, detail,
                events_scanned, batches_scanned, finding_ids, notices, attempts, created_by, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', '', 0, 0, '[]', '[]', 0, $8, $9)
             RETURNING {HUNT_COLUMNS}"
        )))
        .bind(new_id())
        .bind(&h.tenant_id)
        .bind(h.cluster_id.clone())
        .bind(h.since_ms)
        .bind(h.until_ms)
        .bind(h.rules.clone())
        .bind(h.threat_list.clone())
        .bind(&h.created_by)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        hunt_row(&row)
    }

    /// Hunts of a tenant queued or running.
    pub async fn active_hunts(&self, tenant_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM retro_hunts WHERE tenant_id = $1 AND state IN ('queued', 'running')",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Takes the oldest hunt that is queued, or running on a lease that ran out, of a tenant
    /// with no other hunt running; holds it until `lease_ms` from now. A hunt whose lease ran
    /// out `MAX_HUNT_ATTEMPTS` times fails instead. `None`: nothing to take.
    pub async fn claim_hunt(&self, lease_ms: i64) -> Result<Option<RetroHunt>> {
        let now = now_ms();
        sqlx::query(
            "UPDATE retro_hunts SET state = 'failed', finished_ms = $1,
                detail = 'interrupted: the server running it stopped ' || CAST(attempts AS TEXT) || ' times'
             WHERE state = 'running' AND lease_until_ms < $1 AND attempts >= $2",
        )
        .bind(now)
        .bind(MAX_HUNT_ATTEMPTS)
        .execute(&self.pool)
        .await?;
        // As for scans: two servers may pick the same hunt; the outer condition lets one win.
        let takeable = "(state = 'queued' OR (state = 'running' AND lease_until_ms < $1))";
        // Hunts that may be taken now: of a tenant with no other hunt running.
        let candidates = format!(
            "FROM retro_hunts h WHERE {takeable}
               AND NOT EXISTS (SELECT 1 FROM retro_hunts o WHERE o.tenant_id = h.tenant_id
                               AND o.state = 'running' AND o.lease_until_ms >= $1)"
        );
        loop {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE retro_hunts SET state = 'running', started_ms = $1, lease_until_ms = $2,
                    attempts = attempts + 1, events_scanned = 0, batches_scanned = 0
                 WHERE {takeable} AND id = (SELECT id {candidates} ORDER BY created_ms, id LIMIT 1)
                 RETURNING {HUNT_COLUMNS}"
            )))
            .bind(now)
            .bind(now + lease_ms)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                return hunt_row(&r).map(Some);
            }
            let waiting: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) {candidates}")))
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?;
            if waiting == 0 {
                return Ok(None);
            }
        }
    }

    /// Renews a running hunt's lease and records its progress. `false`: the hunt is no longer
    /// this claim's (cancelled, or its lease ran out and another server took it).
    pub async fn renew_hunt(
        &self,
        id: &str,
        attempt: i64,
        lease_ms: i64,
        events_scanned: i64,
        batches_scanned: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE retro_hunts SET lease_until_ms = $3, events_scanned = $4, batches_scanned = $5
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(attempt)
        .bind(now_ms() + lease_ms)
        .bind(events_scanned)
        .bind(batches_scanned)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a running hunt that could not run to the end.
    pub async fn fail_hunt(&self, id: &str, attempt: i64, detail: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE retro_hunts SET state = 'failed', detail = $3, finished_ms = $4, lease_until_ms = NULL
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(attempt)
        .bind(detail)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a running hunt back in the queue (its server is stopping): the claim does not count
    /// as an attempt.
    pub async fn release_hunt(&self, id: &str, attempt: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE retro_hunts SET state = 'queued', attempts = attempts - 1, started_ms = NULL,
                lease_until_ms = NULL, events_scanned = 0, batches_scanned = 0
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a hunt that is queued or running; returns it as it is now (`None`: no such
    /// hunt).
    pub async fn cancel_hunt(&self, id: &str) -> Result<Option<RetroHunt>> {
        sqlx::query(
            "UPDATE retro_hunts SET state = 'cancelled', finished_ms = $2, lease_until_ms = NULL
             WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.hunt(id).await
    }

    pub async fn hunt(&self, id: &str) -> Result<Option<RetroHunt>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HUNT_COLUMNS} FROM retro_hunts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(hunt_row).transpose()
    }

    /// Hunts, newest first: a tenant's (or every tenant's), after `after` (the previous
    /// page's last: its creation time and id).
    pub async fn hunts(
        &self,
        tenant_id: Option<&str>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<RetroHunt>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HUNT_COLUMNS} FROM retro_hunts
             WHERE ($1 IS NULL OR tenant_id = $1)
               AND ($2 IS NULL OR created_ms < $2 OR (created_ms = $2 AND id > $3))
             ORDER BY created_ms DESC, id LIMIT $4"
        )))
        .bind(tenant_id.map(str::to_string))
        .bind(after.map(|a| a.0))
        .bind(after.map_or_else(String::new, |a| a.1.to_string()))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(hunt_row).collect()
    }

    /// Kept batches of `clusters` received since `received_since_ms`, after sequence `after`,
    /// in arrival order, at most `limit`: what a hunt reads, page by page (events are received
    /// after they happen, so nothing of a hunt's window was received before its start; an
    /// imported or late log may have been received long after).
    pub async fn hunt_batches(
        &self,
        clusters: &[String],
        received_since_ms: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditBatch>> {
        if clusters.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..clusters.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT seq, cluster_id, received_ms, events, body FROM audit_batches
             WHERE seq > $1 AND received_ms >= $2 AND cluster_id IN ({}) ORDER BY seq LIMIT $3",
            list.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(received_since_ms)
            .bind(limit);
        for c in clusters {
            q = q.bind(c.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(crate::audit::batch_row).collect()
    }
}

impl DetectionRound<'_> {
    /// Ends a running hunt as done with what it found, in the transaction that stores its
    /// findings. `false`: the hunt is no longer this claim's (cancelled, or taken over); the
    /// caller then drops the round, storing nothing.
    pub async fn finish_hunt(&mut self, id: &str, attempt: i64, r: &HuntResult) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE retro_hunts SET state = 'done', events_scanned = $3, batches_scanned = $4,
                finding_ids = $5, notices = $6, finished_ms = $7, lease_until_ms = NULL
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(attempt)
        .bind(r.events_scanned)
        .bind(r.batches_scanned)
        .bind(ids_json(&r.finding_ids))
        .bind(ids_json(&r.notices))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
