//! One normalized audit event, whatever shape it arrived in.
//!
//! Kubernetes API servers write `audit.k8s.io/v1` (and older `v1beta1`) `Event` objects; the
//! webhook backend posts them in `EventList` batches; EKS exports wrap each event in a
//! CloudWatch record's `message` string, AKS diagnostic records in `properties.log`, and GKE
//! writes Cloud Audit Log entries with a `protoPayload` that names the same facts differently.
//! [`decode`] turns each of those into an [`Event`] that borrows from the input wherever it can
//! (request bodies stay raw JSON until a rule asks for them), so that reading an event costs one
//! pass of the JSON parser and a handful of small allocations.

pub mod decode;
pub mod reader;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use serde_json::Value;
use serde_json::value::RawValue;

pub use decode::{DecodeError, DecodeLimits, Decoded, Decoder};
pub use reader::{Malformed, ReadStats, Reader};

/// The stage of a request an event was written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
    Unknown,
}

impl Stage {
    pub fn parse(s: &str) -> Stage {
        match s {
            "ResponseComplete" => Stage::ResponseComplete,
            "ResponseStarted" => Stage::ResponseStarted,
            "RequestReceived" => Stage::RequestReceived,
            "Panic" => Stage::Panic,
            _ => Stage::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
            Stage::Unknown => "",
        }
    }
}

/// Who made (or was impersonated in) a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInfo<'a> {
    pub username: Cow<'a, str>,
    pub uid: Cow<'a, str>,
    pub groups: Vec<Cow<'a, str>>,
}

/// The object a request is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectRef<'a> {
    pub resource: Cow<'a, str>,
    pub subresource: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub api_group: Cow<'a, str>,
    pub api_version: Cow<'a, str>,
}

/// Which input shape an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `audit.k8s.io` `Event` (alone or inside an `EventList`).
    Kubernetes,
    /// An EKS CloudWatch Logs record whose `message` holds the event.
    CloudWatch,
    /// An AKS diagnostic record whose `properties.log` holds the event.
    AzureDiagnostics,
    /// A GKE Cloud Audit Log entry (`protoPayload`).
    GoogleCloudAudit,
}

/// One audit event. Strings borrow from the input unless they had to be unescaped or mapped.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub audit_id: Cow<'a, str>,
    pub stage: Option<Stage>,
    pub level: Cow<'a, str>,
    pub verb: Cow<'a, str>,
    pub request_uri: Cow<'a, str>,
    pub user: UserInfo<'a>,
    pub impersonated_user: Option<UserInfo<'a>>,
    pub source_ips: Vec<Cow<'a, str>>,
    pub user_agent: Cow<'a, str>,
    pub object_ref: ObjectRef<'a>,
    /// HTTP status of the response (`responseStatus.code`).
    pub code: Option<u16>,
    /// `authorization.k8s.io/decision` (`allow` / `forbid`).
    pub decision: Cow<'a, str>,
    /// `authorization.k8s.io/reason`.
    pub reason: Cow<'a, str>,
    /// Microseconds since the Unix epoch: the stage timestamp, else the request's.
    pub time_us: Option<i64>,
    /// Microseconds since the Unix epoch when the request was received
    /// (`requestReceivedTimestamp`), else [`Event::time_us`]: every stage of a call has the
    /// same one.
    pub request_us: Option<i64>,
    pub request_object: Option<&'a RawValue>,
    pub response_object: Option<&'a RawValue>,
    pub shape: Option<Shape>,
    /// The cluster the event came from, when the shape says (GKE `resource.labels`, AKS
    /// resource id, CloudWatch log group).
    pub cluster: Cow<'a, str>,
    request: OnceCell<Option<Value>>,
    response: OnceCell<Option<Value>>,
}

impl<'a> Event<'a> {
    pub fn stage(&self) -> Stage {
        self.stage.unwrap_or(Stage::ResponseComplete)
    }

    /// The request body, parsed on first use; `None` when the audit level did not record it or
    /// it is not valid JSON.
    pub fn request(&self) -> Option<&Value> {
        self.request
            .get_or_init(|| parse_body(self.request_object))
            .as_ref()
    }

    /// The response body, parsed on first use.
    pub fn response(&self) -> Option<&Value> {
        self.response
            .get_or_init(|| parse_body(self.response_object))
            .as_ref()
    }

    /// The first source IP (the client; later entries are proxies).
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_ips.first().and_then(|s| s.parse().ok())
    }

    /// Whether the request succeeded: a 2xx or 101 (exec/attach upgrade) status, or, when the
    /// status is missing, an `allow` decision.
    pub fn succeeded(&self) -> bool {
        match self.code {
            Some(c) => (200..300).contains(&c) || c == 101,
            None => self.decision == "allow",
        }
    }

    /// Whether the request was refused by authentication or authorization.
    pub fn denied(&self) -> bool {
        matches!(self.code, Some(401 | 403)) || self.decision == "forbid"
    }

    /// `resource` or `resource/subresource`.
    pub fn resource_path(&self) -> Cow<'_, str> {
        if self.object_ref.subresource.is_empty() {
            Cow::Borrowed(&self.object_ref.resource)
        } else {
            Cow::Owned(format!(
                "{}/{}",
                self.object_ref.resource, self.object_ref.subresource
            ))
        }
    }

    /// A copy that owns its strings, for keeping beyond the input buffer.
    pub fn into_owned(self) -> Event<'static> {
        fn o(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        fn u(u: UserInfo<'_>) -> UserInfo<'static> {
            UserInfo {
                username: o(u.username),
                uid: o(u.uid),
                groups: u.groups.into_iter().map(o).collect(),
            }
        }
        // Bodies are parsed now, since the raw JSON borrows from the input.
        let request = OnceCell::from(parse_body(self.request_object));
        let response = OnceCell::from(parse_body(self.response_object));
        Event {
            audit_id: o(self.audit_id),
            stage: self.stage,
            level: o(self.level),
            verb: o(self.verb),
            request_uri: o(self.request_uri),
            user: u(self.user),
            impersonated_user: self.impersonated_user.map(u),
            source_ips: self.source_ips.into_iter().map(o).collect(),
            user_agent: o(self.user_agent),
            object_ref: ObjectRef {
                resource: o(self.object_ref.resource),
                subresource: o(self.object_ref.subresource),
                namespace: o(self.object_ref.namespace),
                name: o(self.object_ref.name),
                api_group: o(self.object_ref.api_group),
                api_version: o(self.object_ref.api_version),
            },
            code: self.code,
            decision: o(self.decision),
            reason: o(self.reason),
            time_us: self.time_us,
            request_us: self.request_us,
            request_object: None,
            response_object: None,
            shape: self.shape,
            cluster: o(self.cluster),
            request,
            response,
        }
    }
}

fn parse_body(raw: Option<&RawValue>) -> Option<Value> {
    let v: Value = serde_json::from_str(raw?.get()).ok()?;
    (!v.is_null()).then_some(v)
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_time_us(s: &str) -> Option<i64> {
    let t: jiff::Timestamp = s.parse().ok()?;
    Some(t.as_microsecond())
}

/// Formats microseconds since the epoch as RFC 3339 (UTC).
pub fn format_time_us(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Event<'_> {
    /// The event as an `audit.k8s.io/v1` `Event` with the facts it carries (what the webhook
    /// backend would have sent), whatever shape it was read from: the importer forwards
    /// CloudWatch, AKS and GKE exports to a server this way. Request and response bodies are
    /// kept as they were recorded; what the source shape did not say is left out.
    pub fn to_kubernetes(&self) -> Value {
        use serde_json::{Map, json};
        fn user(u: &UserInfo<'_>) -> Value {
            let mut m = Map::new();
            m.insert("username".into(), json!(u.username));
            if !u.uid.is_empty() {
                m.insert("uid".into(), json!(u.uid));
            }
            if !u.groups.is_empty() {
                m.insert("groups".into(), json!(u.groups));
            }
            Value::Object(m)
        }
        let mut e = Map::new();
        e.insert("kind".into(), json!("Event"));
        e.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
        let level = if self.level.is_empty() {
            "Metadata"
        } else {
            &self.level
        };
        e.insert("level".into(), json!(level));
        e.insert("auditID".into(), json!(self.audit_id));
        if let Some(stage) = self.stage {
            e.insert("stage".into(), json!(stage.as_str()));
        }
        e.insert("requestURI".into(), json!(self.request_uri));
        e.insert("verb".into(), json!(self.verb));
        e.insert("user".into(), user(&self.user));
        if let Some(i) = &self.impersonated_user {
            e.insert("impersonatedUser".into(), user(i));
        }
        e.insert("sourceIPs".into(), json!(self.source_ips));
        if !self.user_agent.is_empty() {
            e.insert("userAgent".into(), json!(self.user_agent));
        }
        let o = &self.object_ref;
        let mut obj = Map::new();
        for (k, v) in [
            ("resource", &o.resource),
            ("subresource", &o.subresource),
            ("namespace", &o.namespace),
            ("name", &o.name),
            ("apiGroup", &o.api_group),
            ("apiVersion", &o.api_version),
        ] {
            if !v.is_empty() {
                obj.insert(k.into(), json!(v));
            }
        }
        if !obj.is_empty() {
            e.insert("objectRef".into(), Value::Object(obj));
        }
        if let Some(code) = self.code {
            e.insert("responseStatus".into(), json!({ "code": code }));
        }
        let mut annotations = Map::new();
        if !self.decision.is_empty() {
            annotations.insert("authorization.k8s.io/decision".into(), json!(self.decision));
        }
        if !self.reason.is_empty() {
            annotations.insert("authorization.k8s.io/reason".into(), json!(self.reason));
        }
        if !annotations.is_empty() {
            e.insert("annotations".into(), Value::Object(annotations));
        }
        if let Some(us) = self.time_us {
            let t = format_time_us(us);
            e.insert("requestReceivedTimestamp".into(), json!(t));
            e.insert("stageTimestamp".into(), json!(t));
        }
        for (k, raw) in [
            ("requestObject", self.request_object),
            ("responseObject", self.response_object),
        ] {
            if let Some(v) = raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok()) {
                e.insert(k.into(), v);
            }
        }
        Value::Object(e)
    }
}

#[cfg(test)]
mod kubernetes_tests {
    use super::*;

    #[test]
    fn a_cloudwatch_record_becomes_the_kubernetes_event_it_holds() {
        let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a-1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/pods/web/exec?command=sh","verb":"create","user":{"username":"alice","uid":"u1","groups":["dev","system:authenticated"]},"impersonatedUser":{"username":"bob"},"sourceIPs":["198.51.100.7","10.0.0.1"],"userAgent":"kubectl/v1.30.0","objectRef":{"resource":"pods","subresource":"exec","namespace":"prod","name":"web","apiVersion":"v1"},"responseStatus":{"code":101},"requestObject":{"command":["sh"]},"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC"},"requestReceivedTimestamp":"2026-05-01T10:00:00.000000Z","stageTimestamp":"2026-05-01T10:00:00.250000Z"}"#;
        let record = format!(
            r#"{{"timestamp":1,"message":{},"logStreamName":"kube-apiserver-audit-1"}}"#,
            serde_json::to_string(event).unwrap()
        );
        let decoder = Decoder::default();
        let mut first = Vec::new();
        decoder.decode(record.as_bytes(), &mut |e: Event<'_>| {
            first.push(e.to_kubernetes())
        });
        assert_eq!(first.len(), 1);
        let text = first[0].to_string();
        let mut again = Vec::new();
        decoder.decode(text.as_bytes(), &mut |e: Event<'_>| {
            again.push(e.into_owned())
        });
        let (a, b) = (&again[0], {
            let mut v = Vec::new();
            decoder.decode(event.as_bytes(), &mut |e: Event<'_>| v.push(e.into_owned()));
            v.remove(0)
        });
        assert_eq!(a.shape, Some(Shape::Kubernetes));
        assert_eq!(
            (&a.audit_id, a.stage, &a.verb, &a.request_uri, &a.level),
            (&b.audit_id, b.stage, &b.verb, &b.request_uri, &b.level)
        );
        assert_eq!(
            (&a.user, &a.impersonated_user),
            (&b.user, &b.impersonated_user)
        );
        assert_eq!(
            (&a.source_ips, &a.user_agent),
            (&b.source_ips, &b.user_agent)
        );
        assert_eq!(a.object_ref, b.object_ref);
        assert_eq!(
            (a.code, &a.decision, &a.reason),
            (b.code, &b.decision, &b.reason)
        );
        assert_eq!(a.time_us, b.time_us);
        assert_eq!(a.request(), b.request());
        assert!(a.response().is_none());
    }
}
