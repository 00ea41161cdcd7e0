//! The administrative log: who did what, append-only.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use osprey_store::{AdminAction, Role};
use serde::{Deserialize, Serialize};

use super::{BadInput, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminLog {
    entries: Vec<AdminAction>,
}

#[utoipa::path(get, path = "/v1/admin-log", tag = "administration", params(LogQuery), responses((status = 200, description = "The administrative log, newest first", body = AdminLog), BadInput, Refused), security(("bearer" = [])))]
pub async fn admin_log(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<LogQuery>,
) -> ApiResult<Json<AdminLog>> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = app
        .store
        .admin_log(caller.scope().as_deref(), q.before, limit)
        .await?;
    Ok(Json(AdminLog { entries }))
}
