//! [`Recorder`]: what the graph learns from a tenant's audit events, gathered between two
//! writes. Events become calls ([`CallLog`]); calls alike in everything the graph keeps
//! (cluster, subject, address, client, verb, resource, namespace, pod and hour) are counted
//! together as one *shape*, so an event costs a hash and a lookup, and the edges are made
//! once per shape when the round is taken ([`Recorder::take`]). Pod objects seen in events
//! give pods their properties. The edge limit ([`EdgeBudget`]) outlives rounds.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Map, Value};

use crate::bucket::{Buckets, EdgeKey, Hour, OVERFLOW, Relation, edges_of};
use crate::budget::{Admit, EdgeBudget};
use crate::call::{ApiCall, CallLog, Counts};
use crate::entity::{EntityId, is_name};
use crate::pod::PodProperties;
use crate::rbac::{RbacKind, RbacObject};

/// Calls alike in everything the graph keeps, counted together.
struct Shape {
    call: ApiCall<'static>,
    counts: Counts,
    first_ms: i64,
    last_ms: i64,
}

/// What an event says about a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum PodChange {
    /// Created or replaced with this spec.
    Spec(PodProperties),
    /// Bound to a node (`pods/binding`).
    Bound { node: String },
    /// Deleted.
    Deleted,
    /// Listed running by a cluster snapshot (taken at the change's time), created at
    /// `created_ms` when the object says.
    Listed {
        properties: PodProperties,
        created_ms: Option<i64>,
    },
}

/// What an event or a snapshot says about an RBAC object of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum RbacChange {
    /// Created or replaced with this.
    Put(RbacObject),
    /// Deleted.
    Deleted {
        kind: RbacKind,
        namespace: String,
        name: String,
    },
}

/// Properties of an entity seen in a round.
#[derive(Debug, Clone, PartialEq)]
pub enum Properties {
    /// Replace what is stored (a pod created again).
    Replace(Map<String, Value>),
    /// Set these keys, keeping the others (a pod bound, deleted).
    Merge(Map<String, Value>),
}

impl Properties {
    /// `self` followed by `later`.
    fn then(self, later: Properties) -> Properties {
        match (self, later) {
            (_, Properties::Replace(m)) => Properties::Replace(m),
            (Properties::Replace(mut m), Properties::Merge(n)) => {
                m.extend(n);
                Properties::Replace(m)
            }
            (Properties::Merge(mut m), Properties::Merge(n)) => {
                m.extend(n);
                Properties::Merge(m)
            }
        }
    }

    /// Applies a merge to stored properties (a replacement ignores them).
    pub fn apply(self, stored: Option<Value>) -> Map<String, Value> {
        match self {
            Properties::Replace(m) => m,
            Properties::Merge(m) => {
                let mut base = match stored {
                    Some(Value::Object(o)) => o,
                    _ => Map::new(),
                };
                base.extend(m);
                base
            }
        }
    }
}

/// An entity seen in a round: when, and its properties when the round learned them.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub id: EntityId,
    pub first_ms: i64,
    pub last_ms: i64,
    pub properties: Option<Properties>,
}

/// What a round adds to the graph.
#[derive(Debug, Default)]
pub struct Delta {
    /// Edge counts to add, in a stable order.
    pub edges: Vec<(EdgeKey, Counts)>,
    /// Entities seen, in id order.
    pub entities: Vec<Sighting>,
    /// RBAC changes per cluster, at their time, in the order seen.
    pub rbac: Vec<(String, i64, RbacChange)>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.entities.is_empty() && self.rbac.is_empty()
    }
}

/// A finding stored in a round, with what it names.
struct FindingSeen {
    id: EntityId,
    first_ms: i64,
    last_ms: i64,
    occurrences: u64,
    named: Vec<EntityId>,
}

/// An image's inventory taken in a round: its packages with their properties.
struct InventorySeen {
    image: EntityId,
    at_ms: i64,
    packages: Vec<(EntityId, Map<String, Value>)>,
}

/// Gathers a tenant's graph from its events.
pub struct Recorder {
    calls: CallLog,
    shapes: HashMap<u128, Shape>,
    pods: Vec<(EntityId, i64, PodChange)>,
    rbac: Vec<(String, i64, RbacChange)>,
    findings: Vec<FindingSeen>,
    inventories: Vec<InventorySeen>,
    budget: EdgeBudget,
    /// The time of the last [`Recorder::take`]: calls read since are read then (a round's
    /// precision is enough for a two-hour wait).
    clock_ms: i64,
}

impl Recorder {
    /// A recorder whose clock starts at `now_ms`.
    pub fn new(max_edges_per_hour: usize, now_ms: i64) -> Recorder {
        Recorder {
            calls: CallLog::new(),
            shapes: HashMap::new(),
            pods: Vec::new(),
            rbac: Vec::new(),
            findings: Vec::new(),
            inventories: Vec::new(),
            budget: EdgeBudget::new(max_edges_per_hour),
            clock_ms: now_ms,
        }
    }

    /// Takes one audit event (one stage of a call).
    pub fn call(&mut self, call: ApiCall<'_>) {
        let Recorder {
            calls,
            shapes,
            clock_ms,
            ..
        } = self;
        calls.observe(call, *clock_ms, &mut |c| count(shapes, c));
    }

    /// Takes what an event says about a pod, at `at_ms`.
    pub fn pod(
        &mut self,
        cluster_id: &str,
        namespace: &str,
        name: &str,
        at_ms: i64,
        change: PodChange,
    ) {
        if [cluster_id, namespace, name].iter().all(|s| is_name(s)) {
            self.pods
                .push((EntityId::pod(cluster_id, namespace, name), at_ms, change));
        }
    }

    /// Takes what an event or a snapshot says about an RBAC object of a cluster, at `at_ms`.
    pub fn rbac(&mut self, cluster_id: &str, at_ms: i64, change: RbacChange) {
        if is_name(cluster_id) {
            self.rbac.push((cluster_id.to_string(), at_ms, change));
        }
    }

    /// Takes a finding stored (new or seen again) with `occurrences` new occurrences
    /// between `first_ms` and `last_ms`, and the entities it names ([`crate::named_by`]).
    pub fn finding(
        &mut self,
        finding_id: &str,
        first_ms: i64,
        last_ms: i64,
        occurrences: u64,
        named: Vec<EntityId>,
    ) {
        if let Ok(id) = EntityId::parse_key(crate::EntityType::Finding, finding_id) {
            self.findings.push(FindingSeen {
                id,
                first_ms,
                last_ms,
                occurrences: occurrences.max(1),
                named,
            });
        }
    }

    /// Takes the inventory of the image `digest` taken at `at_ms` (a scan's, an SBOM's): an
    /// edge to each package, by package URL, and the package's name, version and type as its
    /// properties. A package without a package URL, or with one too long for an id, is left
    /// out; one listed at several places counts once.
    pub fn inventory(&mut self, digest: &str, at_ms: i64, packages: &[osprey_model::Package]) {
        let Some(image) = image_id(digest) else {
            return;
        };
        let mut seen = std::collections::HashSet::new();
        let packages = packages
            .iter()
            .filter_map(|p| {
                let id = EntityId::package(&p.purl)?;
                seen.insert(id.clone()).then(|| (id, package_properties(p)))
            })
            .collect();
        self.inventories.push(InventorySeen {
            image,
            at_ms,
            packages,
        });
    }

    /// Calls waiting for a final stage.
    pub fn pending_calls(&self) -> usize {
        self.calls.pending()
    }

    /// The round's edges and entities, at `now_ms`; the next round starts empty (calls
    /// waiting for their final stage wait on, up to [`crate::call::PENDING_MS`]).
    pub fn take(&mut self, now_ms: i64) -> Delta {
        self.clock_ms = self.clock_ms.max(now_ms);
        let Recorder {
            calls,
            shapes,
            clock_ms,
            ..
        } = self;
        calls.expire(*clock_ms, &mut |c| count(shapes, c));
        let mut buckets = Buckets::new();
        let mut seen: HashMap<EntityId, Sighting> = HashMap::new();
        let shapes: Vec<Shape> = self.shapes.drain().map(|(_, s)| s).collect();
        for shape in shapes {
            let hour = Hour::of_ms(shape.call.request_ms);
            for (from, relation, to) in edges_of(&shape.call) {
                see(&mut seen, &from, shape.first_ms, shape.last_ms, None);
                self.count_edge(&mut buckets, from, relation, to, hour, &shape.counts);
            }
        }
        let pods = std::mem::take(&mut self.pods);
        for (pod, at_ms, change) in pods {
            self.pod_change(&mut buckets, &mut seen, pod, at_ms, change);
        }
        for f in std::mem::take(&mut self.findings) {
            see(&mut seen, &f.id, f.first_ms, f.last_ms, None);
            let mut counts = Counts::default();
            counts.add(crate::call::Outcome::Success, f.occurrences);
            let hour = Hour::of_ms(f.last_ms);
            for named in f.named {
                see(&mut seen, &named, f.last_ms, f.last_ms, None);
                self.count_edge(
                    &mut buckets,
                    f.id.clone(),
                    Relation::Names,
                    named.to_string(),
                    hour,
                    &counts,
                );
            }
        }
        for inv in std::mem::take(&mut self.inventories) {
            self.inventory_edges(&mut buckets, &mut seen, inv);
        }
        let mut entities: Vec<Sighting> = seen.into_values().collect();
        entities.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Delta {
            edges: buckets.drain(),
            entities,
            rbac: std::mem::take(&mut self.rbac),
        }
    }

    fn count_edge(
        &mut self,
        buckets: &mut Buckets,
        from: EntityId,
        relation: Relation,
        to: String,
        hour: Hour,
        counts: &Counts,
    ) {
        let mut key = EdgeKey {
            from,
            relation,
            to,
            hour,
        };
        if self.budget.admit(&key) == Admit::Overflow {
            key.to = OVERFLOW.to_string();
        }
        buckets.add(key, counts);
    }

    /// An image's edges to its packages, once each in the hour of the inventory.
    fn inventory_edges(
        &mut self,
        buckets: &mut Buckets,
        seen: &mut HashMap<EntityId, Sighting>,
        inv: InventorySeen,
    ) {
        let hour = Hour::of_ms(inv.at_ms);
        let once = Counts::one(crate::call::Outcome::Success);
        see(seen, &inv.image, inv.at_ms, inv.at_ms, None);
        for (package, properties) in inv.packages {
            let properties = Some(Properties::Replace(properties));
            see(seen, &package, inv.at_ms, inv.at_ms, properties);
            self.count_edge(
                buckets,
                inv.image.clone(),
                Relation::Package,
                package.to_string(),
                hour,
                &once,
            );
        }
    }

    /// A pod's properties, and the edges its spec or binding makes.
    fn pod_change(
        &mut self,
        buckets: &mut Buckets,
        seen: &mut HashMap<EntityId, Sighting>,
        pod: EntityId,
        at_ms: i64,
        change: PodChange,
    ) {
        let hour = Hour::of_ms(at_ms);
        let once = Counts::one(crate::call::Outcome::Success);
        let cluster = pod.cluster_id().unwrap_or_default().to_string();
        let namespace = pod.key().split('/').nth(1).unwrap_or_default().to_string();
        let mut targets: Vec<(Relation, EntityId)> = Vec::new();
        let first_ms = match &change {
            PodChange::Listed {
                created_ms: Some(created),
                ..
            } => (*created).min(at_ms),
            _ => at_ms,
        };
        let properties = match change {
            PodChange::Spec(p) | PodChange::Listed { properties: p, .. } => {
                let digests = p.images.iter().filter_map(|i| digest_of(i));
                for digest in digests.chain(p.image_digests.iter().map(String::as_str)) {
                    let image = EntityId::image(digest);
                    if !targets.contains(&(Relation::Image, image.clone())) {
                        targets.push((Relation::Image, image));
                    }
                }
                if let Some(node) = p.node.as_deref().filter(|n| is_name(n)) {
                    targets.push((Relation::Node, EntityId::node(&cluster, node)));
                }
                if let Some(sa) = &p.service_account {
                    let username = format!("system:serviceaccount:{namespace}:{sa}");
                    targets.push((
                        Relation::ServiceAccount,
                        EntityId::subject(&cluster, &username),
                    ));
                }
                let mut m = p.to_json();
                m.insert("created".into(), Value::String(rfc3339(first_ms)));
                Properties::Replace(m)
            }
            PodChange::Bound { node } => {
                if is_name(&node) {
                    targets.push((Relation::Node, EntityId::node(&cluster, &node)));
                }
                let mut m = Map::new();
                m.insert("node".into(), Value::String(node));
                Properties::Merge(m)
            }
            PodChange::Deleted => {
                let mut m = Map::new();
                m.insert("deleted".into(), Value::String(rfc3339(at_ms)));
                Properties::Merge(m)
            }
        };
        see(seen, &pod, first_ms, at_ms, Some(properties));
        let cluster = EntityId::cluster(&cluster);
        for (relation, target) in targets {
            see(seen, &target, at_ms, at_ms, None);
            if relation == Relation::Image {
                // The cluster's images, for what is new in it.
                see(seen, &cluster, at_ms, at_ms, None);
                self.count_edge(
                    buckets,
                    cluster.clone(),
                    relation,
                    target.to_string(),
                    hour,
                    &once,
                );
            }
            self.count_edge(
                buckets,
                pod.clone(),
                relation,
                target.to_string(),
                hour,
                &once,
            );
        }
    }
}

/// Counts a completed call under its shape.
fn count(shapes: &mut HashMap<u128, Shape>, call: ApiCall<'_>) {
    let outcome = call.outcome();
    let pod_name: &str = if call.is_pod_call() { &call.name } else { "" };
    let identity = (
        &*call.cluster_id,
        &*call.username,
        call.source_ip,
        &*call.user_agent,
        &*call.verb,
        &*call.resource,
        &*call.namespace,
        pod_name,
        Hour::of_ms(call.request_ms),
    );
    let key = crate::budget::hash128(&identity);
    match shapes.entry(key) {
        Entry::Occupied(mut o) => {
            let s = o.get_mut();
            s.counts.add(outcome, 1);
            s.first_ms = s.first_ms.min(call.request_ms);
            s.last_ms = s.last_ms.max(call.request_ms);
        }
        Entry::Vacant(v) => {
            let mut call = call.into_owned();
            // What the shape does not keep is dropped, so its edges use only what it keeps.
            call.audit_id = "".into();
            if !call.is_pod_call() {
                call.name = "".into();
            }
            v.insert(Shape {
                first_ms: call.request_ms,
                last_ms: call.request_ms,
                counts: Counts::one(outcome),
                call,
            });
        }
    }
}

fn see(
    seen: &mut HashMap<EntityId, Sighting>,
    id: &EntityId,
    first_ms: i64,
    last_ms: i64,
    properties: Option<Properties>,
) {
    match seen.get_mut(id) {
        Some(s) => {
            s.first_ms = s.first_ms.min(first_ms);
            s.last_ms = s.last_ms.max(last_ms);
            if let Some(p) = properties {
                s.properties = Some(match s.properties.take() {
                    Some(before) => before.then(p),
                    None => p,
                });
            }
        }
        None => {
            seen.insert(
                id.clone(),
                Sighting {
                    id: id.clone(),
                    first_ms,
                    last_ms,
                    properties,
                },
            );
        }
    }
}

/// The digest an image reference pins (`…@sha256:<64 hex>`).
pub fn digest_of(image: &str) -> Option<&str> {
    let (_, digest) = image.rsplit_once('@')?;
    image_id(digest).map(|_| digest)
}

/// The image of a digest (`sha256:` and 64 hex digits).
fn image_id(digest: &str) -> Option<EntityId> {
    EntityId::parse_key(crate::EntityType::Image, digest).ok()
}

/// What a package entity shows: name, version, type, package URL, and the source package
/// and licences when known.
fn package_properties(p: &osprey_model::Package) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(p.name.clone()));
    m.insert("version".into(), Value::String(p.version.clone()));
    m.insert("type".into(), Value::String(p.kind.as_str().into()));
    m.insert("purl".into(), Value::String(p.purl.clone()));
    if let Some(source) = &p.source_name {
        m.insert("source_name".into(), Value::String(source.clone()));
    }
    if !p.licenses.is_empty() {
        m.insert(
            "licenses".into(),
            Value::Array(p.licenses.iter().cloned().map(Value::String).collect()),
        );
    }
    m
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn call(id: &str, user: &str, ms: i64, code: u16) -> ApiCall<'static> {
        ApiCall {
            cluster_id: "c1".into(),
            audit_id: id.to_string().into(),
            final_stage: true,
            request_ms: ms,
            username: user.to_string().into(),
            source_ip: Some("198.51.100.7".parse().unwrap()),
            user_agent: "kubectl/v1.30".into(),
            verb: "get".into(),
            resource: "secrets".into(),
            namespace: "prod".into(),
            name: "db".into(),
            code: Some(code),
        }
    }

    fn edge<'d>(
        d: &'d Delta,
        from: &str,
        relation: Relation,
        to: &str,
    ) -> Vec<(&'d EdgeKey, Counts)> {
        d.edges
            .iter()
            .filter(|(k, _)| k.from.to_string() == from && k.relation == relation && k.to == to)
            .map(|(k, c)| (k, *c))
            .collect()
    }

    #[test]
    fn calls_alike_count_together_per_hour_and_entities_span_them() {
        let mut r = Recorder::new(100, 0);
        r.call(call("a", "jane", 10, 200));
        r.call(call("b", "jane", 20, 403));
        r.call(call("c", "jane", HOUR + 1, 200));
        r.call(call("d", "bob", 30, 200));
        let d = r.take(0);
        let jane = edge(&d, "subject/c1/jane", Relation::ApiCall, "get secrets");
        assert_eq!(jane.len(), 2, "two hours");
        assert_eq!((jane[0].1.success, jane[0].1.forbidden), (1, 1));
        assert_eq!(jane[1].1.total(), 1);
        let ns = edge(&d, "namespace/c1/prod", Relation::ApiCall, "get secrets");
        assert_eq!(ns[0].1.total(), 3, "jane and bob in hour 0");
        let ip = d
            .entities
            .iter()
            .find(|s| s.id.to_string() == "ip/198.51.100.7")
            .unwrap();
        assert_eq!((ip.first_ms, ip.last_ms), (10, HOUR + 1));
        // No pod edges: the call is not about a pod.
        assert!(
            d.entities
                .iter()
                .all(|s| s.id.kind() != crate::EntityType::Pod)
        );
        assert!(r.take(0).is_empty(), "a round starts empty");
    }

    #[test]
    fn an_entity_past_its_edge_limit_keeps_only_counts() {
        // The scanner's address and client are two of its 5 edges.
        let mut r = Recorder::new(5, 0);
        for i in 0..10 {
            let mut c = call(&format!("s{i}"), "scanner", 10, 404);
            c.resource = format!("/probe/{i}").into();
            c.namespace = "".into();
            r.call(c);
        }
        let d = r.take(0);
        let scanner: Vec<_> = d
            .edges
            .iter()
            .filter(|(k, _)| {
                k.from.to_string() == "subject/c1/scanner" && k.relation == Relation::ApiCall
            })
            .collect();
        assert_eq!(scanner.len(), 4, "3 edges and the overflow");
        let overflow = edge(&d, "subject/c1/scanner", Relation::ApiCall, OVERFLOW);
        assert_eq!(overflow[0].1.failed, 7);
        let total: u64 = scanner.iter().map(|(_, c)| c.total()).sum();
        assert_eq!(total, 10, "every call still counted");
    }

    #[test]
    fn pods_get_properties_edges_and_a_deletion_time() {
        let mut r = Recorder::new(100, 0);
        let spec = PodProperties {
            images: vec![
                format!("reg.example/app@sha256:{}", "ab".repeat(32)),
                "busybox".into(),
            ],
            service_account: Some("builder".into()),
            privileged: true,
            ..PodProperties::default()
        };
        r.pod("c1", "prod", "web", 5 * HOUR, PodChange::Spec(spec));
        r.pod(
            "c1",
            "prod",
            "web",
            5 * HOUR + 1,
            PodChange::Bound {
                node: "node-2".into(),
            },
        );
        r.pod("c1", "prod", "bad/name", 0, PodChange::Deleted);
        let d = r.take(0);
        let pod = d
            .entities
            .iter()
            .find(|s| s.id.to_string() == "pod/c1/prod/web")
            .unwrap();
        let Some(Properties::Replace(p)) = &pod.properties else {
            panic!("{:?}", pod.properties)
        };
        assert_eq!(p["node"], "node-2");
        assert_eq!(p["privileged"], true);
        assert_eq!(p["created"], "1970-01-01T05:00:00Z");
        let image = format!("image/sha256:{}", "ab".repeat(32));
        assert_eq!(
            edge(&d, "pod/c1/prod/web", Relation::Image, &image).len(),
            1
        );
        assert_eq!(edge(&d, "cluster/c1", Relation::Image, &image).len(), 1);
        assert_eq!(
            edge(&d, "pod/c1/prod/web", Relation::Node, "node/c1/node-2").len(),
            1
        );
        assert_eq!(
            edge(
                &d,
                "pod/c1/prod/web",
                Relation::ServiceAccount,
                "subject/c1/system%3Aserviceaccount%3Aprod%3Abuilder"
            )
            .len(),
            1
        );
        assert!(d.entities.iter().any(|s| s.id.to_string() == image));
        assert!(d.entities.iter().all(|s| !s.id.to_string().contains("bad")));

        // Deleted in a later round: merged into what is stored.
        r.pod("c1", "prod", "web", 9 * HOUR, PodChange::Deleted);
        let d = r.take(0);
        assert_eq!(d.entities.len(), 1);
        let merged = d.entities[0]
            .properties
            .clone()
            .unwrap()
            .apply(Some(Value::Object(p.clone())));
        assert_eq!(merged["deleted"], "1970-01-01T09:00:00Z");
        assert_eq!(merged["privileged"], true);
    }

    #[test]
    fn a_finding_links_to_what_it_names() {
        let mut r = Recorder::new(100, 0);
        let ip = EntityId::ip("203.0.113.9".parse().unwrap());
        r.finding(
            "f1",
            10,
            2 * HOUR,
            3,
            vec![ip.clone(), EntityId::cluster("c1")],
        );
        r.finding("bad id!", 10, 20, 1, vec![ip]);
        let d = r.take(0);
        let e = edge(&d, "finding/f1", Relation::Names, "ip/203.0.113.9");
        assert_eq!((e[0].0.hour, e[0].1.success), (Hour(2), 3));
        let f = d
            .entities
            .iter()
            .find(|s| s.id.to_string() == "finding/f1")
            .unwrap();
        assert_eq!((f.first_ms, f.last_ms), (10, 2 * HOUR));
        assert_eq!(d.edges.len(), 2);
    }

    #[test]
    fn an_inventory_links_the_image_to_each_package_once() {
        use osprey_model::{Package, PackageType};
        let mut r = Recorder::new(100, 0);
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut openssl = Package::new(PackageType::Deb, "openssl", "3.0.11-1", "dpkg");
        openssl.purl = "pkg:deb/debian/openssl@3.0.11-1?distro=debian-12".into();
        openssl.source_name = Some("openssl".into());
        let mut twice = Package::new(PackageType::Npm, "@babel/parser", "7.24.0", "npm");
        twice.purl = "pkg:npm/%40babel/parser@7.24.0".into();
        let no_purl = Package::new(PackageType::Gem, "rake", "13.0", "gem");
        let mut too_long = Package::new(PackageType::Npm, "x", "1", "npm");
        too_long.purl = format!("pkg:npm/{}", "x".repeat(crate::entity::MAX_ID_BYTES));
        r.inventory(
            &digest,
            5 * HOUR + 7,
            &[openssl, twice.clone(), twice, no_purl, too_long],
        );
        r.inventory("not-a-digest", 0, &[]);
        let d = r.take(0);
        let image = format!("image/{digest}");
        let e = edge(
            &d,
            &image,
            Relation::Package,
            "package/pkg%3Adeb%2Fdebian%2Fopenssl%403.0.11-1%3Fdistro%3Ddebian-12",
        );
        assert_eq!((e[0].0.hour, e[0].1.success), (Hour(5), 1));
        let e = edge(
            &d,
            &image,
            Relation::Package,
            "package/pkg%3Anpm%2F%2540babel%2Fparser%407.24.0",
        );
        assert_eq!(e[0].1.success, 1, "listed twice, counted once");
        assert_eq!(d.edges.len(), 2);
        let p = d
            .entities
            .iter()
            .find(|s| s.id.name() == "pkg:deb/debian/openssl@3.0.11-1?distro=debian-12")
            .unwrap();
        let Some(Properties::Replace(m)) = &p.properties else {
            panic!("{:?}", p.properties)
        };
        assert_eq!(m["name"], "openssl");
        assert_eq!(m["version"], "3.0.11-1");
        assert_eq!(m["type"], "deb");
        assert_eq!(m["source_name"], "openssl");
        assert_eq!(d.entities.len(), 3, "the image and two packages");
    }

    #[test]
    fn a_call_logged_at_two_stages_counts_once() {
        let mut r = Recorder::new(100, 0);
        let mut early = call("w", "jane", 10, 200);
        early.final_stage = false;
        r.call(early);
        assert_eq!(r.pending_calls(), 1);
        assert!(r.take(0).is_empty());
        r.call(call("w", "jane", 10, 500));
        let d = r.take(0);
        let c = edge(&d, "subject/c1/jane", Relation::ApiCall, "get secrets");
        assert_eq!((c[0].1.total(), c[0].1.failed), (1, 1));
    }
}
