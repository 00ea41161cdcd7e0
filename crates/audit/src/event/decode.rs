//! Decoding one JSON document into audit events, whatever its shape.
//!
//! One typed pass of serde_json reads both the fields of a Kubernetes `Event` and the keys that
//! reveal a wrapper (`items`, `message`, `records`, `protoPayload`, …), so the common case, an
//! `Event` per line, is parsed exactly once. Every field is read leniently: a value of the wrong
//! type (a number where a string belongs, a string where an object belongs) reads as absent
//! instead of failing the event, because audit pipelines (Fluent Bit, CloudWatch exports,
//! hand-edited samples) mangle types more often than they mangle structure.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use serde_json::value::RawValue;

use super::{Event, ObjectRef, Shape, Stage, UserInfo, parse_time_us};

mod stream;

/// Why a document holds no audit event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A value of the wrong type where the decoder needs one (a member that is not an event).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The document is not JSON: a syntax error, or it ends early.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    #[error("not valid UTF-8")]
    Utf8,
    #[error("not a Kubernetes audit event: {0}")]
    NotAnEvent(String),
    #[error("{what} larger than the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
}

/// Limits on what one document may hold.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Events in one document (an `EventList` or an export batch).
    pub max_events_per_document: usize,
    /// Wrappers inside wrappers (a CloudWatch export of AKS records is not a thing; two levels
    /// cover every real shape).
    pub max_wrapping: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            // The API server's webhook batches are at most 400 events and 10 MiB.
            max_events_per_document: 100_000,
            max_wrapping: 2,
        }
    }
}

/// Decodes documents into events.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    pub limits: DecodeLimits,
}

impl Decoder {
    pub fn new(limits: DecodeLimits) -> Decoder {
        Decoder { limits }
    }

    /// Decodes one JSON document, calling `sink` with each event it holds. The outcome counts
    /// the events and lists what was wrong with the document or with members of a batch;
    /// events given to `sink` stay given.
    pub fn decode<F>(&self, doc: &[u8], sink: &mut F) -> Decoded
    where
        F: FnMut(Event<'_>),
    {
        let mut run = Run {
            n: 0,
            errors: Vec::new(),
            skip: 0,
            sink,
        };
        let result = match std::str::from_utf8(doc) {
            Ok(text) => self.decode_str(text, 0, &Outer::default(), &mut run),
            Err(_) => Err(DecodeError::Utf8),
        };
        if let Err(e) = result {
            run.errors.push(e);
        }
        Decoded {
            events: run.n,
            errors: run.errors,
        }
    }

    /// Counts the events of one document as [`Decoder::decode`] would, without building them
    /// where it can: an `EventList` written `kind` first (the API server's webhook batches) is
    /// only read past, each member counted when it is an object naming a verb or a request URI
    /// (a member with a duplicate key, which decoding refuses, is counted); any other shape is
    /// decoded.
    pub fn count(&self, doc: &[u8]) -> Decoded {
        let mut sink = |_: Event<'_>| {};
        let mut run = Run {
            n: 0,
            errors: Vec::new(),
            skip: 0,
            sink: &mut sink,
        };
        let streamed = std::str::from_utf8(doc).is_ok_and(|text| {
            self.stream_list(text, &Outer::default(), &mut run, stream::Mode::Count)
                == stream::Streamed::Whole
        });
        if !streamed {
            return self.decode(doc, &mut |_| {});
        }
        Decoded {
            events: run.n,
            errors: run.errors,
        }
    }

    fn decode_str<F>(
        &self,
        text: &str,
        depth: usize,
        outer: &Outer<'_>,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        // serde reads structs from arrays too; an event is an object.
        if !text.trim_start().starts_with('{') {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(json_error)?;
            return Err(DecodeError::NotAnEvent("expected a JSON object".into()));
        }
        match self.stream_list(text, outer, run, stream::Mode::Decode) {
            stream::Streamed::Whole => return Ok(()),
            stream::Streamed::From(read) => run.skip = read,
            stream::Streamed::Not => {}
        }
        let doc: Doc<'_> = serde_json::from_str(text).map_err(json_error)?;
        self.decode_doc(doc, depth, outer, run)
    }

    fn decode_raw<F>(
        &self,
        raw: &RawValue,
        depth: usize,
        outer: &Outer<'_>,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        // A JSON string holding the event (CloudWatch `message`, AKS `properties.log` as a
        // string) is unescaped into its own buffer first.
        if raw.get().starts_with('"') {
            let s: String = serde_json::from_str(raw.get()).map_err(json_error)?;
            return self.decode_str(&s, depth, outer, run);
        }
        self.decode_str(raw.get(), depth, outer, run)
    }

    fn decode_doc<F>(
        &self,
        doc: Doc<'_>,
        depth: usize,
        outer: &Outer<'_>,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        let wrapped = depth + 1;
        let kind = doc.kind.0.as_deref().unwrap_or("");
        if kind == "EventList" || (kind.is_empty() && doc.items.0.is_some()) {
            let items = doc
                .items
                .0
                .ok_or_else(|| DecodeError::NotAnEvent("EventList without items".into()))?;
            return self.each(items, run, |this, item, run| {
                let ev: Doc<'_> = serde_json::from_str(item.get()).map_err(json_error)?;
                this.decode_event(ev, Shape::Kubernetes, outer, run)
            });
        }
        if let Some(proto) = doc.proto_payload.0 {
            return self.decode_gke(proto, &doc, run);
        }
        if doc.audit_id.0.is_some() || doc.verb.0.is_some() {
            if !kind.is_empty() && kind != "Event" {
                return Err(DecodeError::NotAnEvent(format!(
                    "kind is {kind:?}, expected \"Event\" or \"EventList\""
                )));
            }
            let shape = outer.shape.unwrap_or(Shape::Kubernetes);
            return self.decode_event(doc, shape, outer, run);
        }
        if depth >= self.limits.max_wrapping {
            return Err(DecodeError::NotAnEvent("wrapped too deeply".into()));
        }
        // EKS: a CloudWatch record, an `aws logs filter-log-events` answer, or a subscription
        // filter's DATA_MESSAGE.
        if let Some(message) = doc.message.0 {
            let o = Outer {
                shape: Some(Shape::CloudWatch),
                cluster: doc.log_group.0.as_deref().and_then(eks_cluster_of),
            };
            return self.decode_raw(message, wrapped, &o, run);
        }
        if let Some(list) = doc.events.0.or(doc.log_events.0) {
            let group = doc.log_group.0.clone();
            return self.each(list, run, |this, item, run| {
                let mut o = Outer {
                    shape: Some(Shape::CloudWatch),
                    cluster: group.as_deref().and_then(eks_cluster_of),
                };
                let rec: Doc<'_> = serde_json::from_str(item.get()).map_err(json_error)?;
                if o.cluster.is_none() {
                    o.cluster = rec.log_group.0.as_deref().and_then(eks_cluster_of);
                }
                let message = rec
                    .message
                    .0
                    .ok_or_else(|| DecodeError::NotAnEvent("log event without message".into()))?;
                this.decode_raw(message, wrapped, &o, run)
            });
        }
        // AKS: `{"records": [...]}` from Event Hub or storage, or one record.
        if let Some(records) = doc.records.0 {
            return self.each(records, run, |this, item, run| {
                let rec: Doc<'_> = serde_json::from_str(item.get()).map_err(json_error)?;
                this.decode_aks(rec, wrapped, run)
            });
        }
        if doc.properties.0.is_some() {
            return self.decode_aks(doc, wrapped, run);
        }
        Err(DecodeError::NotAnEvent(match doc.kind.0 {
            Some(k) => format!("kind {k:?} without auditID or verb"),
            None => "no auditID, verb, items, message, records or protoPayload".into(),
        }))
    }

    fn each<'d, F, G>(
        &self,
        list: &'d RawValue,
        run: &mut Run<'_, F>,
        mut one: G,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
        G: FnMut(&Self, &'d RawValue, &mut Run<'_, F>) -> Result<(), DecodeError>,
    {
        let items: Vec<&RawValue> = serde_json::from_str(list.get())
            .map_err(|_| DecodeError::NotAnEvent("a list of events that is not a list".into()))?;
        let skip = std::mem::take(&mut run.skip);
        for item in items.into_iter().skip(skip) {
            if run.n + run.errors.len() >= self.limits.max_events_per_document {
                return Err(DecodeError::TooLarge {
                    what: "events in one document",
                    limit: self.limits.max_events_per_document,
                });
            }
            // One bad member of a batch is reported; the others still count.
            if let Err(e) = one(self, item, run) {
                run.errors.push(e);
            }
        }
        Ok(())
    }

    fn decode_aks<F>(
        &self,
        rec: Doc<'_>,
        depth: usize,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        let props = rec
            .properties
            .0
            .ok_or_else(|| DecodeError::NotAnEvent("AKS record without properties".into()))?;
        let log = props
            .log
            .0
            .ok_or_else(|| DecodeError::NotAnEvent("AKS record without properties.log".into()))?;
        let o = Outer {
            shape: Some(Shape::AzureDiagnostics),
            cluster: rec.resource_id.0.as_deref().and_then(aks_cluster_of),
        };
        self.decode_raw(log, depth, &o, run)
    }

    fn decode_event<F>(
        &self,
        doc: Doc<'_>,
        shape: Shape,
        outer: &Outer<'_>,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        if doc.verb.0.is_none() && doc.request_uri.0.is_none() {
            return Err(DecodeError::NotAnEvent("event without verb".into()));
        }
        let annotations = doc.annotations.0.unwrap_or_default();
        let stage_us = doc.stage_timestamp.0.as_deref().and_then(parse_time_us);
        let request_received = doc.request_received_timestamp.0.as_deref();
        // Most events are written at one stage, with both timestamps alike: parsed once.
        let request_us =
            if request_received.is_some() && request_received == doc.stage_timestamp.0.as_deref() {
                stage_us
            } else {
                request_received.and_then(parse_time_us)
            };
        let time_us = stage_us
            .or(request_us)
            .or_else(|| doc.timestamp.0.as_deref().and_then(parse_time_us));
        let request_us = request_us.or(time_us);
        let object_ref = doc
            .object_ref
            .0
            .map(RawObjectRef::into_ref)
            .unwrap_or_default();
        let event = Event {
            audit_id: s(doc.audit_id),
            stage: doc.stage.0.as_deref().map(Stage::parse),
            level: s(doc.level),
            verb: s(doc.verb),
            request_uri: s(doc.request_uri),
            user: doc.user.0.map(RawUser::into_user).unwrap_or_default(),
            impersonated_user: doc.impersonated_user.0.map(RawUser::into_user),
            source_ips: doc.source_ips.0,
            user_agent: s(doc.user_agent),
            object_ref,
            code: doc.response_status.0.and_then(|r| r.code.0),
            decision: s(annotations.decision),
            reason: s(annotations.reason),
            time_us,
            request_us,
            request_object: doc.request_object.0,
            response_object: doc.response_object.0,
            shape: Some(shape),
            cluster: outer.cluster.clone().unwrap_or_default(),
            ..Event::default()
        };
        run.n += 1;
        (run.sink)(event);
        Ok(())
    }

    /// Maps a Cloud Audit Log entry onto the fields of a Kubernetes event.
    fn decode_gke<F>(
        &self,
        proto: &RawValue,
        doc: &Doc<'_>,
        run: &mut Run<'_, F>,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        let p: Proto<'_> = serde_json::from_str(proto.get()).map_err(json_error)?;
        let method = p.method_name.0.as_deref().unwrap_or("");
        if method.is_empty() {
            return Err(DecodeError::NotAnEvent(
                "protoPayload without methodName".into(),
            ));
        }
        // `io.k8s.core.v1.pods.exec.create` → verb `create`; the resource comes from
        // resourceName, which has the namespace and name too.
        let verb = method.rsplit('.').next().unwrap_or("");
        let object_ref = p
            .resource_name
            .0
            .as_deref()
            .map(gke_object_ref)
            .unwrap_or_default();
        let code = p
            .status
            .0
            .as_ref()
            .map(|s| grpc_to_http(s.code.0.unwrap_or(0)));
        let (decision, reason) = doc
            .labels
            .0
            .as_ref()
            .map(|l| (l.decision.0.clone(), l.reason.0.clone()))
            .unwrap_or_default();
        let user = UserInfo {
            username: p
                .authentication_info
                .0
                .and_then(|a| a.principal_email.0)
                .unwrap_or_default(),
            ..UserInfo::default()
        };
        let (source_ips, user_agent) = match p.request_metadata.0 {
            Some(m) => (
                m.caller_ip.0.into_iter().collect(),
                m.caller_supplied_user_agent.0.unwrap_or_default(),
            ),
            None => (Vec::new(), Cow::Borrowed("")),
        };
        let time_us = doc.timestamp.0.as_deref().and_then(parse_time_us);
        let cluster = doc
            .resource
            .0
            .as_ref()
            .and_then(|r| r.labels.0.as_ref())
            .and_then(|l| l.cluster_name.0.clone())
            .unwrap_or_default();
        let event = Event {
            audit_id: doc.insert_id.0.clone().unwrap_or_default(),
            stage: Some(Stage::ResponseComplete),
            level: Cow::Borrowed(if p.request.0.is_some() {
                "RequestResponse"
            } else {
                "Metadata"
            }),
            verb: Cow::Owned(verb.to_string()),
            request_uri: Cow::Owned(format!("/{}", p.resource_name.0.as_deref().unwrap_or(""))),
            user,
            source_ips,
            user_agent,
            object_ref,
            code,
            decision: decision.unwrap_or_default(),
            reason: reason.unwrap_or_default(),
            time_us,
            request_us: time_us,
            request_object: p.request.0,
            response_object: p.response.0,
            shape: Some(Shape::GoogleCloudAudit),
            cluster,
            ..Event::default()
        };
        run.n += 1;
        (run.sink)(event);
        Ok(())
    }
}

/// What [`Decoder::decode`] found in one document.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: usize,
    /// Why the document, or members of a batch, held no event.
    pub errors: Vec<DecodeError>,
}

struct Run<'s, F> {
    n: usize,
    errors: Vec<DecodeError>,
    /// Members of the next list already read by the one pass ([`stream::Streamed::From`]).
    skip: usize,
    sink: &'s mut F,
}

/// What a wrapper tells about the events inside it.
#[derive(Default)]
struct Outer<'a> {
    shape: Option<Shape>,
    cluster: Option<Cow<'a, str>>,
}

fn s<'a>(v: LStr<'a>) -> Cow<'a, str> {
    v.0.unwrap_or_default()
}

pub(super) fn json_error(e: serde_json::Error) -> DecodeError {
    if e.is_syntax() || e.is_eof() {
        DecodeError::Syntax(e.to_string())
    } else {
        DecodeError::Json(e.to_string())
    }
}

/// `/aws/eks/<cluster>/cluster` → `<cluster>`.
fn eks_cluster_of(group: &str) -> Option<Cow<'static, str>> {
    let rest = group.strip_prefix("/aws/eks/")?;
    let name = rest.strip_suffix("/cluster").unwrap_or(rest);
    (!name.is_empty()).then(|| Cow::Owned(name.to_string()))
}

/// `/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/<name>` → `<name>` (lower case, as AKS writes it upper).
fn aks_cluster_of(id: &str) -> Option<Cow<'static, str>> {
    let lower = id.to_ascii_lowercase();
    let (_, name) = lower.split_once("/managedclusters/")?;
    let name = name.split('/').next()?;
    (!name.is_empty()).then(|| Cow::Owned(name.to_string()))
}

/// `core/v1/namespaces/default/pods/nginx/exec` → pods/exec of nginx in default;
/// `rbac.authorization.k8s.io/v1/clusterrolebindings/x` → clusterrolebindings x.
fn gke_object_ref(name: &str) -> ObjectRef<'static> {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    let own = |s: &str| Cow::Owned(s.to_string());
    let mut r = ObjectRef::default();
    if parts.len() < 3 {
        return r;
    }
    if parts[0] != "core" {
        r.api_group = own(parts[0]);
    }
    r.api_version = own(parts[1]);
    let mut rest = &parts[2..];
    if rest.len() >= 3 && rest[0] == "namespaces" {
        r.namespace = own(rest[1]);
        rest = &rest[2..];
    } else if rest.len() == 2 && rest[0] == "namespaces" {
        r.resource = own("namespaces");
        r.name = own(rest[1]);
        return r;
    }
    if let Some(res) = rest.first() {
        r.resource = own(res);
    }
    if let Some(n) = rest.get(1) {
        r.name = own(n);
    }
    if let Some(sub) = rest.get(2) {
        r.subresource = own(sub);
    }
    r
}

/// Cloud Audit Log `status.code` is a google.rpc code; rules read HTTP codes.
fn grpc_to_http(code: i64) -> u16 {
    match code {
        0 => 200,
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 => 404,
        6 | 10 => 409,
        8 => 429,
        12 => 501,
        14 => 503,
        4 => 504,
        _ => 500,
    }
}

/// Every key of an event or a wrapper; unknown keys are skipped by serde.
#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow, default)]
    kind: LStr<'a>,
    #[serde(borrow, default, rename = "auditID")]
    audit_id: LStr<'a>,
    #[serde(borrow, default)]
    stage: LStr<'a>,
    #[serde(borrow, default)]
    level: LStr<'a>,
    #[serde(borrow, default)]
    verb: LStr<'a>,
    #[serde(borrow, default, rename = "requestURI")]
    request_uri: LStr<'a>,
    #[serde(borrow, default)]
    user: Lenient<RawUser<'a>>,
    #[serde(borrow, default, rename = "impersonatedUser")]
    impersonated_user: Lenient<RawUser<'a>>,
    #[serde(borrow, default, rename = "sourceIPs")]
    source_ips: LStrList<'a>,
    #[serde(borrow, default, rename = "userAgent")]
    user_agent: LStr<'a>,
    #[serde(borrow, default, rename = "objectRef")]
    object_ref: Lenient<RawObjectRef<'a>>,
    #[serde(default, rename = "responseStatus")]
    response_status: Lenient<RawStatus>,
    #[serde(borrow, default)]
    annotations: Lenient<RawAnnotations<'a>>,
    #[serde(borrow, default, rename = "requestReceivedTimestamp")]
    request_received_timestamp: LStr<'a>,
    #[serde(borrow, default, rename = "stageTimestamp")]
    stage_timestamp: LStr<'a>,
    #[serde(borrow, default, rename = "requestObject")]
    request_object: LRaw<'a>,
    #[serde(borrow, default, rename = "responseObject")]
    response_object: LRaw<'a>,
    // Wrappers.
    #[serde(borrow, default)]
    items: LRaw<'a>,
    #[serde(borrow, default)]
    message: LRaw<'a>,
    #[serde(borrow, default)]
    events: LRaw<'a>,
    #[serde(borrow, default, rename = "logEvents")]
    log_events: LRaw<'a>,
    #[serde(borrow, default, rename = "logGroup")]
    log_group: LStr<'a>,
    #[serde(borrow, default)]
    records: LRaw<'a>,
    #[serde(borrow, default)]
    properties: Lenient<AksProperties<'a>>,
    #[serde(borrow, default, rename = "resourceId")]
    resource_id: LStr<'a>,
    #[serde(borrow, default, rename = "protoPayload")]
    proto_payload: LRaw<'a>,
    #[serde(borrow, default, rename = "insertId")]
    insert_id: LStr<'a>,
    #[serde(borrow, default)]
    timestamp: LStr<'a>,
    #[serde(borrow, default)]
    labels: Lenient<RawAnnotations<'a>>,
    #[serde(borrow, default)]
    resource: Lenient<GkeResource<'a>>,
}

#[derive(Deserialize, Default)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    username: LStr<'a>,
    #[serde(borrow, default)]
    uid: LStr<'a>,
    #[serde(borrow, default)]
    groups: LStrList<'a>,
}

impl<'a> RawUser<'a> {
    fn into_user(self) -> UserInfo<'a> {
        UserInfo {
            username: s(self.username),
            uid: s(self.uid),
            groups: self.groups.0,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawObjectRef<'a> {
    #[serde(borrow, default)]
    resource: LStr<'a>,
    #[serde(borrow, default)]
    subresource: LStr<'a>,
    #[serde(borrow, default)]
    namespace: LStr<'a>,
    #[serde(borrow, default)]
    name: LStr<'a>,
    #[serde(borrow, default, rename = "apiGroup")]
    api_group: LStr<'a>,
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: LStr<'a>,
}

impl<'a> RawObjectRef<'a> {
    fn into_ref(self) -> ObjectRef<'a> {
        ObjectRef {
            resource: s(self.resource),
            subresource: s(self.subresource),
            namespace: s(self.namespace),
            name: s(self.name),
            api_group: s(self.api_group),
            api_version: s(self.api_version),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawStatus {
    #[serde(default)]
    code: LU16,
}

#[derive(Deserialize, Default)]
struct RawAnnotations<'a> {
    #[serde(borrow, default, rename = "authorization.k8s.io/decision")]
    decision: LStr<'a>,
    #[serde(borrow, default, rename = "authorization.k8s.io/reason")]
    reason: LStr<'a>,
}

#[derive(Deserialize, Default)]
struct AksProperties<'a> {
    #[serde(borrow, default)]
    log: LRaw<'a>,
}

#[derive(Deserialize, Default)]
struct GkeResource<'a> {
    #[serde(borrow, default)]
    labels: Lenient<GkeLabels<'a>>,
}

#[derive(Deserialize, Default)]
struct GkeLabels<'a> {
    #[serde(borrow, default)]
    cluster_name: LStr<'a>,
}

#[derive(Deserialize)]
struct Proto<'a> {
    #[serde(borrow, default, rename = "methodName")]
    method_name: LStr<'a>,
    #[serde(borrow, default, rename = "resourceName")]
    resource_name: LStr<'a>,
    #[serde(borrow, default, rename = "authenticationInfo")]
    authentication_info: Lenient<GkeAuthn<'a>>,
    #[serde(borrow, default, rename = "requestMetadata")]
    request_metadata: Lenient<GkeRequestMetadata<'a>>,
    #[serde(default)]
    status: Lenient<GkeStatus>,
    #[serde(borrow, default)]
    request: LRaw<'a>,
    #[serde(borrow, default)]
    response: LRaw<'a>,
}

#[derive(Deserialize, Default)]
struct GkeAuthn<'a> {
    #[serde(borrow, default, rename = "principalEmail")]
    principal_email: LStr<'a>,
}

#[derive(Deserialize, Default)]
struct GkeRequestMetadata<'a> {
    #[serde(borrow, default, rename = "callerIp")]
    caller_ip: LStr<'a>,
    #[serde(borrow, default, rename = "callerSuppliedUserAgent")]
    caller_supplied_user_agent: LStr<'a>,
}

#[derive(Deserialize, Default)]
struct GkeStatus {
    #[serde(default)]
    code: LI64,
}

/// A string, or absent when the value is missing, null or of another type.
#[derive(Default)]
struct LStr<'a>(Option<Cow<'a, str>>);

/// A list of strings (a lone string counts as a list of one); other values are skipped.
#[derive(Default)]
struct LStrList<'a>(Vec<Cow<'a, str>>);

/// Any JSON value except null, kept raw.
#[derive(Default)]
struct LRaw<'a>(Option<&'a RawValue>);

/// A small unsigned number (or a string of digits).
#[derive(Default)]
struct LU16(Option<u16>);

#[derive(Default)]
struct LI64(Option<i64>);

/// An object read as `T`, or absent when the value is not an object.
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

/// `visit_*` methods of a lenient visitor for values of the wrong kind, which read as `$none`.
macro_rules! ignore_bool_unit {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

macro_rules! ignore_scalars {
    ($none:expr) => {
        ignore_bool_unit!($none);
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// Skips an array or an object of the wrong kind (it still has to be read past).
macro_rules! drain_seq {
    ($none:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

macro_rules! drain_map {
    ($none:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    ignore_scalars!(None);
    drain_seq!(None);
    drain_map!(None);
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor).map(LStr)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LStrList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<Cow<'de, str>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(LStr(v)) = seq.next_element::<LStr<'de>>()? {
                    out.extend(v);
                }
                Ok(out)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(vec![Cow::Borrowed(v)])
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(vec![Cow::Owned(v.to_string())])
            }
            ignore_scalars!(Vec::new());
            drain_map!(Vec::new());
        }
        d.deserialize_any(V).map(LStrList)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LRaw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok(LRaw((raw.get() != "null").then_some(raw)))
    }
}

fn number_visitor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok((v.fract() == 0.0 && v.abs() < 1e15).then_some(v as i64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        ignore_bool_unit!(None);
        drain_seq!(None);
        drain_map!(None);
    }
    d.deserialize_any(V)
}

impl<'de> Deserialize<'de> for LU16 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LU16(number_visitor(d)?.and_then(|v| u16::try_from(v).ok())))
    }
}

impl<'de> Deserialize<'de> for LI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LI64(number_visitor(d)?))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Some)
            }
            ignore_scalars!(None);
            drain_seq!(None);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V(PhantomData)).map(Lenient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn all(doc: &str) -> Result<Vec<Event<'static>>, DecodeError> {
        let mut out = Vec::new();
        let d =
            Decoder::default().decode(doc.as_bytes(), &mut |e: Event<'_>| out.push(e.into_owned()));
        assert_eq!(d.events, out.len());
        match d.errors.into_iter().next() {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    pub(super) const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/kube-system/pods/p/exec?command=sh","verb":"create","user":{"username":"alice","groups":["dev","system:authenticated"]},"sourceIPs":["203.0.113.9","10.0.0.1"],"userAgent":"kubectl/v1.30","objectRef":{"resource":"pods","namespace":"kube-system","name":"p","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2024-05-01T10:00:00.000001Z","stageTimestamp":"2024-05-01T10:00:00.500000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC"}}"#;

    #[test]
    fn kubernetes_event() {
        let e = &all(EXEC).unwrap()[0];
        assert_eq!(e.audit_id, "a1");
        assert_eq!(e.stage(), Stage::ResponseStarted);
        assert_eq!(e.verb, "create");
        assert_eq!(e.user.username, "alice");
        assert_eq!(e.user.groups, ["dev", "system:authenticated"]);
        assert_eq!(e.source_ip(), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(e.object_ref.subresource, "exec");
        assert_eq!(e.resource_path(), "pods/exec");
        assert_eq!(e.code, Some(101));
        assert!(e.succeeded() && !e.denied());
        assert_eq!(e.decision, "allow");
        assert_eq!(e.time_us, Some(1_714_557_600_500_000));
        assert_eq!(
            e.request_us,
            Some(1_714_557_600_000_001),
            "the request's time"
        );
        assert_eq!(e.shape, Some(Shape::Kubernetes));
    }

    #[test]
    fn event_list_batches() {
        let doc = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{EXEC},{EXEC}]}}"#
        );
        assert_eq!(all(&doc).unwrap().len(), 2);
    }

    #[test]
    fn wrong_types_are_tolerated() {
        let doc = r#"{"kind":"Event","auditID":7,"verb":"get","user":"bob","sourceIPs":"1.2.3.4","objectRef":{"resource":["x"],"namespace":"ns"},"responseStatus":{"code":"403"},"annotations":[],"stageTimestamp":12}"#;
        let e = &all(doc).unwrap()[0];
        assert_eq!(e.audit_id, "");
        assert_eq!(e.user.username, "");
        assert_eq!(e.source_ips, ["1.2.3.4"]);
        assert_eq!(e.object_ref.resource, "");
        assert_eq!(e.object_ref.namespace, "ns");
        assert_eq!(e.code, Some(403));
        assert!(e.denied());
        assert_eq!(e.time_us, None);
    }

    #[test]
    fn eks_cloudwatch_exports() {
        let message = serde_json::to_string(EXEC).unwrap();
        let record = format!(
            r#"{{"timestamp":1714557600000,"message":{message},"logStreamName":"kube-apiserver-audit-1"}}"#
        );
        let e = all(&record).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].shape, Some(Shape::CloudWatch));
        assert_eq!(e[0].user.username, "alice");

        let filter = format!(
            r#"{{"events":[{{"logStreamName":"s","timestamp":1,"message":{message},"eventId":"1"}},{{"message":{message}}}],"searchedLogStreams":[]}}"#
        );
        assert_eq!(all(&filter).unwrap().len(), 2);
        let sub = format!(
            r#"{{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/prod/cluster","logEvents":[{{"id":"1","timestamp":1,"message":{message}}}]}}"#
        );
        let e = all(&sub).unwrap();
        assert_eq!(e[0].cluster, "prod");
    }

    #[test]
    fn aks_records_with_object_or_string_logs() {
        let message = serde_json::to_string(EXEC).unwrap();
        let doc = format!(
            r#"{{"records":[{{"category":"kube-audit","resourceId":"/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS1","properties":{{"log":{message},"stream":"stdout"}}}},{{"category":"kube-audit","properties":{{"log":{EXEC}}}}}]}}"#
        );
        let e = all(&doc).unwrap();
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| e.shape == Some(Shape::AzureDiagnostics)));
        assert_eq!(e[0].cluster, "aks1");
        assert_eq!(e[1].verb, "create");
    }

    #[test]
    fn gke_cloud_audit_log() {
        let doc = r#"{"insertId":"abc","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"system:anonymous"},"methodName":"io.k8s.core.v1.pods.exec.create","requestMetadata":{"callerIp":"198.51.100.7","callerSuppliedUserAgent":"curl/8.0"},"resourceName":"core/v1/namespaces/default/pods/web-1/exec","serviceName":"k8s.io","status":{"code":7}},"resource":{"type":"k8s_cluster","labels":{"cluster_name":"gke-1","location":"europe-west1"}},"timestamp":"2024-05-01T10:00:00Z","labels":{"authorization.k8s.io/decision":"forbid"}}"#;
        let e = &all(doc).unwrap()[0];
        assert_eq!(e.verb, "create");
        assert_eq!(e.object_ref.resource, "pods");
        assert_eq!(e.object_ref.subresource, "exec");
        assert_eq!(e.object_ref.namespace, "default");
        assert_eq!(e.object_ref.name, "web-1");
        assert_eq!(e.user.username, "system:anonymous");
        assert_eq!(e.code, Some(403));
        assert_eq!(e.decision, "forbid");
        assert_eq!(e.cluster, "gke-1");
        assert_eq!(e.user_agent, "curl/8.0");
        let ns = gke_object_ref("core/v1/namespaces/foo");
        assert_eq!(
            (ns.resource.as_ref(), ns.name.as_ref()),
            ("namespaces", "foo")
        );
        let crb = gke_object_ref("rbac.authorization.k8s.io/v1/clusterrolebindings/x");
        assert_eq!(crb.api_group, "rbac.authorization.k8s.io");
        assert_eq!(
            (crb.resource.as_ref(), crb.name.as_ref()),
            ("clusterrolebindings", "x")
        );
    }

    #[test]
    fn not_events() {
        assert!(matches!(
            all(r#"{"kind": 0}"#),
            Err(DecodeError::NotAnEvent(_))
        ));
        assert!(
            matches!(all(r#"{"kind":"Pod","verb":"get"}"#), Err(DecodeError::NotAnEvent(m)) if m.contains("Pod"))
        );
        assert!(matches!(all("[1,2]"), Err(DecodeError::NotAnEvent(_))));
        assert!(matches!(all("[1,"), Err(DecodeError::Syntax(_))));
        assert!(matches!(all("{"), Err(DecodeError::Syntax(_))));
        assert!(matches!(
            all(r#"{"kind":"EventList","items":7}"#),
            Err(DecodeError::NotAnEvent(_))
        ));
        assert!(matches!(
            all(r#"{"message":"{\"message\":\"{}\"}"}"#),
            Err(DecodeError::NotAnEvent(_))
        ));
        // A batch with one bad member keeps the good ones.
        let doc = format!(r#"{{"kind":"EventList","items":[{EXEC},{{"kind":0}}]}}"#);
        let d = Decoder::default().decode(doc.as_bytes(), &mut |_| {});
        assert_eq!(d.events, 1);
        assert_eq!(d.errors.len(), 1);
    }

    #[test]
    fn batch_limit() {
        let d = Decoder::new(DecodeLimits {
            max_events_per_document: 1,
            ..DecodeLimits::default()
        });
        let doc = format!(r#"{{"kind":"EventList","items":[{EXEC},{EXEC}]}}"#);
        let r = d.decode(doc.as_bytes(), &mut |_| {});
        assert_eq!(r.events, 1);
        assert!(matches!(r.errors[..], [DecodeError::TooLarge { .. }]));
    }
}
