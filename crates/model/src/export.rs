//! Findings in the open exchange formats: OCSF 1.3 Detection Finding (class 2004) and the AWS
//! Security Finding Format (ASFF), the shapes security data lakes and hubs ingest.

use serde_json::{Value, json};

use crate::{Finding, SeverityLabel};

/// Milliseconds since the epoch of an RFC 3339 time.
fn time_ms(t: Option<&str>) -> Option<i64> {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

/// An OCSF 1.3 Detection Finding (class 2004) for a detection finding (audit, malware).
pub fn ocsf_detection(f: &Finding) -> Value {
    let time = time_ms(f.last_seen.as_deref()).unwrap_or(0);
    let k8s = f.resource.kubernetes.as_ref();
    let action = f.action.as_ref();
    let evidence = f.evidence.as_ref();
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": if f.count > 1 { 2 } else { 1 },
        "activity_name": if f.count > 1 { "Update" } else { "Create" },
        "type_uid": if f.count > 1 { 200402 } else { 200401 },
        "time": time,
        "severity_id": f.severity.label.ocsf_id(),
        "severity": f.severity.label.ocsf_name(),
        "status_id": if f.suppression.is_some() { 3 } else { 1 },
        "status": if f.suppression.is_some() { "Suppressed" } else { "New" },
        "count": f.count,
        "message": f.title,
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.description,
            "types": [f.kind],
            "first_seen_time_dt": f.first_seen,
            "last_seen_time_dt": f.last_seen,
            "analytic": {
                "uid": evidence.map(|e| e.rule_id.clone()),
                "name": evidence.map(|e| e.rule_id.clone()),
                "type_id": 1,
                "type": "Rule",
                "category": evidence.map(|e| e.catalogue.join(",")),
            },
            "attacks": f.mitre.as_ref().map(|m| vec![json!({
                "tactic": {"uid": m.tactic},
                "technique": {"uid": m.technique},
                "version": "14.1",
            })]).unwrap_or_default(),
        },
        "actor": k8s.and_then(|k| k.user.as_ref()).map(|u| json!({
            "user": {"name": u.username, "uid": u.uid, "groups": u.groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>()},
        })),
        "src_endpoint": action.and_then(|a| a.source_ips.first()).map(|ip| json!({"ip": ip})),
        "api": action.map(|a| json!({
            "operation": a.verb,
            "request": {"uid": evidence.and_then(|e| e.audit_ids.last().cloned())},
            "response": {"code": a.status_code},
        })),
        "http_request": action.map(|a| json!({"url": {"path": a.request_uri}, "user_agent": a.user_agent})),
        "resources": [{
            "type": action.map(|a| a.resource.clone()),
            "name": action.map(|a| a.resource_name.clone()),
            "namespace": k8s.map(|k| k.namespace.clone()),
            "cloud_partition": null,
            "group": {"name": k8s.map(|k| k.cluster.clone())},
        }],
        "evidences": [{"data": evidence}],
        "metadata": {
            "version": "1.3.0",
            "product": {"name": "Osprey", "vendor_name": "Osprey", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {"osprey": f},
    })
}

/// Where an ASFF finding comes from: Security Hub needs a product ARN and an account; for a
/// self-hosted product these name the organization and the tenant.
#[derive(Debug, Clone)]
pub struct AsffContext<'a> {
    pub product_arn: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    /// `ACTIVE` or `ARCHIVED`.
    pub record_state: &'a str,
    /// `NEW`, `NOTIFIED`, `RESOLVED` or `SUPPRESSED`.
    pub workflow_status: &'a str,
    /// When the finding was stored and last changed (RFC 3339).
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

/// The ASFF type namespace of a finding type (`ThreatPurpose:ResourceType/…`).
fn asff_type(kind: &str) -> String {
    let purpose = kind.split(':').next().unwrap_or(kind);
    match purpose {
        "Vulnerability" => "Software and Configuration Checks/Vulnerabilities/CVE".into(),
        "Policy" => "Software and Configuration Checks/Industry and Regulatory Standards".into(),
        "Execution"
        | "Persistence"
        | "PrivilegeEscalation"
        | "DefenseEvasion"
        | "CredentialAccess"
        | "Discovery"
        | "Impact"
        | "InitialAccess" => {
            format!("TTPs/{purpose}/{kind}")
        }
        _ => format!("Unusual Behaviors/{kind}"),
    }
}

fn asff_label(label: SeverityLabel) -> &'static str {
    match label {
        SeverityLabel::Critical => "CRITICAL",
        SeverityLabel::High => "HIGH",
        SeverityLabel::Medium => "MEDIUM",
        SeverityLabel::Low => "LOW",
        SeverityLabel::Info | SeverityLabel::Untriaged => "INFORMATIONAL",
    }
}

/// One finding in the AWS Security Finding Format (schema 2018-10-08).
pub fn asff(f: &Finding, cx: &AsffContext<'_>) -> Value {
    let score = f.severity.score.unwrap_or(match f.severity.label {
        SeverityLabel::Critical => 9.5,
        SeverityLabel::High => 8.0,
        SeverityLabel::Medium => 5.0,
        SeverityLabel::Low => 2.0,
        _ => 0.0,
    });
    let mut resources = Vec::new();
    if let Some(k) = &f.resource.kubernetes {
        let id = match &k.workload {
            Some(w) => format!("{}/{}/{}/{}", k.cluster, k.namespace, w.kind, w.name),
            None => format!("{}/{}", k.cluster, k.namespace),
        };
        resources.push(json!({
            "Type": "Other",
            "Id": id,
            "Details": {"Other": {
                "cluster": k.cluster,
                "namespace": k.namespace,
                "user": k.user.as_ref().map(|u| u.username.clone()).unwrap_or_default(),
            }},
        }));
    }
    if let Some(i) = &f.resource.image {
        resources.push(json!({
            "Type": "Container",
            "Id": i.digest.clone().unwrap_or_else(|| i.reference.clone()),
            "Details": {"Container": {"ImageName": i.reference, "ImageId": i.digest}},
        }));
    }
    if resources.is_empty() {
        resources.push(json!({"Type": "Other", "Id": f.id}));
    }
    let now = cx.updated_at;
    let mut v = json!({
        "SchemaVersion": "2018-10-08",
        "Id": f.id,
        "ProductArn": cx.product_arn,
        "ProductName": "Osprey",
        "CompanyName": "Osprey",
        "Region": cx.region,
        "GeneratorId": f.evidence.as_ref().map(|e| e.rule_id.clone()).filter(|r| !r.is_empty()).unwrap_or_else(|| f.kind.clone()),
        "AwsAccountId": cx.account_id,
        "Types": [asff_type(&f.kind)],
        "FirstObservedAt": f.first_seen,
        "LastObservedAt": f.last_seen,
        "CreatedAt": cx.created_at,
        "UpdatedAt": now,
        "Severity": {"Label": asff_label(f.severity.label), "Normalized": (score * 10.0).round() as i64, "Original": format!("{score:.1}")},
        "Title": f.title.chars().take(256).collect::<String>(),
        "Description": if f.description.is_empty() { f.title.clone() } else { f.description.chars().take(1024).collect() },
        "Resources": resources,
        "RecordState": cx.record_state,
        "Workflow": {"Status": cx.workflow_status},
        "ProductFields": {"osprey/type": f.kind, "osprey/count": f.count.to_string()},
    });
    if let Some(vuln) = &f.vulnerability {
        v["Vulnerabilities"] = json!([{
            "Id": vuln.id,
            "VulnerablePackages": vuln.packages.iter().map(|p| json!({
                "Name": p.name, "Version": p.version, "PackageManager": p.ecosystem,
                "FixedInVersion": p.fixed_versions.first(),
            })).collect::<Vec<_>>(),
        }]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KubernetesResource, Resource, Severity};

    fn finding() -> Finding {
        Finding {
            id: "f1".into(),
            kind: "Execution:Kubernetes/ExecInKubeSystemPod".into(),
            title: "Exec in kube-system".into(),
            severity: Severity::from_score(7.5),
            count: 2,
            last_seen: Some("2026-11-20T09:00:00Z".into()),
            resource: Resource {
                kubernetes: Some(KubernetesResource {
                    cluster: "prod".into(),
                    namespace: "kube-system".into(),
                    ..KubernetesResource::default()
                }),
                ..Resource::default()
            },
            ..Finding::default()
        }
    }

    #[test]
    fn ocsf_is_a_detection_finding_update() {
        let v = ocsf_detection(&finding());
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200402);
        assert_eq!(v["time"], 1_795_165_200_000i64);
        assert_eq!(
            v["finding_info"]["types"][0],
            "Execution:Kubernetes/ExecInKubeSystemPod"
        );
    }

    #[test]
    fn asff_maps_types_severity_and_resources() {
        let cx = AsffContext {
            product_arn: "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default",
            account_id: "111122223333",
            region: "eu-west-1",
            record_state: "ACTIVE",
            workflow_status: "NEW",
            created_at: "2026-11-20T09:00:01Z",
            updated_at: "2026-11-20T09:00:02Z",
        };
        let v = asff(&finding(), &cx);
        assert_eq!(v["SchemaVersion"], "2018-10-08");
        assert_eq!(
            v["Types"][0],
            "TTPs/Execution/Execution:Kubernetes/ExecInKubeSystemPod"
        );
        assert_eq!(v["Severity"]["Label"], "HIGH");
        assert_eq!(v["Severity"]["Normalized"], 75);
        assert_eq!(v["Resources"][0]["Id"], "prod/kube-system");
        assert_eq!(
            asff_type("Vulnerability:Package/CVE"),
            "Software and Configuration Checks/Vulnerabilities/CVE"
        );
    }
}
