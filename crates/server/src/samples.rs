//! Sample findings: one per finding type Osprey raises, for testing what consumes findings
//! (outputs, dashboards, SIEM parsers) without staging an attack.

use osprey_audit::RuleSet;
use osprey_model::{
    Evidence, Finding, ImageResource, KubernetesResource, KubernetesUser, Mitre, Resource,
    Severity, Workload,
};

/// A finding type and how its findings read.
#[derive(Debug, Clone)]
pub struct CatalogueEntry {
    pub kind: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub rule_id: String,
    pub mitre: Option<Mitre>,
}

/// Every type the audit catalogue can raise (first rule of each type), then the scan types.
pub fn catalogue(rules: &RuleSet) -> Vec<CatalogueEntry> {
    let mut out: Vec<CatalogueEntry> = Vec::new();
    for r in rules.rules.iter().filter(|r| r.def.enabled) {
        if out.iter().any(|e| e.kind == r.def.kind) {
            continue;
        }
        out.push(CatalogueEntry {
            kind: r.def.kind.clone(),
            title: r.def.title.clone(),
            description: r.def.description.clone(),
            severity: r.severity,
            rule_id: r.def.id.clone(),
            mitre: r.def.mitre.as_ref().map(|m| Mitre {
                tactic: m.tactic.clone(),
                technique: m.technique.clone(),
            }),
        });
    }
    for (kind, title, score) in [
        (
            "Execution:Kubernetes/MaliciousFile",
            "Malicious file in a workload's image",
            8.0,
        ),
        (
            "Execution:Container/MaliciousFile",
            "Malicious file in a container image",
            8.0,
        ),
        (
            "Vulnerability:Package/CVE",
            "Vulnerable package in a container image",
            7.5,
        ),
    ] {
        out.push(CatalogueEntry {
            kind: kind.into(),
            title: title.into(),
            description: String::new(),
            severity: Severity::from_score(score),
            rule_id: String::new(),
            mitre: None,
        });
    }
    out
}

/// One sample finding per catalogue entry, on a sample workload in `cluster`.
pub fn findings(catalogue: &[CatalogueEntry], cluster: &str, now: &str) -> Vec<Finding> {
    catalogue
        .iter()
        .map(|e| {
            let scan = e.kind.contains("MaliciousFile") || e.kind.starts_with("Vulnerability:");
            Finding {
                id: String::new(),
                kind: e.kind.clone(),
                title: format!("[SAMPLE] {}", e.title),
                description: format!(
                    "This is a sample finding, made to test integrations. {}",
                    e.description
                )
                .trim_end()
                .to_string(),
                severity: e.severity,
                count: 1,
                first_seen: Some(now.to_string()),
                last_seen: Some(now.to_string()),
                resource: Resource {
                    image: scan.then(|| ImageResource {
                        reference: "registry.example.com/sample/app:1.0".into(),
                        digest: Some(format!("sha256:{}", "0".repeat(64))),
                        ..ImageResource::default()
                    }),
                    kubernetes: Some(KubernetesResource {
                        cluster: cluster.to_string(),
                        namespace: "default".into(),
                        user: (!scan).then(|| KubernetesUser {
                            username: "sample-user".into(),
                            ..KubernetesUser::default()
                        }),
                        workload: Some(Workload {
                            kind: "Pod".into(),
                            name: "sample-pod".into(),
                            ..Workload::default()
                        }),
                    }),
                },
                evidence: Some(Evidence {
                    rule_id: e.rule_id.clone(),
                    ..Evidence::default()
                }),
                mitre: e.mitre.clone(),
                ..Finding::default()
            }
        })
        .collect()
}
