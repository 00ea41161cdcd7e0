//! Aggregation: detections become findings, and repeated occurrences of the same issue update
//! one finding (count, first and last seen, the latest details), as the managed service does.
//! Suppression rules archive new findings that match them; they are kept, marked, and left
//! out of alerting by the caller.

use std::collections::HashMap;

use osprey_model::{
    Action, Container, Evidence, Finding, KubernetesResource, KubernetesUser, Mitre, Resource,
    Severity, Suppression, Workload,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::format_time_us;
use crate::rules::field::{Cx, Val, pod_spec};
use crate::rules::{Rule, SuppressionRule};

/// Findings kept by an aggregator.
pub struct Findings {
    by_id: HashMap<String, usize>,
    list: Vec<Finding>,
    /// Audit ids kept per finding (the latest).
    pub max_evidence: usize,
    /// Distinct findings kept; beyond it new issues are counted in `dropped`.
    pub max_findings: usize,
    pub dropped: u64,
}

impl Default for Findings {
    fn default() -> Self {
        Findings {
            by_id: HashMap::new(),
            list: Vec::new(),
            max_evidence: 10,
            max_findings: 100_000,
            dropped: 0,
        }
    }
}

impl Findings {
    /// Findings in the order they were first seen.
    pub fn list(&self) -> &[Finding] {
        &self.list
    }

    pub fn into_list(self) -> Vec<Finding> {
        self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Records one detection; returns whether it is archived by a suppression rule.
    pub fn record(
        &mut self,
        rule: &Rule,
        severity: Severity,
        cx: &Cx<'_, '_>,
        suppressions: &[SuppressionRule],
        info: Vec<(String, String)>,
    ) -> bool {
        let e = cx.event;
        let mut info = info;
        if let Some(bound) = bound_subjects(e) {
            info.push((BOUND_SUBJECTS.to_string(), bound));
        }
        let mut key = String::new();
        for f in &rule.group_by {
            cx.each(f, &mut |v| {
                match v {
                    Val::Str(s) => key.push_str(&s),
                    Val::Num(n) => key.push_str(&n.to_string()),
                    Val::Bool(b) => key.push_str(if b { "true" } else { "false" }),
                    Val::Compound(c) => key.push_str(&c.to_string()),
                }
                key.push(',');
                false
            });
            key.push('\0');
        }
        let id =
            hex::encode(&Sha256::digest(format!("audit\0{}\0{key}", rule.def.id).as_bytes())[..16]);
        let time = e.time_us.map(format_time_us);
        let audit_id = e.audit_id.to_string();
        if let Some(&i) = self.by_id.get(&id) {
            let f = &mut self.list[i];
            let ev = f.evidence.get_or_insert_with(Evidence::default);
            // The same request seen at two stages (exec: ResponseStarted, then Complete).
            if !audit_id.is_empty() && ev.audit_ids.contains(&audit_id) {
                return f.suppression.is_some();
            }
            if !audit_id.is_empty() {
                ev.audit_ids.push(audit_id);
                if ev.audit_ids.len() > self.max_evidence {
                    ev.audit_ids.remove(0);
                }
            }
            ev.additional_info.extend(info);
            f.count += 1;
            if severity.label > f.severity.label {
                f.severity = severity;
            }
            if let Some(t) = time {
                if f.first_seen.as_ref().is_none_or(|first| t < *first) {
                    f.first_seen = Some(t.clone());
                }
                if f.last_seen.as_ref().is_none_or(|last| t > *last) {
                    f.last_seen = Some(t);
                }
            }
            // The latest occurrence's details replace the earlier ones.
            f.action = Some(action(cx));
            f.resource = resource(cx);
            return f.suppression.is_some();
        }
        if self.list.len() >= self.max_findings {
            self.dropped += 1;
            return false;
        }
        let suppression = suppressions
            .iter()
            .find(|s| s.applies(&rule.def.kind, cx))
            .map(|s| Suppression {
                by: "suppression-rule".into(),
                source: s.name.clone(),
                status: "archived".into(),
                justification: None,
                reason: s.reason.clone(),
            });
        let archived = suppression.is_some();
        let threat_list = match rule.def.kind.as_str() {
            k if k.ends_with(".Custom") => cx.intel.custom.map(str::to_string),
            k if k.contains("MaliciousIPCaller") => cx.intel.threat.map(str::to_string),
            _ => None,
        };
        let user = &e.user.username;
        let what = match (
            e.object_ref.namespace.is_empty(),
            e.object_ref.name.is_empty(),
        ) {
            (_, true) => e.resource_path().into_owned(),
            (true, false) => format!("{} {}", e.resource_path(), e.object_ref.name),
            (false, false) => format!(
                "{} {}/{}",
                e.resource_path(),
                e.object_ref.namespace,
                e.object_ref.name
            ),
        };
        let mut description = rule.def.description.trim().to_string();
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(&format!(
            "{} called {} {}",
            if user.is_empty() {
                "An unknown user"
            } else {
                user
            },
            e.verb,
            if what.is_empty() {
                e.request_uri.to_string()
            } else {
                what
            }
        ));
        if let Some(ip) = e.source_ips.first() {
            description.push_str(&format!(" from {ip}"));
        }
        description.push('.');
        let finding = Finding {
            id: id.clone(),
            kind: rule.def.kind.clone(),
            title: rule.def.title.clone(),
            description,
            severity,
            resource: resource(cx),
            suppression,
            count: 1,
            first_seen: time.clone(),
            last_seen: time,
            action: Some(action(cx)),
            evidence: Some(Evidence {
                rule_id: rule.def.id.clone(),
                catalogue: rule.def.catalogue.clone(),
                audit_ids: if audit_id.is_empty() {
                    Vec::new()
                } else {
                    vec![audit_id]
                },
                threat_list,
                additional_info: info.into_iter().collect(),
                signals: Vec::new(),
            }),
            mitre: rule.def.mitre.as_ref().map(|m| Mitre {
                tactic: m.tactic.clone(),
                technique: m.technique.clone(),
            }),
            ..Finding::default()
        };
        self.by_id.insert(id, self.list.len());
        self.list.push(finding);
        archived
    }
}

fn action(cx: &Cx<'_, '_>) -> Action {
    let e = cx.event;
    Action {
        verb: e.verb.to_string(),
        request_uri: e.request_uri.to_string(),
        source_ips: e.source_ips.iter().map(|s| s.to_string()).collect(),
        source_asn: cx.intel.asn.map(|a| a.number),
        source_asn_org: cx
            .intel
            .asn
            .map(|a| a.organization.to_string())
            .unwrap_or_default(),
        user_agent: e.user_agent.to_string(),
        status_code: e.code,
        namespace: e.object_ref.namespace.to_string(),
        resource: e.object_ref.resource.to_string(),
        subresource: e.object_ref.subresource.to_string(),
        resource_name: e.object_ref.name.to_string(),
        time: e.time_us.map(format_time_us),
    }
}

fn resource(cx: &Cx<'_, '_>) -> Resource {
    let e = cx.event;
    let user = (!e.user.username.is_empty()).then(|| KubernetesUser {
        username: e.user.username.to_string(),
        uid: e.user.uid.to_string(),
        groups: e.user.groups.iter().map(|g| g.to_string()).collect(),
        impersonated_user: e.impersonated_user.as_ref().map(|u| u.username.to_string()),
    });
    Resource {
        image: None,
        kubernetes: Some(KubernetesResource {
            cluster: e.cluster.to_string(),
            namespace: e.object_ref.namespace.to_string(),
            user,
            workload: workload(cx),
        }),
    }
}

/// The workload a call is about: what a create/patch of a pod or controller carries, or the
/// pod an exec/attach/port-forward reaches.
fn workload(cx: &Cx<'_, '_>) -> Option<Workload> {
    let e = cx.event;
    let kind = e.object_ref.resource.as_ref();
    let is_workload = matches!(
        kind,
        "pods"
            | "deployments"
            | "replicasets"
            | "statefulsets"
            | "daemonsets"
            | "jobs"
            | "cronjobs"
            | "replicationcontrollers"
    );
    if !is_workload {
        return None;
    }
    let meta = e.request().and_then(|r| r.get("metadata"));
    let str_at = |v: Option<&Value>, k: &str| {
        v.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut name = e.object_ref.name.to_string();
    if name.is_empty() {
        name = str_at(meta, "name");
    }
    if name.is_empty() {
        name = str_at(meta, "generateName");
    }
    let mut w = Workload {
        kind: kind.to_string(),
        name,
        uid: str_at(meta, "uid"),
        ..Workload::default()
    };
    if let Some(spec) = pod_spec(e) {
        for c in containers(spec) {
            let image = str_at(Some(c), "image");
            w.containers.push(Container {
                name: str_at(Some(c), "name"),
                image_prefix: image_prefix(&image).to_string(),
                image,
                privileged: c
                    .pointer("/securityContext/privileged")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
        for v in spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = v.pointer("/hostPath/path").and_then(Value::as_str) {
                w.host_paths.push(p.to_string());
            }
        }
        let flag = |k: &str| spec.get(k).and_then(Value::as_bool).unwrap_or(false);
        w.host_network = flag("hostNetwork");
        w.host_pid = flag("hostPID");
        w.host_ipc = flag("hostIPC");
        w.service_account_name = str_at(Some(spec), "serviceAccountName");
    }
    Some(w)
}

/// A pod the API server accepted, as an event shows it: where it runs and the images of its
/// containers (init and ephemeral ones included). The server remembers these, so that a later
/// finding that names only the pod (an exec into it) can have the pod's images scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodImages {
    pub namespace: String,
    pub name: String,
    pub images: Vec<String>,
}

/// The pod an event creates or replaces (`create`/`update` of `pods`, accepted, with the
/// request body logged): its name from the object reference, the response or the request.
pub fn pod_images(e: &crate::Event<'_>) -> Option<PodImages> {
    if e.object_ref.resource != "pods"
        || !e.object_ref.subresource.is_empty()
        || !matches!(e.verb.as_ref(), "create" | "update")
        || e.code.is_some_and(|c| !(200..300).contains(&c))
    {
        return None;
    }
    let spec = pod_spec(e)?;
    let name_in = |v: Option<&Value>| {
        v.and_then(|v| v.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let name = Some(e.object_ref.name.to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| name_in(e.response()))
        .or_else(|| name_in(e.request()))?;
    let mut images: Vec<String> = Vec::new();
    for c in containers(spec) {
        if let Some(i) = c.get("image").and_then(Value::as_str)
            && !i.is_empty()
            && !images.iter().any(|x| x == i)
        {
            images.push(i.to_string());
        }
    }
    (!images.is_empty()).then(|| PodImages {
        namespace: e.object_ref.namespace.to_string(),
        name,
        images,
    })
}

/// The evidence key under which a finding about a role binding lists the subjects it binds.
pub const BOUND_SUBJECTS: &str = "bound_subjects";

/// The subjects a role binding write binds, as `User:name`, `ServiceAccount:namespace/name`
/// or `Group:name`, comma-separated: who was granted access is what links the binding to
/// what the grantee did next.
fn bound_subjects(e: &crate::Event<'_>) -> Option<String> {
    if !matches!(
        e.object_ref.resource.as_ref(),
        "rolebindings" | "clusterrolebindings"
    ) || !e.object_ref.subresource.is_empty()
        || !matches!(e.verb.as_ref(), "create" | "update" | "patch")
    {
        return None;
    }
    let subjects = e.request().or(e.response())?.get("subjects")?.as_array()?;
    let listed: Vec<String> = subjects
        .iter()
        .take(64)
        .filter_map(|s| {
            let kind = s.get("kind")?.as_str()?;
            let name = s.get("name")?.as_str()?;
            Some(match (kind, s.get("namespace").and_then(Value::as_str)) {
                ("ServiceAccount", Some(ns)) => format!("ServiceAccount:{ns}/{name}"),
                ("ServiceAccount", None) => {
                    format!("ServiceAccount:{}/{name}", e.object_ref.namespace)
                }
                _ => format!("{kind}:{name}"),
            })
        })
        .collect();
    (!listed.is_empty()).then(|| listed.join(","))
}

/// Every container of a pod spec: init, regular and ephemeral ones.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|list| {
            spec.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
}

/// `registry.example/team/app:1.2@sha256:…` → `registry.example/team/app`.
pub fn image_prefix(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::{PodImages, bound_subjects, image_prefix, pod_images};
    use crate::event::{Decoder, Event};

    #[test]
    fn a_binding_says_whom_it_binds() {
        let json = r#"{"kind":"Event","auditID":"b","stage":"ResponseComplete","verb":"create","user":{"username":"dev-admin"},"objectRef":{"resource":"rolebindings","namespace":"ci","name":"x"},"responseStatus":{"code":201},"requestObject":{"subjects":[{"kind":"User","name":"system:anonymous"},{"kind":"ServiceAccount","name":"deployer"},{"kind":"Group","name":"devs"}]}}"#;
        let mut out = None;
        Decoder::default().decode(json.as_bytes(), &mut |e: Event<'_>| {
            out = bound_subjects(&e);
        });
        assert_eq!(
            out.as_deref(),
            Some("User:system:anonymous,ServiceAccount:ci/deployer,Group:devs")
        );
        let get = json.replace(r#""verb":"create""#, r#""verb":"get""#);
        Decoder::default().decode(get.as_bytes(), &mut |e: Event<'_>| {
            assert_eq!(bound_subjects(&e), None);
        });
    }

    fn first_pod(json: &str) -> Option<PodImages> {
        let mut out = None;
        Decoder::default().decode(json.as_bytes(), &mut |e: Event<'_>| {
            out = pod_images(&e);
        });
        out
    }

    #[test]
    fn pods_accepted_are_remembered_with_every_image_once() {
        // A controller's pod: named by the API server (generateName), so only the response
        // carries the name.
        let created = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/namespaces/shop/pods","user":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"objectRef":{"resource":"pods","namespace":"shop","apiVersion":"v1"},"responseStatus":{"code":201},
            "requestObject":{"kind":"Pod","metadata":{"generateName":"web-7d9f-"},"spec":{"initContainers":[{"name":"init","image":"busybox:1.36"}],"containers":[{"name":"web","image":"registry.example/shop/web:2.1"},{"name":"sidecar","image":"busybox:1.36"}]}},
            "responseObject":{"kind":"Pod","metadata":{"name":"web-7d9f-x2k4q","namespace":"shop"}}}"#;
        assert_eq!(
            first_pod(created),
            Some(PodImages {
                namespace: "shop".into(),
                name: "web-7d9f-x2k4q".into(),
                images: vec![
                    "busybox:1.36".into(),
                    "registry.example/shop/web:2.1".into()
                ],
            })
        );
        // Refused, a subresource, a read: nothing.
        for not_a_pod in [
            created.replace(r#""code":201"#, r#""code":403"#),
            created.replace(
                r#""resource":"pods""#,
                r#""resource":"pods","subresource":"binding""#,
            ),
            created.replace(r#""verb":"create""#, r#""verb":"get""#),
        ] {
            assert_eq!(first_pod(&not_a_pod), None, "{not_a_pod}");
        }
    }

    #[test]
    fn image_prefixes() {
        assert_eq!(image_prefix("nginx"), "nginx");
        assert_eq!(image_prefix("nginx:1.25"), "nginx");
        assert_eq!(
            image_prefix("reg:5000/team/app:1@sha256:ab"),
            "reg:5000/team/app"
        );
        assert_eq!(image_prefix("reg:5000/team/app"), "reg:5000/team/app");
    }
}
