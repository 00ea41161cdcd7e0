//! The shipped audit policy (deploy/audit-policy.yaml) asks for request bodies of every
//! resource a built-in rule reads a body of, and never for secrets' bodies.

use std::collections::BTreeSet;

use osprey_audit::RuleSet;
use osprey_audit::rules::field::Field;
use serde_json::Value;

fn policy() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/audit-policy.yaml");
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resources(rule: &Value) -> BTreeSet<String> {
    rule["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["resources"].as_array().into_iter().flatten())
        .map(|r| r.as_str().unwrap().split('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn bodies_where_rules_read_them_and_nowhere_near_secrets() {
    let p = policy();
    assert_eq!(p["kind"], "Policy");
    assert_eq!(p["apiVersion"], "audit.k8s.io/v1");
    let rules = p["rules"].as_array().unwrap();
    let mut with_body = BTreeSet::new();
    let mut secrets_seen = false;
    for r in rules {
        let level = r["level"].as_str().unwrap();
        let res = resources(r);
        if res.contains("secrets") {
            assert_eq!(
                level, "Metadata",
                "secrets must never be recorded with bodies"
            );
            secrets_seen = true;
        }
        if matches!(level, "Request" | "RequestResponse") {
            assert!(
                secrets_seen,
                "the secrets rule must come before any body rule"
            );
            with_body.extend(res);
        }
    }
    assert_eq!(rules.last().unwrap()["level"], "Metadata");

    let set = RuleSet::builtin();
    let mut missing = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for r in set.rules.iter().filter(|r| r.reads_body) {
        for res in r.cond.pinned(&Field::Resource).unwrap_or_default() {
            checked.insert(res.clone());
            // C53 reads a Secret's type: the policy deliberately records no secret bodies.
            if res != "secrets" && !with_body.contains(&res) {
                missing.insert(format!("{res} ({})", r.def.id));
            }
        }
    }
    assert!(missing.is_empty(), "no request bodies for: {missing:?}");
    for r in [
        "pods",
        "deployments",
        "cronjobs",
        "clusterrolebindings",
        "services",
        "configmaps",
    ] {
        assert!(
            checked.contains(r),
            "{r} not among the resources rules read bodies of"
        );
    }
}

#[test]
fn the_webhook_config_points_at_the_listener() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/audit-webhook.yaml");
    let c: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(c["kind"], "Config");
    let server = c["clusters"][0]["cluster"]["server"].as_str().unwrap();
    assert!(server.ends_with("/k8s-audit"), "{server}");
    assert_eq!(c["current-context"], c["contexts"][0]["name"]);
    assert!(c["users"][0]["user"]["token"].is_string());
}
