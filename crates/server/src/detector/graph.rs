//! The investigation graph fed by detection: every event detected (after the seen keys
//! filtered replays) goes to its tenant's [`Recorder`] as a call, and what it says about pods
//! as pod changes, and every finding stored with the entities it names; the round writes what the recorders gathered in the transaction that
//! stores its findings and keys, so a batch counts once in the graph too.

use std::collections::HashMap;

use osprey_audit::event::{Event, Stage};
use osprey_graph::rbac::{RbacKind, RbacObject};
use osprey_graph::{ApiCall, Delta, PodChange, PodProperties, Properties, RbacChange, Recorder};
use osprey_store::{DetectionRound, EdgeRow, EntityRow, FindingRecord, GraphCounts, RbacRow};
use serde_json::Value;

/// The recorders of the tenants seen.
pub struct GraphFeed {
    recorders: HashMap<String, Recorder>,
    max_edges_per_hour: usize,
    /// The time of the last take (a new recorder's clock starts there).
    clock_ms: i64,
}

impl GraphFeed {
    pub fn new(max_edges_per_hour: usize) -> GraphFeed {
        GraphFeed {
            recorders: HashMap::new(),
            max_edges_per_hour,
            clock_ms: osprey_store::now_ms(),
        }
    }

    /// The recorder of a tenant.
    pub fn recorder(&mut self, tenant_id: &str) -> &mut Recorder {
        if !self.recorders.contains_key(tenant_id) {
            self.recorders.insert(
                tenant_id.to_string(),
                Recorder::new(self.max_edges_per_hour, self.clock_ms),
            );
        }
        self.recorders.get_mut(tenant_id).expect("inserted")
    }

    /// Links findings to the entities they name.
    pub fn findings<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a FindingRecord>,
        now_ms: i64,
    ) {
        for r in records {
            let f = &r.finding;
            let named = osprey_graph::named_by(f, r.cluster_id.as_deref());
            self.recorder(&r.tenant_id).finding(
                &f.id,
                f.first_seen_ms().unwrap_or(now_ms),
                f.last_seen_ms().unwrap_or(now_ms),
                f.count,
                named,
            );
        }
    }

    /// What the recorders gathered since the last time, per tenant.
    pub fn take(&mut self, now_ms: i64) -> Vec<(String, Delta)> {
        self.clock_ms = now_ms;
        let mut out = Vec::new();
        for (tenant, r) in &mut self.recorders {
            let delta = r.take(now_ms);
            if !delta.is_empty() {
                out.push((tenant.clone(), delta));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Feeds one event of `cluster_id` to a recorder.
pub fn observe(r: &mut Recorder, cluster_id: &str, e: &Event<'_>) {
    let Some(request_us) = e.request_us else {
        // Without a time the event has no hour to be counted in.
        return;
    };
    let request_ms = request_us.div_euclid(1000);
    let final_stage = !matches!(e.stage(), Stage::RequestReceived | Stage::ResponseStarted);
    let resource = if e.object_ref.resource.is_empty() {
        // A non-resource request: its path.
        let uri: &str = &e.request_uri;
        std::borrow::Cow::Borrowed(uri.split('?').next().unwrap_or(uri))
    } else {
        e.resource_path()
    };
    r.call(ApiCall {
        cluster_id: cluster_id.into(),
        audit_id: e.audit_id.as_ref().into(),
        final_stage,
        request_ms,
        username: e.user.username.as_ref().into(),
        source_ip: e.source_ip(),
        user_agent: e.user_agent.as_ref().into(),
        verb: e.verb.as_ref().into(),
        resource,
        namespace: e.object_ref.namespace.as_ref().into(),
        name: e.object_ref.name.as_ref().into(),
        code: e.code,
    });
    // Only a successful call's final stage carries the object it wrote.
    if !final_stage || !e.code.is_some_and(|c| (200..300).contains(&c)) {
        return;
    }
    if let Some((name, change)) = pod_change(e) {
        r.pod(
            cluster_id,
            &e.object_ref.namespace,
            &name,
            request_ms,
            change,
        );
    }
    if let Some(change) = rbac_change(e) {
        r.rbac(cluster_id, request_ms, change);
    }
}

/// What a successful write (the final stage of a 2xx call) to a role, a cluster role or a
/// binding says about it: its new state (the response's object; a create's or an update's
/// request object when the policy logged no response), or its deletion. A patch logged
/// without its response, and a `deletecollection`, say nothing the graph can use.
fn rbac_change(e: &Event<'_>) -> Option<RbacChange> {
    if e.object_ref.api_group != "rbac.authorization.k8s.io" || !e.object_ref.subresource.is_empty()
    {
        return None;
    }
    let kind = RbacKind::of_resource(&e.object_ref.resource)?;
    let namespace: &str = &e.object_ref.namespace;
    match e.verb.as_ref() {
        "create" | "update" | "patch" => {
            let from_response = e
                .response()
                .and_then(|o| RbacObject::in_namespace(Some(kind), o, namespace));
            let object = from_response.or_else(|| {
                (e.verb != "patch")
                    .then(|| e.request())
                    .flatten()
                    .and_then(|o| RbacObject::in_namespace(Some(kind), o, namespace))
            })?;
            (object.kind == kind).then_some(RbacChange::Put(object))
        }
        "delete" if !e.object_ref.name.is_empty() => Some(RbacChange::Deleted {
            kind,
            namespace: if matches!(kind, RbacKind::Role | RbacKind::RoleBinding) {
                namespace.to_string()
            } else {
                String::new()
            },
            name: e.object_ref.name.to_string(),
        }),
        _ => None,
    }
}

/// An RBAC change as a stored row at `at_ms`.
pub fn rbac_row(change: &RbacChange, at_ms: i64) -> RbacRow {
    match change {
        RbacChange::Put(o) => object_row(o, at_ms),
        RbacChange::Deleted {
            kind,
            namespace,
            name,
        } => RbacRow {
            kind: kind.as_str().to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            body: None,
            changed_ms: at_ms,
        },
    }
}

/// An RBAC object as a stored row at `at_ms`.
pub fn object_row(o: &RbacObject, at_ms: i64) -> RbacRow {
    RbacRow {
        kind: o.kind.as_str().to_string(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        body: serde_json::to_string(&o.body).ok(),
        changed_ms: at_ms,
    }
}

/// What a successful write (the final stage of a 2xx call) to a pod says about it:
/// created (its spec), bound to a node, or deleted.
fn pod_change(e: &Event<'_>) -> Option<(String, PodChange)> {
    if e.object_ref.resource != "pods" {
        return None;
    }
    let name_in = |v: Option<&Value>| {
        v.and_then(|v| v.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let named = Some(e.object_ref.name.to_string()).filter(|n| !n.is_empty());
    match (e.verb.as_ref(), e.object_ref.subresource.as_ref()) {
        ("create", "") => {
            let pod = e
                .response()
                .filter(|v| v.get("spec").is_some())
                .or(e.request())?;
            let name = named.or_else(|| name_in(Some(pod)))?;
            Some((name, PodChange::Spec(PodProperties::of(pod)?)))
        }
        ("create", "binding") => {
            let node = e
                .request()?
                .pointer("/target/name")
                .and_then(Value::as_str)?
                .to_string();
            Some((named?, PodChange::Bound { node }))
        }
        ("delete", "") => Some((named?, PodChange::Deleted)),
        _ => None,
    }
}

/// The graph rows linking findings made outside detection (a scan's) to what they name, to
/// write with them.
pub fn finding_links<'a>(
    records: impl IntoIterator<Item = &'a FindingRecord>,
    max_edges_per_hour: usize,
) -> Vec<(String, Delta)> {
    let now = osprey_store::now_ms();
    let mut feed = GraphFeed::new(max_edges_per_hour);
    feed.findings(records, now);
    feed.take(now)
}

/// The graph rows of an image's scan, to write with it: its findings linked to what they
/// name, and the image (`digest`, of `tenant_id`) linked to the packages of its inventory,
/// at `at_ms`.
pub fn scan_links<'a>(
    records: impl IntoIterator<Item = &'a FindingRecord>,
    tenant_id: &str,
    digest: &str,
    packages: &[osprey_model::Package],
    at_ms: i64,
    max_edges_per_hour: usize,
) -> Vec<(String, Delta)> {
    let mut feed = GraphFeed::new(max_edges_per_hour);
    feed.findings(records, at_ms);
    feed.recorder(tenant_id).inventory(digest, at_ms, packages);
    feed.take(at_ms)
}

/// Writes what the recorders gathered in the round's transaction. A pod's changed
/// properties are merged into those stored.
pub async fn write(
    round: &mut DetectionRound<'_>,
    deltas: Vec<(String, Delta)>,
) -> osprey_store::Result<()> {
    for (tenant, delta) in deltas {
        let ids: Vec<String> = delta
            .entities
            .iter()
            .filter(|s| matches!(s.properties, Some(Properties::Merge(_))))
            .map(|s| s.id.to_string())
            .collect();
        let mut stored: HashMap<String, Value> = if ids.is_empty() {
            HashMap::new()
        } else {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            round
                .graph_properties(&tenant, &refs)
                .await?
                .into_iter()
                .collect()
        };
        let entities: Vec<EntityRow> = delta
            .entities
            .into_iter()
            .map(|s| {
                let id = s.id.to_string();
                let properties = s
                    .properties
                    .map(|p| Value::Object(p.apply(stored.remove(&id))));
                EntityRow {
                    kind: s.id.kind().as_str().to_string(),
                    first_ms: s.first_ms,
                    last_ms: s.last_ms,
                    properties,
                    id,
                }
            })
            .collect();
        let edges: Vec<EdgeRow> = delta
            .edges
            .into_iter()
            .map(|(k, c)| EdgeRow {
                from_id: k.from.to_string(),
                relation: k.relation.as_str().to_string(),
                to_id: k.to,
                hour: k.hour.0,
                counts: GraphCounts {
                    success: count(c.success),
                    failed: count(c.failed),
                    unauthorized: count(c.unauthorized),
                    forbidden: count(c.forbidden),
                },
            })
            .collect();
        round.see_entities(&tenant, &entities).await?;
        round.add_edges(&tenant, &edges).await?;
        for (cluster, at_ms, change) in &delta.rbac {
            round
                .put_rbac(&tenant, cluster, &rbac_row(change, *at_ms))
                .await?;
        }
    }
    Ok(())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_engine_and_the_graph_name_bound_subjects_alike() {
        assert_eq!(
            osprey_audit::findings::BOUND_SUBJECTS,
            osprey_graph::named::BOUND_SUBJECTS
        );
    }
}
