//! Findings in the open exchange formats: OCSF 1.3 — Vulnerability Finding (class 2002) for
//! vulnerabilities, Detection Finding (class 2004) for everything else — and the AWS Security
//! Finding Format (ASFF), the shapes security data lakes and hubs ingest. The CLI and the
//! server's export both map through here, so one finding has one OCSF shape.

use serde_json::{Value, json};

use crate::{Finding, FixAvailable, ImageResource, SeverityLabel, time_ms};

/// The OCSF event of a finding: a Vulnerability Finding (class 2002) when it is about a
/// vulnerability (its image as the resource), a Detection Finding (class 2004) otherwise.
pub fn ocsf(f: &Finding) -> Value {
    match &f.resource.image {
        Some(image) if f.vulnerability.is_some() => {
            let time = time_ms(f.last_seen.as_deref()).unwrap_or(0);
            ocsf_vulnerability(f, image, "Container Image", time)
        }
        _ => ocsf_detection(f),
    }
}

/// The events' metadata: OCSF 1.3, the Date/Time profile (the `*_dt` times), Osprey.
fn metadata() -> Value {
    json!({
        "version": "1.3.0",
        "profiles": ["datetime"],
        "product": {"name": "Osprey", "vendor_name": "Osprey", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// The OCSF finding statuses Osprey reports; the id and its caption go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcsfStatus {
    New,
    InProgress,
    Suppressed,
    Resolved,
}

impl OcsfStatus {
    pub fn id(self) -> u8 {
        match self {
            OcsfStatus::New => 1,
            OcsfStatus::InProgress => 2,
            OcsfStatus::Suppressed => 3,
            OcsfStatus::Resolved => 4,
        }
    }

    pub fn caption(self) -> &'static str {
        match self {
            OcsfStatus::New => "New",
            OcsfStatus::InProgress => "In Progress",
            OcsfStatus::Suppressed => "Suppressed",
            OcsfStatus::Resolved => "Resolved",
        }
    }

    /// Sets `status_id` and `status` of an OCSF event.
    pub fn apply(self, event: &mut Value) {
        event["status_id"] = json!(self.id());
        event["status"] = json!(self.caption());
    }
}

/// OCSF's status of a finding on its own: archived by a suppression rule (which the detail
/// names), or new. Where the finding is stored, its state and workflow decide instead
/// ([`OcsfStatus::apply`]).
fn set_status(event: &mut Value, f: &Finding) {
    match &f.suppression {
        Some(s) => {
            OcsfStatus::Suppressed.apply(event);
            event["status_detail"] = json!(format!("{} ({}): {}", s.status, s.by, s.reason));
        }
        None => OcsfStatus::New.apply(event),
    }
}

/// An OCSF 1.3 Vulnerability Finding (class 2002): the vulnerability, its CVSS ratings, every
/// affected package with its fix, and `target` (of type `resource_type`: a container image, an
/// SBOM) as the resource. `time` is in milliseconds since the epoch.
/// A finding without a vulnerability gets the Detection Finding shape instead.
pub fn ocsf_vulnerability(
    f: &Finding,
    target: &ImageResource,
    resource_type: &str,
    time: i64,
) -> Value {
    let Some(v) = f.vulnerability.as_ref() else {
        return ocsf_detection(f);
    };
    let packages: Vec<Value> = v
        .packages
        .iter()
        .map(|p| {
            let mut pkg = json!({
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "type": p.kind.as_str(),
                "package_manager": p.ecosystem,
            });
            if let Some(path) = &p.path {
                pkg["path"] = json!(path);
            }
            if let Some(fixed) = p.fixed_versions.first() {
                pkg["fixed_in_version"] = json!(fixed);
                pkg["remediation"] =
                    json!({ "desc": format!("Upgrade {} to {fixed} or later.", p.name) });
            }
            pkg
        })
        .collect();
    let cvss: Vec<Value> = v
        .cvss
        .iter()
        .map(|c| {
            json!({
                "version": c.version,
                "vector_string": c.vector,
                "base_score": c.base_score,
                "severity": SeverityLabel::from_score(c.base_score).ocsf_name(),
            })
        })
        .collect();
    let mut cve =
        json!({ "uid": v.id, "title": f.title, "desc": f.description, "references": v.references });
    if !cvss.is_empty() {
        cve["cvss"] = json!(cvss);
    }
    if let Some(p) = &v.published {
        cve["created_time_dt"] = json!(p);
    }
    let mut vulnerability = json!({
        "cve": cve,
        "title": f.title,
        "desc": f.description,
        "severity": f.severity.label.ocsf_name(),
        "references": v.references,
        "related_vulnerabilities": v.aliases,
        "fix_available": v.fix_available != FixAvailable::No,
        "affected_packages": packages,
        "vendor_name": "Osprey",
    });
    if let Some(first) = v.packages.first() {
        vulnerability["remediation"] = json!({
            "desc": match first.fixed_versions.first() {
                Some(fixed) => format!("Upgrade {} to {fixed} or later.", first.name),
                None => "No fixed version is known yet.".to_string(),
            }
        });
    }
    let mut event = json!({
        "class_uid": 2002,
        "class_name": "Vulnerability Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200201,
        "type_name": "Vulnerability Finding: Create",
        "time": time,
        "severity_id": f.severity.label.ocsf_id(),
        "severity": f.severity.label.ocsf_name(),
        "metadata": metadata(),
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.description,
            "types": [f.kind],
            "product_uid": "osprey",
        },
        "vulnerabilities": [vulnerability],
        "resources": [{
            "type": resource_type,
            "uid": target.digest.as_deref().unwrap_or(&target.reference),
            "name": target.reference,
        }],
    });
    set_status(&mut event, f);
    event
}

/// An OCSF 1.3 Detection Finding (class 2004) for a detection finding (audit, malware).
/// What the finding saw (who, from where, which API call) is its evidence artifact: OCSF
/// defines `actor`, `src_endpoint`, `http_request` and `api` there, not on the class.
pub fn ocsf_detection(f: &Finding) -> Value {
    let time = time_ms(f.last_seen.as_deref()).unwrap_or(0);
    let k8s = f.resource.kubernetes.as_ref();
    let action = f.action.as_ref();
    let mut finding_info = json!({
        "uid": f.id,
        "title": f.title,
        "desc": f.description,
        "types": [f.kind],
        "first_seen_time_dt": f.first_seen,
        "last_seen_time_dt": f.last_seen,
        "attacks": f.mitre.as_ref().map(|m| vec![json!({
            "tactic": {"uid": m.tactic},
            "technique": {"uid": m.technique},
            "version": "14.1",
        })]).unwrap_or_default(),
    });
    if let Some(e) = &f.evidence {
        finding_info["analytic"] = json!({
            "uid": e.rule_id,
            "name": e.rule_id,
            "type_id": 1,
            "type": "Rule",
            "category": e.catalogue.join(","),
        });
    }
    let mut resource = json!({});
    if let Some(a) = action {
        resource["type"] = json!(a.resource);
        resource["name"] = json!(a.resource_name);
    }
    if let Some(k) = k8s {
        resource["namespace"] = json!(k.namespace);
        resource["group"] = json!({"name": k.cluster});
    }
    let mut event = json!({
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
        "count": f.count,
        "message": f.title,
        "finding_info": finding_info,
        "resources": [resource],
        "evidences": [detection_evidence(f)],
        "metadata": metadata(),
        "unmapped": {"osprey": f},
    });
    set_status(&mut event, f);
    event
}

/// The evidence artifact of a detection: the user, the source address, the HTTP request and
/// the API call that raised it (each only when the finding has it), and Osprey's evidence.
fn detection_evidence(f: &Finding) -> Value {
    let mut artifact = json!({ "data": f.evidence });
    if let Some(u) = f.resource.kubernetes.as_ref().and_then(|k| k.user.as_ref()) {
        artifact["actor"] = json!({"user": {
            "name": u.username,
            "uid": u.uid,
            "groups": u.groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        }});
    }
    let Some(a) = f.action.as_ref() else {
        return artifact;
    };
    if let Some(ip) = a.source_ips.first() {
        artifact["src_endpoint"] = json!({"ip": ip});
    }
    artifact["http_request"] = json!({"url": {"path": a.request_uri}, "user_agent": a.user_agent});
    let mut api = json!({"operation": a.verb, "response": {"code": a.status_code}});
    if let Some(id) = f.evidence.as_ref().and_then(|e| e.audit_ids.last()) {
        api["request"] = json!({"uid": id});
    }
    artifact["api"] = api;
    artifact
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
    fn vulnerabilities_are_vulnerability_findings_everything_else_detections() {
        let image = crate::ImageResource {
            reference: "registry.example/app:1".into(),
            digest: Some("sha256:abc".into()),
            os: None,
        };
        let vuln = Finding {
            id: "v1".into(),
            kind: "Vulnerability:Image/PyPI".into(),
            title: "CVE-2018-18074 in requests 2.19.1".into(),
            severity: Severity::from_score(7.5),
            last_seen: Some("2026-11-20T09:00:00Z".into()),
            resource: Resource {
                image: Some(image.clone()),
                ..Resource::default()
            },
            vulnerability: Some(crate::Vulnerability {
                id: "CVE-2018-18074".into(),
                aliases: Vec::new(),
                cvss: Vec::new(),
                vendor_severity: Vec::new(),
                fix_available: FixAvailable::No,
                packages: Vec::new(),
                references: Vec::new(),
                published: None,
                modified: None,
            }),
            ..Finding::default()
        };
        let v = ocsf(&vuln);
        assert_eq!(v["class_uid"], 2002);
        assert_eq!(v["type_uid"], 200201);
        assert_eq!(v["metadata"]["version"], "1.3.0");
        assert_eq!(v["vulnerabilities"][0]["cve"]["uid"], "CVE-2018-18074");
        assert_eq!(v["resources"][0]["uid"], "sha256:abc");
        assert_eq!(v["resources"][0]["type"], "Container Image");
        assert_eq!(v["time"], 1_795_165_200_000i64);
        // The CLI's SBOM scans name their resource so.
        let sbom = ocsf_vulnerability(&vuln, &image, "SBOM", 5);
        assert_eq!(
            (sbom["resources"][0]["type"].clone(), sbom["time"].clone()),
            ("SBOM".into(), 5.into())
        );
        // Everything else, and a vulnerability without its image, is a Detection Finding.
        assert_eq!(ocsf(&finding())["class_uid"], 2004);
        let mut loose = vuln.clone();
        loose.resource.image = None;
        assert_eq!(ocsf(&loose)["class_uid"], 2004);
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
