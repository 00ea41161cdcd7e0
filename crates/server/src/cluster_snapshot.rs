//! A cluster snapshot taken: its pods become the cluster's running pods (a pod the graph
//! thought running that the snapshot does not list is marked deleted) and its RBAC objects
//! replace the cluster's, so impact knows who can reach what from the day a cluster is
//! onboarded; audited writes keep both current afterwards. The API
//! (`PUT /v1/clusters/{id}/snapshot`) and `osprey graph build --snapshot` take snapshots.

use osprey_graph::record::rfc3339;
use osprey_graph::snapshot::Snapshot;
use osprey_graph::{EntityId, PodChange, Properties, Recorder, Sighting};
use osprey_store::{Cluster, Store};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::detector::graph::{object_row, write};
use crate::error::ServerResult;

/// A pod seen within this long before a snapshot is kept even if the snapshot does not list
/// it: it may have been created after `kubectl` listed the cluster.
const LISTING_SLACK_MS: i64 = 5 * 60 * 1000;

/// What a snapshot changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// Takes `snapshot` of `cluster` as of `now`: its pods, RBAC and time in one round.
pub async fn apply(
    store: &Store,
    max_edges_per_hour: usize,
    cluster: &Cluster,
    snapshot: Snapshot,
    now: i64,
) -> ServerResult<SnapshotTaken> {
    let tenant = cluster.tenant_id.clone();
    // Step 1: its pods, and the pods it no longer lists.
    let mut recorder = Recorder::new(max_edges_per_hour, now);
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
    crate::impact::each_pod(store, &tenant, &prefix, |row| {
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
    // The cluster's snapshot time, for impact's answer.
    let mut taken = Map::new();
    taken.insert("snapshot".into(), Value::String(rfc3339(now)));
    delta.entities.push(Sighting {
        id: EntityId::cluster(&cluster.id),
        first_ms: now,
        last_ms: now,
        properties: Some(Properties::Merge(taken)),
    });
    // Step 2: pods, RBAC and the snapshot's time, together.
    let rows: Vec<_> = snapshot.rbac.iter().map(|o| object_row(o, now)).collect();
    let mut round = store.begin_round().await?;
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
    Ok(SnapshotTaken {
        pods: snapshot.pods.len(),
        finished_pods: snapshot.finished_pods,
        deleted_pods,
        service_accounts: snapshot.service_accounts.len(),
        rbac_objects: rows.len(),
        ignored: snapshot.ignored,
        taken: rfc3339(now),
    })
}
