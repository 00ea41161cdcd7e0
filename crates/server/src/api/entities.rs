//! The investigation graph's entities: search (`GET /v1/entities`) and profiles
//! (`GET /v1/entities/{type}/{id...}`). An entity of a cluster (cluster, namespace, pod,
//! subject, node) belongs to the cluster's tenant; one that is not (an IP, a user agent, an
//! image) exists once per tenant, and the organization's administrator sees it across its
//! tenants (or one, with `tenant`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use osprey_graph::profile::{self, Activity, Direction, Scope, StoredEdge};
use osprey_graph::record::rfc3339;
use osprey_graph::{Counts, EntityId, EntityType, Hour, Relation};
use osprey_store::{EdgeEnd, EdgeRow, EntityRow, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BadInput, NotFound, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

const HOUR_MS: i64 = 3_600_000;
/// Default scope: the last 24 hours.
const DEFAULT_SCOPE_HOURS: i64 = 24;
const DEFAULT_RELATED: usize = 100;
const MAX_RELATED: usize = 1000;
const DEFAULT_SEARCH: i64 = 50;
const MAX_SEARCH: i64 = 500;
/// Rows a search reads at most per request (it filters by name in memory).
const SEARCH_SCAN: usize = 100_000;
const SEARCH_PAGE: i64 = 5_000;

/// An entity as its profile and a search show it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Entity {
    #[serde(rename = "type")]
    kind: EntityType,
    id: String,
    name: String,
    first_seen: String,
    last_seen: String,
    /// Per type: a pod's images, node, service account, security context, owner, and
    /// `created` / `deleted` times.
    #[schema(value_type = Object)]
    properties: Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileScope {
    start: String,
    end: String,
}

/// An entity's profile over a scope.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Profile {
    entity: Entity,
    scope: ProfileScope,
    #[serde(flatten)]
    activity: Activity,
    /// More related entities: pass as `related_offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    related_next: Option<usize>,
    /// Findings naming the entity in the scope.
    findings: Vec<String>,
}

/// Query parameters of a profile.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// RFC 3339, on an hour (default: 24 hours before `end`).
    start: Option<String>,
    /// RFC 3339, on an hour (default: the end of the current hour).
    end: Option<String>,
    /// Related entities per page (default 100, at most 1000).
    related_limit: Option<usize>,
    related_offset: Option<usize>,
    /// For the organization's administrator: one member's view of an entity of no cluster.
    tenant: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities/{type}/{id}", tag = "graph",
    params(("type" = String, Path, description = "cluster, namespace, pod, subject, ip, user-agent, image, node or finding"),
           ("id" = String, Path, description = "The rest of the entity id, slashes included (pod/{cluster}/{namespace}/{name})"),
           ProfileQuery),
    responses((status = 200, description = "The entity's profile over the scope", body = Profile), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn get_entity(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((kind, key)): Path<(String, String)>,
    Params(q): Params<ProfileQuery>,
) -> ApiResult<Json<Profile>> {
    caller.require(Role::Viewer)?;
    let started = std::time::Instant::now();
    let kind = EntityType::parse(&kind)
        .ok_or_else(|| ApiError::bad_request(format!("entity type {kind:?}: expected one of cluster, namespace, pod, subject, ip, user-agent, image, node, finding")))?;
    let id = EntityId::parse_key(kind, &key)
        .map_err(|e| ApiError::bad_request(format!("entity {kind}/{key}: {e}")))?;
    let tenants = tenants_of(&app, &caller, &id, q.tenant.as_deref()).await?;
    let rows = entity_rows(&app, &tenants, &id).await?;
    let Some(entity) = merge_rows(&id, &rows) else {
        return Err(ApiError::not_found(format!("entity {id}")));
    };
    let scope = scope_of(q.start.as_deref(), q.end.as_deref())?;
    let (edges, baseline) = edges_of(&app, &tenants, &id, scope).await?;
    let data_since = data_since(&app, &tenants, &id).await?;
    let mut activity = profile::activity(
        &id,
        scope,
        &edges,
        &baseline,
        data_since,
        osprey_store::now_ms(),
    );
    let findings = take_findings(&mut activity);
    let limit = q
        .related_limit
        .unwrap_or(DEFAULT_RELATED)
        .clamp(1, MAX_RELATED);
    let offset = q.related_offset.unwrap_or(0);
    let total = activity.related.len();
    activity.related = activity
        .related
        .into_iter()
        .skip(offset)
        .take(limit)
        .collect();
    let related_next = (offset.saturating_add(limit) < total).then(|| offset + limit);
    app.metrics
        .graph_profile_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(Json(Profile {
        entity,
        scope: ProfileScope {
            start: rfc3339(scope.start.start_ms()),
            end: rfc3339(scope.end.start_ms()),
        },
        activity,
        related_next,
        findings,
    }))
}

/// The tenants whose rows make the entity for this caller: a cluster's entity, its
/// cluster's tenant (when the caller owns it); another, the caller's tenant, or for the
/// organization's administrator every tenant (or the one named).
async fn tenants_of(
    app: &App,
    caller: &Caller,
    id: &EntityId,
    tenant: Option<&str>,
) -> ApiResult<Vec<String>> {
    if let Some(cluster_id) = id.cluster_id() {
        return match app.store.cluster(cluster_id).await? {
            Some(c) if caller.owns(&c.tenant_id) => Ok(vec![c.tenant_id]),
            _ => Err(ApiError::not_found(format!("entity {id}"))),
        };
    }
    tenant_scope(app, caller, tenant).await
}

/// The tenants a caller's view covers: its own; for the organization's administrator every
/// tenant, or the one it names.
pub(super) async fn tenant_scope(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
) -> ApiResult<Vec<String>> {
    match (caller.scope(), tenant) {
        (Some(own), None) => Ok(vec![own]),
        (own, Some(t)) => {
            let found = match app.store.tenant_by_name(t).await? {
                Some(t) => Some(t),
                None => app.store.tenant(t).await?,
            };
            // A member names only itself: another tenant is absent to it.
            match found {
                Some(found) if own.as_ref().is_none_or(|o| *o == found.id) => Ok(vec![found.id]),
                _ => Err(ApiError::not_found(format!("tenant {t:?}"))),
            }
        }
        (None, None) => Ok(app
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect()),
    }
}

async fn entity_rows(app: &App, tenants: &[String], id: &EntityId) -> ApiResult<Vec<EntityRow>> {
    let mut rows = Vec::new();
    let text = id.to_string();
    for t in tenants {
        rows.extend(app.store.graph_entity(t, &text).await?);
    }
    Ok(rows)
}

/// One entity out of its rows in several tenants: seen from the first to the last sighting;
/// the properties of the one seen last.
fn merge_rows(id: &EntityId, rows: &[EntityRow]) -> Option<Entity> {
    let first = rows.iter().map(|r| r.first_ms).min()?;
    let last = rows.iter().map(|r| r.last_ms).max()?;
    let properties = rows
        .iter()
        .filter(|r| r.properties.is_some())
        .max_by_key(|r| r.last_ms)
        .and_then(|r| r.properties.clone())
        .unwrap_or_else(|| Value::Object(Default::default()));
    Some(Entity {
        kind: id.kind(),
        id: id.to_string(),
        name: id.name(),
        first_seen: rfc3339(first),
        last_seen: rfc3339(last),
        properties,
    })
}

/// The scope asked for: hour-aligned, 1 hour to a year; by default the 24 hours up to the
/// end of the current hour.
fn scope_of(start: Option<&str>, end: Option<&str>) -> ApiResult<Scope> {
    let hour = |name: &str, text: &str| -> ApiResult<Hour> {
        let ms = super::findings::time_value(name, text)?;
        if ms.rem_euclid(HOUR_MS) != 0 {
            return Err(ApiError::bad_request(format!(
                "{name} {text:?}: a scope starts and ends on an hour (minutes and seconds 0)"
            )));
        }
        Ok(Hour::of_ms(ms))
    };
    let end = match end {
        Some(e) => hour("end", e)?,
        None => Hour(Hour::of_ms(osprey_store::now_ms()).0 + 1),
    };
    let start = match start {
        Some(s) => hour("start", s)?,
        None => Hour(end.0 - DEFAULT_SCOPE_HOURS),
    };
    let hours = end.0 - start.0;
    if !(1..=profile::MAX_SCOPE_HOURS).contains(&hours) {
        return Err(ApiError::bad_request(format!(
            "scope {} to {}: from 1 hour to a year, start before end",
            rfc3339(start.start_ms()),
            rfc3339(end.start_ms())
        )));
    }
    Ok(Scope { start, end })
}

/// The entity's edges in the scope (both ends) and what it was related to in the
/// baseline before it.
async fn edges_of(
    app: &App,
    tenants: &[String],
    id: &EntityId,
    scope: Scope,
) -> ApiResult<(Vec<StoredEdge>, HashSet<profile::Seen>)> {
    let text = id.to_string();
    let mut edges = Vec::new();
    let mut baseline = HashSet::new();
    let b = scope.baseline();
    for t in tenants {
        for end in [EdgeEnd::From, EdgeEnd::To] {
            let rows = app
                .store
                .graph_edges(t, end, &text, None, scope.start.0, scope.end.0)
                .await?;
            edges.extend(rows.into_iter().filter_map(stored_edge));
        }
        for (relation, outgoing, other) in app
            .store
            .graph_neighbours(t, &text, b.start.0, b.end.0)
            .await?
        {
            if let Some(r) = Relation::parse(&relation) {
                let direction = if outgoing {
                    Direction::Out
                } else {
                    Direction::In
                };
                baseline.insert((r, direction, other));
            }
        }
    }
    Ok((edges, baseline))
}

fn stored_edge(r: EdgeRow) -> Option<StoredEdge> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Some(StoredEdge {
        relation: Relation::parse(&r.relation)?,
        from: r.from_id,
        to: r.to_id,
        hour: Hour(r.hour),
        counts: Counts {
            success: count(r.counts.success),
            failed: count(r.counts.failed),
            unauthorized: count(r.counts.unauthorized),
            forbidden: count(r.counts.forbidden),
        },
    })
}

/// When the data of the entity's cluster begins (for an entity of no cluster: of the
/// tenants' first cluster).
async fn data_since(app: &App, tenants: &[String], id: &EntityId) -> ApiResult<Option<i64>> {
    if let Some(cluster_id) = id.cluster_id() {
        let cluster = EntityId::cluster(cluster_id).to_string();
        let mut since = None;
        for t in tenants {
            if let Some(r) = app.store.graph_entity(t, &cluster).await? {
                since = Some(since.map_or(r.first_ms, |s: i64| s.min(r.first_ms)));
            }
        }
        return Ok(since);
    }
    let mut since: Option<i64> = None;
    for t in tenants {
        if let Some(first) = app
            .store
            .graph_first_seen(t, EntityType::Cluster.as_str())
            .await?
        {
            since = Some(since.map_or(first, |s| s.min(first)));
        }
    }
    Ok(since)
}

/// The findings among the related entities that name the entity, moved out (an attack
/// sequence's own signals stay related).
fn take_findings(activity: &mut Activity) -> Vec<String> {
    let (findings, related): (Vec<_>, Vec<_>) = std::mem::take(&mut activity.related)
        .into_iter()
        .partition(|r| {
            r.kind == EntityType::Finding
                && r.relation == Relation::Names
                && r.direction == Direction::In
        });
    activity.related = related;
    activity
        .newly_observed
        .retain(|n| n.relation != Relation::Names);
    findings
        .into_iter()
        .filter_map(|f| f.id.strip_prefix("finding/").map(str::to_string))
        .collect()
}

/// Query parameters of `GET /v1/entities`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The entity type.
    #[serde(rename = "type")]
    kind: String,
    /// A prefix of the id after the type (`c1/prod/` lists a namespace's pods) or of the
    /// name (a username, an address, a pod's `namespace/name`).
    q: Option<String>,
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
    page_token: Option<String>,
    /// For the organization's administrator: one member's entities.
    tenant: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntityList {
    entities: Vec<Entity>,
    /// More: pass as `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities", tag = "graph", params(SearchQuery),
    responses((status = 200, description = "Entities of the type whose id or name starts with q, in id order", body = EntityList), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn search_entities(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<SearchQuery>,
) -> ApiResult<Json<EntityList>> {
    caller.require(Role::Viewer)?;
    let kind = EntityType::parse(&q.kind).ok_or_else(|| {
        ApiError::bad_request(format!("type {:?}: expected one of cluster, namespace, pod, subject, ip, user-agent, image, node, finding", q.kind))
    })?;
    let limit =
        usize::try_from(q.limit.unwrap_or(DEFAULT_SEARCH).clamp(1, MAX_SEARCH)).unwrap_or(1);
    let prefix = q.q.unwrap_or_default();
    // The page token is the last id read: the next page reads after it.
    let mut after = q.page_token.clone();
    let tenants = tenant_scope(&app, &caller, q.tenant.as_deref()).await?;
    let type_prefix = format!("{kind}/");
    // Rows of one id in several tenants are one entity: rows come in id order.
    let mut found: Vec<(EntityId, Vec<EntityRow>)> = Vec::new();
    let mut scanned = 0usize;
    let mut exhausted = true;
    'pages: loop {
        let mut page: Vec<EntityRow> = Vec::new();
        for t in &tenants {
            page.extend(
                app.store
                    .search_graph_entities(
                        t,
                        Some(kind.as_str()),
                        &type_prefix,
                        after.as_deref(),
                        SEARCH_PAGE,
                    )
                    .await?,
            );
        }
        page.sort_by(|a, b| a.id.cmp(&b.id));
        page.truncate(SEARCH_PAGE as usize);
        if page.is_empty() {
            break;
        }
        let full = page.len() == SEARCH_PAGE as usize;
        for row in page {
            scanned += 1;
            after = Some(row.id.clone());
            let Ok(id) = EntityId::parse(&row.id) else {
                continue;
            };
            if !(id.key().starts_with(&prefix) || id.name().starts_with(&prefix)) {
                continue;
            }
            if let Some((last, rows)) = found.last_mut()
                && *last == id
            {
                rows.push(row);
                continue;
            }
            if found.len() == limit {
                exhausted = false;
                break 'pages;
            }
            found.push((id, vec![row]));
        }
        if !full {
            break;
        }
        if scanned >= SEARCH_SCAN {
            exhausted = false;
            break;
        }
    }
    if !exhausted {
        // The next page starts after the last entity listed.
        after = found.last().map(|(id, _)| id.to_string());
    }
    Ok(Json(EntityList {
        entities: found
            .iter()
            .filter_map(|(id, rows)| merge_rows(id, rows))
            .collect(),
        next_page_token: if exhausted { None } else { after },
    }))
}
