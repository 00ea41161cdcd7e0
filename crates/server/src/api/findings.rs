//! Findings: filters, keyset pages, one finding and its history, workflow changes, statistics
//! and sample findings.
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{
    FindingFilter, FindingPage, FindingSort, FindingState, FindingUpdate, HistoryEntry, Role,
    StatsGroup, StoredFinding, Workflow,
};
use serde::{Deserialize, Serialize};

use super::{BadInput, Body, NotFound, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// Query parameters of `GET /v1/findings`.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    pub(crate) cluster: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) resource: Option<String>,
    /// Comma-separated types; a trailing `*` matches a prefix.
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// A score (1.0–10.0) or a label (low, medium, high, critical).
    pub(crate) severity_min: Option<String>,
    pub(crate) severity_max: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) workflow: Option<String>,
    /// RFC 3339, on the time last seen.
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) q: Option<String>,
    pub(crate) sample: Option<bool>,
    /// updated (default), severity, first_seen, last_seen, count.
    pub(crate) sort: Option<String>,
    /// desc (default) or asc.
    pub(crate) order: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) page_token: Option<String>,
    /// Export only: jsonl (default), csv, ocsf, asff.
    pub(crate) format: Option<String>,
    /// Statistics only: severity (default), type, cluster, day.
    pub(crate) group_by: Option<String>,
    /// ASFF export only: the account and region findings are imported into.
    pub(crate) aws_account_id: Option<String>,
    pub(crate) aws_region: Option<String>,
}

pub(super) fn severity_value(name: &str, text: &str) -> ApiResult<f64> {
    let v = match text.to_ascii_lowercase().as_str() {
        "low" => 1.0,
        "medium" => 4.0,
        "high" => 7.0,
        "critical" => 9.0,
        other => other
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=10.0).contains(v))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} {text:?}: expected a score 0-10 or low, medium, high, critical"
                ))
            })?,
    };
    Ok(v)
}

/// `state`: `active` or `archived`.
fn parse_state(state: Option<&str>) -> ApiResult<Option<FindingState>> {
    state
        .map(|s| {
            FindingState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("state {s:?}: expected active or archived"))
            })
        })
        .transpose()
}

pub(crate) fn parse_workflow(workflow: Option<&str>) -> ApiResult<Option<Workflow>> {
    workflow
        .map(|w| {
            Workflow::parse(w).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "workflow {w:?}: expected new, acknowledged or resolved"
                ))
            })
        })
        .transpose()
}

pub(super) fn time_value(name: &str, text: &str) -> ApiResult<i64> {
    jiff::Timestamp::from_str(text)
        .map(|t| t.as_millisecond())
        .map_err(|_| ApiError::bad_request(format!("{name} {text:?}: expected an RFC 3339 time")))
}

impl FindingsQuery {
    fn only_for_list(&self) -> ApiResult<()> {
        for (name, set) in [
            ("format", self.format.is_some()),
            ("group_by", self.group_by.is_some()),
            ("aws_account_id", self.aws_account_id.is_some()),
            ("aws_region", self.aws_region.is_some()),
        ] {
            if set {
                return Err(ApiError::bad_request(format!(
                    "{name} applies to /v1/findings/export or /v1/findings/statistics"
                )));
            }
        }
        Ok(())
    }

    pub fn filter(&self, caller: &Caller) -> ApiResult<FindingFilter> {
        let state = parse_state(self.state.as_deref())?;
        let workflow = parse_workflow(self.workflow.as_deref())?;
        let sort = match self.sort.as_deref() {
            None => FindingSort::Updated,
            Some(s) => FindingSort::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "sort {s:?}: expected updated, severity, first_seen, last_seen or count"
                ))
            })?,
        };
        let ascending = match self.order.as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "order {o:?}: expected asc or desc"
                )));
            }
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit {limit}: expected 1 to 1000"
            )));
        }
        Ok(FindingFilter {
            tenant_id: caller.scope(),
            cluster_id: self.cluster.clone(),
            namespace: self.namespace.clone(),
            resource: self.resource.clone(),
            types: self
                .kind
                .as_deref()
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            severity_min: self
                .severity_min
                .as_deref()
                .map(|s| severity_value("severity_min", s))
                .transpose()?,
            severity_max: self
                .severity_max
                .as_deref()
                .map(|s| severity_value("severity_max", s))
                .transpose()?,
            state,
            workflow,
            since_ms: self
                .since
                .as_deref()
                .map(|t| time_value("since", t))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|t| time_value("until", t))
                .transpose()?,
            text: self.q.clone().filter(|q| !q.is_empty()),
            sample: self.sample,
            sort,
            ascending,
            limit,
            page_token: self.page_token.clone(),
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct History {
    history: Vec<HistoryEntry>,
}

/// Counts of findings by one field.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Statistics {
    /// severity, type, cluster or day.
    group_by: String,
    total: i64,
    groups: Vec<StatisticsGroup>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatisticsGroup {
    key: String,
    count: i64,
}

/// What posting samples did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Samples {
    /// How many of them are new (the others were refreshed).
    created: usize,
    /// The ids of the sample findings.
    findings: Vec<String>,
}

#[utoipa::path(get, path = "/v1/findings", tag = "findings", params(FindingsQuery), responses((status = 200, description = "A page of findings; `next_page_token` when there are more", body = FindingPage), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_findings(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<Json<FindingPage>> {
    caller.require(Role::Viewer)?;
    q.only_for_list()?;
    Ok(Json(app.store.findings(&q.filter(&caller)?).await?))
}

pub(crate) async fn readable_finding(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<StoredFinding> {
    match app.store.finding(id).await? {
        Some(f) if caller.owns(&f.tenant_id) => Ok(f),
        _ => Err(ApiError::not_found(format!("finding {id}"))),
    }
}

#[utoipa::path(get, path = "/v1/findings/{id}", tag = "findings", params(("id" = String, Path, description = "Finding id")), responses((status = 200, description = "The finding", body = StoredFinding), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn get_finding(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredFinding>> {
    caller.require(Role::Viewer)?;
    Ok(Json(readable_finding(&app, &caller, &id).await?))
}

#[utoipa::path(get, path = "/v1/findings/{id}/history", tag = "findings", params(("id" = String, Path, description = "Finding id")), responses((status = 200, description = "Created, recurred, archived, workflow, notes: who and when", body = History), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn finding_history(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<History>> {
    caller.require(Role::Viewer)?;
    readable_finding(&app, &caller, &id).await?;
    let history = app.store.finding_history(&id).await?;
    Ok(Json(History { history }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingChange {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[utoipa::path(patch, path = "/v1/findings/{id}", tag = "findings", params(("id" = String, Path, description = "Finding id")), request_body = FindingChange, responses((status = 200, description = "The changed finding", body = StoredFinding), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn update_finding(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<FindingChange>,
) -> ApiResult<Json<StoredFinding>> {
    let p = caller.require(Role::Analyst)?;
    readable_finding(&app, &caller, &id).await?;
    let archived = parse_state(body.state.as_deref())?.map(|s| s == FindingState::Archived);
    let workflow = parse_workflow(body.workflow.as_deref())?;
    if let Some(n) = &body.note
        && (n.trim().is_empty() || n.len() > 10_000)
    {
        return Err(ApiError::bad_request(
            "note: expected 1 to 10,000 bytes of text",
        ));
    }
    if archived.is_none() && workflow.is_none() && body.note.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give state, workflow or note",
        ));
    }
    let update = FindingUpdate {
        archived,
        workflow,
        note: body.note,
    };
    Ok(Json(
        app.store.update_finding(&id, &update, &p.token_id).await?,
    ))
}

#[utoipa::path(get, path = "/v1/findings/statistics", tag = "findings", params(FindingsQuery), responses((status = 200, description = "Counts by the field asked", body = Statistics), BadInput, Refused), security(("bearer" = [])))]
pub async fn finding_statistics(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<Json<Statistics>> {
    caller.require(Role::Viewer)?;
    let by = q.group_by.as_deref().unwrap_or("severity");
    let group = StatsGroup::parse(by).ok_or_else(|| {
        ApiError::bad_request(format!(
            "group_by {by:?}: expected severity, type, cluster or day"
        ))
    })?;
    let filter = q.filter(&caller)?;
    let groups = app.store.finding_stats(&filter, group).await?;
    let total: i64 = groups.iter().map(|g| g.1).sum();
    Ok(Json(Statistics {
        group_by: by.to_string(),
        total,
        groups: groups
            .into_iter()
            .map(|(key, count)| StatisticsGroup { key, count })
            .collect(),
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleRequest {
    /// Attach the samples to this cluster (id) of the tenant; none by default.
    #[serde(default)]
    cluster: Option<String>,
}

/// One sample finding per finding type, marked `sample` and titled `[SAMPLE] …`, for testing
/// integrations (outputs, dashboards). Posting again refreshes them instead of adding more.
#[utoipa::path(post, path = "/v1/findings/samples", tag = "findings", request_body(content = SampleRequest, description = "Optional"), responses((status = 201, description = "How many are new, and the ids of the sample findings", body = Samples), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn create_samples(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Samples>)> {
    let p = caller.require(Role::Analyst)?;
    let req: SampleRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SampleRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?
    };
    let (cluster_id, cluster_name) = match &req.cluster {
        Some(id) => match app.store.cluster(id).await? {
            Some(c) if c.tenant_id == p.tenant_id => (Some(c.id), c.name),
            _ => return Err(ApiError::not_found(format!("cluster {id}"))),
        },
        None => (None, "sample-cluster".to_string()),
    };
    let now = jiff::Timestamp::now().to_string();
    let records: Vec<osprey_store::FindingRecord> =
        crate::samples::findings(&app.catalogue, &cluster_name, &now)
            .into_iter()
            .map(|mut f| {
                f.id = crate::detector::scoped_id(&p.tenant_id, &format!("sample\0{}", f.kind));
                osprey_store::FindingRecord {
                    finding: f,
                    tenant_id: p.tenant_id.clone(),
                    cluster_id: cluster_id.clone(),
                    source: osprey_store::FindingSource::Sample,
                    sample: true,
                }
            })
            .collect();
    let up = app.store.upsert_findings(records, &p.token_id).await?;
    app.outputs_wake.notify_one();

    Ok((
        StatusCode::CREATED,
        Json(Samples {
            created: up.iter().filter(|u| u.created).count(),
            findings: up.into_iter().map(|u| u.id).collect(),
        }),
    ))
}
