//! OCSF 1.1 Vulnerability Finding events (class 2002), one per finding, as a JSON array: the
//! shape security data lakes (and the managed services' exports) ingest.

use std::io::Write;

use osprey_model::{Finding, SeverityLabel};
use serde_json::{Value, json};

use super::Subject;

pub fn write(
    out: &mut dyn Write,
    subject: &Subject<'_>,
    findings: &[Finding],
    suppressed: &[Finding],
) -> std::io::Result<()> {
    let time = super::now().as_millisecond();
    let events: Vec<Value> = findings
        .iter()
        .chain(suppressed)
        .map(|f| event(f, subject, time))
        .collect();
    serde_json::to_writer_pretty(&mut *out, &events)?;
    writeln!(out)
}

fn event(f: &Finding, subject: &Subject<'_>, time: i64) -> Value {
    let v = f.vulnerability.as_ref().expect("vulnerability findings");
    let (status_id, status) = if f.suppression.is_some() {
        (3, "Suppressed")
    } else {
        (1, "New")
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
        "fix_available": v.fix_available != osprey_model::FixAvailable::No,
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
        "status_id": status_id,
        "status": status,
        "metadata": {
            "version": "1.1.0",
            "product": { "name": "Osprey", "vendor_name": "Osprey", "version": env!("CARGO_PKG_VERSION") },
        },
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.description,
            "types": [f.kind],
            "product_uid": "osprey",
        },
        "vulnerabilities": [vulnerability],
        "resources": [{
            "type": if subject.kind == "image" { "Container Image" } else { "SBOM" },
            "uid": subject.target.digest.as_deref().unwrap_or(&subject.target.reference),
            "name": subject.target.reference,
        }],
    });
    if let Some(s) = &f.suppression {
        event["status_detail"] = json!(format!("{} ({}): {}", s.status, s.by, s.reason));
    }
    event
}
