//! The JSON API: tenants, tokens, clusters, findings and the administrative log.
//!
//! Tenancy is enforced here, per route: a member's caller sees and changes only its tenant's
//! data; the organization's administrator tenant sees all. Something that exists but belongs to
//! another tenant answers 404, the same as something that does not exist.

use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use osprey_store::{
    FindingFilter, FindingSort, FindingUpdate, OutputKind, Principal, Role, StatsGroup,
    StoredFinding, TenantKind, Workflow,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub(crate) async fn log(
    app: &App,
    p: &Principal,
    action: &str,
    target: &str,
    detail: Value,
) -> ApiResult<()> {
    app.store
        .log_action(&p.tenant_id, &p.token_id, action, target, detail)
        .await?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> ApiResult<Value> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// A JSON body, with a one-line error naming what is wrong when it does not parse.
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request(format!("request body: {e}")))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    name: String,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant, responses((status = 201, description = "The new member tenant: id, name, kind", body = serde_json::Value), (status = 409, description = "Name taken", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_tenant(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewTenant>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = caller.require(Role::Admin)?;
    if !p.is_org_admin() {
        return Err(ApiError::forbidden(
            "only the organization's administrator tenant creates tenants",
        ));
    }
    let t = app
        .store
        .create_tenant(&body.name, TenantKind::Member)
        .await?;
    log(&app, p, "tenant.create", &t.id, json!({ "name": t.name })).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": t.id, "name": t.name, "kind": t.kind })),
    ))
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", responses((status = 200, description = "Tenants the caller sees", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_tenants(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let scope = caller.scope();
    let tenants: Vec<_> = app
        .store
        .tenants()
        .await?
        .into_iter()
        .filter(|t| scope.as_ref().is_none_or(|s| *s == t.id))
        .collect();
    Ok(Json(json!({ "tenants": tenants })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Tenant name or id; the caller's own when absent.
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    name: String,
}

/// A tenant the caller may manage, by name or id.
pub(crate) async fn managed_tenant(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
) -> ApiResult<String> {
    let p = caller.require(Role::Admin)?;
    let Some(t) = tenant else {
        return Ok(p.tenant_id.clone());
    };
    let found = match app.store.tenant_by_name(t).await? {
        Some(t) => Some(t),
        None => app.store.tenant(t).await?,
    };
    match found {
        Some(t) if caller.owns(&t.id) => Ok(t.id),
        _ => Err(ApiError::not_found(format!("tenant {t:?}"))),
    }
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = NewToken, responses((status = 201, description = "id, token (shown once), tenant, role", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?}: expected admin, analyst or viewer",
            body.role
        ))
    })?;
    if role == Role::Ingest {
        return Err(ApiError::bad_request(
            "ingest tokens come with their cluster (POST /v1/clusters)",
        ));
    }
    let (info, secret) = app
        .store
        .create_token(&tenant_id, &body.name, role, None)
        .await?;
    log(
        &app,
        &caller.0,
        "token.create",
        &info.id,
        json!({ "tenant": tenant_id, "role": role, "name": info.name }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": info.id, "token": secret, "tenant": tenant_id, "role": role })),
    ))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, description = "Tokens, never their secrets", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_tokens(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let tokens = app.store.tokens(caller.scope().as_deref()).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")), responses((status = 204, description = "Revoked"), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    match app.store.token(&id).await? {
        Some(t) if caller.owns(&t.tenant_id) => {
            app.store.revoke_token(&id).await?;
            log(
                &app,
                &caller.0,
                "token.revoke",
                &id,
                json!({ "tenant": t.tenant_id }),
            )
            .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found(format!("token {id}"))),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCluster {
    name: String,
    /// For the organization's administrator: create it for this member (name or id).
    #[serde(default)]
    tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = NewCluster, responses((status = 201, description = "id, name, tenant and the cluster's ingest_token (shown once)", body = serde_json::Value), (status = 409, description = "Name taken", body = ErrorBody), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_cluster(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewCluster>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let (c, secret) = app.store.create_cluster(&tenant_id, &body.name).await?;
    log(
        &app,
        &caller.0,
        "cluster.create",
        &c.id,
        json!({ "tenant": tenant_id, "name": c.name }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": c.id, "name": c.name, "tenant": c.tenant_id, "ingest_token": secret })),
    ))
}

#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", responses((status = 200, description = "Clusters the caller sees", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_clusters(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let clusters = app.store.clusters(caller.scope().as_deref()).await?;
    Ok(Json(json!({ "clusters": clusters })))
}

#[utoipa::path(get, path = "/v1/clusters/{id}", tag = "clusters", params(("id" = String, Path, description = "Cluster id")), responses((status = 200, description = "The cluster, with audit batches and events kept", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_cluster(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    match app.store.cluster(&id).await? {
        Some(c) if caller.owns(&c.tenant_id) => {
            let (batches, events) = app.store.audit_batch_count(Some(&c.id)).await?;
            let mut v = to_json(&c)?;
            v["audit"] = json!({ "batches_kept": batches, "events_kept": events });
            Ok(Json(v))
        }
        _ => Err(ApiError::not_found(format!("cluster {id}"))),
    }
}

/// Query parameters of `GET /v1/findings`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    cluster: Option<String>,
    namespace: Option<String>,
    resource: Option<String>,
    /// Comma-separated types; a trailing `*` matches a prefix.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A score (1.0–10.0) or a label (low, medium, high, critical).
    severity_min: Option<String>,
    severity_max: Option<String>,
    state: Option<String>,
    workflow: Option<String>,
    /// RFC 3339, on the time last seen.
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    sample: Option<bool>,
    /// updated (default), severity, first_seen, last_seen, count.
    sort: Option<String>,
    /// desc (default) or asc.
    order: Option<String>,
    limit: Option<i64>,
    page_token: Option<String>,
    /// Export only: jsonl (default), csv, ocsf, asff.
    format: Option<String>,
    /// Statistics only: severity (default), type, cluster, day.
    group_by: Option<String>,
    /// ASFF export only: the account and region findings are imported into.
    aws_account_id: Option<String>,
    aws_region: Option<String>,
}

fn severity_value(name: &str, text: &str) -> ApiResult<f64> {
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

/// `state`: `archived` → true, `active` → false.
fn parse_archived(state: Option<&str>) -> ApiResult<Option<bool>> {
    match state {
        None => Ok(None),
        Some("archived") => Ok(Some(true)),
        Some("active") => Ok(Some(false)),
        Some(s) => Err(ApiError::bad_request(format!(
            "state {s:?}: expected active or archived"
        ))),
    }
}

fn parse_workflow(workflow: Option<&str>) -> ApiResult<Option<Workflow>> {
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

fn time_value(name: &str, text: &str) -> ApiResult<i64> {
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
        let state = parse_archived(self.state.as_deref())?
            .map(|archived| if archived { "archived" } else { "active" }.to_string());
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

/// Query parameters, with a one-line error naming the parameter that does not parse.
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Params(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[utoipa::path(get, path = "/v1/findings", tag = "findings", params(FindingsQuery), responses((status = 200, description = "{\"findings\": [...], \"next_page_token\"}", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_findings(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    q.only_for_list()?;
    let page = app.store.findings(&q.filter(&caller)?).await?;
    Ok(Json(
        json!({ "findings": page.findings, "next_page_token": page.next_page_token }),
    ))
}

async fn readable_finding(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<osprey_store::StoredFinding> {
    match app.store.finding(id).await? {
        Some(f) if caller.owns(&f.tenant_id) => Ok(f),
        _ => Err(ApiError::not_found(format!("finding {id}"))),
    }
}

#[utoipa::path(get, path = "/v1/findings/{id}", tag = "findings", params(("id" = String, Path, description = "Finding id")), responses((status = 200, description = "The finding", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_finding(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let f = readable_finding(&app, &caller, &id).await?;
    Ok(Json(to_json(&f)?))
}

#[utoipa::path(get, path = "/v1/findings/{id}/history", tag = "findings", params(("id" = String, Path, description = "Finding id")), responses((status = 200, description = "Created, recurred, archived, workflow, notes: who and when", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn finding_history(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    readable_finding(&app, &caller, &id).await?;
    let history = app.store.finding_history(&id).await?;
    Ok(Json(json!({ "history": history })))
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

#[utoipa::path(patch, path = "/v1/findings/{id}", tag = "findings", params(("id" = String, Path, description = "Finding id")), request_body = FindingChange, responses((status = 200, description = "The changed finding", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_finding(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<FindingChange>,
) -> ApiResult<Json<Value>> {
    let p = caller.require(Role::Analyst)?;
    readable_finding(&app, &caller, &id).await?;
    let archived = parse_archived(body.state.as_deref())?;
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
    let f = app.store.update_finding(&id, &update, &p.token_id).await?;
    Ok(Json(to_json(&f)?))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin-log", tag = "administration", params(LogQuery), responses((status = 200, description = "The administrative log, newest first", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn admin_log(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<LogQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = app
        .store
        .admin_log(caller.scope().as_deref(), q.before, limit)
        .await?;
    Ok(Json(json!({ "entries": entries })))
}

#[utoipa::path(get, path = "/v1/findings/statistics", tag = "findings", params(FindingsQuery), responses((status = 200, description = "{\"group_by\", \"total\", \"groups\": [{\"key\", \"count\"}]}", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn finding_statistics(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<Json<Value>> {
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
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(key, count)| json!({ "key": key, "count": count }))
        .collect();
    Ok(Json(
        json!({ "group_by": by, "total": total, "groups": groups }),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    JsonLines,
    Csv,
    Ocsf,
    Asff,
}

/// Findings per page while exporting: the export streams page after page.
const EXPORT_PAGE: i64 = 500;

/// Every finding matching the filters, streamed in the asked format.
#[utoipa::path(get, path = "/v1/findings/export", tag = "findings", params(FindingsQuery), responses((status = 200, description = "Every matching finding: JSON lines (application/x-ndjson), CSV (text/csv), or an OCSF or ASFF JSON array (application/json)", body = String, content_type = "application/x-ndjson"), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn export_findings(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require(Role::Viewer)?;
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => ExportFormat::JsonLines,
        "csv" => ExportFormat::Csv,
        "ocsf" => ExportFormat::Ocsf,
        "asff" => ExportFormat::Asff,
        other => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: expected jsonl, csv, ocsf or asff"
            )));
        }
    };
    let account = q
        .aws_account_id
        .clone()
        .unwrap_or_else(|| "000000000000".into());
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "aws_account_id {account:?}: expected 12 digits"
        )));
    }
    let region = q.aws_region.clone().unwrap_or_else(|| "us-east-1".into());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ApiError::bad_request(format!(
            "aws_region {region:?}: expected a region name such as eu-west-1"
        )));
    }
    let mut filter = q.filter(&caller)?;
    filter.limit = EXPORT_PAGE;
    // The first page is read before answering, so a bad page token is a 400, not a cut stream.
    let first = app.store.findings(&filter).await?;
    let (content_type, ext) = match format {
        ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Ocsf | ExportFormat::Asff => ("application/json", "json"),
    };
    let exporter = Exporter {
        format,
        account,
        region,
    };
    let state = (app, filter, Some(first), exporter, 0usize);
    let stream = futures_util::stream::unfold(Some(state), |state| async move {
        let (app, mut filter, page, exporter, done) = state?;
        let page = match page {
            Some(p) => p,
            None => match app.store.findings(&filter).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped: storage failed");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            },
        };
        let mut chunk = Vec::new();
        if done == 0 {
            exporter.start(&mut chunk);
        }
        for (i, f) in page.findings.iter().enumerate() {
            exporter.item(&mut chunk, f, done + i == 0);
        }
        let done = done + page.findings.len();
        let next = match page.next_page_token {
            Some(t) => {
                filter.page_token = Some(t);
                Some((app, filter, None, exporter, done))
            }
            None => {
                exporter.end(&mut chunk);
                None
            }
        };
        Some((Ok::<_, std::io::Error>(chunk), next))
    });
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"osprey-findings.{ext}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

struct Exporter {
    format: ExportFormat,
    account: String,
    region: String,
}

const CSV_COLUMNS: [&str; 15] = [
    "id",
    "type",
    "severity",
    "severity_label",
    "title",
    "tenant_id",
    "cluster_id",
    "cluster",
    "namespace",
    "resource",
    "count",
    "first_seen",
    "last_seen",
    "state",
    "workflow",
];

impl Exporter {
    fn start(&self, out: &mut Vec<u8>) {
        match self.format {
            ExportFormat::Csv => csv_row(out, CSV_COLUMNS.iter().map(|s| s.to_string())),
            ExportFormat::Ocsf | ExportFormat::Asff => out.push(b'['),
            ExportFormat::JsonLines => {}
        }
    }

    fn end(&self, out: &mut Vec<u8>) {
        if matches!(self.format, ExportFormat::Ocsf | ExportFormat::Asff) {
            out.extend_from_slice(b"]\n");
        }
    }

    fn item(&self, out: &mut Vec<u8>, f: &StoredFinding, first: bool) {
        let array = matches!(self.format, ExportFormat::Ocsf | ExportFormat::Asff);
        if array && !first {
            out.push(b',');
        }
        match self.format {
            ExportFormat::JsonLines => {
                // Serializing a finding to memory cannot fail.
                let _ = serde_json::to_writer(&mut *out, f);
                out.push(b'\n');
            }
            ExportFormat::Ocsf => {
                let mut v = osprey_model::export::ocsf_detection(&f.finding);
                v["status"] = json!(ocsf_status(f));
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            ExportFormat::Asff => {
                let created = ms_to_rfc3339(f.created_ms);
                let updated = ms_to_rfc3339(f.updated_ms);
                let product = format!(
                    "arn:aws:securityhub:{}:{}:product/{}/default",
                    self.region, self.account, self.account
                );
                let cx = osprey_model::export::AsffContext {
                    product_arn: &product,
                    account_id: &self.account,
                    region: &self.region,
                    record_state: if f.state == "archived" {
                        "ARCHIVED"
                    } else {
                        "ACTIVE"
                    },
                    workflow_status: match f.workflow {
                        Workflow::New => "NEW",
                        Workflow::Acknowledged => "NOTIFIED",
                        Workflow::Resolved => "RESOLVED",
                    },
                    created_at: &created,
                    updated_at: &updated,
                };
                let _ =
                    serde_json::to_writer(&mut *out, &osprey_model::export::asff(&f.finding, &cx));
            }
            ExportFormat::Csv => {
                let x = &f.finding;
                let k = x.resource.kubernetes.as_ref();
                let workload = k
                    .and_then(|k| k.workload.as_ref())
                    .map(|w| format!("{}/{}", w.kind, w.name))
                    .or_else(|| x.resource.image.as_ref().map(|i| i.reference.clone()))
                    .unwrap_or_default();
                csv_row(
                    out,
                    [
                        x.id.clone(),
                        x.kind.clone(),
                        x.severity
                            .score
                            .map(|s| format!("{s:.1}"))
                            .unwrap_or_default(),
                        format!("{:?}", x.severity.label).to_uppercase(),
                        x.title.clone(),
                        f.tenant_id.clone(),
                        f.cluster_id.clone().unwrap_or_default(),
                        k.map(|k| k.cluster.clone()).unwrap_or_default(),
                        k.map(|k| k.namespace.clone()).unwrap_or_default(),
                        workload,
                        x.count.to_string(),
                        x.first_seen.clone().unwrap_or_default(),
                        x.last_seen.clone().unwrap_or_default(),
                        f.state.clone(),
                        f.workflow.as_str().to_string(),
                    ]
                    .into_iter(),
                );
            }
        }
    }
}

fn ocsf_status(f: &StoredFinding) -> &'static str {
    match (f.state.as_str(), f.workflow) {
        ("archived", _) => "Suppressed",
        (_, Workflow::Resolved) => "Resolved",
        (_, Workflow::Acknowledged) => "In Progress",
        _ => "New",
    }
}

fn ms_to_rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// One CSV record (RFC 4180): fields with commas, quotes or line breaks are quoted.
fn csv_row(out: &mut Vec<u8>, fields: impl Iterator<Item = String>) {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fields: Vec<String> = fields.collect();
    // Writing to memory cannot fail.
    let _ = w.write_record(&fields);
    if let Ok(bytes) = w.into_inner() {
        out.extend_from_slice(&bytes);
    }
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
#[utoipa::path(post, path = "/v1/findings/samples", tag = "findings", request_body(content = SampleRequest, description = "Optional"), responses((status = 201, description = "created (new ones) and the ids of the sample findings", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_samples(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
                    source: "sample".into(),
                    sample: true,
                }
            })
            .collect();
    let up = app.store.upsert_findings(records, &p.token_id).await?;
    app.outputs_wake.notify_one();

    let ids: Vec<&str> = up.iter().map(|u| u.id.as_str()).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "created": up.iter().filter(|u| u.created).count(), "findings": ids })),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOutput {
    name: String,
    /// webhook, alertmanager or cloudevents.
    kind: String,
    url: String,
    /// Webhooks: the HMAC key; generated (and shown once) when absent.
    #[serde(default)]
    secret: Option<String>,
    /// A score (0–10) or a label; findings below it are not sent.
    #[serde(default)]
    severity_min: Option<String>,
    /// For the organization's administrator: create it for this member (name or id).
    #[serde(default)]
    tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/outputs", tag = "outputs", request_body = NewOutput, responses((status = 201, description = "The output (with its secret only when generated)", body = serde_json::Value), (status = 409, description = "Name taken", body = ErrorBody), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_output(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewOutput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let kind = OutputKind::parse(&body.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind {:?}: expected webhook, alertmanager or cloudevents",
            body.kind
        ))
    })?;
    match reqwest::Url::parse(&body.url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "url {:?}: expected an http:// or https:// URL",
                body.url
            )));
        }
    }
    let severity_min = body
        .severity_min
        .as_deref()
        .map(|s| severity_value("severity_min", s))
        .transpose()?
        .unwrap_or(0.0);
    let generated = kind == OutputKind::Webhook && body.secret.is_none();
    let secret = match body.secret {
        Some(s) if s.len() < 16 => {
            return Err(ApiError::bad_request(
                "secret: expected at least 16 characters",
            ));
        }
        Some(s) => s,
        None if generated => osprey_store::new_secret(),
        None => String::new(),
    };
    let o = app
        .store
        .create_output(
            &tenant_id,
            &body.name,
            kind,
            &body.url,
            &secret,
            severity_min,
        )
        .await?;
    log(
        &app,
        &caller.0,
        "output.create",
        &o.id,
        json!({ "tenant": tenant_id, "name": o.name, "kind": kind, "url": o.url }),
    )
    .await?;
    let mut v = to_json(&o)?;
    if generated {
        v["secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/v1/outputs", tag = "outputs", responses((status = 200, description = "Outputs, never their secrets", body = serde_json::Value), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_outputs(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let outputs = app.store.outputs(caller.scope().as_deref()).await?;
    Ok(Json(json!({ "outputs": outputs })))
}

async fn managed_output(app: &App, caller: &Caller, id: &str) -> ApiResult<osprey_store::Output> {
    caller.require(Role::Admin)?;
    match app.store.output(id).await? {
        Some(o) if caller.owns(&o.tenant_id) => Ok(o),
        _ => Err(ApiError::not_found(format!("output {id}"))),
    }
}

#[utoipa::path(delete, path = "/v1/outputs/{id}", tag = "outputs", params(("id" = String, Path, description = "Output id")), responses((status = 204, description = "Removed with its queue"), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_output(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let o = managed_output(&app, &caller, &id).await?;
    app.store.delete_output(&id).await?;
    log(
        &app,
        &caller.0,
        "output.delete",
        &id,
        json!({ "tenant": o.tenant_id, "name": o.name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, delivered or dead (the dead letters).
    state: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/outputs/{id}/deliveries", tag = "outputs", params(("id" = String, Path, description = "Output id"), DeliveryQuery), responses((status = 200, description = "Deliveries, newest first", body = serde_json::Value), (status = 404, description = "Absent or not the caller's", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "No, unknown or revoked token", body = ErrorBody), (status = 403, description = "Role too low", body = ErrorBody)), security(("bearer" = [])))]
pub async fn output_deliveries(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(q): Params<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
    managed_output(&app, &caller, &id).await?;
    if let Some(s) = q.state.as_deref()
        && !matches!(s, "pending" | "delivered" | "dead")
    {
        return Err(ApiError::bad_request(format!(
            "state {s:?}: expected pending, delivered or dead"
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let deliveries = app.store.deliveries(&id, q.state.as_deref(), limit).await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}

/// What every error answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// One line naming what is wrong.
    pub error: String,
}
