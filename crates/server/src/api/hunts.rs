//! Retro-hunts: rules and threat lists run over the audit events the server keeps
//! (`crate::hunts` runs them). Analysts and up ask for and cancel hunts of their tenant (the
//! administrator tenant's for any tenant); viewers read them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{HuntState, NewRetroHunt, RetroHunt, Role, now_ms};
use serde::{Deserialize, Serialize};

use super::{BadInput, Body, ErrorBody, NotFound, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::hunts::{MAX_ACTIVE_PER_TENANT, plan};

/// The longest window a hunt reads.
const MAX_WINDOW_MS: i64 = 366 * 86_400_000;
/// How far past now a hunt's end may be (clocks apart).
const FUTURE_SLACK_MS: i64 = 5 * 60_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HuntRequest {
    /// The cluster (id) whose events to read; every cluster of the tenant when absent.
    #[serde(default)]
    cluster: Option<String>,
    /// The window's start (RFC 3339): events whose request was received at or after it.
    since: String,
    /// The window's end (RFC 3339, excluded); now when absent.
    #[serde(default)]
    until: Option<String>,
    /// Rule YAML as in `--rules`: the rules it defines, and built-in rules it names under
    /// `enable:`, with the built-in lists and macros available.
    #[serde(default)]
    rules: Option<String>,
    /// The name of one of the tenant's threat lists (or the administrator tenant's): every
    /// call from its addresses in the window.
    #[serde(default)]
    threat_list: Option<String>,
    /// Tenant name or id (the administrator tenant's callers only); the caller's own when
    /// absent.
    #[serde(default)]
    tenant: Option<String>,
}

/// A retro-hunt and where it stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Hunt {
    id: String,
    tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
    since: String,
    until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_list: Option<String>,
    state: HuntState,
    /// Why it failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
    /// Events of the window read so far (each once, however often it was received).
    events_scanned: i64,
    /// Kept batches read so far.
    batches_scanned: i64,
    /// The findings it stored (when done).
    findings: Vec<String>,
    /// What to know about the result: events no longer kept, findings not kept.
    notices: Vec<String>,
    /// Times a server took it up (a server that stopped gives it to the next).
    attempts: i64,
    created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_ms: Option<i64>,
}

impl From<RetroHunt> for Hunt {
    fn from(h: RetroHunt) -> Hunt {
        Hunt {
            since: osprey_graph::record::rfc3339(h.since_ms),
            until: osprey_graph::record::rfc3339(h.until_ms),
            id: h.id,
            tenant_id: h.tenant_id,
            cluster_id: h.cluster_id,
            rules: h.rules,
            threat_list: h.threat_list,
            state: h.state,
            detail: h.detail,
            events_scanned: h.events_scanned,
            batches_scanned: h.batches_scanned,
            findings: h.finding_ids,
            notices: h.notices,
            attempts: h.attempts,
            created_ms: h.created_ms,
            started_ms: h.started_ms,
            finished_ms: h.finished_ms,
        }
    }
}

/// A page of hunts, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HuntPage {
    retro_hunts: Vec<Hunt>,
    /// Pass as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// The window a request names, checked.
fn window(since: &str, until: Option<&str>) -> ApiResult<(i64, i64)> {
    let now = now_ms();
    let since_ms = super::findings::time_value("since", since)?;
    let until_ms = match until {
        Some(u) => super::findings::time_value("until", u)?,
        None => now,
    };
    if until_ms <= since_ms {
        return Err(ApiError::bad_request(format!(
            "until {}: not after since {since}",
            osprey_graph::record::rfc3339(until_ms)
        )));
    }
    if until_ms > now + FUTURE_SLACK_MS {
        return Err(ApiError::bad_request(format!(
            "until {}: in the future; a hunt reads events already received",
            osprey_graph::record::rfc3339(until_ms)
        )));
    }
    if until_ms - since_ms > MAX_WINDOW_MS {
        return Err(ApiError::bad_request(
            "since/until: a window of at most 366 days",
        ));
    }
    Ok((since_ms, until_ms))
}

#[utoipa::path(post, path = "/v1/retro-hunts", tag = "investigation", request_body = HuntRequest, responses((status = 202, description = "The queued hunt", body = Hunt), (status = 404, description = "Cluster or tenant absent or not the caller's", body = ErrorBody), (status = 429, description = "Too many hunts of the tenant queued or running", body = ErrorBody), BadInput, Refused), security(("bearer" = [])))]
pub async fn create_hunt(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<HuntRequest>,
) -> ApiResult<(StatusCode, Json<Hunt>)> {
    let tenant_id = super::scans::scan_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let (since_ms, until_ms) = window(&body.since, body.until.as_deref())?;
    if let Some(c) = &body.cluster {
        match app.store.cluster(c).await? {
            Some(cluster) if cluster.tenant_id == tenant_id => {}
            _ => return Err(ApiError::not_found(format!("cluster {c:?}"))),
        }
    }
    // Refused now what could not run (the hunter compiles it again when it starts, with the
    // settings of then).
    let list = match &body.threat_list {
        Some(name) => Some(
            crate::hunts::threat_list(&app, &tenant_id, name)
                .await?
                .map_err(ApiError::bad_request)?,
        ),
        None => None,
    };
    let rules = body.rules.clone();
    crate::error::blocking(move || {
        plan::compile(rules.as_deref(), list, &Default::default()).map(|_| ())
    })
    .await?
    .map_err(ApiError::bad_request)?;
    if app.store.active_hunts(&tenant_id).await? >= MAX_ACTIVE_PER_TENANT {
        return Err(ApiError::busy(
            format!(
                "{MAX_ACTIVE_PER_TENANT} retro-hunts of this tenant are queued or running; wait for one to end or cancel one"
            ),
            30,
        ));
    }
    let p = caller.require(Role::Viewer)?;
    let hunt = app
        .store
        .enqueue_hunt(&NewRetroHunt {
            tenant_id,
            cluster_id: body.cluster,
            since_ms,
            until_ms,
            rules: body.rules,
            threat_list: body.threat_list,
            created_by: p.token_id.clone(),
        })
        .await?;
    super::log(
        &app,
        p,
        "retro-hunt.create",
        &hunt.id,
        serde_json::json!({"since": body.since, "threat_list": hunt.threat_list}),
    )
    .await?;
    app.hunts_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(hunt.into())))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HuntsQuery {
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
    /// The previous page's `next_page_token`.
    page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/retro-hunts", tag = "investigation", params(HuntsQuery), responses((status = 200, description = "Hunts, newest first", body = HuntPage), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_hunts(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<HuntsQuery>,
) -> ApiResult<Json<HuntPage>> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = super::page_after(q.page_token.as_deref())?;
    let hunts = app
        .store
        .hunts(caller.scope().as_deref(), after, limit)
        .await?;
    let next_page_token = super::next_page(&hunts, limit, |h| (h.created_ms, &h.id));
    Ok(Json(HuntPage {
        retro_hunts: hunts.into_iter().map(Hunt::from).collect(),
        next_page_token,
    }))
}

#[utoipa::path(get, path = "/v1/retro-hunts/{id}", tag = "investigation", params(("id" = String, Path, description = "Retro-hunt id")), responses((status = 200, description = "The hunt: state, events scanned, the findings it stored", body = Hunt), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn get_hunt(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Hunt>> {
    caller.require(Role::Viewer)?;
    match app.store.hunt(&id).await? {
        Some(h) if caller.owns(&h.tenant_id) => Ok(Json(h.into())),
        _ => Err(ApiError::not_found(format!("retro-hunt {id}"))),
    }
}

#[utoipa::path(delete, path = "/v1/retro-hunts/{id}", tag = "investigation", params(("id" = String, Path, description = "Retro-hunt id")), responses((status = 200, description = "The hunt, cancelled: it stores nothing", body = Hunt), (status = 409, description = "The hunt already ended", body = ErrorBody), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn cancel_hunt(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Hunt>> {
    let p = caller.require(Role::Analyst)?;
    let not_found = || ApiError::not_found(format!("retro-hunt {id}"));
    match app.store.hunt(&id).await? {
        Some(h) if caller.owns(&h.tenant_id) => {}
        _ => return Err(not_found()),
    }
    let h = app.store.cancel_hunt(&id).await?.ok_or_else(not_found)?;
    if h.state != HuntState::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("retro-hunt {id} already ended ({})", h.state.as_str()),
        ));
    }
    super::log(&app, p, "retro-hunt.cancel", &id, serde_json::json!({})).await?;
    Ok(Json(h.into()))
}
