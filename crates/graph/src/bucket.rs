//! Relationships counted in hourly buckets: each call becomes a few edges — who called what,
//! from which address and client, against which cluster, namespace and pod — each counted by
//! outcome in the hour of its request. A round of calls is aggregated in memory first, so the
//! store writes one row per distinct edge and hour, not one per call.

use std::collections::HashMap;

use crate::call::{ApiCall, Counts};
use crate::entity::{EntityId, is_name};

const HOUR_MS: i64 = 3_600_000;

/// An hour: hours since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hour(pub i64);

impl Hour {
    pub fn of_ms(ms: i64) -> Hour {
        Hour(ms.div_euclid(HOUR_MS))
    }

    pub fn start_ms(self) -> i64 {
        self.0.saturating_mul(HOUR_MS)
    }
}

/// What an edge says about its two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// Calls made by (a subject, an IP, a user agent) or aimed at (a cluster, a namespace, a
    /// pod) the entity; the other end is the call's `verb resource`.
    ApiCall,
    /// subject → ip: calls from that address.
    FromIp,
    /// subject → user-agent.
    UserAgent,
    /// ip → cluster: calls from that address to the cluster.
    Cluster,
    /// cluster → subject: calls by that subject.
    Caller,
    /// subject → pod.
    Created,
    Exec,
    Attach,
    PortForward,
    Deleted,
    /// pod → image (by digest), and cluster → image: counted once per pod spec seen.
    Image,
    /// pod → node it was bound to.
    Node,
    /// pod → the subject of its service account.
    ServiceAccount,
    /// finding → an entity it names.
    Names,
    /// image → a package installed in it: counted once per inventory taken (a scan).
    Package,
}

impl Relation {
    pub const ALL: [Relation; 15] = [
        Relation::ApiCall,
        Relation::FromIp,
        Relation::UserAgent,
        Relation::Cluster,
        Relation::Caller,
        Relation::Created,
        Relation::Exec,
        Relation::Attach,
        Relation::PortForward,
        Relation::Deleted,
        Relation::Image,
        Relation::Node,
        Relation::ServiceAccount,
        Relation::Names,
        Relation::Package,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::ApiCall => "api_call",
            Relation::FromIp => "from_ip",
            Relation::UserAgent => "user_agent",
            Relation::Cluster => "cluster",
            Relation::Caller => "caller",
            Relation::Created => "created",
            Relation::Exec => "exec",
            Relation::Attach => "attach",
            Relation::PortForward => "port_forward",
            Relation::Deleted => "deleted",
            Relation::Image => "image",
            Relation::Node => "node",
            Relation::ServiceAccount => "service_account",
            Relation::Names => "names",
            Relation::Package => "package",
        }
    }

    pub fn parse(s: &str) -> Option<Relation> {
        Relation::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the other end is an entity (for [`Relation::ApiCall`] it is `verb resource`).
    pub fn to_entity(self) -> bool {
        self != Relation::ApiCall
    }
}

impl serde::Serialize for Relation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The other end of the edges an entity made in an hour beyond
/// `--graph-max-edges-per-hour`: their counts are kept, summed, under it.
pub const OVERFLOW: &str = "*";

/// One edge in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub from: EntityId,
    pub relation: Relation,
    /// The other end: an entity id, or for [`Relation::ApiCall`] the call's `verb resource`.
    pub to: String,
    pub hour: Hour,
}

/// Edges of a round of calls, counted.
#[derive(Debug, Default)]
pub struct Buckets {
    edges: HashMap<EdgeKey, Counts>,
}

impl Buckets {
    pub fn new() -> Buckets {
        Buckets::default()
    }

    /// Counts an edge in an hour.
    pub fn add(&mut self, key: EdgeKey, counts: &Counts) {
        self.edges.entry(key).or_default().merge(counts);
    }

    /// Counts every edge of a call `counts` times (see [`crate::CallLog`] for what a call is).
    pub fn add_call(&mut self, call: &ApiCall<'_>, counts: &Counts) {
        let hour = Hour::of_ms(call.request_ms);
        for (from, relation, to) in edges_of(call) {
            self.add(
                EdgeKey {
                    from,
                    relation,
                    to,
                    hour,
                },
                counts,
            );
        }
    }

    /// Distinct edges and hours held.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The counted edges, in a stable order (the store writes them in it, so that concurrent
    /// writers lock rows in one order).
    pub fn drain(&mut self) -> Vec<(EdgeKey, Counts)> {
        let mut out: Vec<_> = self.edges.drain().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Longest username or user agent kept in an id (longer ones are cut at a character
/// boundary): an id must stay under [`crate::entity::MAX_ID_BYTES`] once encoded.
pub const MAX_FREE_TEXT: usize = 256;

/// `s` cut to at most [`MAX_FREE_TEXT`] bytes.
pub fn clip(s: &str) -> &str {
    if s.len() <= MAX_FREE_TEXT {
        return s;
    }
    let mut end = MAX_FREE_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The edges one call makes. Parts that cannot make an id (an empty username, a namespace
/// or pod name that is not a Kubernetes name) leave out the edges that need them.
pub fn edges_of(call: &ApiCall<'_>) -> Vec<(EntityId, Relation, String)> {
    let mut edges = Vec::with_capacity(10);
    if !is_name(&call.cluster_id) {
        return edges;
    }
    let api_call = format!("{} {}", call.verb, clip(&call.resource));
    let cluster = EntityId::cluster(&call.cluster_id);
    edges.push((cluster.clone(), Relation::ApiCall, api_call.clone()));
    let subject = (!call.username.is_empty())
        .then(|| EntityId::subject(&call.cluster_id, clip(&call.username)));
    if let Some(subject) = &subject {
        edges.push((subject.clone(), Relation::ApiCall, api_call.clone()));
        edges.push((cluster.clone(), Relation::Caller, subject.to_string()));
    }
    if let Some(ip) = call.source_ip {
        let ip = EntityId::ip(ip);
        if let Some(subject) = &subject {
            edges.push((subject.clone(), Relation::FromIp, ip.to_string()));
        }
        edges.push((ip.clone(), Relation::ApiCall, api_call.clone()));
        edges.push((ip, Relation::Cluster, cluster.to_string()));
    }
    if !call.user_agent.is_empty() {
        let agent = EntityId::user_agent(clip(&call.user_agent));
        if let Some(subject) = &subject {
            edges.push((subject.clone(), Relation::UserAgent, agent.to_string()));
        }
        edges.push((agent, Relation::ApiCall, api_call.clone()));
    }
    if is_name(&call.namespace) {
        edges.push((
            EntityId::namespace(&call.cluster_id, &call.namespace),
            Relation::ApiCall,
            api_call.clone(),
        ));
        if call.is_pod_call() && is_name(&call.name) {
            let pod = EntityId::pod(&call.cluster_id, &call.namespace, &call.name);
            let relation = match (call.verb.as_ref(), call.resource.as_ref()) {
                ("create", "pods") => Some(Relation::Created),
                ("delete", "pods") => Some(Relation::Deleted),
                (_, "pods/exec") => Some(Relation::Exec),
                (_, "pods/attach") => Some(Relation::Attach),
                (_, "pods/portforward") => Some(Relation::PortForward),
                _ => None,
            };
            if let (Some(r), Some(subject)) = (relation, subject) {
                edges.push((subject, r, pod.to_string()));
            }
            edges.push((pod, Relation::ApiCall, api_call));
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(ms: i64, code: u16) -> ApiCall<'static> {
        ApiCall {
            cluster_id: "c1".into(),
            audit_id: format!("a{ms}").into(),
            final_stage: true,
            request_ms: ms,
            username: "jane".into(),
            source_ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: "kubectl/v1.30".into(),
            verb: "create".into(),
            resource: "pods/exec".into(),
            namespace: "prod".into(),
            name: "web-1".into(),
            code: Some(code),
        }
    }

    #[test]
    fn a_call_makes_its_edges_counted_by_outcome_in_its_hour() {
        let mut b = Buckets::new();
        for c in [exec(10, 101), exec(20, 403), exec(HOUR_MS + 5, 101)] {
            b.add_call(&c, &Counts::one(c.outcome()));
        }
        let edges = b.drain();
        assert!(b.is_empty());
        let get = |from: &str, relation: Relation, to: &str, hour: i64| {
            edges
                .iter()
                .find(|(k, _)| {
                    k.from.to_string() == from
                        && k.relation == relation
                        && k.to == to
                        && k.hour == Hour(hour)
                })
                .map(|(_, c)| *c)
        };
        let first = get("subject/c1/jane", Relation::Exec, "pod/c1/prod/web-1", 0).unwrap();
        assert_eq!((first.success, first.forbidden, first.total()), (1, 1, 2));
        let second = get("subject/c1/jane", Relation::Exec, "pod/c1/prod/web-1", 1).unwrap();
        assert_eq!(second.total(), 1);
        for from in [
            "subject/c1/jane",
            "cluster/c1",
            "ip/203.0.113.9",
            "user-agent/kubectl%2Fv1.30",
            "namespace/c1/prod",
            "pod/c1/prod/web-1",
        ] {
            assert_eq!(
                get(from, Relation::ApiCall, "create pods/exec", 0).map(|c| c.total()),
                Some(2),
                "{from}"
            );
        }
        assert!(get("ip/203.0.113.9", Relation::Cluster, "cluster/c1", 0).is_some());
        assert!(get("subject/c1/jane", Relation::FromIp, "ip/203.0.113.9", 0).is_some());
        assert!(get("cluster/c1", Relation::Caller, "subject/c1/jane", 0).is_some());
        // 11 edges per hour, 2 hours.
        assert_eq!(edges.len(), 22);
        assert!(edges.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn hours_floor_before_the_epoch_too() {
        assert_eq!(Hour::of_ms(-1), Hour(-1));
        assert_eq!(Hour::of_ms(HOUR_MS), Hour(1));
        assert_eq!(Hour(3).start_ms(), 3 * HOUR_MS);
        for r in Relation::ALL {
            assert_eq!(Relation::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn parts_that_cannot_make_ids_leave_their_edges_out() {
        let mut c = exec(10, 101);
        c.namespace = "a/b".into();
        c.username = "".into();
        c.user_agent = "x".repeat(5000).into();
        let edges = edges_of(&c);
        let from: Vec<String> = edges.iter().map(|e| e.0.to_string()).collect();
        assert_eq!(
            from,
            [
                "cluster/c1".to_string(),
                "ip/203.0.113.9".into(),
                "ip/203.0.113.9".into(),
                format!("user-agent/{}", "x".repeat(MAX_FREE_TEXT)),
            ]
        );
        assert_eq!(clip("ééé"), "ééé");
        assert_eq!(clip(&"é".repeat(200)).len(), MAX_FREE_TEXT);
    }
}
