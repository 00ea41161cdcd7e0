//! What else is affected: from an image (its digests and the references that resolve to
//! them), a subject or a pod, the running pods concerned and why, their namespaces and
//! nodes, and who can exec into, attach to or patch them or read the secrets they mount.
//!
//! A pod that can reach its node (privileged, host namespaces, the node's paths) puts every
//! pod on that node within reach, so those are affected too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::entity::EntityId;
use crate::pod::PodProperties;
use crate::rbac::{Grant, Rbac, Request, Subject, binds, implied_groups};

/// Pods listed one by one at most (every affected pod is counted).
pub const MAX_PODS_LISTED: usize = 500;

/// A running pod with its properties.
#[derive(Debug, Clone)]
pub struct LivePod {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub properties: PodProperties,
}

impl LivePod {
    pub fn id(&self) -> EntityId {
        EntityId::pod(&self.cluster, &self.namespace, &self.name)
    }
}

/// What the impact is of.
#[derive(Debug, Clone)]
pub enum Target {
    /// Pods running any of these digests, or any of these references (which resolve to
    /// them; as [`normal_reference`] spells them).
    Images {
        digests: Vec<String>,
        references: Vec<String>,
    },
    /// Pods a subject can act on or runs as.
    Subject { cluster: String, username: String },
    /// A pod.
    Pod {
        cluster: String,
        namespace: String,
        name: String,
    },
}

/// What can be done to a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Run a command in its containers (`pods/exec`).
    Exec,
    /// Attach to a running container (`pods/attach`).
    Attach,
    /// Change it (`patch`/`update` of the pod, or add an ephemeral container to it).
    Patch,
    /// Read a secret it mounts.
    ReadSecrets,
}

impl Capability {
    const POD: [Capability; 3] = [Capability::Exec, Capability::Attach, Capability::Patch];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Exec => "exec",
            Capability::Attach => "attach",
            Capability::Patch => "patch",
            Capability::ReadSecrets => "read-secrets",
        }
    }

    /// The requests that grant it (any one does). A `get` of `pods/exec` counts: API
    /// servers before 1.31, or with the WebSocket create check off, open a session on it.
    fn requests(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Capability::Exec => &[("pods/exec", &["create", "get"])],
            Capability::Attach => &[("pods/attach", &["create", "get"])],
            Capability::Patch => &[
                ("pods", &["patch", "update"]),
                ("pods/ephemeralcontainers", &["patch", "update"]),
            ],
            Capability::ReadSecrets => &[("secrets", &["get", "list", "watch"])],
        }
    }
}

/// Who a binding names, with its entity when it is an identity (not a group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectRef {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `subject/{cluster}/{username}` (users and service accounts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl SubjectRef {
    fn of(s: &Subject, cluster: &str) -> SubjectRef {
        SubjectRef {
            kind: s.kind.clone(),
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            id: s
                .username()
                .map(|u| EntityId::subject(cluster, &u).to_string()),
        }
    }
}

/// A subject's access to a pod: what it can do and through which bindings.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Access {
    pub subject: SubjectRef,
    pub can: Vec<Capability>,
    pub via: Vec<String>,
}

/// A pod affected.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AffectedPod {
    /// `pod/{cluster}/{namespace}/{name}`.
    pub id: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    pub images: Vec<String>,
    /// Whether it can reach its node (privileged, host namespaces, the node's paths).
    pub reaches_host: bool,
    pub secrets: Vec<String>,
    /// Why it is affected.
    pub reasons: Vec<String>,
    /// Who can exec into, attach to, patch it or read its secrets.
    pub access: Vec<Access>,
}

/// Affected pods in a namespace or on a node.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    /// `namespace/{cluster}/{name}` or `node/{cluster}/{name}`.
    pub id: String,
    pub pods: usize,
}

/// A subject with access to affected pods.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reacher {
    pub subject: SubjectRef,
    pub can: Vec<Capability>,
    /// Affected pods it has access to.
    pub pods: usize,
}

/// Secrets a subject can read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretAccess {
    /// `*`: every namespace.
    pub namespace: String,
    /// Empty: every secret of the namespace.
    pub names: Vec<String>,
    pub via: String,
}

/// The impact.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Impact {
    /// Running pods affected.
    pub pods_total: usize,
    /// Those pods, by id (the first [`MAX_PODS_LISTED`]).
    pub pods: Vec<AffectedPod>,
    pub namespaces: Vec<Tally>,
    pub nodes: Vec<Tally>,
    /// Who has access to affected pods, those reaching the most first.
    pub subjects: Vec<Reacher>,
    /// For a subject: the secrets it can read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretAccess>,
}

/// Grants per cluster, namespace and capability, computed once.
struct Grants<'a> {
    rbac: &'a HashMap<String, Rbac>,
    cache: HashMap<(String, String, Capability), Vec<Grant>>,
}

impl<'a> Grants<'a> {
    fn of(&mut self, cluster: &str, namespace: &str, cap: Capability) -> &[Grant] {
        let key = (cluster.to_string(), namespace.to_string(), cap);
        let rbac = self.rbac;
        self.cache.entry(key).or_insert_with(|| {
            let Some(rbac) = rbac.get(cluster) else {
                return Vec::new();
            };
            let mut out: Vec<Grant> = Vec::new();
            for &(resource, verbs) in cap.requests() {
                for g in rbac.grants(&Request {
                    group: "",
                    resource,
                    verbs,
                    namespace,
                }) {
                    if !out.contains(&g) {
                        out.push(g);
                    }
                }
            }
            out
        })
    }
}

/// An image reference as a registry resolves it, so that two spellings of one image compare
/// equal: without `registry:`, Docker Hub's host and `library/` spelled out, `:latest` when
/// it names no tag or digest.
pub fn normal_reference(reference: &str) -> String {
    let r = reference.strip_prefix("registry:").unwrap_or(reference);
    let (first, rest) = r.split_once('/').unwrap_or(("", r));
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (host, path) = if is_host {
        (first, rest)
    } else {
        ("docker.io", r)
    };
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let last = path.rsplit('/').next().unwrap_or(&path);
    let tagged = last.contains(':') || last.contains('@');
    format!("{host}/{path}{}", if tagged { "" } else { ":latest" })
}

/// The impact of `target` on the running `pods`, with each cluster's RBAC.
pub fn impact(target: &Target, pods: &[LivePod], rbac: &HashMap<String, Rbac>) -> Impact {
    let mut grants = Grants {
        rbac,
        cache: HashMap::new(),
    };
    // Step 1: the pods the target concerns directly, with why.
    let mut reasons: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut secrets = Vec::new();
    match target {
        Target::Images {
            digests,
            references,
        } => {
            for (i, p) in pods.iter().enumerate() {
                let pr = &p.properties;
                if let Some(d) = pr.image_digests.iter().find(|d| digests.contains(d)) {
                    reasons
                        .entry(i)
                        .or_default()
                        .push(format!("runs image {d}"));
                } else if let Some(r) = pr.images.iter().find(|r| {
                    references.contains(&normal_reference(r))
                        || crate::record::digest_of(r)
                            .is_some_and(|d| digests.iter().any(|x| x == d))
                }) {
                    reasons
                        .entry(i)
                        .or_default()
                        .push(format!("runs image {r}"));
                }
            }
        }
        Target::Subject { cluster, username } => {
            let groups = implied_groups(username);
            let sa = username
                .strip_prefix("system:serviceaccount:")
                .and_then(|r| r.split_once(':'));
            for (i, p) in pods
                .iter()
                .enumerate()
                .filter(|(_, p)| p.cluster == *cluster)
            {
                if let Some((ns, name)) = sa
                    && p.namespace == ns
                    && p.properties.service_account.as_deref() == Some(name)
                {
                    reasons
                        .entry(i)
                        .or_default()
                        .push("runs as this service account (its token is in the pod)".into());
                }
                for cap in Capability::POD {
                    let can = grants
                        .of(cluster, &p.namespace, cap)
                        .iter()
                        .any(|g| g.covers(&p.name) && binds(&g.subject, username, &groups));
                    if can {
                        reasons
                            .entry(i)
                            .or_default()
                            .push(format!("the subject can {}", verb(cap)));
                    }
                }
            }
            if let Some(r) = rbac.get(cluster) {
                secrets = readable_secrets(r, username, &groups);
            }
        }
        Target::Pod {
            cluster,
            namespace,
            name,
        } => {
            if let Some(i) = pods
                .iter()
                .position(|p| p.cluster == *cluster && p.namespace == *namespace && p.name == *name)
            {
                reasons.entry(i).or_default().push("the pod itself".into());
            }
        }
    }
    // Step 2: pods that can reach their node put the node's other pods within reach.
    let direct: Vec<usize> = reasons.keys().copied().collect();
    for i in direct {
        let p = &pods[i];
        let Some(node) = p
            .properties
            .node
            .as_deref()
            .filter(|_| p.properties.reaches_host())
        else {
            continue;
        };
        for (j, q) in pods.iter().enumerate() {
            if j != i && q.cluster == p.cluster && q.properties.node.as_deref() == Some(node) {
                reasons.entry(j).or_default().push(format!(
                    "on node {node} with {}, which can reach the node",
                    p.id().key()
                ));
            }
        }
    }
    // Step 3: who has access to each, and the tallies.
    let mut out = Impact {
        pods_total: reasons.len(),
        secrets,
        ..Impact::default()
    };
    let mut namespaces: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    let mut reachers: BTreeMap<SubjectRef, (BTreeSet<Capability>, usize)> = BTreeMap::new();
    let mut affected: Vec<(String, usize, Vec<String>)> = reasons
        .into_iter()
        .map(|(i, why)| (pods[i].id().to_string(), i, why))
        .collect();
    affected.sort();
    for (id, i, why) in affected {
        let p = &pods[i];
        *namespaces
            .entry(EntityId::namespace(&p.cluster, &p.namespace).to_string())
            .or_default() += 1;
        if let Some(node) = &p.properties.node {
            *nodes
                .entry(EntityId::node(&p.cluster, node).to_string())
                .or_default() += 1;
        }
        let access = access(&mut grants, p);
        for a in &access {
            let slot = reachers.entry(a.subject.clone()).or_default();
            slot.0.extend(a.can.iter().copied());
            slot.1 += 1;
        }
        if out.pods.len() < MAX_PODS_LISTED {
            let pr = &p.properties;
            out.pods.push(AffectedPod {
                id,
                namespace: p.namespace.clone(),
                node: pr.node.clone(),
                service_account: pr.service_account.clone(),
                images: pr.images.clone(),
                reaches_host: pr.reaches_host(),
                secrets: pr.secrets.clone(),
                reasons: why,
                access,
            });
        }
    }
    out.namespaces = tallies(namespaces);
    out.nodes = tallies(nodes);
    let mut subjects: Vec<Reacher> = reachers
        .into_iter()
        .map(|(subject, (can, pods))| Reacher {
            subject,
            can: can.into_iter().collect(),
            pods,
        })
        .collect();
    subjects.sort_by(|a, b| b.pods.cmp(&a.pods).then_with(|| a.subject.cmp(&b.subject)));
    out.subjects = subjects;
    out
}

fn verb(cap: Capability) -> &'static str {
    match cap {
        Capability::Exec => "exec into it",
        Capability::Attach => "attach to it",
        Capability::Patch => "patch it",
        Capability::ReadSecrets => "read its secrets",
    }
}

/// Who can act on a pod, per subject.
fn access(grants: &mut Grants<'_>, p: &LivePod) -> Vec<Access> {
    let mut by: BTreeMap<SubjectRef, (BTreeSet<Capability>, BTreeSet<String>)> = BTreeMap::new();
    let mut add = |g: &Grant, cap: Capability| {
        let slot = by
            .entry(SubjectRef::of(&g.subject, &p.cluster))
            .or_default();
        slot.0.insert(cap);
        slot.1.insert(g.via.clone());
    };
    for cap in Capability::POD {
        for g in grants.of(&p.cluster, &p.namespace, cap) {
            if g.covers(&p.name) {
                add(g, cap);
            }
        }
    }
    if !p.properties.secrets.is_empty() {
        for g in grants.of(&p.cluster, &p.namespace, Capability::ReadSecrets) {
            if p.properties.secrets.iter().any(|s| g.covers(s)) {
                add(g, Capability::ReadSecrets);
            }
        }
    }
    by.into_iter()
        .map(|(subject, (can, via))| Access {
            subject,
            can: can.into_iter().collect(),
            via: via.into_iter().collect(),
        })
        .collect()
}

/// The secrets a subject can read, per binding.
fn readable_secrets(rbac: &Rbac, username: &str, groups: &[String]) -> Vec<SecretAccess> {
    let mut out = Vec::new();
    for namespace in rbac.namespaces_and_cluster() {
        let request = Request {
            group: "",
            resource: "secrets",
            verbs: &["get", "list", "watch"],
            namespace: &namespace,
        };
        for g in rbac.grants(&request) {
            if !binds(&g.subject, username, groups) {
                continue;
            }
            // A grant through a cluster-wide binding reads every namespace.
            let namespace = if g.cluster_wide {
                "*".to_string()
            } else {
                namespace.clone()
            };
            let entry = SecretAccess {
                namespace,
                names: g.names.clone().unwrap_or_default(),
                via: g.via,
            };
            let seen = out.iter().any(|e: &SecretAccess| {
                e.namespace == entry.namespace && e.via == entry.via && e.names == entry.names
            });
            if !seen {
                out.push(entry);
            }
        }
    }
    out
}

fn tallies(m: BTreeMap<String, usize>) -> Vec<Tally> {
    let mut v: Vec<Tally> = m.into_iter().map(|(id, pods)| Tally { id, pods }).collect();
    v.sort_by(|a, b| b.pods.cmp(&a.pods).then_with(|| a.id.cmp(&b.id)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::RbacObject;
    use serde_json::json;

    fn pod(
        namespace: &str,
        name: &str,
        node: &str,
        image: &str,
        extra: serde_json::Value,
    ) -> LivePod {
        let mut spec = json!({"nodeName": node, "serviceAccountName": "app",
            "containers": [{"image": image}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        LivePod {
            cluster: "c1".into(),
            namespace: namespace.into(),
            name: name.into(),
            properties: PodProperties::of(&json!({"spec": spec})).unwrap(),
        }
    }

    fn rbac() -> HashMap<String, Rbac> {
        let objects = [
            json!({"kind": "Role", "metadata": {"name": "debug", "namespace": "shop"},
                "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
                          {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "devs", "namespace": "shop"},
                "roleRef": {"kind": "Role", "name": "debug"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "app"}]}),
        ];
        let rbac = Rbac::new(objects.iter().map(|o| RbacObject::of(None, o).unwrap()));
        HashMap::from([("c1".to_string(), rbac)])
    }

    fn pods() -> Vec<LivePod> {
        vec![
            pod(
                "shop",
                "web",
                "n1",
                "shop/web:1",
                json!({"volumes": [{"name": "s", "secret": {"secretName": "db"}}]}),
            ),
            pod(
                "shop",
                "agent",
                "n2",
                "evil/miner:1",
                json!({"hostPID": true}),
            ),
            pod("kube-system", "dns", "n2", "coredns:1", json!({})),
            pod("ops", "tool", "n3", "evil/miner:1", json!({})),
        ]
    }

    #[test]
    fn an_images_pods_their_nodes_neighbours_and_who_can_exec() {
        let pods = pods();
        let target = Target::Images {
            digests: vec![],
            references: vec![normal_reference("evil/miner:1")],
        };
        let i = impact(&target, &pods, &rbac());
        let ids: Vec<&str> = i.pods.iter().map(|p| p.id.as_str()).collect();
        // The host-PID pod puts coredns on its node within reach.
        assert_eq!(
            ids,
            [
                "pod/c1/kube-system/dns",
                "pod/c1/ops/tool",
                "pod/c1/shop/agent"
            ]
        );
        assert_eq!(i.pods_total, 3);
        assert_eq!(i.pods[1].reasons, ["runs image evil/miner:1"]);
        assert_eq!(
            i.pods[0].reasons,
            ["on node n2 with c1/shop/agent, which can reach the node"]
        );
        let agent = &i.pods[2];
        assert!(agent.reaches_host);
        let who: Vec<(&str, &[Capability])> = agent
            .access
            .iter()
            .map(|a| (a.subject.name.as_str(), a.can.as_slice()))
            .collect();
        let all: &[Capability] = &[Capability::Exec, Capability::Attach, Capability::Patch];
        assert_eq!(
            who,
            [
                ("system:masters", all),
                ("app", &[Capability::Exec][..]),
                ("alice", &[Capability::Exec][..])
            ]
        );
        assert_eq!(
            agent.access[2].subject.id.as_deref(),
            Some("subject/c1/alice")
        );
        assert_eq!(
            agent.access[2].via,
            ["RoleBinding shop/devs → Role shop/debug"]
        );
        assert_eq!(
            agent.access[1].subject.id.as_deref(),
            Some("subject/c1/system%3Aserviceaccount%3Ashop%3Aapp")
        );
        assert_eq!(
            i.nodes
                .iter()
                .map(|t| (t.id.as_str(), t.pods))
                .collect::<Vec<_>>(),
            [("node/c1/n2", 2), ("node/c1/n3", 1)]
        );
        assert_eq!(i.subjects[0].subject.name, "system:masters");
        assert_eq!(i.subjects[0].pods, 3);
    }

    #[test]
    fn a_subject_reaches_the_pods_it_can_exec_into_and_its_secrets() {
        let pods = pods();
        let target = Target::Subject {
            cluster: "c1".into(),
            username: "alice".into(),
        };
        let i = impact(&target, &pods, &rbac());
        let ids: Vec<&str> = i.pods.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "pod/c1/kube-system/dns",
                "pod/c1/shop/agent",
                "pod/c1/shop/web"
            ]
        );
        assert_eq!(i.pods[2].reasons, ["the subject can exec into it"]);
        let web = &i.pods[2];
        let alice = web
            .access
            .iter()
            .find(|a| a.subject.name == "alice")
            .unwrap();
        assert_eq!(alice.can, [Capability::Exec, Capability::ReadSecrets]);
        assert_eq!(i.secrets.len(), 1);
        assert_eq!(
            (
                i.secrets[0].namespace.as_str(),
                i.secrets[0].names.as_slice()
            ),
            ("shop", &["db".to_string()][..])
        );
        // The service account: the pods running as it, and what it may exec into.
        let sa = Target::Subject {
            cluster: "c1".into(),
            username: "system:serviceaccount:shop:app".into(),
        };
        let i = impact(&sa, &pods, &rbac());
        assert_eq!(
            i.pods
                .iter()
                .find(|p| p.id == "pod/c1/shop/web")
                .unwrap()
                .reasons,
            [
                "runs as this service account (its token is in the pod)",
                "the subject can exec into it"
            ]
        );
        // Without RBAC, only what the pods say.
        let none = impact(&target, &pods, &HashMap::new());
        assert_eq!(none.pods_total, 0);
    }

    #[test]
    fn spellings_of_one_image_compare_equal() {
        for (a, b) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("registry:nginx:1.25", "docker.io/library/nginx:1.25"),
            (
                "index.docker.io/bitnami/redis:7",
                "docker.io/bitnami/redis:7",
            ),
            ("127.0.0.1:5000/story", "127.0.0.1:5000/story:latest"),
            ("localhost/app@sha256:ab", "localhost/app@sha256:ab"),
            ("reg.example/team/app:1", "reg.example/team/app:1"),
        ] {
            assert_eq!(normal_reference(a), b, "{a}");
        }
    }

    #[test]
    fn a_pod_alone_or_with_its_node() {
        let pods = pods();
        let web = Target::Pod {
            cluster: "c1".into(),
            namespace: "shop".into(),
            name: "web".into(),
        };
        let i = impact(&web, &pods, &rbac());
        assert_eq!(i.pods_total, 1);
        assert_eq!(i.namespaces[0].id, "namespace/c1/shop");
        let gone = Target::Pod {
            cluster: "c1".into(),
            namespace: "shop".into(),
            name: "gone".into(),
        };
        assert_eq!(impact(&gone, &pods, &rbac()).pods_total, 0);
    }
}
