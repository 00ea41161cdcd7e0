//! Findings with their history: upserted by the detectors and scanners (a repeat of the same
//! issue updates one finding), listed with filters and keyset pagination, worked by analysts.
use base64::Engine as _;
use osprey_model::{Finding, SeverityLabel, time_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::audit::{DetectionRound, like_escape};
use crate::{Result, Store, StoreError, now_ms};

/// Audit event ids kept per finding (the latest).
const MAX_EVIDENCE: usize = 10;

/// A finding to store, with who owns it.
#[derive(Debug, Clone)]
pub struct FindingRecord {
    /// `finding.id` must be unique in the store (the caller scopes engine ids by cluster).
    pub finding: Finding,
    pub tenant_id: String,
    pub cluster_id: Option<String>,
    /// `audit`, `malware`, `vulnerability`, `sample`.
    pub source: FindingSource,
    pub sample: bool,
}

pub use osprey_model::{FindingSource, FindingState, Workflow};

/// A stored finding as the API shows it: the finding and its platform fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub source: FindingSource,
    pub state: FindingState,
    pub workflow: Workflow,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub sample: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What an upsert did to one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    pub created: bool,
    /// Occurrences added by this upsert.
    pub new_occurrences: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FindingSort {
    /// Most recently changed first.
    #[default]
    Updated,
    Severity,
    FirstSeen,
    LastSeen,
    Count,
}

impl FindingSort {
    pub fn parse(s: &str) -> Option<FindingSort> {
        Some(match s {
            "updated" => FindingSort::Updated,
            "severity" => FindingSort::Severity,
            "first_seen" => FindingSort::FirstSeen,
            "last_seen" => FindingSort::LastSeen,
            "count" => FindingSort::Count,
            _ => return None,
        })
    }
    fn column(self) -> &'static str {
        match self {
            FindingSort::Updated => "updated_ms",
            FindingSort::Severity => "severity",
            FindingSort::FirstSeen => "first_seen_ms",
            FindingSort::LastSeen => "last_seen_ms",
            FindingSort::Count => "count",
        }
    }
}

/// List criteria; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// Only this tenant's findings; `None` = every tenant (the organization's administrator).
    pub tenant_id: Option<String>,
    pub cluster_id: Option<String>,
    pub namespace: Option<String>,
    /// Substring of the resource (workload, image, user).
    pub resource: Option<String>,
    /// Exact types, or prefixes ending in `*` (`Execution:*`).
    pub types: Vec<String>,
    pub severity_min: Option<f64>,
    pub severity_max: Option<f64>,
    /// `active` or `archived`.
    pub state: Option<FindingState>,
    pub workflow: Option<Workflow>,
    /// On the last time seen.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Case-insensitive substring of the title, description or resource.
    pub text: Option<String>,
    pub sample: Option<bool>,
    pub sort: FindingSort,
    pub ascending: bool,
    pub limit: i64,
    pub page_token: Option<String>,
}

/// What statistics group findings by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// critical, high, medium, low, info.
    Severity,
    Type,
    /// Cluster id (empty for findings without one).
    Cluster,
    /// UTC day last seen (`2026-11-20`).
    Day,
}

impl StatsGroup {
    pub fn parse(s: &str) -> Option<StatsGroup> {
        Some(match s {
            "severity" => StatsGroup::Severity,
            "type" => StatsGroup::Type,
            "cluster" => StatsGroup::Cluster,
            "day" => StatsGroup::Day,
            _ => return None,
        })
    }
    fn key(self) -> &'static str {
        match self {
            StatsGroup::Severity => {
                "CASE WHEN severity >= 9 THEN 'critical' WHEN severity >= 7 THEN 'high' \
                 WHEN severity >= 4 THEN 'medium' WHEN severity > 0.5 THEN 'low' ELSE 'info' END"
            }
            StatsGroup::Type => "type",
            StatsGroup::Cluster => "COALESCE(cluster_id, '')",
            StatsGroup::Day => "CAST(CAST(last_seen_ms / 86400000 AS BIGINT) AS TEXT)",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingPage {
    pub findings: Vec<StoredFinding>,
    pub next_page_token: Option<String>,
}

/// A change made by a person or tool.
#[derive(Debug, Clone, Default)]
pub struct FindingUpdate {
    pub archived: Option<bool>,
    pub workflow: Option<Workflow>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub at_ms: i64,
    pub actor: String,
    pub change: String,
    pub detail: serde_json::Value,
}

/// The score a finding sorts and filters by: its own, else the middle of its label's range.
pub fn severity_score(f: &Finding) -> f64 {
    f.severity.score.unwrap_or(match f.severity.label {
        SeverityLabel::Untriaged => 0.0,
        SeverityLabel::Info => 0.5,
        SeverityLabel::Low => 2.0,
        SeverityLabel::Medium => 5.0,
        SeverityLabel::High => 8.0,
        SeverityLabel::Critical => 9.5,
    })
}

/// The resource a finding is about, as one searchable string.
fn resource_text(f: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(k) = &f.resource.kubernetes {
        if let Some(w) = &k.workload {
            parts.push(format!("{}/{}", w.kind, w.name));
        }
        if let Some(u) = &k.user {
            parts.push(u.username.clone());
        }
    }
    if let Some(i) = &f.resource.image {
        parts.push(i.reference.clone());
        if let Some(d) = &i.digest {
            parts.push(d.clone());
        }
    }
    parts.join(" ")
}

/// A repeat of a stored finding: counts add, times widen, the latest details win.
fn merge(old: &mut Finding, new: Finding) {
    old.count += new.count;
    let first = |a: &Option<String>, b: &Option<String>| match (
        time_ms(a.as_deref()),
        time_ms(b.as_deref()),
    ) {
        (Some(x), Some(y)) => x <= y,
        (Some(_), None) => true,
        _ => false,
    };
    if !first(&old.first_seen, &new.first_seen) {
        old.first_seen = new.first_seen.clone();
    }
    let latest = first(&old.last_seen, &new.last_seen) || old.last_seen.is_none();
    if new.severity.label > old.severity.label
        || (new.severity.label == old.severity.label
            && new.severity.score.unwrap_or(0.0) > old.severity.score.unwrap_or(0.0))
    {
        old.severity = new.severity;
    }
    let prev = old.evidence.take().unwrap_or_default();
    let mut ids = prev.audit_ids;
    if let Some(ev) = &new.evidence {
        for id in &ev.audit_ids {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    if ids.len() > MAX_EVIDENCE {
        ids.drain(..ids.len() - MAX_EVIDENCE);
    }
    if latest {
        old.last_seen = new.last_seen;
        old.action = new.action.or(old.action.take());
        old.resource = new.resource;
        old.malware = new.malware.or(old.malware.take());
        old.vulnerability = new.vulnerability.or(old.vulnerability.take());
        old.description = new.description;
        old.title = new.title;
    }
    let mut evidence = new.evidence.unwrap_or_default();
    evidence.audit_ids = ids;
    for (k, v) in prev.additional_info {
        evidence.additional_info.entry(k).or_insert(v);
    }
    old.evidence = Some(evidence);
}

/// `2026-11-20` for a count of days since the epoch.
fn day_of(days: &str) -> String {
    days.parse::<i64>()
        .ok()
        .and_then(|d| jiff::Timestamp::from_second(d * 86_400).ok())
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

fn parse_body(id: &str, body: &str) -> Result<Finding> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        what: format!("finding {id}"),
        error: e.to_string(),
    })
}

/// A text column of a finding's row read as one of its enums; other text is a corrupt row.
fn text_column<T>(r: &AnyRow, id: &str, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let text: String = r.try_get(column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt {
        what: format!("finding {id}"),
        error: format!("{column} {text:?}"),
    })
}

fn stored_row(r: &AnyRow) -> Result<StoredFinding> {
    let id: String = r.try_get("id")?;
    let body: String = r.try_get("body")?;
    Ok(StoredFinding {
        finding: parse_body(&id, &body)?,
        tenant_id: r.try_get("tenant_id")?,
        cluster_id: r.try_get("cluster_id")?,
        source: text_column(r, &id, "source", FindingSource::parse)?,
        state: text_column(r, &id, "state", FindingState::parse)?,
        workflow: text_column(r, &id, "workflow", Workflow::parse)?,
        sample: r.try_get::<i64, _>("sample")? != 0,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

const COLUMNS: &str =
    "id, tenant_id, cluster_id, source, state, workflow, sample, created_ms, updated_ms, body";

async fn upsert(
    conn: &mut sqlx::AnyConnection,
    records: Vec<FindingRecord>,
    actor: &str,
) -> Result<Vec<Upserted>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(records.len());
    // Outputs per tenant, looked up once per call: a round's findings share few tenants.
    let mut outputs: std::collections::HashMap<String, Vec<(String, f64)>> =
        std::collections::HashMap::new();
    for rec in records {
        let id = rec.finding.id.clone();
        let existing = sqlx::query("SELECT body, state FROM findings WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
        let added = rec.finding.count;
        let mut archived = rec.finding.suppression.is_some();
        let existing = match existing {
            Some(r) => {
                archived =
                    text_column(&r, &id, "state", FindingState::parse)? == FindingState::Archived;
                Some(r.try_get::<String, _>("body")?)
            }
            None => None,
        };
        let (finding, created) = match existing {
            Some(body) => {
                let mut old = parse_body(&id, &body)?;
                merge(&mut old, rec.finding);
                (old, false)
            }
            None => (rec.finding, true),
        };
        let body = serde_json::to_string(&finding).map_err(|e| StoreError::Corrupt {
            what: format!("finding {id}"),
            error: e.to_string(),
        })?;
        let first = time_ms(finding.first_seen.as_deref()).unwrap_or(now);
        let last = time_ms(finding.last_seen.as_deref()).unwrap_or(first);
        let namespace = finding
            .resource
            .kubernetes
            .as_ref()
            .map(|k| k.namespace.clone())
            .unwrap_or_default();
        if created {
            sqlx::query(
                "INSERT INTO findings (id, tenant_id, cluster_id, source, type, severity, title, namespace, resource,
                    first_seen_ms, last_seen_ms, count, state, workflow, sample, created_ms, updated_ms, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'new', $14, $15, $15, $16)",
            )
            .bind(&id)
            .bind(&rec.tenant_id)
            .bind(rec.cluster_id.clone())
            .bind(rec.source.as_str())
            .bind(&finding.kind)
            .bind(severity_score(&finding))
            .bind(&finding.title)
            .bind(namespace)
            .bind(resource_text(&finding))
            .bind(first)
            .bind(last)
            .bind(finding.count as i64)
            .bind(
                if finding.suppression.is_some() {
                    FindingState::Archived
                } else {
                    FindingState::Active
                }
                .as_str(),
            )
            .bind(rec.sample as i64)
            .bind(now)
            .bind(&body)
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::query(
                "UPDATE findings SET severity = $2, title = $3, namespace = $4, resource = $5, first_seen_ms = $6,
                    last_seen_ms = $7, count = $8, updated_ms = $9, body = $10 WHERE id = $1",
            )
            .bind(&id)
            .bind(severity_score(&finding))
            .bind(&finding.title)
            .bind(namespace)
            .bind(resource_text(&finding))
            .bind(first)
            .bind(last)
            .bind(finding.count as i64)
            .bind(now)
            .bind(&body)
            .execute(&mut *conn)
            .await?;
        }
        let detail = serde_json::json!({ "occurrences": added, "count": finding.count, "severity": finding.severity });
        history(
            &mut *conn,
            &id,
            now,
            actor,
            if created { "created" } else { "recurred" },
            &detail,
        )
        .await?;
        if !archived {
            if !outputs.contains_key(&rec.tenant_id) {
                let found = crate::outputs::targets(conn, &rec.tenant_id).await?;
                outputs.insert(rec.tenant_id.clone(), found);
            }
            crate::outputs::enqueue(
                conn,
                &outputs[&rec.tenant_id],
                &id,
                severity_score(&finding),
                created,
                now,
            )
            .await?;
        }
        out.push(Upserted {
            id,
            created,
            new_occurrences: added,
        });
    }
    Ok(out)
}

async fn history(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    at_ms: i64,
    actor: &str,
    change: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO finding_history (finding_id, at_ms, actor, change, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(at_ms)
    .bind(actor)
    .bind(change)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Placeholders and their values, for statements assembled from optional criteria.
#[derive(Default)]
struct Binds {
    values: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
    Real(f64),
}

impl Binds {
    fn push(&mut self, b: Bind) -> String {
        self.values.push(b);
        format!("${}", self.values.len())
    }
}

fn encode_token(value: f64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{value}|{id}"))
}

fn decode_token(token: &str) -> Result<(f64, String)> {
    let bad = || {
        StoreError::Invalid(format!(
            "page_token {token:?} is not one this server issued"
        ))
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (v, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((v.parse().map_err(|_| bad())?, id.to_string()))
}

fn sort_value(f: &StoredFinding, sort: FindingSort) -> f64 {
    match sort {
        FindingSort::Updated => f.updated_ms as f64,
        FindingSort::Severity => severity_score(&f.finding),
        FindingSort::FirstSeen => {
            time_ms(f.finding.first_seen.as_deref()).unwrap_or(f.created_ms) as f64
        }
        FindingSort::LastSeen => {
            time_ms(f.finding.last_seen.as_deref()).unwrap_or(f.created_ms) as f64
        }
        FindingSort::Count => f.finding.count as f64,
    }
}

/// The WHERE clause of a filter (without pagination).
fn where_clause(f: &FindingFilter, b: &mut Binds) -> String {
    let mut conds: Vec<String> = vec!["1 = 1".into()];
    if let Some(t) = &f.tenant_id {
        conds.push(format!("tenant_id = {}", b.push(Bind::Text(t.clone()))));
    }
    if let Some(c) = &f.cluster_id {
        conds.push(format!("cluster_id = {}", b.push(Bind::Text(c.clone()))));
    }
    if let Some(n) = &f.namespace {
        conds.push(format!("namespace = {}", b.push(Bind::Text(n.clone()))));
    }
    if let Some(r) = &f.resource {
        let p = b.push(Bind::Text(format!("%{}%", like_escape(&r.to_lowercase()))));
        conds.push(format!("LOWER(resource) LIKE {p} ESCAPE '\\'"));
    }
    if !f.types.is_empty() {
        let mut alts = Vec::new();
        for t in &f.types {
            match t.strip_suffix('*') {
                Some(prefix) => {
                    let p = b.push(Bind::Text(format!("{}%", like_escape(prefix))));
                    alts.push(format!("type LIKE {p} ESCAPE '\\'"));
                }
                None => alts.push(format!("type = {}", b.push(Bind::Text(t.clone())))),
            }
        }
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some(v) = f.severity_min {
        conds.push(format!("severity >= {}", b.push(Bind::Real(v))));
    }
    if let Some(v) = f.severity_max {
        conds.push(format!("severity <= {}", b.push(Bind::Real(v))));
    }
    if let Some(s) = f.state {
        conds.push(format!("state = {}", b.push(Bind::Text(s.as_str().into()))));
    }
    if let Some(w) = f.workflow {
        conds.push(format!(
            "workflow = {}",
            b.push(Bind::Text(w.as_str().into()))
        ));
    }
    if let Some(t) = f.since_ms {
        conds.push(format!("last_seen_ms >= {}", b.push(Bind::Int(t))));
    }
    if let Some(t) = f.until_ms {
        conds.push(format!("last_seen_ms <= {}", b.push(Bind::Int(t))));
    }
    if let Some(text) = &f.text {
        let p = b.push(Bind::Text(format!(
            "%{}%",
            like_escape(&text.to_lowercase())
        )));
        conds.push(format!(
            "(LOWER(title) LIKE {p} ESCAPE '\\' OR LOWER(resource) LIKE {p} ESCAPE '\\' OR LOWER(body) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(s) = f.sample {
        conds.push(format!("sample = {}", b.push(Bind::Int(s as i64))));
    }
    conds.join(" AND ")
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Binds,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for v in binds.values {
        q = match v {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
            Bind::Real(r) => q.bind(r),
        };
    }
    q
}

impl Store {
    /// Stores findings: new ones are created, repeats update the stored one.
    pub async fn upsert_findings(
        &self,
        records: Vec<FindingRecord>,
        actor: &str,
    ) -> Result<Vec<Upserted>> {
        let mut tx = self.begin_write().await?;
        let out = upsert(&mut tx, records, actor).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn finding(&self, id: &str) -> Result<Option<StoredFinding>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM findings WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_row).transpose()
    }

    /// Findings by id (those that exist), in one query: at most a few thousand ids (one bound
    /// parameter each).
    pub async fn findings_by_id(&self, ids: &[String]) -> Result<Vec<StoredFinding>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = Binds::default();
        let list: Vec<String> = ids
            .iter()
            .map(|id| b.push(Bind::Text(id.clone())))
            .collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM findings WHERE id IN ({})",
            list.join(", ")
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), b)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_row).collect()
    }

    /// One page of findings matching a filter.
    pub async fn findings(&self, f: &FindingFilter) -> Result<FindingPage> {
        let mut b = Binds::default();
        let mut sql = format!(
            "SELECT {COLUMNS} FROM findings WHERE {}",
            where_clause(f, &mut b)
        );
        let col = f.sort.column();
        let (cmp, dir) = if f.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(token) = &f.page_token {
            let (v, id) = decode_token(token)?;
            let pv = b.push(Bind::Real(v));
            let pid = b.push(Bind::Text(id));
            sql.push_str(&format!(
                " AND ({col} {cmp} {pv} OR ({col} = {pv} AND id > {pid}))"
            ));
        }
        let limit = f.limit.clamp(1, 1000);
        let pl = b.push(Bind::Int(limit + 1));
        sql.push_str(&format!(" ORDER BY {col} {dir}, id ASC LIMIT {pl}"));
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), b)
            .fetch_all(&self.pool)
            .await?;
        let mut findings = rows.iter().map(stored_row).collect::<Result<Vec<_>>>()?;
        let next_page_token = if findings.len() as i64 > limit {
            findings.truncate(limit as usize);
            findings
                .last()
                .map(|l| encode_token(sort_value(l, f.sort), &l.finding.id))
        } else {
            None
        };
        Ok(FindingPage {
            findings,
            next_page_token,
        })
    }

    /// How many findings match a filter (pagination ignored).
    pub async fn count_findings(&self, f: &FindingFilter) -> Result<i64> {
        let mut b = Binds::default();
        let sql = format!(
            "SELECT COUNT(*) FROM findings WHERE {}",
            where_clause(f, &mut b)
        );
        let row = bind_all(sqlx::query(AssertSqlSafe(sql)), b)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Findings matching a filter (pagination ignored), counted per group, largest first.
    pub async fn finding_stats(
        &self,
        f: &FindingFilter,
        by: StatsGroup,
    ) -> Result<Vec<(String, i64)>> {
        let mut b = Binds::default();
        let key = by.key();
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n FROM findings WHERE {} GROUP BY {key} ORDER BY n DESC, k",
            where_clause(f, &mut b)
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), b)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let k: String = r.try_get("k")?;
                let k = match by {
                    StatsGroup::Day => day_of(&k),
                    _ => k,
                };
                Ok((k, r.try_get("n")?))
            })
            .collect()
    }

    /// Applies a person's change and records it in the finding's history.
    pub async fn update_finding(
        &self,
        id: &str,
        update: &FindingUpdate,
        actor: &str,
    ) -> Result<StoredFinding> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM findings WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("finding {id}")));
        }
        if let Some(archived) = update.archived {
            let state = if archived {
                FindingState::Archived
            } else {
                FindingState::Active
            }
            .as_str();
            sqlx::query("UPDATE findings SET state = $2, updated_ms = $3 WHERE id = $1")
                .bind(id)
                .bind(state)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            history(&mut tx, id, now, actor, state, &serde_json::json!({})).await?;
        }
        if let Some(w) = update.workflow {
            sqlx::query("UPDATE findings SET workflow = $2, updated_ms = $3 WHERE id = $1")
                .bind(id)
                .bind(w.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            history(
                &mut tx,
                id,
                now,
                actor,
                "workflow",
                &serde_json::json!({ "workflow": w }),
            )
            .await?;
        }
        if let Some(note) = &update.note {
            history(
                &mut tx,
                id,
                now,
                actor,
                "note",
                &serde_json::json!({ "note": note }),
            )
            .await?;
        }
        tx.commit().await?;
        self.finding(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("finding {id}")))
    }

    /// A finding's history, oldest first.
    pub async fn finding_history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, change, detail FROM finding_history WHERE finding_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(HistoryEntry {
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    change: r.try_get("change")?,
                    detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt {
                        what: format!("history of finding {id}"),
                        error: e.to_string(),
                    })?,
                })
            })
            .collect()
    }
}

impl DetectionRound<'_> {
    /// Stores findings as part of the round.
    pub async fn upsert_findings(
        &mut self,
        records: Vec<FindingRecord>,
        actor: &str,
    ) -> Result<Vec<Upserted>> {
        upsert(&mut self.tx, records, actor).await
    }

    /// Moves findings to `workflow` (those not there already), each with a history entry;
    /// returns the ids that moved. Used when a re-match closes or reopens vulnerabilities.
    pub async fn set_workflow(
        &mut self,
        ids: &[String],
        workflow: Workflow,
        actor: &str,
        detail: &serde_json::Value,
    ) -> Result<Vec<String>> {
        let now = now_ms();
        let mut moved = Vec::new();
        for id in ids {
            let done = sqlx::query(
                "UPDATE findings SET workflow = $2, updated_ms = $3 WHERE id = $1 AND workflow <> $2",
            )
            .bind(id)
            .bind(workflow.as_str())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
            if done.rows_affected() > 0 {
                let mut d = detail.clone();
                if let Some(o) = d.as_object_mut() {
                    o.insert("workflow".into(), serde_json::json!(workflow));
                }
                history(&mut self.tx, id, now, actor, "workflow", &d).await?;
                moved.push(id.clone());
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::{Evidence, Severity};

    fn finding(count: u64, first: &str, last: &str, ids: &[&str]) -> Finding {
        Finding {
            id: "f".into(),
            kind: "Execution:Kubernetes/ExecInKubeSystemPod".into(),
            title: "t".into(),
            severity: Severity::from_score(5.0),
            count,
            first_seen: Some(first.into()),
            last_seen: Some(last.into()),
            evidence: Some(Evidence {
                audit_ids: ids.iter().map(|s| s.to_string()).collect(),
                ..Evidence::default()
            }),
            ..Finding::default()
        }
    }

    #[test]
    fn merge_adds_counts_widens_times_and_keeps_the_latest_ids() {
        let mut old = finding(
            2,
            "2026-01-01T00:00:02Z",
            "2026-01-01T00:00:05Z",
            &["a", "b"],
        );
        let mut new = finding(
            3,
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:09Z",
            &["b", "c"],
        );
        new.severity = Severity::from_score(8.0);
        merge(&mut old, new);
        assert_eq!(old.count, 5);
        assert_eq!(old.first_seen.as_deref(), Some("2026-01-01T00:00:01Z"));
        assert_eq!(old.last_seen.as_deref(), Some("2026-01-01T00:00:09Z"));
        assert_eq!(old.severity.label, SeverityLabel::High);
        assert_eq!(old.evidence.unwrap().audit_ids, vec!["a", "b", "c"]);
    }

    #[test]
    fn evidence_is_capped_at_the_latest_ids() {
        let many: Vec<String> = (0..15).map(|i| format!("id{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut old = finding(1, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", &[]);
        merge(
            &mut old,
            finding(15, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", &refs),
        );
        let ids = old.evidence.unwrap().audit_ids;
        assert_eq!(ids.len(), MAX_EVIDENCE);
        assert_eq!(ids.last().map(String::as_str), Some("id14"));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = encode_token(1234.0, "abc");
        assert_eq!(decode_token(&t).unwrap(), (1234.0, "abc".to_string()));
        assert!(decode_token("not a token").is_err());
    }
}
