//! One audited API call as the graph sees it, its outcome class, and [`CallLog`], which makes
//! a call out of the stages an audit policy logs it at: a call is one audit id, counted once
//! with its final stage's response code, at its request time.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// How a call ended, by HTTP status. An exec, attach or port-forward that succeeded ends in
/// 101 (the connection upgraded to a stream), so 101 counts as a success with the 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 2xx, and 101 (Switching Protocols).
    Success,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// Any other status (and none: a call that panicked).
    Failed,
}

impl Outcome {
    pub fn of(code: Option<u16>) -> Outcome {
        match code {
            Some(101 | 200..=299) => Outcome::Success,
            Some(401) => Outcome::Unauthorized,
            Some(403) => Outcome::Forbidden,
            _ => Outcome::Failed,
        }
    }
}

/// Calls counted by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub success: u64,
    pub failed: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
}

impl Counts {
    pub fn one(outcome: Outcome) -> Counts {
        let mut c = Counts::default();
        c.add(outcome, 1);
        c
    }

    pub fn add(&mut self, outcome: Outcome, n: u64) {
        let slot = match outcome {
            Outcome::Success => &mut self.success,
            Outcome::Unauthorized => &mut self.unauthorized,
            Outcome::Forbidden => &mut self.forbidden,
            Outcome::Failed => &mut self.failed,
        };
        *slot = slot.saturating_add(n);
    }

    pub fn merge(&mut self, other: &Counts) {
        self.success = self.success.saturating_add(other.success);
        self.failed = self.failed.saturating_add(other.failed);
        self.unauthorized = self.unauthorized.saturating_add(other.unauthorized);
        self.forbidden = self.forbidden.saturating_add(other.forbidden);
    }

    pub fn total(&self) -> u64 {
        self.success
            .saturating_add(self.failed)
            .saturating_add(self.unauthorized)
            .saturating_add(self.forbidden)
    }
}

/// One audit event of a call, with what the graph needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    pub cluster_id: String,
    pub audit_id: String,
    /// Logged at a final stage (ResponseComplete, Panic): nothing more comes for the call.
    /// The audit engine's `Stage` says which; the graph needs only this.
    pub final_stage: bool,
    /// `requestReceivedTimestamp`, in milliseconds since the epoch.
    pub request_ms: i64,
    pub username: String,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub verb: String,
    /// The resource with its subresource (`pods/exec`), or the non-resource path.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: Option<u16>,
}

impl ApiCall {
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.code)
    }
}

/// Calls logged at a non-final stage whose final stage has not come yet, at most this many
/// (beyond it, the oldest is counted as it stands).
pub const MAX_PENDING_CALLS: usize = 100_000;
/// A call whose final stage has not come after this long is counted as it stands (the policy
/// may omit the final stage; a watch ends within the API server's request timeout, at most an
/// hour by default).
pub const PENDING_MS: i64 = 2 * 3_600_000;

/// Turns the stages of calls into calls. A final stage (ResponseComplete, Panic) counts the
/// call at once; an earlier stage waits for it, so that a watch logged at ResponseStarted and
/// ResponseComplete counts once, with the final code. A call whose final stage never comes
/// (a policy that omits it) is counted when it is [`PENDING_MS`] old, or when the log is full.
/// Repeats of one stage are filtered before (the detector's seen keys).
#[derive(Debug, Default)]
pub struct CallLog {
    /// (cluster, audit id) → the latest non-final stage.
    pending: HashMap<(String, String), ApiCall>,
    /// Request time and key, for expiry in order.
    by_time: BTreeMap<(i64, String, String), ()>,
    /// (cluster, audit id) of calls counted from a non-final stage after expiry, so that a
    /// late final stage is not counted again (bounded like `pending`).
    counted_early: HashMap<(String, String), i64>,
}

impl CallLog {
    pub fn new() -> CallLog {
        CallLog::default()
    }

    /// Takes one event; returns the calls it completes (none, it, or older ones pushed out).
    pub fn observe(&mut self, call: ApiCall, out: &mut Vec<ApiCall>) {
        let key = (call.cluster_id.clone(), call.audit_id.clone());
        if call.final_stage {
            if let Some(earlier) = self.pending.remove(&key) {
                self.by_time
                    .remove(&(earlier.request_ms, key.0.clone(), key.1.clone()));
            }
            if self.counted_early.remove(&key).is_none() {
                out.push(call);
            }
            return;
        }
        if self.counted_early.contains_key(&key) {
            return;
        }
        if let Some(earlier) = self.pending.get(&key) {
            self.by_time
                .remove(&(earlier.request_ms, key.0.clone(), key.1.clone()));
        }
        self.by_time
            .insert((call.request_ms, key.0.clone(), key.1.clone()), ());
        self.pending.insert(key, call);
        while self.pending.len() > MAX_PENDING_CALLS {
            self.count_oldest(out);
        }
    }

    /// Counts the calls waiting since before `now_ms - PENDING_MS` as they stand.
    pub fn expire(&mut self, now_ms: i64, out: &mut Vec<ApiCall>) {
        while let Some((&(t, _, _), _)) = self.by_time.first_key_value() {
            if t >= now_ms - PENDING_MS {
                break;
            }
            self.count_oldest(out);
        }
        self.counted_early
            .retain(|_, t| *t >= now_ms - 2 * PENDING_MS);
    }

    /// Calls waiting for their final stage.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn count_oldest(&mut self, out: &mut Vec<ApiCall>) {
        let Some(((t, cluster, audit_id), ())) = self.by_time.pop_first() else {
            return;
        };
        let key = (cluster, audit_id);
        if let Some(call) = self.pending.remove(&key) {
            if self.counted_early.len() < MAX_PENDING_CALLS {
                self.counted_early.insert(key, t);
            }
            out.push(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLY: bool = false;
    const FINAL: bool = true;

    fn call(id: &str, final_stage: bool, ms: i64, code: Option<u16>) -> ApiCall {
        ApiCall {
            cluster_id: "c1".into(),
            audit_id: id.into(),
            final_stage,
            request_ms: ms,
            username: "u".into(),
            source_ip: None,
            user_agent: None,
            verb: "watch".into(),
            resource: "pods".into(),
            namespace: None,
            name: None,
            code,
        }
    }

    #[test]
    fn outcomes_by_status() {
        assert_eq!(Outcome::of(Some(201)), Outcome::Success);
        assert_eq!(
            Outcome::of(Some(101)),
            Outcome::Success,
            "an exec's upgrade"
        );
        assert_eq!(Outcome::of(Some(401)), Outcome::Unauthorized);
        assert_eq!(Outcome::of(Some(403)), Outcome::Forbidden);
        assert_eq!(Outcome::of(Some(404)), Outcome::Failed);
        assert_eq!(Outcome::of(None), Outcome::Failed);
        let mut c = Counts::one(Outcome::Forbidden);
        c.merge(&Counts::one(Outcome::Success));
        assert_eq!((c.total(), c.forbidden, c.success), (2, 1, 1));
    }

    #[test]
    fn a_call_logged_at_several_stages_counts_once_with_the_final_code() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        log.observe(call("w", EARLY, 10, None), &mut out);
        log.observe(call("w", EARLY, 10, Some(200)), &mut out);
        assert!(out.is_empty());
        assert_eq!(log.pending(), 1);
        log.observe(call("w", FINAL, 10, Some(500)), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome(), Outcome::Failed);
        assert_eq!(out[0].request_ms, 10);
        assert_eq!(log.pending(), 0);
        // A final stage alone counts at once.
        log.observe(call("g", FINAL, 20, Some(403)), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_call_whose_final_stage_never_comes_is_counted_once_later() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        log.observe(call("r", EARLY, 1_000, None), &mut out);
        log.expire(1_000 + PENDING_MS - 1, &mut out);
        assert!(out.is_empty());
        log.expire(1_001 + PENDING_MS, &mut out);
        assert_eq!(out.len(), 1);
        // Its final stage after all, later: not counted twice.
        log.observe(call("r", FINAL, 1_000, Some(200)), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn the_pending_log_is_bounded() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        for i in 0..MAX_PENDING_CALLS + 5 {
            log.observe(call(&format!("a{i}"), EARLY, i as i64, None), &mut out);
        }
        assert_eq!(log.pending(), MAX_PENDING_CALLS);
        assert_eq!(out.len(), 5, "the oldest counted as they stood");
        assert_eq!(out[0].audit_id, "a0");
    }
}
