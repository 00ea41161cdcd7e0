//! `PUT /v1/clusters/{id}/snapshot`: what `kubectl get pods,serviceaccounts,roles,
//! rolebindings,clusterroles,clusterrolebindings -A -o json` printed for a cluster. Its pods
//! become the cluster's running pods (a pod the graph thought running that the snapshot does
//! not list is marked deleted) and its RBAC objects replace the cluster's, so impact knows
//! who can reach what from the day a cluster is onboarded. Audited writes keep both current
//! afterwards.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_graph::record::rfc3339;
use osprey_graph::{EntityId, PodChange, Properties, Recorder, Sighting};
use osprey_store::{Role, now_ms};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{BadInput, ErrorBody, NotFound, Refused};
use crate::App;
use crate::auth::Caller;
use crate::detector::graph::{rbac_row, write};
use crate::error::{ApiError, ApiResult};

/// A snapshot's body at most (some 10,000 pods with their RBAC).
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
/// A pod seen within this long before a snapshot is kept even if the snapshot does not list
/// it: it may have been created after `kubectl` listed the cluster.
const LISTING_SLACK_MS: i64 = 5 * 60 * 1000;

/// What a snapshot changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SnapshotTaken {
    /// Running pods listed.
    pub pods: usize,
    /// Pods listed that completed or failed (not kept as running).
    pub finished_pods: usize,
    /// Pods the graph had as running that the snapshot does not list: now deleted.
    pub deleted_pods: usize,
    pub service_accounts: usize,
    /// Roles, cluster roles and bindings now known for the cluster.
    pub rbac_objects: usize,
    /// Items of other kinds, or unreadable as their kind.
    pub ignored: usize,
    /// When it was taken (RFC 3339).
    pub taken: String,
}

#[utoipa::path(put, path = "/v1/clusters/{id}/snapshot", tag = "graph",
    params(("id" = String, Path, description = "Cluster id")),
    request_body(content = String, content_type = "application/json",
        description = "The output of kubectl get pods,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings -A -o json (up to 64 MiB)"),
    responses(
        (status = 200, description = "The cluster's running pods and RBAC replaced", body = SnapshotTaken),
        (status = 409, description = "The investigation graph is off", body = ErrorBody),
        (status = 413, description = "Over 64 MiB"),
        BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn put_snapshot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(cluster_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<SnapshotTaken>> {
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
    let now = now_ms();
    let tenant = cluster.tenant_id.clone();
    // Step 3: its pods, and the pods it no longer lists.
    let mut recorder = Recorder::new(app.options.graph_max_edges_per_hour, now);
    let mut listed = std::collections::HashSet::new();
    for pod in &snapshot.pods {
        listed.insert(EntityId::pod(&cluster.id, &pod.namespace, &pod.name).to_string());
        recorder.pod(
            &cluster.id,
            &pod.namespace,
            &pod.name,
            now,
            PodChange::Listed {
                properties: pod.properties.clone(),
                created_ms: pod.created_ms,
            },
        );
    }
    let mut deleted_pods = 0;
    let prefix = format!("pod/{}/", cluster.id);
    crate::impact::each_pod(&app.store, &tenant, &prefix, |row| {
        let running = row
            .properties
            .as_ref()
            .is_some_and(|p| p.get("deleted").is_none());
        if running
            && !listed.contains(&row.id)
            && row.last_ms < now - LISTING_SLACK_MS
            && let Ok(id) = EntityId::parse(&row.id)
            && let Some((_, ns, name)) = crate::impact::pod_parts(&id)
        {
            recorder.pod(&cluster.id, ns, name, now, PodChange::Deleted);
            deleted_pods += 1;
        }
        std::ops::ControlFlow::Continue(())
    })
    .await?;
    let mut delta = recorder.take(now);
    let mut taken = Map::new();
    taken.insert("snapshot".into(), Value::String(rfc3339(now)));
    delta.entities.push(Sighting {
        id: EntityId::cluster(&cluster.id),
        first_ms: now,
        last_ms: now,
        properties: Some(Properties::Merge(taken)),
    });
    // Step 4: pods, RBAC and the snapshot's time, together.
    let rows: Vec<_> = snapshot
        .rbac
        .iter()
        .map(|o| rbac_row(&osprey_graph::RbacChange::Put(o.clone()), now))
        .collect();
    let mut round = app.store.begin_round().await?;
    write(&mut round, vec![(tenant.clone(), delta)]).await?;
    round.replace_rbac(&tenant, &cluster.id, now, &rows).await?;
    round.commit().await?;
    tracing::info!(
        cluster = cluster.id,
        pods = snapshot.pods.len(),
        deleted_pods,
        rbac = rows.len(),
        "cluster snapshot taken"
    );
    Ok(Json(SnapshotTaken {
        pods: snapshot.pods.len(),
        finished_pods: snapshot.finished_pods,
        deleted_pods,
        service_accounts: snapshot.service_accounts.len(),
        rbac_objects: rows.len(),
        ignored: snapshot.ignored,
        taken: rfc3339(now),
    }))
}
