//! What the graph makes of untrusted audit content: a JSON document read as a pod object and
//! as the fields of calls (any strings: names that are not Kubernetes names, huge user
//! agents, odd addresses) goes through a Recorder; every id it makes parses back to itself
//! and every edge stays within the id limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_graph::{ApiCall, EntityId, PodChange, PodProperties, Recorder};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else { return };
    let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut r = Recorder::new(8, 0);
    for (i, stage) in [false, true].into_iter().enumerate() {
        r.call(ApiCall {
            cluster_id: text("cluster").into(),
            audit_id: text("auditID").into(),
            final_stage: stage,
            request_ms: doc.get("ms").and_then(Value::as_i64).unwrap_or(i as i64),
            username: text("user").into(),
            source_ip: text("ip").parse().ok(),
            user_agent: text("userAgent").into(),
            verb: text("verb").into(),
            resource: text("resource").into(),
            namespace: text("namespace").into(),
            name: text("name").into(),
            code: doc.get("code").and_then(Value::as_u64).map(|c| c as u16),
        });
    }
    if let Some(p) = PodProperties::of(&doc) {
        let node = p.node.clone().unwrap_or_default();
        r.pod(&text("cluster"), &text("namespace"), &text("name"), 0, PodChange::Spec(p));
        r.pod(&text("cluster"), &text("namespace"), &text("name"), 1, PodChange::Bound { node });
    }
    let delta = r.take(0);
    for s in &delta.entities {
        let id = s.id.to_string();
        assert!(id.len() <= osprey_graph::entity::MAX_ID_BYTES, "{id}");
        assert_eq!(EntityId::parse(&id).expect("a made id parses"), s.id);
    }
});
