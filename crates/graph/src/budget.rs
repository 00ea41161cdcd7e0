//! The per-entity, per-hour limit on new relationships (`--graph-max-edges-per-hour`): an
//! entity that makes more distinct edges in one hour than the limit (a scanner probing random
//! paths, a subject calling from thousands of addresses) keeps only its counts for that hour,
//! summed under one [`OVERFLOW`] edge per relation, and its profile says so.
//!
//! The edges an entity made are remembered for the most recent hours only, at most
//! [`MAX_TRACKED_EDGES`] in all: an hour dropped from memory (a restart, events arriving hours
//! late) starts counting again from zero, so the limit bounds the rows an entity adds per hour
//! of events as they arrive, not exactly per stored hour.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

use xxhash_rust::xxh3::Xxh3Default;

use crate::bucket::{EdgeKey, Hour, OVERFLOW};

/// Default `--graph-max-edges-per-hour`.
pub const DEFAULT_MAX_EDGES_PER_HOUR: usize = 100_000;
/// Hours remembered at most.
const MAX_TRACKED_HOURS: usize = 4;
/// Edges remembered at most, over all remembered hours (16 bytes and a map slot each).
pub const MAX_TRACKED_EDGES: usize = 4_000_000;

/// What the limit decides for an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Counted as itself.
    Edge,
    /// Counted under the entity's overflow edge for the hour.
    Overflow,
}

#[derive(Debug, Default)]
struct HourEdges {
    /// Hashes of the edges admitted in the hour.
    edges: HashSet<u128>,
    /// Hash of the from-entity → edges it made in the hour.
    made: HashMap<u128, usize>,
}

/// Edges admitted per entity and hour, for the most recent hours.
#[derive(Debug)]
pub struct EdgeBudget {
    limit: usize,
    hours: BTreeMap<Hour, HourEdges>,
    tracked: usize,
}

impl EdgeBudget {
    pub fn new(limit: usize) -> EdgeBudget {
        EdgeBudget {
            limit: limit.max(1),
            hours: BTreeMap::new(),
            tracked: 0,
        }
    }

    /// Whether `key` is counted as itself or under the overflow edge of its from-entity.
    /// An edge already admitted in its hour always is again.
    pub fn admit(&mut self, key: &EdgeKey) -> Admit {
        if key.to == OVERFLOW {
            return Admit::Edge;
        }
        let edge = hash128(key);
        let from = hash128(&key.from);
        let hour = self.hours.entry(key.hour).or_default();
        if hour.edges.contains(&edge) {
            return Admit::Edge;
        }
        let made = hour.made.entry(from).or_default();
        if *made >= self.limit {
            return Admit::Overflow;
        }
        *made += 1;
        hour.edges.insert(edge);
        self.tracked += 1;
        self.forget_old_hours(key.hour);
        Admit::Edge
    }

    /// Keeps the most recent hours within the bounds, never `current`.
    fn forget_old_hours(&mut self, current: Hour) {
        while self.hours.len() > MAX_TRACKED_HOURS || self.tracked > MAX_TRACKED_EDGES {
            let Some(&oldest) = self.hours.keys().next() else {
                return;
            };
            if oldest == current && self.hours.len() == 1 {
                // One hour holds everything: start it again rather than grow.
                self.tracked = 0;
                self.hours.clear();
                return;
            }
            let victim = if oldest == current {
                *self.hours.keys().nth(1).expect("two hours")
            } else {
                oldest
            };
            if let Some(h) = self.hours.remove(&victim) {
                self.tracked -= h.edges.len();
            }
        }
    }

    /// Edges remembered.
    pub fn tracked(&self) -> usize {
        self.tracked
    }
}

/// A 128-bit hash (xxh3): with it a collision — two edges, or two shapes of calls, taken for
/// one — is practically impossible.
pub(crate) fn hash128<T: Hash + ?Sized>(value: &T) -> u128 {
    let mut h = Xxh3Default::new();
    value.hash(&mut h);
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::Relation;
    use crate::entity::EntityId;

    fn key(from: &str, to: &str, hour: i64) -> EdgeKey {
        EdgeKey {
            from: EntityId::subject("c1", from),
            relation: Relation::ApiCall,
            to: to.into(),
            hour: Hour(hour),
        }
    }

    #[test]
    fn an_entity_past_the_limit_in_an_hour_overflows_and_others_do_not() {
        let mut b = EdgeBudget::new(3);
        for i in 0..3 {
            assert_eq!(
                b.admit(&key("scanner", &format!("get /p{i}"), 0)),
                Admit::Edge
            );
        }
        assert_eq!(b.admit(&key("scanner", "get /p9", 0)), Admit::Overflow);
        // What it made before stays itself; the overflow edge is never limited.
        assert_eq!(b.admit(&key("scanner", "get /p1", 0)), Admit::Edge);
        assert_eq!(b.admit(&key("scanner", OVERFLOW, 0)), Admit::Edge);
        // Another entity, and the next hour, have their own budgets.
        assert_eq!(b.admit(&key("jane", "get /p9", 0)), Admit::Edge);
        assert_eq!(b.admit(&key("scanner", "get /p9", 1)), Admit::Edge);
        assert_eq!(b.tracked(), 5);
    }

    #[test]
    fn memory_stays_within_the_recent_hours() {
        let mut b = EdgeBudget::new(10);
        for hour in 0..20 {
            b.admit(&key("u", "get pods", hour));
        }
        assert_eq!(b.hours.len(), MAX_TRACKED_HOURS);
        assert_eq!(b.tracked(), MAX_TRACKED_HOURS);
        assert!(b.hours.contains_key(&Hour(19)));
    }
}
