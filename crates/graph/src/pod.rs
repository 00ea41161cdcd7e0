//! A pod's properties on its profile, read from the pod object an audit event recorded: its
//! images, node, service account, what its security context allows (privileged containers,
//! host namespaces, host paths, added capabilities) and its owner. A pod keeps them after it
//! is deleted, with the deletion time.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Entries kept per list (images, host paths, capabilities): a pod spec with more is cut.
pub const MAX_LIST: usize = 64;
/// Longest string kept (an image reference, a path).
const MAX_TEXT: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodProperties {
    /// Image references of every container (init and ephemeral ones included), as written.
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Any container privileged.
    pub privileged: bool,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// Paths of `hostPath` volumes.
    pub host_paths: Vec<String>,
    /// Capabilities added to any container.
    pub capabilities: Vec<String>,
    /// Secrets the pod mounts or reads into its environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Digests (`sha256:…`) of the images its containers run, from the pod's status (a
    /// cluster snapshot's pods have one; an audited pod creation does not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

impl PodProperties {
    /// The properties of a pod object (`metadata`, `spec`); `None` when it has no spec.
    pub fn of(pod: &Value) -> Option<PodProperties> {
        let spec = pod.get("spec")?.as_object()?;
        let mut p = PodProperties {
            node: text(spec.get("nodeName")),
            service_account: text(spec.get("serviceAccountName"))
                .or_else(|| text(spec.get("serviceAccount")))
                .or_else(|| Some("default".to_string())),
            host_network: flag(spec.get("hostNetwork")),
            host_pid: flag(spec.get("hostPID")),
            host_ipc: flag(spec.get("hostIPC")),
            owner: pod.pointer("/metadata/ownerReferences/0").and_then(|o| {
                Some(Owner {
                    kind: text(o.get("kind"))?,
                    name: text(o.get("name"))?,
                })
            }),
            ..PodProperties::default()
        };
        for c in containers(spec) {
            if let Some(image) = text(c.get("image")) {
                push(&mut p.images, image);
            }
            let env_from = c.get("envFrom").and_then(Value::as_array);
            for r in env_from.into_iter().flatten() {
                if let Some(secret) = text(r.pointer("/secretRef/name")) {
                    push(&mut p.secrets, secret);
                }
            }
            let env = c.get("env").and_then(Value::as_array);
            for v in env.into_iter().flatten() {
                if let Some(secret) = text(v.pointer("/valueFrom/secretKeyRef/name")) {
                    push(&mut p.secrets, secret);
                }
            }
            let sc = c.get("securityContext");
            p.privileged |= flag(sc.and_then(|s| s.get("privileged")));
            let added = sc
                .and_then(|s| s.pointer("/capabilities/add"))
                .and_then(Value::as_array);
            for cap in added.into_iter().flatten() {
                if let Some(cap) = text(Some(cap)) {
                    push(&mut p.capabilities, cap);
                }
            }
        }
        let volumes = spec.get("volumes").and_then(Value::as_array);
        for v in volumes.into_iter().flatten() {
            if let Some(path) = text(v.pointer("/hostPath/path")) {
                push(&mut p.host_paths, path);
            }
            if let Some(secret) = text(v.pointer("/secret/secretName")) {
                push(&mut p.secrets, secret);
            }
            let projected = v.pointer("/projected/sources").and_then(Value::as_array);
            for source in projected.into_iter().flatten() {
                if let Some(secret) = text(source.pointer("/secret/name")) {
                    push(&mut p.secrets, secret);
                }
            }
        }
        let statuses = ["initContainerStatuses", "containerStatuses"]
            .into_iter()
            .filter_map(|list| pod.pointer(&format!("/status/{list}"))?.as_array())
            .flatten();
        for status in statuses {
            // `repo@sha256:…` is the manifest's digest; a bare `sha256:…` (Docker's
            // `docker://sha256:…`) is the image's configuration, not what a scan names.
            let id = text(status.get("imageID"));
            if let Some(digest) = id.as_deref().and_then(crate::record::digest_of) {
                push(&mut p.image_digests, digest.to_string());
            }
        }
        Some(p)
    }

    /// Whether the pod can reach its node: privileged, sharing the host's process or
    /// network namespace, or mounting a host path that holds the node (its root, the
    /// container runtime's socket, `/proc`, `/etc`, the kubelet's or the runtime's state).
    pub fn reaches_host(&self) -> bool {
        const HOST_PATHS: [&str; 9] = [
            "/",
            "/proc",
            "/etc",
            "/root",
            "/var/lib/kubelet",
            "/var/lib/containerd",
            "/var/lib/docker",
            "/run",
            "/var/run",
        ];
        let sensitive = |path: &str| {
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            HOST_PATHS.contains(&path) || path.ends_with(".sock")
        };
        self.privileged
            || self.host_pid
            || self.host_network
            || self.host_paths.iter().any(|p| sensitive(p))
            || self.capabilities.iter().any(|c| {
                matches!(
                    c.trim_start_matches("CAP_"),
                    "SYS_ADMIN" | "SYS_PTRACE" | "SYS_MODULE"
                )
            })
    }

    /// As stored on the entity: a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

fn containers(spec: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|list| {
            spec.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
}

fn text(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    if s.is_empty() {
        return None;
    }
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_string())
}

fn flag(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

fn push(list: &mut Vec<String>, s: String) {
    if list.len() < MAX_LIST && !list.contains(&s) {
        list.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privileged_pod_says_what_it_may_do() {
        let pod = serde_json::json!({
            "metadata": {"name": "p", "ownerReferences": [{"kind": "DaemonSet", "name": "agent"}]},
            "spec": {
                "nodeName": "node-1",
                "serviceAccountName": "agent",
                "hostPID": true,
                "hostNetwork": false,
                "initContainers": [{"image": "busybox:1.36"}],
                "containers": [
                    {"image": "evil.example/miner:1", "securityContext": {"privileged": true,
                        "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "SYS_ADMIN"]}}},
                    {"image": "busybox:1.36"}
                ],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]
            }
        });
        let p = PodProperties::of(&pod).unwrap();
        assert_eq!(p.images, ["busybox:1.36", "evil.example/miner:1"]);
        assert_eq!(p.node.as_deref(), Some("node-1"));
        assert_eq!(p.service_account.as_deref(), Some("agent"));
        assert!(p.privileged && p.host_pid && !p.host_network && !p.host_ipc);
        assert_eq!(p.host_paths, ["/"]);
        assert_eq!(p.capabilities, ["SYS_ADMIN", "NET_ADMIN"]);
        assert_eq!(p.owner.as_ref().unwrap().kind, "DaemonSet");
        assert!(p.reaches_host());
        let json = p.to_json();
        assert_eq!(json["privileged"], true);
        assert!(!json.contains_key("deleted"));
    }

    #[test]
    fn a_plain_pod_runs_as_default_and_odd_input_is_bounded() {
        let many: Vec<Value> = (0..500)
            .map(|i| serde_json::json!({"image": format!("i{i}")}))
            .collect();
        let pod = serde_json::json!({"spec": {"containers": many, "hostIPC": "yes"}});
        let p = PodProperties::of(&pod).unwrap();
        assert_eq!(p.images.len(), MAX_LIST);
        assert_eq!(p.service_account.as_deref(), Some("default"));
        assert!(!p.host_ipc, "only a JSON true counts");
        assert!(!p.reaches_host());
        assert!(PodProperties::of(&serde_json::json!({"metadata": {}})).is_none());
    }

    #[test]
    fn a_pod_names_its_secrets_and_its_status_the_digests() {
        let d = "a".repeat(64);
        let pod = serde_json::json!({
            "spec": {
                "containers": [{
                    "image": "app:1",
                    "envFrom": [{"secretRef": {"name": "env-all"}}, {"configMapRef": {"name": "cm"}}],
                    "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "api-key", "key": "k"}}}]
                }],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "tls"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}, {"serviceAccountToken": {}}]}},
                    {"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}}
                ]
            },
            "status": {"containerStatuses": [
                {"imageID": format!("docker-pullable://registry.example/app@sha256:{d}")},
                {"imageID": "not-a-digest"}
            ]}
        });
        let p = PodProperties::of(&pod).unwrap();
        assert_eq!(p.secrets, ["env-all", "api-key", "tls", "proj"]);
        assert_eq!(p.image_digests, [format!("sha256:{d}")]);
        assert!(p.reaches_host(), "the runtime's socket is the node");
        let bare = serde_json::json!({"spec": {}, "status": {"containerStatuses": [
            {"imageID": format!("docker://sha256:{d}")}]}});
        assert!(PodProperties::of(&bare).unwrap().image_digests.is_empty());
    }
}
