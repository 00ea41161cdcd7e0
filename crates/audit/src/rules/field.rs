//! Fields a condition can read, and how their values are produced without copying the event.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::Event;
use crate::intel::IntelHit;

/// A value of a field: fields with several values (groups, source IPs, every container's
/// image) produce them one by one and a test passes when any of them passes.
#[derive(Debug, Clone)]
pub enum Val<'v> {
    Str(Cow<'v, str>),
    Num(f64),
    Bool(bool),
    /// An object (or nested array); string tests look at every key and string inside it.
    Compound(&'v Value),
}

/// A field of the event, of the request/response bodies, or of the element being iterated.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Verb,
    UserName,
    UserUid,
    UserGroups,
    ImpersonatedName,
    ImpersonatedGroups,
    SourceIp,
    SourceIps,
    /// The caller's autonomous system number and organization (with an ASN database).
    SourceAsn,
    SourceAsnOrg,
    UserAgent,
    Uri,
    UriPath,
    UriParam(Box<str>),
    Resource,
    Subresource,
    /// `resource/subresource`, or `resource`.
    ResourcePath,
    Namespace,
    Name,
    ApiGroup,
    Code,
    Decision,
    Reason,
    Stage,
    Level,
    Cluster,
    /// The request body (exists when the audit level recorded it), or a path into it.
    Request(Box<[Box<str>]>),
    Response(Box<[Box<str>]>),
    /// A path into the pod spec of whatever the request creates: a Pod, the template of a
    /// Deployment/ReplicaSet/StatefulSet/DaemonSet/Job/ReplicationController, a CronJob's job
    /// template. `pod.containers` is every container, init container and ephemeral container.
    Pod(Box<[Box<str>]>),
    PodContainers(Box<[Box<str>]>),
    /// A path into the element `any(…)`/`all(…)` is looking at.
    It(Box<[Box<str>]>),
    /// The name of the threat list (vendor intel) the source IP is on.
    IntelThreat,
    /// The name of the customer threat list the source IP is on.
    IntelCustom,
    IntelTor,
    IntelTrusted,
    /// The request succeeded (2xx, or 101 for exec/attach/port-forward upgrades).
    Ok,
    /// The request was refused (401, 403, or a `forbid` decision).
    Denied,
    /// The stage-independent request id (`auditID`).
    AuditId,
}

impl Field {
    pub fn parse(name: &str) -> Result<Field, String> {
        // Segments are separated by dots; `[a.b/c]` is one segment holding dots (label keys).
        let path = |rest: &str| -> Box<[Box<str>]> {
            let mut out: Vec<Box<str>> = Vec::new();
            let mut cur = String::new();
            let mut bracket = false;
            for c in rest.chars() {
                match c {
                    '[' if !bracket => {
                        if !cur.is_empty() {
                            out.push(std::mem::take(&mut cur).into());
                        }
                        bracket = true;
                    }
                    ']' if bracket => {
                        out.push(std::mem::take(&mut cur).into());
                        bracket = false;
                    }
                    '.' if !bracket => {
                        if !cur.is_empty() {
                            out.push(std::mem::take(&mut cur).into());
                        }
                    }
                    c => cur.push(c),
                }
            }
            if !cur.is_empty() {
                out.push(cur.into());
            }
            out.into()
        };
        Ok(match name {
            "verb" => Field::Verb,
            "user.name" | "user" => Field::UserName,
            "user.uid" => Field::UserUid,
            "user.groups" => Field::UserGroups,
            "impersonated.name" | "impersonated" => Field::ImpersonatedName,
            "impersonated.groups" => Field::ImpersonatedGroups,
            "source.ip" => Field::SourceIp,
            "source.ips" => Field::SourceIps,
            "source.asn" => Field::SourceAsn,
            "source.asn_org" => Field::SourceAsnOrg,
            "ua" | "user_agent" => Field::UserAgent,
            "uri" => Field::Uri,
            "uri.path" => Field::UriPath,
            "resource" => Field::Resource,
            "subresource" => Field::Subresource,
            "resource.path" => Field::ResourcePath,
            "namespace" | "ns" => Field::Namespace,
            "name" => Field::Name,
            "api_group" => Field::ApiGroup,
            "code" => Field::Code,
            "decision" => Field::Decision,
            "reason" => Field::Reason,
            "stage" => Field::Stage,
            "level" => Field::Level,
            "cluster" => Field::Cluster,
            "intel.threat" => Field::IntelThreat,
            "intel.custom" => Field::IntelCustom,
            "intel.tor" => Field::IntelTor,
            "intel.trusted" => Field::IntelTrusted,
            "ok" => Field::Ok,
            "denied" => Field::Denied,
            "audit_id" => Field::AuditId,
            "request" => Field::Request(path("")),
            "response" => Field::Response(path("")),
            "pod" => Field::Pod(path("")),
            "it" => Field::It(path("")),
            "pod.containers" => Field::PodContainers(path("")),
            _ => {
                if let Some(p) = name.strip_prefix("uri.param.") {
                    Field::UriParam(p.into())
                } else if let Some(p) = name.strip_prefix("request.") {
                    Field::Request(path(p))
                } else if let Some(p) = name.strip_prefix("response.") {
                    Field::Response(path(p))
                } else if let Some(p) = name.strip_prefix("pod.containers.") {
                    Field::PodContainers(path(p))
                } else if let Some(p) = name.strip_prefix("pod.") {
                    Field::Pod(path(p))
                } else if let Some(p) = name.strip_prefix("it.") {
                    Field::It(path(p))
                } else {
                    return Err(format!("unknown field `{name}`"));
                }
            }
        })
    }

    /// Whether the field reads the request or response body (rules that do are skipped for
    /// events recorded without one).
    pub fn reads_body(&self) -> bool {
        matches!(
            self,
            Field::Request(_) | Field::Response(_) | Field::Pod(_) | Field::PodContainers(_)
        )
    }
}

/// What a condition is evaluated against.
pub struct Cx<'c, 'e> {
    pub event: &'c Event<'e>,
    pub intel: &'c IntelHit<'c>,
    /// The element of the innermost `any`/`all`.
    pub it: Option<&'c Value>,
}

impl<'c, 'e> Cx<'c, 'e> {
    /// Calls `f` with each value of `field` until it returns true; returns whether it did.
    pub fn each(&self, field: &Field, f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
        let e = self.event;
        let one = |s: &str, f: &mut dyn FnMut(Val<'_>) -> bool| {
            !s.is_empty() && f(Val::Str(Cow::Borrowed(s)))
        };
        match field {
            Field::Verb => one(&e.verb, f),
            Field::UserName => one(&e.user.username, f),
            Field::UserUid => one(&e.user.uid, f),
            Field::UserGroups => e.user.groups.iter().any(|g| one(g, f)),
            Field::ImpersonatedName => e
                .impersonated_user
                .as_ref()
                .is_some_and(|u| one(&u.username, f)),
            Field::ImpersonatedGroups => e
                .impersonated_user
                .as_ref()
                .is_some_and(|u| u.groups.iter().any(|g| one(g, f))),
            Field::SourceIp => e.source_ips.first().is_some_and(|s| one(s, f)),
            Field::SourceIps => e.source_ips.iter().any(|s| one(s, f)),
            Field::SourceAsn => self
                .intel
                .asn
                .is_some_and(|a| f(Val::Num(f64::from(a.number)))),
            Field::SourceAsnOrg => self.intel.asn.is_some_and(|a| one(a.organization, f)),
            Field::UserAgent => one(&e.user_agent, f),
            Field::Uri => one(&e.request_uri, f),
            Field::UriPath => one(e.request_uri.split('?').next().unwrap_or_default(), f),
            Field::UriParam(name) => {
                let Some((_, query)) = e.request_uri.split_once('?') else {
                    return false;
                };
                query.split('&').any(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    k == name.as_ref() && f(Val::Str(decode_query(v)))
                })
            }
            Field::Resource => one(&e.object_ref.resource, f),
            Field::Subresource => one(&e.object_ref.subresource, f),
            Field::ResourcePath => one(&e.resource_path(), f),
            Field::Namespace => one(&e.object_ref.namespace, f),
            Field::Name => one(&e.object_ref.name, f),
            Field::ApiGroup => one(&e.object_ref.api_group, f),
            Field::Code => e.code.is_some_and(|c| f(Val::Num(f64::from(c)))),
            Field::Decision => one(&e.decision, f),
            Field::Reason => one(&e.reason, f),
            Field::Stage => one(e.stage().as_str(), f),
            Field::Level => one(&e.level, f),
            Field::Cluster => one(&e.cluster, f),
            Field::IntelThreat => self.intel.threat.is_some_and(|s| one(s, f)),
            Field::IntelCustom => self.intel.custom.is_some_and(|s| one(s, f)),
            Field::IntelTor => f(Val::Bool(self.intel.tor)),
            Field::IntelTrusted => f(Val::Bool(self.intel.trusted)),
            Field::Ok => f(Val::Bool(e.succeeded())),
            Field::Denied => f(Val::Bool(e.denied())),
            Field::AuditId => one(&e.audit_id, f),
            Field::Request(p) => e.request().is_some_and(|v| walk(v, p, f)),
            Field::Response(p) => e.response().is_some_and(|v| walk(v, p, f)),
            Field::It(p) => self.it.is_some_and(|v| walk(v, p, f)),
            Field::Pod(p) => pod_spec(e).is_some_and(|v| walk(v, p, f)),
            Field::PodContainers(p) => pod_spec(e).is_some_and(|spec| {
                ["containers", "initContainers", "ephemeralContainers"]
                    .iter()
                    .any(|k| match spec.get(*k) {
                        Some(Value::Array(list)) => list.iter().any(|c| walk(c, p, f)),
                        _ => false,
                    })
            }),
        }
    }

    /// The elements `any(field, …)` iterates: the field's values, arrays flattened.
    pub fn elements(&self, field: &Field, f: &mut dyn FnMut(&Value) -> bool) -> bool {
        let e = self.event;
        let (root, path): (Option<&Value>, &[Box<str>]) = match field {
            Field::Request(p) => (e.request(), p),
            Field::Response(p) => (e.response(), p),
            Field::It(p) => (self.it, p),
            Field::Pod(p) => (pod_spec(e), p),
            Field::PodContainers(p) => {
                return pod_spec(e).is_some_and(|spec| {
                    ["containers", "initContainers", "ephemeralContainers"]
                        .iter()
                        .any(|k| match spec.get(*k) {
                            Some(Value::Array(list)) => list.iter().any(|c| elements_at(c, p, f)),
                            _ => false,
                        })
                });
            }
            _ => return false,
        };
        root.is_some_and(|r| elements_at(r, path, f))
    }
}

fn elements_at(v: &Value, path: &[Box<str>], f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match (path.split_first(), v) {
        (None, Value::Array(items)) => items.iter().any(&mut *f),
        (None, v) => f(v),
        (Some((head, rest)), Value::Object(m)) => m
            .get(head.as_ref())
            .is_some_and(|v| elements_at(v, rest, f)),
        (Some(_), Value::Array(items)) => items.iter().any(|i| elements_at(i, path, f)),
        _ => false,
    }
}

/// Values at `path` under `v`: arrays on the way are entered element by element, and an array
/// at the end gives its elements.
fn walk(v: &Value, path: &[Box<str>], f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
    match (path.split_first(), v) {
        (None, Value::Array(items)) => items.iter().any(|i| leaf(i, f)),
        (None, v) => leaf(v, f),
        (Some((head, rest)), Value::Object(m)) => {
            m.get(head.as_ref()).is_some_and(|v| walk(v, rest, f))
        }
        (Some(_), Value::Array(items)) => items.iter().any(|i| walk(i, path, f)),
        _ => false,
    }
}

fn leaf(v: &Value, f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
    match v {
        Value::String(s) => f(Val::Str(Cow::Borrowed(s))),
        Value::Number(n) => n.as_f64().is_some_and(|n| f(Val::Num(n))),
        Value::Bool(b) => f(Val::Bool(*b)),
        Value::Null => false,
        Value::Array(_) | Value::Object(_) => f(Val::Compound(v)),
    }
}

/// The pod spec a request creates or changes, by the resource it is about.
pub fn pod_spec<'v>(e: &'v Event<'_>) -> Option<&'v Value> {
    let body = e.request()?;
    let path: &[&str] = match e.object_ref.resource.as_ref() {
        "pods" => &["spec"],
        "deployments"
        | "replicasets"
        | "statefulsets"
        | "daemonsets"
        | "jobs"
        | "replicationcontrollers" => &["spec", "template", "spec"],
        "cronjobs" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    };
    let mut v = body;
    for p in path {
        v = v.get(p)?;
    }
    v.is_object().then_some(v)
}

/// `%2F`-style escapes and `+` in a query value.
fn decode_query(v: &str) -> Cow<'_, str> {
    if !v.contains(['%', '+']) {
        return Cow::Borrowed(v);
    }
    let plus = v.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Calls `f` with every string inside a compound value (keys and values), until it is true.
pub fn strings_in(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|i| strings_in(i, f)),
        Value::Object(m) => m.iter().any(|(k, v)| f(k) || strings_in(v, f)),
        _ => false,
    }
}
