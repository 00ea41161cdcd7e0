//! Entity profiles read from the store: the rows of an entity in the tenants a caller sees,
//! its edges over a scope and the baseline before it, turned into the profile the API answers
//! (`api::entities`) and `osprey graph show` prints.

use std::collections::HashSet;

use osprey_graph::profile::{self, Activity, Direction, EdgeSum, Scope, Sums};
use osprey_graph::record::rfc3339;
use osprey_graph::{Counts, EntityId, EntityType, Hour, OVERFLOW, Relation};
use osprey_store::{EdgeEnd, EntityRow, GraphCounts, Store};
use serde::Serialize;
use serde_json::Value;

use crate::error::ServerResult;

const HOUR_MS: i64 = 3_600_000;
/// Default scope: the last 24 hours.
const DEFAULT_SCOPE_HOURS: i64 = 24;

/// An entity as its profile and a search show it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub id: String,
    pub name: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Per type: a pod's images, node, service account, security context, owner, and
    /// `created` / `deleted` times.
    #[schema(value_type = Object)]
    pub properties: Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileScope {
    pub start: String,
    pub end: String,
}

/// An entity's profile over a scope.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub entity: Entity,
    pub scope: ProfileScope,
    #[serde(flatten)]
    pub activity: Activity,
    /// More related entities: pass as `related_offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_next: Option<usize>,
    /// Findings naming the entity in the scope.
    pub findings: Vec<String>,
}

/// The profile of `id` over `scope` as the `tenants` see it, with one page of its related
/// entities (`related`: at most this many after skipping `offset`); `None`: never seen.
pub async fn profile(
    store: &Store,
    tenants: &[String],
    id: &EntityId,
    scope: Scope,
    related: usize,
    offset: usize,
) -> ServerResult<Option<Profile>> {
    let rows = entity_rows(store, tenants, id).await?;
    let Some(entity) = merge_rows(id, &rows) else {
        return Ok(None);
    };
    let (sums, baseline) = sums_of(store, tenants, id, scope).await?;
    let data_since = data_since(store, tenants, id).await?;
    let mut activity =
        profile::activity_of(id, &sums, &baseline, data_since, osprey_store::now_ms());
    let findings = take_findings(&mut activity);
    let total = activity.related.len();
    activity.related = activity
        .related
        .into_iter()
        .skip(offset)
        .take(related)
        .collect();
    let related_next = (offset.saturating_add(related) < total).then(|| offset + related);
    Ok(Some(Profile {
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

/// The entity's rows in each of the tenants that have it.
pub async fn entity_rows(
    store: &Store,
    tenants: &[String],
    id: &EntityId,
) -> ServerResult<Vec<EntityRow>> {
    let mut rows = Vec::new();
    let text = id.to_string();
    for t in tenants {
        rows.extend(store.graph_entity(t, &text).await?);
    }
    Ok(rows)
}

/// One entity out of its rows in several tenants: seen from the first to the last sighting;
/// the properties of the one seen last.
pub fn merge_rows(id: &EntityId, rows: &[EntityRow]) -> Option<Entity> {
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

/// The scope asked for (Unix ms): hour-aligned, 1 hour to a year; by default the 24 hours up
/// to the end of the current hour. The error names what is wrong, in one line.
pub fn scope_of(start: Option<i64>, end: Option<i64>) -> Result<Scope, String> {
    let hour = |name: &str, ms: i64| -> Result<Hour, String> {
        if ms.rem_euclid(HOUR_MS) != 0 {
            return Err(format!(
                "{name} {}: a scope starts and ends on an hour (minutes and seconds 0)",
                rfc3339(ms)
            ));
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
        return Err(format!(
            "scope {} to {}: from 1 hour to a year, start before end",
            rfc3339(start.start_ms()),
            rfc3339(end.start_ms())
        ));
    }
    Ok(Scope { start, end })
}

/// The entity's edges in the scope (both ends), summed, and which of them the baseline
/// before it saw.
async fn sums_of(
    store: &Store,
    tenants: &[String],
    id: &EntityId,
    scope: Scope,
) -> ServerResult<(Sums, HashSet<profile::Seen>)> {
    let text = id.to_string();
    let mut sums = Sums::default();
    let mut baseline = HashSet::new();
    let b = scope.baseline();
    let (start, end) = (scope.start.0, scope.end.0);
    for t in tenants {
        // Four reads of one entity's edges, at once: on separate connections of the pool
        // a busy entity's profile waits for the longest, not the sum (each reads thousands
        // of rows for a cluster's day).
        let (out, into, call_hours, overflow_hours) = tokio::try_join!(
            store.graph_edge_sums(t, EdgeEnd::From, &text, start, end),
            store.graph_edge_sums(t, EdgeEnd::To, &text, start, end),
            store.graph_call_hours(t, &text, start, end),
            store.graph_overflow_hours(t, &text, OVERFLOW, start, end),
        )?;
        let mut tenant = Sums::default();
        for (rows, direction) in [(out, Direction::Out), (into, Direction::In)] {
            for r in rows {
                if let Some(relation) = Relation::parse(&r.relation) {
                    tenant.edges.push(EdgeSum {
                        relation,
                        direction,
                        other: r.other,
                        counts: counts(&r.counts),
                        first: Hour(r.first_hour),
                        last: Hour(r.last_hour),
                    });
                }
            }
        }
        tenant.call_hours = call_hours
            .into_iter()
            .map(|(h, c)| (Hour(h), counts(&c)))
            .collect();
        tenant.overflow_hours = overflow_hours.into_iter().map(Hour).collect();
        sums.merge(tenant);
    }
    // The baseline: which of the scope's neighbours the 45 days before it saw (new values
    // are the others), asked edge by edge.
    let asked: Vec<(String, String, String)> = sums
        .edges
        .iter()
        .filter(|e| e.other != OVERFLOW)
        .map(|e| {
            let relation = e.relation.as_str().to_string();
            match e.direction {
                Direction::Out => (text.clone(), relation, e.other.clone()),
                Direction::In => (e.other.clone(), relation, text.clone()),
            }
        })
        .collect();
    for t in tenants {
        for (from, relation, to) in store
            .graph_edges_present(t, &asked, b.start.0, b.end.0)
            .await?
        {
            let Some(r) = Relation::parse(&relation) else {
                continue;
            };
            if from == text {
                baseline.insert((r, Direction::Out, to));
            } else {
                baseline.insert((r, Direction::In, from));
            }
        }
    }
    Ok((sums, baseline))
}

fn counts(c: &GraphCounts) -> Counts {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Counts {
        success: count(c.success),
        failed: count(c.failed),
        unauthorized: count(c.unauthorized),
        forbidden: count(c.forbidden),
    }
}

/// When the data of the entity's cluster begins (for an entity of no cluster: of the
/// tenants' first cluster).
async fn data_since(store: &Store, tenants: &[String], id: &EntityId) -> ServerResult<Option<i64>> {
    if let Some(cluster_id) = id.cluster_id() {
        let cluster = EntityId::cluster(cluster_id).to_string();
        let mut since = None;
        for t in tenants {
            if let Some(r) = store.graph_entity(t, &cluster).await? {
                since = Some(since.map_or(r.first_ms, |s: i64| s.min(r.first_ms)));
            }
        }
        return Ok(since);
    }
    let mut since: Option<i64> = None;
    for t in tenants {
        if let Some(first) = store
            .graph_first_seen(t, EntityType::Cluster.as_str())
            .await?
        {
            since = Some(since.map_or(first, |s| s.min(first)));
        }
    }
    Ok(since)
}

/// The findings among the related entities that name the entity, moved out (an attack
/// sequence's own signals stay related), the most recently named first.
fn take_findings(activity: &mut Activity) -> Vec<String> {
    let (mut findings, related): (Vec<_>, Vec<_>) = std::mem::take(&mut activity.related)
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
    findings.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.id.cmp(&b.id)));
    findings
        .into_iter()
        .filter_map(|f| f.id.strip_prefix("finding/").map(str::to_string))
        .collect()
}
