//! Every catalogue row (C01–C76) and every managed-service finding type has a positive and a
//! negative case in `tests/cases/*.yaml`; this harness runs them and checks that coverage.
//!
//! A case is a short story of events written compactly (verb, resource, user, body, …) and
//! expanded here into real audit.k8s.io/v1 events, run through the built-in catalogue (plus
//! any rule text and threat lists the case brings), and checked: a positive case must produce
//! a finding of each rule it names in `fires`; a negative case none of the rules in `silent`.

use std::collections::{BTreeMap, BTreeSet};

use osprey_audit::event::{Decoder, Event};
use osprey_audit::intel::{IpList, ListKind, ListLimits};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, Loader};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Catalogue rows and managed-service types the case exercises.
    covers: Vec<String>,
    #[serde(default)]
    negative: bool,
    events: Vec<Ev>,
    #[serde(default)]
    fires: Vec<String>,
    #[serde(default)]
    silent: Vec<String>,
    /// Extra rule-file text (lists, enable, exceptions).
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    intel: BTreeMap<String, Vec<String>>,
    /// Learning period in seconds (baseline cases).
    #[serde(default)]
    learning: Option<i64>,
    /// Load MaxMind's test ASN database.
    #[serde(default)]
    asn: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Ev {
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    ns: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    ua: Option<String>,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    impersonate: Option<String>,
    #[serde(default)]
    impersonate_groups: Option<Vec<String>>,
    /// Seconds after the start of the story.
    #[serde(default)]
    t: Option<i64>,
    /// Repeat the event N times (names get a numeric suffix when `vary_name`).
    #[serde(default)]
    repeat: Option<usize>,
    #[serde(default)]
    vary: Option<String>,
    /// The cluster the event comes from (one engine may be fed several).
    #[serde(default)]
    cluster: Option<String>,
}

fn api_group(resource: &str) -> &'static str {
    match resource {
        "deployments" | "daemonsets" | "statefulsets" | "replicasets" => "apps",
        "jobs" | "cronjobs" => "batch",
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" => {
            "rbac.authorization.k8s.io"
        }
        "certificatesigningrequests" => "certificates.k8s.io",
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => {
            "admissionregistration.k8s.io"
        }
        "ingresses" => "networking.k8s.io",
        "selfsubjectaccessreviews" | "selfsubjectrulesreviews" => "authorization.k8s.io",
        _ => "",
    }
}

const T0: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z

fn expand(ev: &Ev, index: usize) -> Value {
    let verb = ev.verb.as_deref().unwrap_or("get");
    let resource = ev.resource.as_deref().unwrap_or("");
    let mut name = ev.name.clone().unwrap_or_default();
    let mut ns = ev.ns.clone().unwrap_or_default();
    let mut ip = ev.ip.clone().unwrap_or_else(|| "10.0.0.5".into());
    let mut user = ev.user.clone().unwrap_or_else(|| "alice".into());
    match ev.vary.as_deref() {
        Some("name") => name = format!("{name}{index}"),
        Some("ns") => ns = format!("{ns}{index}"),
        Some("resource") => {}
        Some("ip") => ip = format!("198.51.100.{}", index + 1),
        Some("user") => user = format!("{user}{index}"),
        Some("uri") => {}
        _ => {}
    }
    let resource = if ev.vary.as_deref() == Some("resource") {
        format!("{resource}{index}")
    } else {
        resource.to_string()
    };
    let group = ev
        .group
        .clone()
        .unwrap_or_else(|| api_group(&resource).to_string());
    let code = ev.code.unwrap_or(if verb == "create" { 201 } else { 200 });
    let uri = ev.uri.clone().map(|u| {
        if ev.vary.as_deref() == Some("uri") {
            format!("{u}/x{index}")
        } else {
            u
        }
    });
    let uri = uri.unwrap_or_else(|| {
        let base = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/v1")
        };
        let mut u = base;
        if !ns.is_empty() {
            u.push_str(&format!("/namespaces/{ns}"));
        }
        if !resource.is_empty() {
            u.push_str(&format!("/{resource}"));
        }
        if !name.is_empty() {
            u.push_str(&format!("/{name}"));
        }
        if let Some(s) = &ev.sub {
            u.push_str(&format!("/{s}"));
        }
        if ev.vary.as_deref() == Some("uri") {
            u.push_str(&format!("/x{index}"));
        }
        if let Some(q) = &ev.query {
            u.push('?');
            u.push_str(q);
        }
        u
    });
    let t = T0 + ev.t.unwrap_or(0) + index as i64;
    let time = jiff::Timestamp::from_second(t).unwrap().to_string();
    let mut object_ref = json!({"resource": resource, "apiVersion": "v1"});
    if !group.is_empty() {
        object_ref["apiGroup"] = json!(group);
    }
    if !ns.is_empty() {
        object_ref["namespace"] = json!(ns);
    }
    if !name.is_empty() {
        object_ref["name"] = json!(name);
    }
    if let Some(s) = &ev.sub {
        object_ref["subresource"] = json!(s);
    }
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": if ev.body.is_some() { "RequestResponse" } else { "Metadata" },
        "auditID": format!("case-{index}-{t}"),
        "stage": ev.stage.clone().unwrap_or_else(|| "ResponseComplete".into()),
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ev.groups.clone().unwrap_or_else(|| vec!["system:authenticated".into()])},
        "sourceIPs": [ip],
        "userAgent": ev.ua.clone().unwrap_or_else(|| "kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b".into()),
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": if matches!(code, 401 | 403) { "forbid" } else { "allow" }},
    });
    if !resource.is_empty() {
        e["objectRef"] = object_ref;
    }
    if let Some(b) = &ev.body {
        e["requestObject"] = b.clone();
    }
    if let Some(u) = &ev.impersonate {
        e["impersonatedUser"] =
            json!({"username": u, "groups": ev.impersonate_groups.clone().unwrap_or_default()});
    }
    e
}

fn run(case: &Case) -> Vec<osprey_model::Finding> {
    let mut loader = Loader::builtin();
    if let Some(text) = &case.rules {
        loader
            .add_text(&format!("case {}", case.name), text)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
    let rules = loader
        .compile()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut intel = Intel::default();
    for (kind, ips) in &case.intel {
        let kind = match kind.as_str() {
            "threat" => ListKind::Threat,
            "custom" => ListKind::Custom,
            "tor" => ListKind::Tor,
            "trusted" => ListKind::Trusted,
            k => panic!("{}: unknown list kind {k}", case.name),
        };
        let mut list = IpList::parse(
            &format!("{kind:?}-list").to_lowercase(),
            "case",
            ips.join("\n").as_bytes(),
            kind,
            &ListLimits::default(),
        )
        .unwrap();
        list.kind = kind;
        intel.add(list);
    }
    if case.asn {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/GeoLite2-ASN-Test.mmdb");
        intel.set_asn_db(osprey_audit::intel::AsnDb::open(&path, &ListLimits::default()).unwrap());
    }
    let options = EngineOptions {
        learning_period_us: case.learning.unwrap_or(7 * 86_400) * 1_000_000,
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(rules, intel, options);
    let mut findings = Findings::default();
    let decoder = Decoder::default();
    let mut index = 0;
    for ev in &case.events {
        for _ in 0..ev.repeat.unwrap_or(1) {
            let text = expand(ev, index).to_string();
            index += 1;
            let d = decoder.decode(text.as_bytes(), &mut |mut e: Event<'_>| {
                if let Some(c) = &ev.cluster {
                    e.cluster = c.clone().into();
                }
                engine.process(&e, &mut findings)
            });
            assert_eq!(d.events, 1, "{}: {:?}", case.name, d.errors);
        }
    }
    findings.into_list()
}

fn load_cases() -> Vec<Case> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut c: Vec<Case> =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        cases.append(&mut c);
    }
    cases
}

#[test]
fn every_case_behaves() {
    let cases = load_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let findings = run(case);
        let fired: BTreeSet<&str> = findings
            .iter()
            .filter(|f| f.suppression.is_none())
            .filter_map(|f| f.evidence.as_ref().map(|e| e.rule_id.as_str()))
            .collect();
        for r in &case.fires {
            if !fired.contains(r.as_str()) {
                failures.push(format!("{}: expected {r}, fired {fired:?}", case.name));
            }
        }
        for r in &case.silent {
            if fired.contains(r.as_str()) {
                failures.push(format!("{}: {r} must not fire", case.name));
            }
        }
        assert!(
            case.negative == case.fires.is_empty() && case.negative != case.silent.is_empty(),
            "{}: a positive case names `fires`, a negative one `silent`",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Catalogue rows and managed-service types, from the design document's tables.
fn catalogue() -> (Vec<String>, Vec<String>) {
    let rows = (1..=76).map(|i| format!("C{i:02}")).collect();
    let gd = [
        "CredentialAccess:Kubernetes/MaliciousIPCaller",
        "CredentialAccess:Kubernetes/MaliciousIPCaller.Custom",
        "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess",
        "CredentialAccess:Kubernetes/TorIPCaller",
        "DefenseEvasion:Kubernetes/MaliciousIPCaller",
        "DefenseEvasion:Kubernetes/MaliciousIPCaller.Custom",
        "DefenseEvasion:Kubernetes/SuccessfulAnonymousAccess",
        "DefenseEvasion:Kubernetes/TorIPCaller",
        "Discovery:Kubernetes/MaliciousIPCaller",
        "Discovery:Kubernetes/MaliciousIPCaller.Custom",
        "Discovery:Kubernetes/SuccessfulAnonymousAccess",
        "Discovery:Kubernetes/TorIPCaller",
        "Execution:Kubernetes/ExecInKubeSystemPod",
        "Impact:Kubernetes/MaliciousIPCaller",
        "Impact:Kubernetes/MaliciousIPCaller.Custom",
        "Impact:Kubernetes/SuccessfulAnonymousAccess",
        "Impact:Kubernetes/TorIPCaller",
        "Persistence:Kubernetes/MaliciousIPCaller",
        "Persistence:Kubernetes/MaliciousIPCaller.Custom",
        "Persistence:Kubernetes/SuccessfulAnonymousAccess",
        "Persistence:Kubernetes/TorIPCaller",
        "Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        "Policy:Kubernetes/AnonymousAccessGranted",
        "Policy:Kubernetes/ExposedDashboard",
        "Policy:Kubernetes/KubeflowDashboardExposed",
        "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",
        "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",
        "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
    ];
    (rows, gd.iter().map(|s| s.to_string()).collect())
}

#[test]
fn every_row_and_type_has_a_rule_and_both_kinds_of_case() {
    let (rows, types) = catalogue();
    assert_eq!(types.len(), 33);
    let set = osprey_audit::RuleSet::builtin();
    let mut loader = Loader::builtin();
    // Rules shipped disabled still implement their rows.
    loader
        .add_text(
            "enable-all",
            "enable: [osprey.default-admin-user, osprey.disallowed-user, osprey.disallowed-image, osprey.untrusted-node, osprey.namespace-outside-allow-list]",
        )
        .unwrap();
    let all = loader.compile().unwrap();
    assert!(all.rules.len() > set.rules.len());
    let mut problems = Vec::new();
    for row in &rows {
        if !all.rules.iter().any(|r| r.def.catalogue.contains(row)) {
            problems.push(format!("no rule implements {row}"));
        }
    }
    for t in &types {
        let Some(r) = set.rules.iter().find(|r| &r.def.kind == t) else {
            problems.push(format!("no enabled rule has type {t}"));
            continue;
        };
        assert!(
            r.def.mitre.is_some() || t.starts_with("Policy:"),
            "{t} without MITRE"
        );
    }
    let cases = load_cases();
    for key in rows.iter().chain(&types) {
        for negative in [false, true] {
            if !cases
                .iter()
                .any(|c| c.negative == negative && c.covers.contains(key))
            {
                problems.push(format!(
                    "{key}: no {} case",
                    if negative { "negative" } else { "positive" }
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn managed_service_types_keep_their_default_severities() {
    let set = osprey_audit::RuleSet::builtin();
    let high = [
        "CredentialAccess:Kubernetes/MaliciousIPCaller",
        "DefenseEvasion:Kubernetes/TorIPCaller",
        "Impact:Kubernetes/SuccessfulAnonymousAccess",
        "Persistence:Kubernetes/SuccessfulAnonymousAccess",
        "Policy:Kubernetes/AnonymousAccessGranted",
        "Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
    ];
    let medium = [
        "Discovery:Kubernetes/MaliciousIPCaller",
        "Discovery:Kubernetes/SuccessfulAnonymousAccess",
        "Execution:Kubernetes/ExecInKubeSystemPod",
        "Persistence:Kubernetes/MaliciousIPCaller.Custom",
        "Persistence:Kubernetes/TorIPCaller",
        "Policy:Kubernetes/ExposedDashboard",
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
    ];
    let low = [
        "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",
        "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
    ];
    use osprey_model::SeverityLabel::*;
    for (types, label) in [(&high[..], High), (&medium[..], Medium), (&low[..], Low)] {
        for t in types {
            let r = set.rules.iter().find(|r| &r.def.kind == t).unwrap();
            assert_eq!(r.severity.label, label, "{t}");
        }
    }
}
