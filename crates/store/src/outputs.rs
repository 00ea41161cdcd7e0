//! Outputs (where findings go) and their outbox of deliveries.
//!
//! A delivery row is written in the transaction that stores the finding, so a finding is never
//! stored without its notifications, nor notified without being stored. New findings are due at
//! once; repeats of a finding are due after [`REPEAT_DELAY_MS`] and coalesce into the one
//! pending delivery, so a noisy finding sends one update per delay, not one per occurrence.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError, conflict, new_id, now_ms};

/// How long a repeat waits, gathering further repeats, before it is sent.
pub const REPEAT_DELAY_MS: i64 = 30_000;
/// Attempts before a delivery is given up on and kept as a dead letter.
pub const MAX_ATTEMPTS: i64 = 8;

osprey_model::text_enum!(
    /// Where an output sends findings.
    OutputKind {
        /// JSON, signed with HMAC-SHA256 over the body.
        Webhook = "webhook",
        /// Alertmanager's API v2 (`POST /api/v2/alerts`).
        Alertmanager = "alertmanager",
        /// CloudEvents 1.0, HTTP binding, batched mode.
        Cloudevents = "cloudevents",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Output {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: OutputKind,
    pub url: String,
    /// The HMAC key of a webhook; never shown by the API.
    #[serde(skip_serializing, default)]
    pub secret: String,
    /// Findings below this score are not sent.
    pub severity_min: f64,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub seq: i64,
    pub output_id: String,
    pub finding_id: String,
    /// `created` or `updated`.
    pub event: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub due_ms: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<i64>,
}

fn output_row(r: &AnyRow) -> Result<Output> {
    let kind: String = r.try_get("kind")?;
    Ok(Output {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        kind: OutputKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            what: "output kind".into(),
            error: kind.clone(),
        })?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        severity_min: r.try_get("severity_min")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn delivery_row(r: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        seq: r.try_get("seq")?,
        output_id: r.try_get("output_id")?,
        finding_id: r.try_get("finding_id")?,
        event: r.try_get("event")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        due_ms: r.try_get("due_ms")?,
        last_error: r.try_get("last_error")?,
        created_ms: r.try_get("created_ms")?,
        done_ms: r.try_get("done_ms")?,
    })
}

const OUTPUT_COLUMNS: &str = "id, tenant_id, name, kind, url, secret, severity_min, created_ms";
const DELIVERY_COLUMNS: &str =
    "seq, output_id, finding_id, event, state, attempts, due_ms, last_error, created_ms, done_ms";

/// The outputs that see a tenant's findings: its own and the administrator tenant's (which
/// sees every member), with their severity floors.
pub(crate) async fn targets(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
) -> Result<Vec<(String, f64)>> {
    let rows = sqlx::query(
        "SELECT o.id, o.severity_min FROM outputs o JOIN tenants t ON t.id = o.tenant_id
         WHERE o.tenant_id = $1 OR t.kind = 'administrator'",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("severity_min")?)))
        .collect()
}

/// Queues a finding event for every output of `outputs` (from [`targets`]) at or below its
/// severity.
pub(crate) async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    outputs: &[(String, f64)],
    finding_id: &str,
    severity: f64,
    created: bool,
    now: i64,
) -> Result<()> {
    let targets = outputs
        .iter()
        .filter(|(_, min)| *min <= severity)
        .map(|(id, _)| id);
    for output in targets {
        if created {
            sqlx::query(
                "INSERT INTO deliveries (output_id, finding_id, event, state, attempts, due_ms, last_error, created_ms)
                 VALUES ($1, $2, 'created', 'pending', 0, $3, '', $3)",
            )
            .bind(output)
            .bind(finding_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        } else {
            // A repeat joins whatever is still pending for the finding.
            sqlx::query(
                "INSERT INTO deliveries (output_id, finding_id, event, state, attempts, due_ms, last_error, created_ms)
                 SELECT $1, $2, 'updated', 'pending', 0, $3, '', $4
                 WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE output_id = $1 AND finding_id = $2 AND state = 'pending')",
            )
            .bind(output)
            .bind(finding_id)
            .bind(now + REPEAT_DELAY_MS)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    pub async fn create_output(
        &self,
        tenant_id: &str,
        name: &str,
        kind: OutputKind,
        url: &str,
        secret: &str,
        severity_min: f64,
    ) -> Result<Output> {
        crate::tenants::validate_name("output name", name)?;
        let o = Output {
            id: new_id(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            kind,
            url: url.into(),
            secret: secret.into(),
            severity_min,
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO outputs (id, tenant_id, name, kind, url, secret, severity_min, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&o.id)
        .bind(&o.tenant_id)
        .bind(&o.name)
        .bind(kind.as_str())
        .bind(&o.url)
        .bind(&o.secret)
        .bind(severity_min)
        .bind(o.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, || format!("output {name:?}")))?;
        Ok(o)
    }

    /// Outputs of one tenant, or of every tenant.
    /// Replaces an output's stored secret (sealing one stored in clear).
    pub async fn set_output_secret(&self, id: &str, secret: &str) -> Result<()> {
        sqlx::query("UPDATE outputs SET secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn outputs(&self, tenant_id: Option<&str>) -> Result<Vec<Output>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTPUT_COLUMNS} FROM outputs WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_ms, id"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(output_row).collect()
    }

    pub async fn output(&self, id: &str) -> Result<Option<Output>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTPUT_COLUMNS} FROM outputs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(output_row).transpose()
    }

    /// Removes an output and its deliveries.
    pub async fn delete_output(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM deliveries WHERE output_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM outputs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("output {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pending deliveries due by `now`, oldest first.
    pub async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND due_ms <= $1 ORDER BY seq LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// The earliest time a pending delivery is due.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(due_ms) FROM deliveries WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Deliveries of an output, newest first, optionally in one state.
    pub async fn deliveries(
        &self,
        output_id: &str,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE output_id = $1 AND ($2 IS NULL OR state = $2)
             ORDER BY seq DESC LIMIT $3"
        )))
        .bind(output_id)
        .bind(state.map(str::to_string))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    pub async fn mark_delivered(&self, seqs: &[i64]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for s in seqs {
            sqlx::query("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, done_ms = $2, last_error = '' WHERE seq = $1")
                .bind(s)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt: due again after `backoff_ms`, or dead after [`MAX_ATTEMPTS`].
    pub async fn mark_failed(&self, seqs: &[i64], error: &str, backoff_ms: i64) -> Result<()> {
        let now = now_ms();
        let error: String = error.chars().take(1000).collect();
        let mut tx = self.begin_write().await?;
        for s in seqs {
            sqlx::query(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, due_ms = $3,
                    state = CASE WHEN attempts + 1 >= $4 THEN 'dead' ELSE 'pending' END,
                    done_ms = CASE WHEN attempts + 1 >= $4 THEN $5 ELSE NULL END
                 WHERE seq = $1",
            )
            .bind(s)
            .bind(&error)
            .bind(now + backoff_ms)
            .bind(MAX_ATTEMPTS)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
