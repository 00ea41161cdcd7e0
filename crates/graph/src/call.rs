//! One audited API call as the graph sees it, its outcome class, and [`CallLog`], which makes
//! a call out of the stages an audit policy logs it at: a call is one audit id, counted once
//! with its final stage's response code, at its request time.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One audit event of a call, with what the graph needs of it. Strings borrow from the event
/// while it is read; a call kept waiting for its final stage owns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall<'a> {
    pub cluster_id: Cow<'a, str>,
    pub audit_id: Cow<'a, str>,
    /// Logged at a final stage (ResponseComplete, Panic): nothing more comes for the call.
    /// The audit engine's `Stage` says which; the graph needs only this.
    pub final_stage: bool,
    /// `requestReceivedTimestamp`, in milliseconds since the epoch.
    pub request_ms: i64,
    pub username: Cow<'a, str>,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Cow<'a, str>,
    pub verb: Cow<'a, str>,
    /// The resource with its subresource (`pods/exec`), or the non-resource path.
    pub resource: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub code: Option<u16>,
}

impl ApiCall<'_> {
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.code)
    }

    /// Whether the call is about a pod (the pod itself or one of its subresources).
    pub fn is_pod_call(&self) -> bool {
        self.resource == "pods" || self.resource.starts_with("pods/")
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> ApiCall<'static> {
        fn o(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        ApiCall {
            cluster_id: o(self.cluster_id),
            audit_id: o(self.audit_id),
            final_stage: self.final_stage,
            request_ms: self.request_ms,
            username: o(self.username),
            source_ip: self.source_ip,
            user_agent: o(self.user_agent),
            verb: o(self.verb),
            resource: o(self.resource),
            namespace: o(self.namespace),
            name: o(self.name),
            code: self.code,
        }
    }
}

/// Calls logged at a non-final stage whose final stage has not come yet, at most this many
/// (beyond it, the oldest is counted as it stands).
pub const MAX_PENDING_CALLS: usize = 100_000;
/// A call whose final stage has not come this long after its first stage was read is counted
/// as it stands (the policy may omit the final stage; a watch ends within the API server's
/// request timeout, at most an hour by default).
pub const PENDING_MS: i64 = 2 * 3_600_000;

/// Turns the stages of calls into calls. A final stage (ResponseComplete, Panic) counts the
/// call at once; an earlier stage waits for it, so that a watch logged at ResponseStarted and
/// ResponseComplete counts once, with the final code. A call whose final stage never comes
/// (a policy that omits it) is counted [`PENDING_MS`] after its first stage was read (by the
/// reader's clock, not the events': a log read long after it was written, or out of order,
/// still pairs its stages), or when the log is full. Repeats of one stage are filtered before
/// (the detector's seen keys).
#[derive(Debug, Default)]
pub struct CallLog {
    /// (cluster, audit id) → the latest non-final stage.
    pending: HashMap<(String, String), ApiCall<'static>>,
    /// When the call was first read, and its key, for expiry in order.
    by_time: BTreeSet<(i64, String, String)>,
    /// Key → when its first stage was read.
    read_at: HashMap<(String, String), i64>,
    /// (cluster, audit id) of calls counted from a non-final stage after expiry, so that a
    /// late final stage is not counted again (bounded like `pending`).
    counted_early: HashMap<(String, String), i64>,
}

impl CallLog {
    pub fn new() -> CallLog {
        CallLog::default()
    }

    /// Takes one event read at `read_ms`; calls `complete` with the calls it completes (none,
    /// it, or older ones pushed out). A final stage with nothing waiting, the common case, is
    /// handed over as it is, borrowed.
    pub fn observe<'a>(
        &mut self,
        call: ApiCall<'a>,
        read_ms: i64,
        complete: &mut impl FnMut(ApiCall<'a>),
    ) {
        if call.final_stage {
            if self.pending.is_empty() && self.counted_early.is_empty() {
                complete(call);
                return;
            }
            let key = (call.cluster_id.to_string(), call.audit_id.to_string());
            if self.pending.remove(&key).is_some()
                && let Some(at) = self.read_at.remove(&key)
            {
                self.by_time.remove(&(at, key.0.clone(), key.1.clone()));
            }
            if self.counted_early.remove(&key).is_none() {
                complete(call);
            }
            return;
        }
        let key = (call.cluster_id.to_string(), call.audit_id.to_string());
        if self.counted_early.contains_key(&key) {
            return;
        }
        // A later non-final stage replaces the earlier one; the call waits from its first.
        let at = *self.read_at.entry(key.clone()).or_insert(read_ms);
        self.by_time.insert((at, key.0.clone(), key.1.clone()));
        self.pending.insert(key, call.into_owned());
        while self.pending.len() > MAX_PENDING_CALLS {
            self.count_oldest(&mut |c| complete(c));
        }
    }

    /// Counts the calls read before `now_ms - PENDING_MS` as they stand.
    pub fn expire(&mut self, now_ms: i64, complete: &mut impl FnMut(ApiCall<'static>)) {
        while let Some(&(t, _, _)) = self.by_time.first() {
            if t >= now_ms - PENDING_MS {
                break;
            }
            self.count_oldest(complete);
        }
        self.counted_early
            .retain(|_, t| *t >= now_ms - 2 * PENDING_MS);
    }

    /// Calls waiting for their final stage.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn count_oldest(&mut self, complete: &mut impl FnMut(ApiCall<'static>)) {
        let Some((t, cluster, audit_id)) = self.by_time.pop_first() else {
            return;
        };
        let key = (cluster, audit_id);
        self.read_at.remove(&key);
        if let Some(call) = self.pending.remove(&key) {
            if self.counted_early.len() < MAX_PENDING_CALLS {
                self.counted_early.insert(key, t);
            }
            complete(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLY: bool = false;
    const FINAL: bool = true;

    fn call(id: &str, final_stage: bool, ms: i64, code: Option<u16>) -> ApiCall<'static> {
        ApiCall {
            cluster_id: "c1".into(),
            audit_id: id.to_string().into(),
            final_stage,
            request_ms: ms,
            username: "u".into(),
            source_ip: None,
            user_agent: "".into(),
            verb: "watch".into(),
            resource: "pods".into(),
            namespace: "".into(),
            name: "".into(),
            code,
        }
    }

    /// Observes into a list, read at the call's request time.
    fn observe(log: &mut CallLog, c: ApiCall<'static>, out: &mut Vec<ApiCall<'static>>) {
        let at = c.request_ms;
        log.observe(c, at, &mut |c| out.push(c));
    }

    fn expire(log: &mut CallLog, now: i64, out: &mut Vec<ApiCall<'static>>) {
        log.expire(now, &mut |c| out.push(c));
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
        observe(&mut log, call("w", EARLY, 10, None), &mut out);
        observe(&mut log, call("w", EARLY, 10, Some(200)), &mut out);
        assert!(out.is_empty());
        assert_eq!(log.pending(), 1);
        observe(&mut log, call("w", FINAL, 10, Some(500)), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome(), Outcome::Failed);
        assert_eq!(out[0].request_ms, 10);
        assert_eq!(log.pending(), 0);
        // A final stage alone counts at once.
        observe(&mut log, call("g", FINAL, 20, Some(403)), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_call_whose_final_stage_never_comes_is_counted_once_later() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        observe(&mut log, call("r", EARLY, 1_000, None), &mut out);
        expire(&mut log, 1_000 + PENDING_MS - 1, &mut out);
        assert!(out.is_empty());
        expire(&mut log, 1_001 + PENDING_MS, &mut out);
        assert_eq!(out.len(), 1);
        // Its final stage after all, later: not counted twice.
        observe(&mut log, call("r", FINAL, 1_000, Some(200)), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn an_old_log_read_now_still_pairs_its_stages() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        let now = 10 * PENDING_MS;
        log.observe(call("w", EARLY, 0, None), now, &mut |c| out.push(c));
        expire(&mut log, now + 1, &mut out);
        assert!(
            out.is_empty(),
            "read a moment ago: it waits for its final stage"
        );
        log.observe(call("w", FINAL, 0, Some(403)), now + 2, &mut |c| {
            out.push(c)
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome(), Outcome::Forbidden);
    }

    #[test]
    fn the_pending_log_is_bounded() {
        let mut log = CallLog::new();
        let mut out = Vec::new();
        for i in 0..MAX_PENDING_CALLS + 5 {
            observe(
                &mut log,
                call(&format!("a{i}"), EARLY, i as i64, None),
                &mut out,
            );
        }
        assert_eq!(log.pending(), MAX_PENDING_CALLS);
        assert_eq!(out.len(), 5, "the oldest counted as they stood");
        assert_eq!(out[0].audit_id, "a0");
    }
}
