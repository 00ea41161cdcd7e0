//! The JSON API, one module per thing it serves: `tenants` (and tokens), `clusters`,
//! `findings` (list, statistics, samples, changes), `export` (findings streamed as JSON lines,
//! CSV, OCSF, ASFF), `outputs`, `admin` (the administrative log), `scans` (scans, SBOMs,
//! registries), `settings` (IP lists, suppression rules), `entities` and `groups` (the
//! investigation graph: search, profiles, finding groups), `hunts` (retro-hunts over the kept
//! audit events). The webhook is `crate::ingest`.
//!
//! Tenancy is enforced here, per route: a member's caller sees and changes only its tenant's
//! data; the organization's administrator tenant sees all. Something that exists but belongs to
//! another tenant answers 404, the same as something that does not exist.

pub mod admin;
pub mod clusters;
pub mod entities;
pub mod export;
pub mod findings;
pub mod groups;
pub mod hunts;
pub mod outputs;
pub mod scans;
pub mod settings;
pub mod snapshots;
pub mod tenants;

use axum::extract::Query;
use osprey_store::{Principal, Role};
use serde_json::Value;

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
    // An action on a member's setting (the detail's `tenant`) is that member's to see, with
    // the token that did it, even when the organization's administrator did it.
    let tenant = detail
        .get("tenant")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(&p.tenant_id)
        .to_string();
    app.store
        .log_action(&tenant, &p.token_id, action, target, detail)
        .await?;
    Ok(())
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

/// A `created_ms.id` page token: where the previous page of a newest-first list ended.
pub(crate) fn page_after(token: Option<&str>) -> ApiResult<Option<(i64, &str)>> {
    token
        .map(|t| {
            t.split_once('.')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id)))
                .ok_or_else(|| ApiError::bad_request(format!("page_token {t:?}: not a page token")))
        })
        .transpose()
}

/// The token of the page after a full one: its last item's creation time and id.
pub(crate) fn next_page<T>(
    items: &[T],
    limit: i64,
    key: impl Fn(&T) -> (i64, &str),
) -> Option<String> {
    if items.len() as i64 != limit {
        return None;
    }
    items.last().map(|last| {
        let (ms, id) = key(last);
        format!("{ms}.{id}")
    })
}

/// What every error answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// One line naming what is wrong.
    pub error: String,
}

/// 401 and 403, which every route behind a token can answer (one definition for the OpenAPI
/// document).
#[derive(utoipa::IntoResponses)]
pub enum Refused {
    #[response(status = 401, description = "No, unknown or revoked token")]
    Unauthenticated(ErrorBody),
    #[response(status = 403, description = "Role too low")]
    Forbidden(ErrorBody),
}

/// 400: a body, a parameter or a value that does not parse or is not allowed.
#[derive(utoipa::IntoResponses)]
pub enum BadInput {
    #[response(status = 400, description = "Bad input")]
    BadInput(ErrorBody),
}

/// 404: absent, or another tenant's (the same answer, so nothing leaks).
#[derive(utoipa::IntoResponses)]
pub enum NotFound {
    #[response(status = 404, description = "Absent or not the caller's")]
    NotFound(ErrorBody),
}
