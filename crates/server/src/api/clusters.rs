//! Clusters: registered per tenant, each with its own ingest token for the webhook.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{Cluster, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BadInput, Body, ErrorBody, NotFound, Refused, log, managed_tenant};
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

/// A cluster as registered, with its ingest token (shown this once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterCreated {
    id: String,
    name: String,
    tenant: String,
    ingest_token: String,
}

/// A rotation of a cluster's ingest token.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestTokenRotation {
    /// Minutes the cluster's other ingest tokens keep working (0–10080; default 0: they stop
    /// at once). Give the API servers' webhook configuration time to change.
    #[serde(default)]
    overlap_minutes: Option<u32>,
}

/// A cluster's new ingest token (shown this once), and when the old ones stop.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IngestTokenRotated {
    id: String,
    ingest_token: String,
    old_tokens_stop_ms: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Clusters {
    clusters: Vec<Cluster>,
}

/// A cluster with what is kept of its audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterDetail {
    #[serde(flatten)]
    cluster: Cluster,
    audit: AuditKept,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditKept {
    batches_kept: i64,
    events_kept: i64,
}

#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = NewCluster, responses((status = 201, description = "The cluster and its ingest token (shown once)", body = ClusterCreated), (status = 409, description = "Name taken", body = ErrorBody), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn create_cluster(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewCluster>,
) -> ApiResult<(StatusCode, Json<ClusterCreated>)> {
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
        Json(ClusterCreated {
            id: c.id,
            name: c.name,
            tenant: c.tenant_id,
            ingest_token: secret,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/clusters/{id}/ingest-token", tag = "clusters", params(("id" = String, Path, description = "Cluster id")), request_body = IngestTokenRotation, responses((status = 201, description = "The cluster's new ingest token (shown once) and when the old ones stop", body = IngestTokenRotated), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn rotate_ingest_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<IngestTokenRotation>,
) -> ApiResult<(StatusCode, Json<IngestTokenRotated>)> {
    caller.require(Role::Admin)?;
    let cluster = match app.store.cluster(&id).await? {
        Some(c) if caller.owns(&c.tenant_id) => c,
        _ => return Err(ApiError::not_found(format!("cluster {id}"))),
    };
    let minutes = body.overlap_minutes.unwrap_or(0);
    if minutes > 10_080 {
        return Err(ApiError::bad_request(format!(
            "overlap_minutes {minutes}: expected 0 to 10080 (a week)"
        )));
    }
    let (info, secret, stop) = app
        .store
        .rotate_ingest_token(&cluster, i64::from(minutes) * 60_000)
        .await?;
    log(
        &app,
        &caller.0,
        "ingest-token.rotate",
        &cluster.id,
        json!({ "tenant": cluster.tenant_id, "token": info.id, "overlap_minutes": minutes }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IngestTokenRotated {
            id: info.id,
            ingest_token: secret,
            old_tokens_stop_ms: stop,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", responses((status = 200, description = "Clusters the caller sees", body = Clusters), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_clusters(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<Clusters>> {
    caller.require(Role::Viewer)?;
    let clusters = app.store.clusters(caller.scope().as_deref()).await?;
    Ok(Json(Clusters { clusters }))
}

#[utoipa::path(get, path = "/v1/clusters/{id}", tag = "clusters", params(("id" = String, Path, description = "Cluster id")), responses((status = 200, description = "The cluster, with audit batches and events kept", body = ClusterDetail), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn get_cluster(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ClusterDetail>> {
    caller.require(Role::Viewer)?;
    match app.store.cluster(&id).await? {
        Some(c) if caller.owns(&c.tenant_id) => {
            let (batches, events) = app.store.audit_batch_count(Some(&c.id)).await?;
            Ok(Json(ClusterDetail {
                cluster: c,
                audit: AuditKept {
                    batches_kept: batches,
                    events_kept: events,
                },
            }))
        }
        _ => Err(ApiError::not_found(format!("cluster {id}"))),
    }
}
