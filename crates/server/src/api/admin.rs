//! The administrative log: who did what, append-only.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use osprey_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

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

#[utoipa::path(get, path = "/v1/admin-log", tag = "administration", params(LogQuery), responses((status = 200, description = "The administrative log, newest first", body = serde_json::Value), BadInput, Refused), security(("bearer" = [])))]
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
