//! Clusters: registered per tenant, each with its own ingest token for the webhook.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BadInput, Body, ErrorBody, NotFound, Refused, log, managed_tenant, to_json};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCluster {
    name: String,
    /// For the organization's administrator: create it for this member (name or id).
    #[serde(default)]
    tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = NewCluster, responses((status = 201, description = "id, name, tenant and the cluster's ingest_token (shown once)", body = serde_json::Value), (status = 409, description = "Name taken", body = ErrorBody), BadInput, NotFound, Refused), security(("bearer" = [])))]
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

#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", responses((status = 200, description = "Clusters the caller sees", body = serde_json::Value), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_clusters(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let clusters = app.store.clusters(caller.scope().as_deref()).await?;
    Ok(Json(json!({ "clusters": clusters })))
}

#[utoipa::path(get, path = "/v1/clusters/{id}", tag = "clusters", params(("id" = String, Path, description = "Cluster id")), responses((status = 200, description = "The cluster, with audit batches and events kept", body = serde_json::Value), BadInput, NotFound, Refused), security(("bearer" = [])))]
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
