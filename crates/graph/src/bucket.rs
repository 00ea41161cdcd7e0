//! Relationships counted in hourly buckets: each call becomes a few edges — who called what,
//! from which address and client, against which cluster, namespace and pod — each counted by
//! outcome in the hour of its request. A round of calls is aggregated in memory first, so the
//! store writes one row per distinct edge and hour, not one per call.

use std::collections::HashMap;

use crate::call::{ApiCall, Counts};
use crate::entity::EntityId;

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
    /// subject → pod.
    Created,
    Exec,
    Attach,
    PortForward,
    Deleted,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::ApiCall => "api_call",
            Relation::FromIp => "from_ip",
            Relation::UserAgent => "user_agent",
            Relation::Cluster => "cluster",
            Relation::Created => "created",
            Relation::Exec => "exec",
            Relation::Attach => "attach",
            Relation::PortForward => "port_forward",
            Relation::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Relation> {
        [
            Relation::ApiCall,
            Relation::FromIp,
            Relation::UserAgent,
            Relation::Cluster,
            Relation::Created,
            Relation::Exec,
            Relation::Attach,
            Relation::PortForward,
            Relation::Deleted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

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

    /// Counts a call (once per call: see [`crate::CallLog`]).
    pub fn add_call(&mut self, call: &ApiCall) {
        let hour = Hour::of_ms(call.request_ms);
        let counts = Counts::one(call.outcome());
        let api_call = format!("{} {}", call.verb, call.resource);
        for (from, relation, to) in edges_of(call, &api_call) {
            self.edges
                .entry(EdgeKey {
                    from,
                    relation,
                    to,
                    hour,
                })
                .or_default()
                .merge(&counts);
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

/// The edges one call makes.
fn edges_of(call: &ApiCall, api_call: &str) -> Vec<(EntityId, Relation, String)> {
    let cluster = EntityId::cluster(&call.cluster_id);
    let subject = EntityId::subject(&call.cluster_id, &call.username);
    let mut edges = vec![
        (subject.clone(), Relation::ApiCall, api_call.to_string()),
        (cluster.clone(), Relation::ApiCall, api_call.to_string()),
    ];
    if let Some(ip) = call.source_ip {
        let ip = EntityId::ip(ip);
        edges.push((subject.clone(), Relation::FromIp, ip.to_string()));
        edges.push((ip.clone(), Relation::ApiCall, api_call.to_string()));
        edges.push((ip, Relation::Cluster, cluster.to_string()));
    }
    if let Some(agent) = call.user_agent.as_deref().filter(|a| !a.is_empty()) {
        let agent = EntityId::user_agent(agent);
        edges.push((subject.clone(), Relation::UserAgent, agent.to_string()));
        edges.push((agent, Relation::ApiCall, api_call.to_string()));
    }
    if let Some(ns) = call.namespace.as_deref().filter(|n| !n.is_empty()) {
        edges.push((
            EntityId::namespace(&call.cluster_id, ns),
            Relation::ApiCall,
            api_call.to_string(),
        ));
        let pod_call = call.resource == "pods" || call.resource.starts_with("pods/");
        if let (true, Some(name)) = (pod_call, call.name.as_deref().filter(|n| !n.is_empty())) {
            let pod = EntityId::pod(&call.cluster_id, ns, name);
            edges.push((pod.clone(), Relation::ApiCall, api_call.to_string()));
            let relation = match (call.verb.as_str(), call.resource.as_str()) {
                ("create", "pods") => Some(Relation::Created),
                ("delete", "pods") => Some(Relation::Deleted),
                (_, "pods/exec") => Some(Relation::Exec),
                (_, "pods/attach") => Some(Relation::Attach),
                (_, "pods/portforward") => Some(Relation::PortForward),
                _ => None,
            };
            if let Some(r) = relation {
                edges.push((subject, r, pod.to_string()));
            }
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(ms: i64, code: u16) -> ApiCall {
        ApiCall {
            cluster_id: "c1".into(),
            audit_id: format!("a{ms}"),
            final_stage: true,
            request_ms: ms,
            username: "jane".into(),
            source_ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: Some("kubectl/v1.30".into()),
            verb: "create".into(),
            resource: "pods/exec".into(),
            namespace: Some("prod".into()),
            name: Some("web-1".into()),
            code: Some(code),
        }
    }

    #[test]
    fn a_call_makes_its_edges_counted_by_outcome_in_its_hour() {
        let mut b = Buckets::new();
        b.add_call(&exec(10, 101));
        b.add_call(&exec(20, 403));
        b.add_call(&exec(HOUR_MS + 5, 101));
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
        // 10 edges per hour, 2 hours.
        assert_eq!(edges.len(), 20);
        assert!(edges.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn hours_floor_before_the_epoch_too() {
        assert_eq!(Hour::of_ms(-1), Hour(-1));
        assert_eq!(Hour::of_ms(HOUR_MS), Hour(1));
        assert_eq!(Hour(3).start_ms(), 3 * HOUR_MS);
        assert_eq!(Relation::parse("port_forward"), Some(Relation::PortForward));
    }
}
