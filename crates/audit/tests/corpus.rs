//! Real captures from testdata/k8s-audit: each Falco trace file yields exactly its
//! expected detections (findings above Info; the Info audit trail is checked separately), the
//! negatives yield none, the audit2rbac logs (benign) yield no High finding, and the malformed
//! sample is reported, not fatal.

use std::collections::BTreeSet;
use std::path::Path;

use osprey_audit::event::reader::{Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, Loader, RuleSet};
use osprey_model::{Finding, SeverityLabel};
use osprey_testkit::tools::testdata;

fn analyze(path: &Path, rules: RuleSet) -> (Vec<Finding>, u64, u64) {
    let mut engine = Engine::new(rules, Intel::default(), EngineOptions::default());
    let mut findings = Findings::default();
    let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
    let file = std::fs::File::open(path).unwrap();
    reader
        .read_all(file, &mut |e: Event<'_>| engine.process(&e, &mut findings))
        .unwrap();
    (
        findings.into_list(),
        reader.stats.events,
        reader.stats.malformed,
    )
}

fn rule_ids(findings: &[Finding], min: SeverityLabel) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| f.severity.label >= min)
        .map(|f| {
            f.evidence
                .as_ref()
                .unwrap()
                .rule_id
                .trim_start_matches("osprey.")
                .to_string()
        })
        .collect()
}

const EXPECTED: &[(&str, &[&str])] = &[
    (
        "anonymous_creates_namespace_foo",
        &["anonymous-request-allowed"],
    ),
    (
        "attach_cluster_admin_role",
        &["admin-binding", "role-binding-changed"],
    ),
    ("attach_pod", &["exec-in-pod"]),
    ("exec_pod", &["exec-in-pod"]),
    ("create_cluster_role_pod_exec", &["role-grants-exec"]),
    ("create_cluster_role_wildcard_resources", &["wildcard-role"]),
    ("create_cluster_role_wildcard_verbs", &["wildcard-role"]),
    (
        "create_cluster_role_write_privileges",
        &["role-grants-writes"],
    ),
    ("create_clusterrole", &[]),
    ("create_clusterrolebinding", &["role-binding-changed"]),
    ("create_configmap", &[]),
    (
        "create_configmap_sensitive_values",
        &["configmap-credentials"],
    ),
    ("create_deployment", &[]),
    ("create_nginx_pod_hostnetwork", &["host-network"]),
    (
        "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container",
        &["privileged-container"],
    ),
    ("create_nginx_pod_privileged", &["privileged-container"]),
    (
        "create_nginx_pod_privileged_2nd_container",
        &["privileged-container"],
    ),
    (
        "create_nginx_pod_sensitive_mount",
        &["sensitive-host-mount", "writable-sensitive-mount"],
    ),
    (
        "create_nginx_pod_sensitive_mount_2nd_container",
        &["sensitive-host-mount", "writable-sensitive-mount"],
    ),
    ("create_nginx_service_nodeport", &["nodeport-service"]),
    (
        "create_pod_kube_public_namespace",
        &["pod-in-system-namespace"],
    ),
    (
        "create_pod_kube_system_namespace",
        &["pod-in-system-namespace"],
    ),
    ("create_secret", &["secret-changed"]),
    ("create_service", &[]),
    ("create_serviceaccount", &["service-account-created"]),
    (
        "create_serviceaccount_kube_public_namespace",
        &["service-account-in-system-namespace"],
    ),
    (
        "create_serviceaccount_kube_system_namespace",
        &["service-account-in-system-namespace"],
    ),
    (
        "delete_cluster_role_kube_aggregator",
        &["system-rbac-modified"],
    ),
    ("delete_clusterrole", &[]),
    ("delete_clusterrolebinding", &["role-binding-changed"]),
    ("delete_configmap", &[]),
    ("delete_deployment", &["deployment-deleted"]),
    ("delete_namespace_foo", &["namespace-deleted"]),
    ("delete_secret", &["secret-changed"]),
    ("delete_service", &[]),
    ("delete_serviceaccount", &[]),
    (
        "modify_cluster_role_node_problem_detector",
        &["system-rbac-modified", "role-grants-writes"],
    ),
    // Negatives of the Falco test matrix.
    ("create_nginx_pod_unprivileged", &[]),
    ("create_nginx_pod_nohostnetwork", &[]),
    ("create_nginx_pod_unsensitive_mount", &[]),
    ("create_nginx_service_nonodeport", &[]),
    ("create_configmap_no_sensitive_values", &[]),
    ("create_kube_system_secret", &[]),
    ("create_service_account_token_secret", &[]),
    ("minikube_creates_namespace_foo", &[]),
    // Allow-list dependent (C66/C67 are off until their lists are filled in).
    ("some-user_creates_namespace_foo", &[]),
];

fn falco(name: &str) -> std::path::PathBuf {
    testdata(&format!("k8s-audit/falco-trace-files/{name}.json"))
}

#[test]
fn falco_captures_yield_exactly_their_detections() {
    let mut problems = Vec::new();
    let files: BTreeSet<String> = std::fs::read_dir(testdata("k8s-audit/falco-trace-files"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "json").then_some(stem)
        })
        .collect();
    let covered: BTreeSet<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    let missing: Vec<_> = files
        .difference(&covered)
        .filter(|f| *f != "fal_01_003")
        .collect();
    assert!(
        missing.is_empty(),
        "captures without expectations: {missing:?}"
    );
    for (file, expected) in EXPECTED {
        let (findings, events, malformed) = analyze(&falco(file), RuleSet::builtin());
        assert!(
            events > 0 && malformed == 0,
            "{file}: {events} events, {malformed} malformed"
        );
        let got = rule_ids(&findings, SeverityLabel::Low);
        let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        if got != want {
            problems.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn audit_trail_records_creations_and_deletions() {
    for file in [
        "create_configmap",
        "create_deployment",
        "create_service",
        "create_secret",
        "create_serviceaccount",
        "create_clusterrole",
        "create_clusterrolebinding",
        "delete_configmap",
        "delete_deployment",
        "delete_namespace_foo",
        "delete_secret",
        "delete_service",
        "delete_serviceaccount",
        "delete_clusterrole",
        "delete_clusterrolebinding",
        "some-user_creates_namespace_foo",
    ] {
        let (findings, _, _) = analyze(&falco(file), RuleSet::builtin());
        let trail = findings
            .iter()
            .find(|f| f.kind == "Policy:Kubernetes/AuditTrail")
            .unwrap_or_else(|| panic!("{file}: no audit-trail finding"));
        assert_eq!(trail.severity.label, SeverityLabel::Info, "{file}");
        assert_eq!(trail.evidence.as_ref().unwrap().catalogue, ["C76"]);
    }
}

#[test]
fn allow_lists_turn_on_the_user_and_namespace_rules() {
    let rules = || {
        let mut l = Loader::builtin();
        l.add_text(
            "allow.yaml",
            "lists:\n  - {name: allowed_users, items: [minikube, minikube-user]}\n  - {name: allowed_namespaces, items: [foo], append: true}\nenable: [osprey.disallowed-user, osprey.namespace-outside-allow-list]\n",
        )
        .unwrap();
        l.compile().unwrap()
    };
    let (f, _, _) = analyze(&falco("some-user_creates_namespace_foo"), rules());
    assert_eq!(
        rule_ids(&f, SeverityLabel::Low),
        BTreeSet::from(["disallowed-user".to_string()])
    );
    let (f, _, _) = analyze(&falco("minikube_creates_namespace_foo"), rules());
    assert!(rule_ids(&f, SeverityLabel::Low).is_empty());
    // Without foo allowed, the namespace rule fires for both.
    let mut l = Loader::builtin();
    l.add_text("a.yaml", "enable: [osprey.namespace-outside-allow-list]")
        .unwrap();
    let (f, _, _) = analyze(
        &falco("minikube_creates_namespace_foo"),
        l.compile().unwrap(),
    );
    assert!(rule_ids(&f, SeverityLabel::Low).contains("namespace-outside-allow-list"));
}

#[test]
fn finding_details_follow_the_managed_service_shape() {
    let (findings, _, _) = analyze(&falco("create_nginx_pod_privileged"), RuleSet::builtin());
    let f = findings
        .iter()
        .find(|f| f.kind == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched")
        .unwrap();
    assert_eq!(f.severity.label, SeverityLabel::High);
    assert_eq!(f.mitre.as_ref().unwrap().tactic, "TA0004");
    let k8s = f.resource.kubernetes.as_ref().unwrap();
    assert_eq!(k8s.namespace, "default");
    assert_eq!(
        k8s.user.as_ref().unwrap().username,
        "system:serviceaccount:kube-system:replicaset-controller"
    );
    let w = k8s.workload.as_ref().unwrap();
    assert_eq!(w.kind, "pods");
    assert!(w.name.starts_with("nginx-deployment-"), "{}", w.name);
    assert!(
        w.containers
            .iter()
            .any(|c| c.privileged && c.image_prefix == "nginx")
    );
    let action = f.action.as_ref().unwrap();
    assert_eq!(
        (action.verb.as_str(), action.status_code),
        ("create", Some(201))
    );
    let ev = f.evidence.as_ref().unwrap();
    assert_eq!(ev.catalogue, ["C22"]);
    assert_eq!(ev.audit_ids.len(), 1);
    assert_eq!(f.count, 1);
    assert!(f.first_seen.as_deref().unwrap().starts_with("2018-"));
}

#[test]
fn malformed_sample_is_reported_not_fatal() {
    let (findings, events, malformed) = analyze(&falco("fal_01_003"), RuleSet::builtin());
    assert_eq!((events, malformed, findings.len()), (0, 1, 0));
}

#[test]
fn benign_audit2rbac_logs_have_no_high_findings() {
    for log in [
        "k8s-audit/audit2rbac/demo.log",
        "k8s-audit/audit2rbac/501d132/demo.log",
    ] {
        let (findings, events, malformed) = analyze(&testdata(log), RuleSet::builtin());
        assert!(events >= 37, "{log}: {events}");
        assert_eq!(malformed, 0, "{log}");
        let high: Vec<_> = findings
            .iter()
            .filter(|f| f.severity.label >= SeverityLabel::High)
            .map(|f| &f.kind)
            .collect();
        assert!(high.is_empty(), "{log}: {high:?}");
        // Its impersonation events impersonate unprivileged users.
        assert!(
            !findings
                .iter()
                .any(|f| f.kind == "PrivilegeEscalation:Kubernetes/PrivilegedImpersonation")
        );
    }
}
