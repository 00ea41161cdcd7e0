//! A cluster snapshot as `PUT /v1/clusters/{id}/snapshot` receives it (any bytes): read, its
//! RBAC evaluated for every pod it lists and the impact of each pod computed, without a
//! panic; what it reads stays within the snapshot's limits.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use osprey_graph::impact::{LivePod, Target, impact};
use osprey_graph::rbac::{MAX_RULES, Rbac};
use osprey_graph::snapshot::{MAX_ITEMS, read};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = read(data) else { return };
    assert!(s.pods.len() + s.rbac.len() + s.service_accounts.len() + s.ignored + s.finished_pods <= MAX_ITEMS);
    for o in &s.rbac {
        if let osprey_graph::rbac::Body::Role { rules } = &o.body {
            assert!(rules.len() <= MAX_RULES);
        }
    }
    let pods: Vec<LivePod> = s
        .pods
        .iter()
        .map(|p| LivePod {
            cluster: "c".into(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            properties: p.properties.clone(),
        })
        .collect();
    let rbac = HashMap::from([("c".to_string(), Rbac::new(s.rbac))]);
    for p in pods.iter().take(8) {
        let target = Target::Pod {
            cluster: "c".into(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
        };
        let i = impact(&target, &pods, &rbac);
        assert!(i.pods_total >= 1 && i.pods.len() <= i.pods_total);
    }
});
