//! An entity's profile over a scope of hours, computed from its stored edges: the API calls
//! it made or received, counted per hour, per result and per verb and resource; the entities
//! related to it; what is newly observed (values seen in the scope and never in the
//! [`BASELINE_HOURS`] before it); and notices (still training, high volume). The store reads
//! the rows; this module only counts.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::bucket::{Hour, OVERFLOW, Relation};
use crate::call::Counts;
use crate::entity::{EntityId, EntityType};
use crate::record::rfc3339;

/// The baseline a scope is compared with: the 45 days before it.
pub const BASELINE_HOURS: i64 = 45 * 24;
/// Data a cluster needs before what is new in it means something: 14 days.
pub const TRAINING_MS: i64 = 14 * 86_400_000;
/// Longest scope: a year.
pub const MAX_SCOPE_HOURS: i64 = 366 * 24;

/// Hours `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub start: Hour,
    pub end: Hour,
}

impl Scope {
    pub fn contains(&self, h: Hour) -> bool {
        self.start <= h && h < self.end
    }

    /// The baseline's hours: the [`BASELINE_HOURS`] before the scope.
    pub fn baseline(&self) -> Scope {
        Scope {
            start: Hour(self.start.0 - BASELINE_HOURS),
            end: self.start,
        }
    }
}

/// An edge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEdge {
    pub from: String,
    pub relation: Relation,
    pub to: String,
    pub hour: Hour,
    pub counts: Counts,
}

/// Which end of an edge the profiled entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The entity made the edge (`subject → ip`).
    Out,
    /// The edge points at the entity.
    In,
}

/// A value seen over the baseline: relation, direction and the other end.
pub type Seen = (Relation, Direction, String);

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HourCounts {
    pub hour: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerbResource {
    pub verb: String,
    pub resource: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiCalls {
    pub total: u64,
    pub by_result: Counts,
    /// Hours with calls, in order.
    pub hourly: Vec<HourCounts>,
    /// Most calls first.
    pub by_verb_resource: Vec<VerbResource>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Related {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub relation: Relation,
    pub direction: Direction,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewlyObserved {
    /// `ip`, `user_agent`, `api_call`, `subject` or `image`.
    pub kind: &'static str,
    /// What a person reads (an address, a user agent, `verb resource`, a username, a digest).
    pub value: String,
    /// The entity, when the value is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub relation: Relation,
    /// The start of the first hour of the scope it was seen in.
    pub first_seen: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    /// `training` or `high_volume`.
    pub kind: &'static str,
    pub message: String,
}

/// What a profile says, but for the entity and its findings (the caller adds those).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    pub notices: Vec<Notice>,
    pub api_calls: ApiCalls,
    pub newly_observed: Vec<NewlyObserved>,
    pub related: Vec<Related>,
}

/// An entity's edges over a scope, summed per relation, direction and other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSum {
    pub relation: Relation,
    pub direction: Direction,
    pub other: String,
    pub counts: Counts,
    /// The first and last hours with such an edge.
    pub first: Hour,
    pub last: Hour,
}

/// What a profile counts, summed: the store sums an entity's rows per other end (and its calls
/// per hour), so a profile over a day or a year reads one row per neighbour, not one per
/// neighbour and hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sums {
    pub edges: Vec<EdgeSum>,
    /// The entity's own API calls per hour.
    pub call_hours: Vec<(Hour, Counts)>,
    /// Hours in which the entity went over its edge limit.
    pub overflow_hours: Vec<Hour>,
}

impl Sums {
    /// The sums of the edges of `entity` (its id) in `scope`.
    pub fn of_edges(entity: &str, scope: Scope, edges: &[StoredEdge]) -> Sums {
        let mut sums = Sums::default();
        for e in edges.iter().filter(|e| scope.contains(e.hour)) {
            let (direction, other) = if e.from == entity {
                (Direction::Out, &e.to)
            } else if e.to == entity {
                (Direction::In, &e.from)
            } else {
                continue;
            };
            if other == OVERFLOW {
                sums.overflow_hours.push(e.hour);
            }
            if e.relation == Relation::ApiCall && direction == Direction::Out {
                sums.call_hours.push((e.hour, e.counts));
            }
            sums.edges.push(EdgeSum {
                relation: e.relation,
                direction,
                other: other.clone(),
                counts: e.counts,
                first: e.hour,
                last: e.hour,
            });
        }
        sums.normalize();
        sums
    }

    /// Adds sums of the same entity (another tenant's rows).
    pub fn merge(&mut self, other: Sums) {
        self.edges.extend(other.edges);
        self.call_hours.extend(other.call_hours);
        self.overflow_hours.extend(other.overflow_hours);
        self.normalize();
    }

    /// One entry per relation, direction and other end, and per hour; in order.
    fn normalize(&mut self) {
        let mut edges: BTreeMap<(Relation, Direction, String), EdgeSum> = BTreeMap::new();
        for e in std::mem::take(&mut self.edges) {
            match edges.entry((e.relation, e.direction, e.other.clone())) {
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let s = o.get_mut();
                    s.counts.merge(&e.counts);
                    s.first = s.first.min(e.first);
                    s.last = s.last.max(e.last);
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(e);
                }
            }
        }
        self.edges = edges.into_values().collect();
        let mut hours: BTreeMap<Hour, Counts> = BTreeMap::new();
        for (h, c) in std::mem::take(&mut self.call_hours) {
            hours.entry(h).or_default().merge(&c);
        }
        self.call_hours = hours.into_iter().collect();
        self.overflow_hours.sort_unstable();
        self.overflow_hours.dedup();
    }
}

/// The activity of `entity` over `scope` from its edges (at either end, over the scope and
/// its baseline), given when the data of its clusters begins (`data_since_ms`: the first
/// sighting of the cluster, or of the tenant's first cluster for an entity of no cluster)
/// and the time now.
pub fn activity(
    entity: &EntityId,
    scope: Scope,
    edges: &[StoredEdge],
    baseline: &HashSet<Seen>,
    data_since_ms: Option<i64>,
    now_ms: i64,
) -> Activity {
    let sums = Sums::of_edges(&entity.to_string(), scope, edges);
    activity_of(entity, &sums, baseline, data_since_ms, now_ms)
}

/// The activity of `entity` from the sums of its edges over a scope (see [`activity`]).
pub fn activity_of(
    entity: &EntityId,
    sums: &Sums,
    baseline: &HashSet<Seen>,
    data_since_ms: Option<i64>,
    now_ms: i64,
) -> Activity {
    let mut calls = CallTally::default();
    for (hour, counts) in &sums.call_hours {
        calls.total.merge(counts);
        calls.hourly.entry(*hour).or_default().merge(counts);
    }
    let mut related: BTreeMap<(Relation, Direction, &str), RelatedTally> = BTreeMap::new();
    let mut new: BTreeMap<(Relation, Direction, &str), Hour> = BTreeMap::new();
    for e in &sums.edges {
        let other = e.other.as_str();
        if e.relation == Relation::ApiCall && e.direction == Direction::Out {
            calls
                .by_call
                .entry(other.to_string())
                .or_default()
                .merge(&e.counts);
        } else if other != OVERFLOW {
            related.insert(
                (e.relation, e.direction, other),
                RelatedTally {
                    count: e.counts.total(),
                    first: e.first,
                    last: e.last,
                },
            );
        }
        if other != OVERFLOW && !baseline.contains(&(e.relation, e.direction, other.to_string())) {
            new.insert((e.relation, e.direction, other), e.first);
        }
    }
    Activity {
        notices: notices(entity, &sums.overflow_hours, data_since_ms, now_ms),
        api_calls: calls.finish(),
        newly_observed: newly_observed(new),
        related: related_list(related),
    }
}

#[derive(Default)]
struct CallTally {
    total: Counts,
    hourly: BTreeMap<Hour, Counts>,
    by_call: HashMap<String, Counts>,
}

impl CallTally {
    fn finish(self) -> ApiCalls {
        let mut by_verb_resource: Vec<VerbResource> = self
            .by_call
            .into_iter()
            .map(|(call, counts)| {
                let (verb, resource) = if call == OVERFLOW {
                    (OVERFLOW, OVERFLOW)
                } else {
                    call.split_once(' ').unwrap_or((call.as_str(), ""))
                };
                VerbResource {
                    verb: verb.to_string(),
                    resource: resource.to_string(),
                    counts,
                }
            })
            .collect();
        by_verb_resource.sort_by(|a, b| {
            b.counts
                .total()
                .cmp(&a.counts.total())
                .then_with(|| (&a.verb, &a.resource).cmp(&(&b.verb, &b.resource)))
        });
        ApiCalls {
            total: self.total.total(),
            by_result: self.total,
            hourly: self
                .hourly
                .into_iter()
                .map(|(h, counts)| HourCounts {
                    hour: rfc3339(h.start_ms()),
                    counts,
                })
                .collect(),
            by_verb_resource,
        }
    }
}

struct RelatedTally {
    count: u64,
    first: Hour,
    last: Hour,
}

fn related_list(related: BTreeMap<(Relation, Direction, &str), RelatedTally>) -> Vec<Related> {
    let mut out: Vec<Related> = related
        .into_iter()
        .filter_map(|((relation, direction, other), t)| {
            let id = EntityId::parse(other).ok()?;
            Some(Related {
                kind: id.kind(),
                id: other.to_string(),
                relation,
                direction,
                count: t.count,
                first_seen: rfc3339(t.first.start_ms()),
                last_seen: rfc3339(t.last.start_ms()),
            })
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
    out
}

fn newly_observed(new: BTreeMap<(Relation, Direction, &str), Hour>) -> Vec<NewlyObserved> {
    let mut out: Vec<NewlyObserved> = new
        .into_iter()
        .filter_map(|((relation, _, other), first)| {
            let first_seen = rfc3339(first.start_ms());
            if relation == Relation::ApiCall {
                return Some(NewlyObserved {
                    kind: "api_call",
                    value: other.to_string(),
                    id: None,
                    relation,
                    first_seen,
                });
            }
            let id = EntityId::parse(other).ok()?;
            let kind = match id.kind() {
                EntityType::Ip => "ip",
                EntityType::UserAgent => "user_agent",
                EntityType::Subject => "subject",
                EntityType::Image => "image",
                _ => return None,
            };
            Some(NewlyObserved {
                kind,
                value: id.name(),
                id: Some(other.to_string()),
                relation,
                first_seen,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.first_seen, a.kind, &a.value).cmp(&(&b.first_seen, b.kind, &b.value)));
    out.dedup_by(|a, b| a.kind == b.kind && a.value == b.value);
    out
}

fn notices(
    entity: &EntityId,
    overflow_hours: &[Hour],
    data_since_ms: Option<i64>,
    now_ms: i64,
) -> Vec<Notice> {
    let mut out = Vec::new();
    match data_since_ms {
        Some(since) if now_ms - since < TRAINING_MS => out.push(Notice {
            kind: "training",
            message: format!(
                "training: data since {}; what is newly observed is reliable from {} (14 days of data)",
                rfc3339(since),
                rfc3339(since + TRAINING_MS)
            ),
        }),
        None => out.push(Notice {
            kind: "training",
            message: "training: no data yet for this entity's cluster".into(),
        }),
        _ => {}
    }
    let hours: HashSet<Hour> = overflow_hours.iter().copied().collect();
    if let (Some(first), Some(last)) = (hours.iter().min(), hours.iter().max()) {
        out.push(Notice {
            kind: "high_volume",
            message: format!(
                "high volume: {entity} made more new relationships than the limit per hour in {} hour(s) between {} and {}; those hours keep only its counts beyond the limit (shown as '*')",
                hours.len(),
                rfc3339(first.start_ms()),
                rfc3339(last.start_ms() + 3_600_000),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Outcome;

    fn e(
        from: &str,
        relation: Relation,
        to: &str,
        hour: i64,
        outcome: Outcome,
        n: u64,
    ) -> StoredEdge {
        let mut counts = Counts::default();
        counts.add(outcome, n);
        StoredEdge {
            from: from.into(),
            relation,
            to: to.into(),
            hour: Hour(hour),
            counts,
        }
    }

    const JANE: &str = "subject/c1/jane";

    #[test]
    fn calls_relations_and_new_values_in_the_scope() {
        let jane = EntityId::parse(JANE).unwrap();
        let scope = Scope {
            start: Hour(100),
            end: Hour(124),
        };
        let edges = [
            e(
                JANE,
                Relation::ApiCall,
                "get pods",
                100,
                Outcome::Success,
                5,
            ),
            e(
                JANE,
                Relation::ApiCall,
                "get pods",
                101,
                Outcome::Forbidden,
                2,
            ),
            e(
                JANE,
                Relation::ApiCall,
                "create pods/exec",
                101,
                Outcome::Success,
                1,
            ),
            e(JANE, Relation::ApiCall, OVERFLOW, 102, Outcome::Failed, 40),
            e(JANE, Relation::ApiCall, "get pods", 99, Outcome::Success, 9),
            e(
                JANE,
                Relation::FromIp,
                "ip/203.0.113.9",
                101,
                Outcome::Success,
                3,
            ),
            e(
                JANE,
                Relation::FromIp,
                "ip/10.0.0.1",
                100,
                Outcome::Success,
                5,
            ),
            e(
                JANE,
                Relation::Exec,
                "pod/c1/prod/web",
                101,
                Outcome::Success,
                1,
            ),
            e(
                "cluster/c1",
                Relation::Caller,
                JANE,
                100,
                Outcome::Success,
                5,
            ),
        ];
        let baseline: HashSet<Seen> = [
            (Relation::ApiCall, Direction::Out, "get pods".to_string()),
            (Relation::FromIp, Direction::Out, "ip/10.0.0.1".to_string()),
        ]
        .into();
        let now = Hour(124).start_ms();
        let a = activity(
            &jane,
            scope,
            &edges,
            &baseline,
            Some(now - 2 * TRAINING_MS),
            now,
        );
        assert_eq!(a.api_calls.total, 48, "hour 99 is outside");
        // Sums made in two halves (two tenants' rows) and merged say the same.
        let me = jane.to_string();
        let (left, right) = edges.split_at(edges.len() / 2);
        let mut halves = Sums::of_edges(&me, scope, left);
        halves.merge(Sums::of_edges(&me, scope, right));
        assert_eq!(halves, Sums::of_edges(&me, scope, &edges));
        assert_eq!(
            activity_of(&jane, &halves, &baseline, Some(now - 2 * TRAINING_MS), now),
            a
        );
        assert_eq!(a.api_calls.by_result.forbidden, 2);
        assert_eq!(a.api_calls.hourly.len(), 3);
        assert_eq!(a.api_calls.hourly[1].counts.total(), 3);
        assert_eq!(a.api_calls.by_verb_resource[0].verb, "*");
        assert_eq!(a.api_calls.by_verb_resource[1].resource, "pods");
        assert_eq!(a.api_calls.by_verb_resource[1].counts.total(), 7);
        let related: Vec<(&str, Direction, u64)> = a
            .related
            .iter()
            .map(|r| (r.id.as_str(), r.direction, r.count))
            .collect();
        assert_eq!(
            related,
            [
                ("cluster/c1", Direction::In, 5),
                ("ip/10.0.0.1", Direction::Out, 5),
                ("ip/203.0.113.9", Direction::Out, 3),
                ("pod/c1/prod/web", Direction::Out, 1),
            ]
        );
        let new: Vec<(&str, &str)> = a
            .newly_observed
            .iter()
            .map(|n| (n.kind, n.value.as_str()))
            .collect();
        assert_eq!(
            new,
            [("api_call", "create pods/exec"), ("ip", "203.0.113.9")]
        );
        assert_eq!(
            a.newly_observed[1].first_seen,
            rfc3339(Hour(101).start_ms())
        );
        assert_eq!(a.notices.len(), 1, "{:?}", a.notices);
        assert_eq!(a.notices[0].kind, "high_volume");
    }

    #[test]
    fn a_young_cluster_is_training() {
        let c = EntityId::cluster("c1");
        let scope = Scope {
            start: Hour(0),
            end: Hour(1),
        };
        let a = activity(&c, scope, &[], &HashSet::new(), Some(0), TRAINING_MS - 1);
        assert_eq!(a.notices[0].kind, "training");
        let a = activity(&c, scope, &[], &HashSet::new(), Some(0), TRAINING_MS);
        assert!(a.notices.is_empty());
        assert_eq!(scope.baseline().start, Hour(-BASELINE_HOURS));
    }
}
