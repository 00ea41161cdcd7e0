//! `PUT /v1/clusters/{id}/snapshot`: what `kubectl get pods,serviceaccounts,roles,
//! rolebindings,clusterroles,clusterrolebindings -A -o json` printed for a cluster, taken by
//! [`crate::cluster_snapshot`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{Role, now_ms};

use super::{BadInput, ErrorBody, NotFound, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// A snapshot's body at most (some 10,000 pods with their RBAC).
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

#[utoipa::path(put, path = "/v1/clusters/{id}/snapshot", tag = "graph",
    params(("id" = String, Path, description = "Cluster id")),
    request_body(content = String, content_type = "application/json",
        description = "The output of kubectl get pods,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings -A -o json (up to 64 MiB)"),
    responses(
        (status = 200, description = "The cluster's running pods and RBAC replaced", body = crate::cluster_snapshot::SnapshotTaken),
        (status = 409, description = "The investigation graph is off", body = ErrorBody),
        (status = 413, description = "Over 64 MiB"),
        BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn put_snapshot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(cluster_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<crate::cluster_snapshot::SnapshotTaken>> {
    // Step 1: who may: the cluster's ingest token, or an administrator of its tenant.
    let p = &caller.0;
    if p.role == Role::Ingest {
        if p.cluster_id.as_deref() != Some(cluster_id.as_str()) {
            return Err(ApiError::forbidden(format!(
                "a snapshot of cluster {cluster_id} needs that cluster's ingest token or an admin token"
            )));
        }
    } else {
        caller.require(Role::Admin)?;
    }
    let cluster = app
        .store
        .cluster(&cluster_id)
        .await?
        .filter(|c| caller.owns(&c.tenant_id))
        .ok_or_else(|| ApiError::not_found(format!("cluster {cluster_id}")))?;
    if app.options.graph_retention.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the investigation graph is off (--graph-retention-days 0): a snapshot has nowhere to go",
        ));
    }
    // Step 2: read it.
    let snapshot = crate::error::blocking(move || osprey_graph::snapshot::read(&body))
        .await?
        .map_err(|e| ApiError::bad_request(format!("the snapshot: {e}")))?;
    let taken = crate::cluster_snapshot::apply(
        &app.store,
        app.options.graph_max_edges_per_hour,
        &cluster,
        snapshot,
        now_ms(),
    )
    .await?;
    Ok(Json(taken))
}
