//! Image scans: the job queue. (The SBOM kept per image digest is `sboms.rs`; the registries
//! scans pull from, `registries.rs`.)
//!
//! Jobs are rows: queued by the API, by a detection round (triggered scans, in the round's
//! transaction, at most once per image per window through `scan_triggers`) or by the re-scan
//! schedule; a worker claims the oldest queued job with one conditional `UPDATE`, so two workers
//! never take the same job. A scan's results (findings, SBOM, the job's end) commit together.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{DetectionRound, Result, Store, StoreError, new_id, now_ms};

osprey_model::text_enum!(
    /// Why a scan runs.
    ScanKind {
        /// Asked for through the API.
        OnDemand = "on_demand",
        /// Queued by an audit finding naming a workload that runs the image.
        Triggered = "triggered",
        /// A stored image re-scanned on the schedule.
        Scheduled = "scheduled",
    }
);

osprey_model::text_enum!(
    /// Where a job stands.
    ScanState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
        /// Not run: the image's digest was scanned within the trigger window.
        Skipped = "skipped",
    }
);

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub tenant_id: String,
    pub cluster_id: Option<String>,
    /// The image as named (a registry reference; other sources when the server allows them).
    pub image: String,
    pub kind: ScanKind,
    pub trigger_finding_id: Option<String>,
    /// The workload running the image (a `KubernetesResource`).
    pub workload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanJob {
    pub id: String,
    pub tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub image: String,
    pub kind: ScanKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_finding_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<serde_json::Value>,
    pub state: ScanState,
    /// Why the job failed or was skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// A skipped job: the job that scanned the same digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    pub packages: i64,
    pub vulnerabilities: i64,
    pub threats: i64,
    /// The findings the scan stored (vulnerabilities and the malware finding).
    pub finding_ids: Vec<String>,
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// How many times the job was started.
    pub attempts: i64,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub state: ScanState,
    pub detail: String,
    pub image_digest: Option<String>,
    pub reused_from: Option<String>,
    pub packages: i64,
    pub vulnerabilities: i64,
    pub threats: i64,
    pub finding_ids: Vec<String>,
}

impl ScanResult {
    /// A job that could not run to the end.
    pub fn failed(detail: impl Into<String>) -> ScanResult {
        ScanResult {
            state: ScanState::Failed,
            detail: detail.into(),
            image_digest: None,
            reused_from: None,
            packages: 0,
            vulnerabilities: 0,
            threats: 0,
            finding_ids: Vec::new(),
        }
    }
}

const JOB_COLUMNS: &str = "id, tenant_id, cluster_id, image, kind, trigger_finding_id, workload, state, detail, image_digest, reused_from, packages, vulnerabilities, threats, finding_ids, created_ms, started_ms, finished_ms, attempts";

/// Starts of one job at most: a job running when its server stopped three times (a scan that
/// crashes the server, say) fails instead of being claimed again.
pub const MAX_SCAN_ATTEMPTS: i64 = 3;

/// The detail of a job failed for that.
const ABANDONED: &str =
    "the server stopped during this scan 3 times; it is not tried again (see the server's log)";

pub(crate) fn corrupt(what: &str, error: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        error: error.to_string(),
    }
}

pub(crate) fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn ids_of(text: &str, what: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn job_row(r: &AnyRow) -> Result<ScanJob> {
    let id: String = r.try_get("id")?;
    let kind: String = r.try_get("kind")?;
    let state: String = r.try_get("state")?;
    let workload: Option<String> = r.try_get("workload")?;
    let finding_ids: String = r.try_get("finding_ids")?;
    Ok(ScanJob {
        tenant_id: r.try_get("tenant_id")?,
        cluster_id: r.try_get("cluster_id")?,
        image: r.try_get("image")?,
        kind: ScanKind::parse(&kind).ok_or_else(|| corrupt("scan kind", &kind))?,
        trigger_finding_id: r.try_get("trigger_finding_id")?,
        workload: workload
            .map(|w| serde_json::from_str(&w))
            .transpose()
            .map_err(|e| corrupt(&format!("workload of scan {id}"), e))?,
        state: ScanState::parse(&state).ok_or_else(|| corrupt("scan state", &state))?,
        detail: r.try_get("detail")?,
        image_digest: r.try_get("image_digest")?,
        reused_from: r.try_get("reused_from")?,
        packages: r.try_get("packages")?,
        vulnerabilities: r.try_get("vulnerabilities")?,
        threats: r.try_get("threats")?,
        finding_ids: ids_of(&finding_ids, &format!("findings of scan {id}"))?,
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        attempts: r.try_get("attempts")?,
        id,
    })
}

async fn insert_job(conn: &mut sqlx::AnyConnection, s: &NewScan, now: i64) -> Result<ScanJob> {
    let job = ScanJob {
        id: new_id(),
        tenant_id: s.tenant_id.clone(),
        cluster_id: s.cluster_id.clone(),
        image: s.image.clone(),
        kind: s.kind,
        trigger_finding_id: s.trigger_finding_id.clone(),
        workload: s.workload.clone(),
        state: ScanState::Queued,
        detail: String::new(),
        image_digest: None,
        reused_from: None,
        packages: 0,
        vulnerabilities: 0,
        threats: 0,
        finding_ids: Vec::new(),
        created_ms: now,
        started_ms: None,
        finished_ms: None,
        attempts: 0,
    };
    sqlx::query(
        "INSERT INTO scan_jobs (id, tenant_id, cluster_id, image, kind, trigger_finding_id, workload, state, detail, packages, vulnerabilities, threats, finding_ids, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', '', 0, 0, 0, '[]', $8)",
    )
    .bind(&job.id)
    .bind(&job.tenant_id)
    .bind(job.cluster_id.clone())
    .bind(&job.image)
    .bind(job.kind.as_str())
    .bind(job.trigger_finding_id.clone())
    .bind(job.workload.as_ref().map(|w| w.to_string()))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(job)
}

impl Store {
    /// Queues a scan (on demand or scheduled: no rate limit).
    pub async fn enqueue_scan(&self, scan: &NewScan) -> Result<ScanJob> {
        let mut conn = self.pool.acquire().await?;
        insert_job(&mut conn, scan, now_ms()).await
    }

    /// Takes the next queued job, marking it running: the oldest job of the tenants with the
    /// fewest jobs running, among tenants with fewer than `max_running_per_tenant` running (so
    /// one tenant's queue cannot hold every worker). `None` when no job can be taken.
    pub async fn claim_scan(&self, max_running_per_tenant: i64) -> Result<Option<ScanJob>> {
        // The inner SELECT may pick a job another worker is claiming at the same moment; the
        // outer condition on `state` then matches nothing (PostgreSQL re-checks it on the
        // locked row, SQLite runs writers one at a time), and the caller tries again.
        for _ in 0..4 {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE scan_jobs SET state = 'running', started_ms = $1, attempts = attempts + 1
                 WHERE state = 'queued' AND id = (
                   SELECT q.id FROM scan_jobs q
                   WHERE q.state = 'queued'
                     AND (SELECT COUNT(*) FROM scan_jobs r WHERE r.state = 'running' AND r.tenant_id = q.tenant_id) < $2
                   ORDER BY (SELECT COUNT(*) FROM scan_jobs r WHERE r.state = 'running' AND r.tenant_id = q.tenant_id),
                            q.created_ms, q.id
                   LIMIT 1)
                 RETURNING {JOB_COLUMNS}"
            )))
            .bind(now_ms())
            .bind(max_running_per_tenant.max(1))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                return job_row(&r).map(Some);
            }
            let queued: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM scan_jobs WHERE state = 'queued'")
                    .fetch_one(&self.pool)
                    .await?;
            if queued == 0 {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Takes one job by id (a job the bus handed to this worker): queued → running. With
    /// `take_over`, a job already running is taken too — the bus redelivers a job only when
    /// the worker that had it stopped confirming progress — unless it was started
    /// [`MAX_SCAN_ATTEMPTS`] times: then it fails. `None`: done, gone, failed, or taken.
    pub async fn claim_scan_id(&self, id: &str, take_over: bool) -> Result<Option<ScanJob>> {
        let now = now_ms();
        if take_over {
            self.fail_abandoned(Some(id)).await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE scan_jobs SET state = 'running', started_ms = $1, attempts = attempts + 1
             WHERE id = $2 AND (state = 'queued' OR ($3 AND state = 'running'))
             RETURNING {JOB_COLUMNS}"
        )))
        .bind(now)
        .bind(id)
        .bind(take_over)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// Jobs of a tenant waiting in the queue.
    pub async fn queued_scans(&self, tenant_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM scan_jobs WHERE tenant_id = $1 AND state = 'queued'",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Jobs queued before `before_ms`, oldest first, at most `limit` (ids).
    pub async fn queued_scans_before(&self, before_ms: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM scan_jobs WHERE state = 'queued' AND created_ms < $1 ORDER BY created_ms, id LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Puts jobs a stopped process left running back in the queue (one server per database),
    /// except those started [`MAX_SCAN_ATTEMPTS`] times, which fail; returns the jobs queued
    /// again and those failed.
    pub async fn requeue_running_scans(&self) -> Result<(u64, u64)> {
        let failed = self.fail_abandoned(None).await?;
        let r = sqlx::query(
            "UPDATE scan_jobs SET state = 'queued', started_ms = NULL WHERE state = 'running'",
        )
        .execute(&self.pool)
        .await?;
        Ok((r.rows_affected(), failed))
    }

    /// Fails the running jobs (the one named, or every one) started [`MAX_SCAN_ATTEMPTS`]
    /// times; returns how many.
    async fn fail_abandoned(&self, id: Option<&str>) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE scan_jobs SET state = 'failed', detail = $1, finished_ms = $2
             WHERE ($3 IS NULL OR id = $3) AND state = 'running' AND attempts >= $4",
        )
        .bind(ABANDONED)
        .bind(now_ms())
        .bind(id.map(str::to_string))
        .bind(MAX_SCAN_ATTEMPTS)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn scan_job(&self, id: &str) -> Result<Option<ScanJob>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM scan_jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// Jobs, newest first: a tenant's (or every tenant's), optionally in one state, after
    /// `after` (the previous page's last job: its creation time and id).
    pub async fn scan_jobs(
        &self,
        tenant_id: Option<&str>,
        state: Option<ScanState>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<ScanJob>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM scan_jobs
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR state = $2)
               AND ($3 IS NULL OR created_ms < $3 OR (created_ms = $3 AND id > $4))
             ORDER BY created_ms DESC, id LIMIT $5"
        )))
        .bind(tenant_id.map(str::to_string))
        .bind(state.map(|s| s.as_str().to_string()))
        .bind(after.map(|a| a.0))
        .bind(after.map_or_else(String::new, |a| a.1.to_string()))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// Jobs queued and running.
    pub async fn scan_queue_depth(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0) AS BIGINT) AS q,
                    CAST(COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) AS BIGINT) AS r
             FROM scan_jobs WHERE state IN ('queued', 'running')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("q")?, row.try_get("r")?))
    }

    /// The last job of a tenant that scanned `digest` to the end since `since_ms`.
    pub async fn recent_scan_of_digest(
        &self,
        tenant_id: &str,
        digest: &str,
        since_ms: i64,
    ) -> Result<Option<ScanJob>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM scan_jobs
             WHERE tenant_id = $1 AND image_digest = $2 AND state = 'done' AND finished_ms >= $3
             ORDER BY finished_ms DESC LIMIT 1"
        )))
        .bind(tenant_id)
        .bind(digest)
        .bind(since_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// Whether a job for `image` of a tenant is queued or running.
    pub async fn scan_pending(&self, tenant_id: &str, image: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM scan_jobs WHERE tenant_id = $1 AND image = $2 AND state IN ('queued', 'running')",
        )
        .bind(tenant_id)
        .bind(image)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Ends a job that stored nothing (failed, or skipped as already scanned).
    pub async fn finish_scan(&self, id: &str, result: &ScanResult) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        finish(&mut conn, id, result).await
    }
}

async fn finish(conn: &mut sqlx::AnyConnection, id: &str, r: &ScanResult) -> Result<()> {
    let done = sqlx::query(
        "UPDATE scan_jobs SET state = $2, detail = $3, image_digest = $4, reused_from = $5, packages = $6,
                vulnerabilities = $7, threats = $8, finding_ids = $9, finished_ms = $10
         WHERE id = $1",
    )
    .bind(id)
    .bind(r.state.as_str())
    .bind(&r.detail)
    .bind(r.image_digest.clone())
    .bind(r.reused_from.clone())
    .bind(r.packages)
    .bind(r.vulnerabilities)
    .bind(r.threats)
    .bind(ids_json(&r.finding_ids))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("scan {id}")));
    }
    Ok(())
}

impl DetectionRound<'_> {
    /// Queues triggered scans, each image at most once per tenant per `window_ms` and none
    /// for a tenant with `max_queued_per_tenant` jobs waiting; returns the jobs queued (the
    /// others were queued within the window) and how many were dropped for a full queue.
    pub async fn trigger_scans(
        &mut self,
        scans: &[NewScan],
        now: i64,
        window_ms: i64,
        max_queued_per_tenant: i64,
    ) -> Result<(Vec<ScanJob>, usize)> {
        let mut queued = Vec::new();
        let mut dropped = 0;
        for s in scans {
            // A tenant whose queue is full gets no more triggered scans until it drains
            // (the image is not marked as triggered, so a later finding triggers it).
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM scan_jobs WHERE tenant_id = $1 AND state = 'queued'",
            )
            .bind(&s.tenant_id)
            .fetch_one(&mut *self.tx)
            .await?;
            if waiting >= max_queued_per_tenant {
                dropped += 1;
                continue;
            }
            let admitted: Option<String> = sqlx::query_scalar(
                "INSERT INTO scan_triggers (tenant_id, image, last_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, image) DO UPDATE SET last_ms = excluded.last_ms
                 WHERE scan_triggers.last_ms <= $4
                 RETURNING image",
            )
            .bind(&s.tenant_id)
            .bind(&s.image)
            .bind(now)
            .bind(now - window_ms)
            .fetch_optional(&mut *self.tx)
            .await?;
            if admitted.is_some() {
                queued.push(insert_job(&mut self.tx, s, now).await?);
            }
        }
        Ok((queued, dropped))
    }

    /// Ends a job along with the results stored in this round.
    pub async fn finish_scan(&mut self, id: &str, result: &ScanResult) -> Result<()> {
        finish(&mut self.tx, id, result).await
    }
}
