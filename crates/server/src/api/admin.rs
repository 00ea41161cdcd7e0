//! The administrative log: who did what, append-only.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use osprey_store::{AdminAction, LogWindow, Role};
use serde::{Deserialize, Serialize};

use super::{BadInput, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Entries before this sequence number (the last one of the page before).
    pub(crate) before: Option<i64>,
    /// RFC 3339: entries at or after.
    pub(crate) since: Option<String>,
    /// RFC 3339: entries before.
    pub(crate) until: Option<String>,
    pub(crate) limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminLog {
    pub(crate) entries: Vec<AdminAction>,
}

/// The most entries one call returns.
pub(crate) const MAX_ENTRIES: i64 = 1000;

#[utoipa::path(get, path = "/v1/admin-log", tag = "administration", params(LogQuery), responses((status = 200, description = "The administrative log, newest first", body = AdminLog), BadInput, Refused), security(("bearer" = [])))]
pub async fn admin_log(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<LogQuery>,
) -> ApiResult<Json<AdminLog>> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_ENTRIES);
    let window = LogWindow {
        before_seq: q.before,
        since_ms: q
            .since
            .as_deref()
            .map(|t| super::findings::time_value("since", t))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|t| super::findings::time_value("until", t))
            .transpose()?,
    };
    let entries = app
        .store
        .admin_log(caller.scope().as_deref(), window, limit)
        .await?;
    Ok(Json(AdminLog { entries }))
}
