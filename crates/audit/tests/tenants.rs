//! One engine, several tenants: each call of `Engine::process_for` uses the tenant's own IP
//! lists and suppression rules, and nothing of one tenant's leaks into another's detections or
//! into the engine's own settings.

use osprey_audit::event::Decoder;
use osprey_audit::intel::ListLimits;
use osprey_audit::{Engine, EngineOptions, Event, Findings, Intel, IpList, ListKind, Loader};
use osprey_audit::{RuleSet, TenantOverlay};

const ATTACKER: &str = "203.0.113.7";

/// A secrets read from `ip` by a user of `cluster`: a credential-access call.
fn secrets_read(cluster: &str, ip: &str, n: usize) -> String {
    serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("{cluster}-{n}"), "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/secrets/db", "verb": "get",
        "user": {"username": "dev@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": [ip], "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-11-02T10:00:00.000000Z",
        "stageTimestamp": "2026-11-02T10:00:00.100000Z"
    })
    .to_string()
}

fn custom_list(ips: &[&str]) -> Intel {
    let mut intel = Intel::default();
    intel.add(
        IpList::parse(
            "tenant-list",
            "test",
            ips.join("\n").as_bytes(),
            ListKind::Custom,
            &ListLimits::default(),
        )
        .unwrap(),
    );
    intel
}

fn run(engine: &mut Engine, cluster: &str, overlay: Option<&TenantOverlay>) -> Findings {
    let mut findings = Findings::default();
    let text = secrets_read(cluster, ATTACKER, 1);
    Decoder::default().decode(text.as_bytes(), &mut |mut e: Event<'_>| {
        e.cluster = cluster.to_string().into();
        match overlay {
            Some(o) => engine.process_for(&e, &mut findings, o),
            None => engine.process(&e, &mut findings),
        }
    });
    findings
}

fn custom_ip_findings(findings: Findings) -> Vec<(String, bool)> {
    findings
        .into_list()
        .into_iter()
        .filter(|f| f.kind.ends_with("MaliciousIPCaller.Custom"))
        .map(|f| (f.kind, f.suppression.is_some()))
        .collect()
}

#[test]
fn each_tenant_is_detected_with_its_own_lists_and_suppressions() {
    let loader = Loader::builtin();
    let suppress = loader
        .suppression(
            "known-scanner",
            "*MaliciousIPCaller*",
            &format!("source.ip = \"{ATTACKER}\""),
            "our own scanner",
        )
        .unwrap();
    let rules: RuleSet = loader.compile().unwrap();
    let mut engine = Engine::new(rules, Intel::default(), EngineOptions::default());
    let listing = TenantOverlay {
        intel: custom_list(&[ATTACKER]),
        suppressions: Vec::new(),
    };
    let silent = TenantOverlay::default();
    let suppressing = TenantOverlay {
        intel: custom_list(&[ATTACKER]),
        suppressions: vec![suppress],
    };

    let a = custom_ip_findings(run(&mut engine, "a", Some(&listing)));
    assert_eq!(
        a,
        [(
            "CredentialAccess:Kubernetes/MaliciousIPCaller.Custom".to_string(),
            false
        )]
    );
    // The next tenant's call does not see the first tenant's list...
    assert!(custom_ip_findings(run(&mut engine, "b", Some(&silent))).is_empty());
    // ...a third's suppression rule archives its own finding only...
    let c = custom_ip_findings(run(&mut engine, "c", Some(&suppressing)));
    assert_eq!(c.len(), 1);
    assert!(c[0].1, "archived by the tenant's suppression rule");
    assert!(!custom_ip_findings(run(&mut engine, "a2", Some(&listing)))[0].1);
    // ...and the engine's own settings (none) were never replaced.
    assert!(engine.intel.is_empty());
    assert!(engine.rules.suppressions.is_empty());
    assert!(custom_ip_findings(run(&mut engine, "d", None)).is_empty());
}
