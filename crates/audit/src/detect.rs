//! The detection engine: every rule against every event, the stateful detectors (thresholds
//! over sliding windows, sequences, first-seen baselines), and the hand-off to aggregation.
//!
//! Per event the engine looks up the candidate rules by verb and resource, evaluates their
//! compiled conditions over the borrowed event, and only when a rule fires builds anything
//! owned. State is bounded: windows and sequence marks expire with event time and are capped
//! per rule; baselines are capped per rule and cluster and can be saved and loaded as JSON so a
//! restarted server keeps what it learned.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Stage};
use crate::findings::Findings;
use crate::intel::{Intel, IntelHit};
use crate::rules::field::{Cx, Field, Val};
use crate::rules::{Rule, RuleSet};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long a cluster's baselines only learn (event time from the first event seen).
    pub learning_period_us: i64,
    /// Keys kept per stateful rule (threshold windows, sequence marks, baseline entries per
    /// cluster); beyond it the oldest windows are dropped and baselines stop growing.
    pub max_keys_per_rule: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            learning_period_us: 7 * 86_400_000_000,
            max_keys_per_rule: 1_000_000,
        }
    }
}

/// What the engine has seen.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineStats {
    pub events: u64,
    pub rule_evaluations: u64,
    pub detections: u64,
    /// Detections archived by suppression rules.
    pub suppressed: u64,
}

/// Learned baselines, per cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baselines {
    pub clusters: HashMap<String, ClusterBaseline>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterBaseline {
    /// Event time (µs) of the first event seen from the cluster.
    pub first_seen_us: i64,
    /// Per rule id, hashes of the key combinations seen.
    pub seen: HashMap<String, HashSet<u64>>,
}

#[derive(Default)]
struct Window {
    /// (time, distinct-value hash) of matching events, oldest first.
    hits: VecDeque<(i64, u64)>,
    last_us: i64,
}

/// What the stateful detectors remember.
pub struct State {
    pub baselines: Baselines,
    windows: Vec<HashMap<u64, Window>>,
    /// Per rule: when it last matched, by the `by` key of rules that follow it in a sequence.
    marks: Vec<HashMap<u64, i64>>,
    max_keys: usize,
    learning_period_us: i64,
}

/// What one tenant brings to a shared engine for its own events: its trusted and threat IP
/// lists and its suppression rules, used instead of the engine's own for one call of
/// [`Engine::process_for`]. The compiled catalogue and the detection state stay the engine's.
#[derive(Debug, Default)]
pub struct TenantOverlay {
    pub intel: Intel,
    pub suppressions: Vec<crate::rules::SuppressionRule>,
}

/// Runs rules over events.
pub struct Engine {
    pub rules: RuleSet,
    pub intel: Intel,
    pub options: EngineOptions,
    pub stats: EngineStats,
    pub state: State,
    /// Per rule, the rules that follow it in a sequence.
    followers: Vec<Vec<usize>>,
    candidates: Vec<usize>,
    fired: Vec<usize>,
    /// The latest event time seen, for events without one.
    clock_us: i64,
}

impl Engine {
    pub fn new(rules: RuleSet, intel: Intel, options: EngineOptions) -> Engine {
        let n = rules.rules.len();
        let mut followers = vec![Vec::new(); n];
        for (i, r) in rules.rules.iter().enumerate() {
            if let Some(s) = &r.sequence {
                followers[s.after].push(i);
            }
        }
        Engine {
            rules,
            intel,
            options: options.clone(),
            stats: EngineStats::default(),
            state: State {
                baselines: Baselines::default(),
                windows: (0..n).map(|_| HashMap::new()).collect(),
                marks: (0..n).map(|_| HashMap::new()).collect(),
                max_keys: options.max_keys_per_rule,
                learning_period_us: options.learning_period_us,
            },
            followers,
            candidates: Vec::new(),
            fired: Vec::new(),
            clock_us: 0,
        }
    }

    /// Evaluates every rule against one event; detections go to `findings`.
    pub fn process(&mut self, event: &Event<'_>, findings: &mut Findings) {
        self.process_with(event, findings, None)
    }

    /// Evaluates every rule against one event of a tenant that brings its own IP lists and
    /// suppression rules (a server detecting many tenants' clusters with one engine).
    pub fn process_for(
        &mut self,
        event: &Event<'_>,
        findings: &mut Findings,
        overlay: &TenantOverlay,
    ) {
        self.process_with(event, findings, Some(overlay))
    }

    fn process_with(
        &mut self,
        event: &Event<'_>,
        findings: &mut Findings,
        overlay: Option<&TenantOverlay>,
    ) {
        let (intel, suppressions) = match overlay {
            Some(o) => (&o.intel, &o.suppressions[..]),
            None => (&self.intel, &self.rules.suppressions[..]),
        };
        self.stats.events += 1;
        let now = event.time_us.unwrap_or(self.clock_us);
        self.clock_us = self.clock_us.max(now);
        let stage = event.stage();
        if !matches!(stage, Stage::ResponseComplete | Stage::ResponseStarted) {
            return;
        }
        let has_body = event.request_object.is_some() || event.response_object.is_some();
        let mut candidates = std::mem::take(&mut self.candidates);
        self.rules
            .candidates(&event.verb, &event.object_ref.resource, &mut candidates);
        if candidates.is_empty() {
            self.candidates = candidates;
            return;
        }
        let hit = if intel.is_empty() {
            IntelHit::default()
        } else {
            intel.lookup(event.source_ip())
        };
        let cx = Cx {
            event,
            intel: &hit,
            it: None,
        };
        self.fired.clear();
        for &i in &candidates {
            let rule = &self.rules.rules[i];
            let stage_ok = match stage {
                Stage::ResponseStarted => rule.stage_started,
                _ => rule.stage_complete,
            };
            if !stage_ok || (rule.reads_body && !has_body) {
                continue;
            }
            self.stats.rule_evaluations += 1;
            if !rule.cond.eval(&cx) || rule.exceptions.iter().any(|e| e.eval(&cx)) {
                continue;
            }
            self.fired.push(i);
        }
        self.candidates = candidates;
        let fired = std::mem::take(&mut self.fired);
        for &i in &fired {
            for &f in &self.followers[i] {
                // Marks are keyed by the follower's `by` fields.
                let key = match &self.rules.rules[f].sequence {
                    Some(seq) => state_key(&cx, &seq.by),
                    None => continue,
                };
                let max = self.state.max_keys;
                let marks = &mut self.state.marks[i];
                if marks.len() >= max {
                    let horizon = now - 3_600_000_000;
                    marks.retain(|_, t| *t >= horizon);
                }
                if marks.len() < max {
                    marks.insert(key, now);
                }
            }
            let mut info = Vec::new();
            if !self.state.gate(&self.rules, i, &cx, now, &mut info) {
                continue;
            }
            let rule = &self.rules.rules[i];
            let severity = rule
                .escalate
                .iter()
                .filter(|(c, _)| c.eval(&cx))
                .map(|(_, s)| *s)
                .fold(rule.severity, |a, b| if b.label > a.label { b } else { a });
            self.stats.detections += 1;
            if findings.record(rule, severity, &cx, suppressions, info) {
                self.stats.suppressed += 1;
            }
        }
        self.fired = fired;
    }
}

impl State {
    /// Whether a rule that matched fires, after its threshold, sequence and baseline.
    fn gate(
        &mut self,
        rules: &RuleSet,
        i: usize,
        cx: &Cx<'_, '_>,
        now: i64,
        info: &mut Vec<(String, String)>,
    ) -> bool {
        let rule: &Rule = &rules.rules[i];
        if let Some(seq) = &rule.sequence {
            let key = state_key(cx, &seq.by);
            let lead = &rules.rules[seq.after].def.id;
            match self.marks[seq.after].get(&key) {
                Some(&t) if now - t <= seq.within_us && now >= t => {
                    info.push(("after_rule".into(), lead.clone()));
                    info.push(("seconds_after".into(), ((now - t) / 1_000_000).to_string()));
                }
                _ => return false,
            }
        }
        if let Some(th) = &rule.threshold {
            let key = state_key(cx, &th.by);
            let distinct = th
                .distinct
                .as_ref()
                .map(|f| key_hash(cx, std::slice::from_ref(f), 1));
            let windows = &mut self.windows[i];
            if windows.len() >= self.max_keys && !windows.contains_key(&key) {
                // Drop windows that have gone quiet; if none has, the oldest go.
                let horizon = now - th.window_us;
                windows.retain(|_, w| w.last_us >= horizon);
                if windows.len() >= self.max_keys {
                    return false;
                }
            }
            let w = windows.entry(key).or_default();
            w.last_us = now;
            while w.hits.front().is_some_and(|h| now - h.0 > th.window_us) {
                w.hits.pop_front();
            }
            match distinct {
                // Distinct values: the window holds each value once, at its latest time.
                Some(d) => {
                    if let Some(pos) = w.hits.iter().position(|h| h.1 == d) {
                        w.hits.remove(pos);
                    }
                    w.hits.push_back((now, d));
                }
                None => w.hits.push_back((now, 0)),
            }
            // Only the latest `count` entries can matter.
            while w.hits.len() > th.count as usize {
                w.hits.pop_front();
            }
            let count = w.hits.len();
            if count < th.count as usize {
                return false;
            }
            info.push(("threshold_count".into(), count.to_string()));
            info.push((
                "window_seconds".into(),
                (th.window_us / 1_000_000).to_string(),
            ));
            // The next detection needs a full window again.
            w.hits.clear();
        }
        if let Some(keys) = &rule.baseline {
            let cluster = cx.event.cluster.as_ref();
            let key = key_hash(cx, keys, 2);
            let learning = self.learning_period_us;
            let max = self.max_keys;
            let c = self
                .baselines
                .clusters
                .entry(cluster.to_string())
                .or_insert_with(|| ClusterBaseline {
                    first_seen_us: now,
                    seen: HashMap::new(),
                });
            c.first_seen_us = c.first_seen_us.min(now);
            let in_learning = now - c.first_seen_us < learning;
            let seen = c.seen.entry(rule.def.id.clone()).or_default();
            if seen.contains(&key) {
                return false;
            }
            if seen.len() < max {
                seen.insert(key);
            }
            if in_learning {
                return false;
            }
            info.push(("baseline".into(), "first seen in this cluster".into()));
        }
        true
    }
}

/// A hash of the values of `fields` (every value of multi-valued ones), salted per use.
/// The key of a threshold window or a sequence mark: `fields`' values within the event's
/// cluster, so that one engine fed several clusters (the server's) never counts or links one
/// cluster's events with another's.
fn state_key(cx: &Cx<'_, '_>, fields: &[Field]) -> u64 {
    let mut h = DefaultHasher::new();
    cx.event.cluster.as_ref().hash(&mut h);
    key_hash(cx, fields, h.finish())
}

pub fn key_hash(cx: &Cx<'_, '_>, fields: &[Field], salt: u64) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    for f in fields {
        cx.each(f, &mut |v| {
            match v {
                Val::Str(s) => s.hash(&mut h),
                Val::Num(n) => n.to_bits().hash(&mut h),
                Val::Bool(b) => b.hash(&mut h),
                Val::Compound(c) => c.to_string().hash(&mut h),
            }
            false
        });
        0xffu8.hash(&mut h);
    }
    h.finish()
}
