//! Finding groups (`GET /v1/finding-groups`, `GET /v1/finding-groups/{id}`): a tenant's
//! active findings linked through the subjects, addresses, pods and images they share within
//! 48 hours, and scans with the findings that triggered them (`osprey_graph::group`). Groups
//! are computed from the stored findings when asked; a group is named after its earliest
//! finding (`group-{finding id}`), so it keeps its id as it grows.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use osprey_graph::EntityType;
use osprey_graph::group::Group;
use osprey_model::Severity;
use osprey_store::{Role, StoredFinding};
use serde::{Deserialize, Serialize};

use super::{BadInput, NotFound, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::sequences::{self, findings_of, groups_of};

const PREFIX: &str = "group-";

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupEntity {
    #[serde(rename = "type")]
    pub(crate) kind: EntityType,
    pub(crate) id: String,
}

/// Linked findings read as one incident.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FindingGroup {
    /// `group-{id of its earliest finding}`.
    pub(crate) id: String,
    pub(crate) tenant: String,
    /// The highest of its findings'.
    pub(crate) severity: Severity,
    /// Findings per type namespace: `Execution (2), PrivilegeEscalation (1)`.
    pub(crate) title: String,
    /// ATT&CK tactics in kill-chain order.
    pub(crate) tactics: Vec<String>,
    /// Three tactics or more: an attack sequence.
    pub(crate) attack_sequence: bool,
    /// The `AttackSequence:Kubernetes/CompromisedCluster` finding it raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attack_sequence_finding: Option<String>,
    /// Earliest first.
    pub(crate) finding_ids: Vec<String>,
    /// The subjects, addresses, pods and images its findings name, and their clusters.
    pub(crate) entities: Vec<GroupEntity>,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FindingGroups {
    pub(crate) groups: Vec<FindingGroup>,
    /// More findings matched than are grouped at once (the most recent were).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) truncated: bool,
}

/// Query parameters of `GET /v1/finding-groups`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    /// Only findings of this cluster.
    pub(crate) cluster: Option<String>,
    /// RFC 3339: findings last seen since (default: 7 days ago).
    pub(crate) since: Option<String>,
}

#[utoipa::path(get, path = "/v1/finding-groups", tag = "graph", params(GroupsQuery),
    responses((status = 200, description = "Groups of two findings or more, most recently seen first", body = FindingGroups), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn list_groups(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<GroupsQuery>,
) -> ApiResult<Json<FindingGroups>> {
    caller.require(Role::Viewer)?;
    let since_ms = match q.since.as_deref() {
        Some(t) => super::findings::time_value("since", t)?,
        None => osprey_store::now_ms() - sequences::WINDOW_MS,
    };
    let tenants = match &q.cluster {
        Some(id) => match app.store.cluster(id).await? {
            Some(c) if caller.owns(&c.tenant_id) => vec![c.tenant_id],
            _ => return Err(ApiError::not_found(format!("cluster {id}"))),
        },
        None => super::entities::tenant_scope(&app, &caller, None).await?,
    };
    let mut groups = Vec::new();
    let mut truncated = false;
    for tenant in tenants {
        let (findings, cut) = findings_of(&app, &tenant, q.cluster.as_deref(), since_ms).await?;
        truncated |= cut;
        groups.extend(grouped(&tenant, &findings));
    }
    groups.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.id.cmp(&b.id)));
    Ok(Json(FindingGroups { groups, truncated }))
}

#[utoipa::path(get, path = "/v1/finding-groups/{id}", tag = "graph",
    params(("id" = String, Path, description = "group-{id of its earliest finding}")),
    responses((status = 200, description = "The group", body = FindingGroup), NotFound, Refused),
    security(("bearer" = [])))]
pub async fn get_group(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<FindingGroup>> {
    caller.require(Role::Viewer)?;
    Ok(Json(group_with_findings(&app, &caller, &id).await?.0))
}

/// A group the caller may read, with the findings it was computed from (its own among them).
pub(crate) async fn group_with_findings(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<(FindingGroup, Vec<StoredFinding>)> {
    let absent = || ApiError::not_found(format!("finding group {id}"));
    let earliest = id.strip_prefix(PREFIX).ok_or_else(absent)?;
    let Some(first) = app.store.finding(earliest).await? else {
        return Err(absent());
    };
    if !caller.owns(&first.tenant_id) {
        return Err(absent());
    }
    // Every finding of its group was last seen after its earliest was first seen.
    let since_ms = first.finding.first_seen_ms().unwrap_or(0);
    let (findings, _) = findings_of(app, &first.tenant_id, None, since_ms).await?;
    let group = grouped(&first.tenant_id, &findings)
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(absent)?;
    Ok((group, findings))
}

fn grouped(tenant: &str, findings: &[StoredFinding]) -> Vec<FindingGroup> {
    let raised = sequences::Raised::of(findings);
    groups_of(findings)
        .into_iter()
        .map(|g| {
            let sequence = raised.raised_for(&g);
            shown(tenant, g, sequence)
        })
        .collect()
}

fn shown(tenant: &str, g: Group, attack_sequence_finding: Option<String>) -> FindingGroup {
    FindingGroup {
        id: format!("{PREFIX}{}", g.finding_ids[0]),
        tenant: tenant.to_string(),
        severity: Severity {
            label: g.severity_label,
            score: Some(g.severity_score),
        },
        attack_sequence: g.is_sequence(),
        attack_sequence_finding,
        first_seen: g.first_seen(),
        last_seen: g.last_seen(),
        title: g.title,
        tactics: g.tactics,
        finding_ids: g.finding_ids,
        entities: g
            .entities
            .into_iter()
            .map(|e| GroupEntity {
                kind: e.kind(),
                id: e.to_string(),
            })
            .collect(),
    }
}
