//! What a scan reports and what fails a pipeline: severity and fix filters, ignore rules and
//! VEX statements. Suppression works per vulnerable package: a rule that covers only some of
//! a finding's packages leaves the finding with the others.

pub mod ignore;
pub mod vex;

use osprey_model::{Finding, FixAvailable, SeverityLabel, Suppression, VulnerablePackage};

/// Filters from the command line.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Keep only these severities (all when empty).
    pub severities: Vec<SeverityLabel>,
    /// Drop packages without a fixed version (and findings left with none).
    pub ignore_unfixed: bool,
}

/// Findings after policy: what remains, and what was suppressed (with why).
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Finding>,
}

/// A source of suppressions: decides for one vulnerable package of one finding.
pub trait Suppressor {
    fn suppression(&self, finding: &Finding, package: &VulnerablePackage) -> Option<Suppression>;
}

/// Applies the filters, then the suppressors in order (the first that claims a package wins).
pub fn apply(
    findings: Vec<Finding>,
    filters: &Filters,
    suppressors: &[&dyn Suppressor],
) -> Outcome {
    let mut out = Outcome::default();
    for mut finding in findings {
        if !filters.severities.is_empty() && !filters.severities.contains(&finding.severity.label) {
            continue;
        }
        let Some(vuln) = finding.vulnerability.as_mut() else {
            out.findings.push(finding);
            continue;
        };
        if filters.ignore_unfixed {
            vuln.packages.retain(|p| !p.fixed_versions.is_empty());
            if vuln.packages.is_empty() {
                continue;
            }
        }
        let packages = std::mem::take(&mut vuln.packages);
        let mut kept = Vec::new();
        // Suppressed packages grouped by the suppression that claimed them.
        let mut claimed: Vec<(Suppression, Vec<VulnerablePackage>)> = Vec::new();
        for p in packages {
            match suppressors.iter().find_map(|s| s.suppression(&finding, &p)) {
                Some(s) => match claimed.iter_mut().find(|(x, _)| *x == s) {
                    Some((_, v)) => v.push(p),
                    None => claimed.push((s, vec![p])),
                },
                None => kept.push(p),
            }
        }
        for (suppression, packages) in claimed {
            let mut copy = finding.clone();
            set_packages(&mut copy, packages);
            copy.suppression = Some(suppression);
            out.suppressed.push(copy);
        }
        if !kept.is_empty() {
            set_packages(&mut finding, kept);
            out.findings.push(finding);
        }
    }
    out
}

fn set_packages(finding: &mut Finding, packages: Vec<VulnerablePackage>) {
    let vuln = finding
        .vulnerability
        .as_mut()
        .expect("a vulnerability finding");
    vuln.fix_available = FixAvailable::of(packages.iter().map(|p| !p.fixed_versions.is_empty()));
    let first = &packages[0];
    finding.title = match packages.len() {
        1 => format!("{} in {} {}", vuln.id, first.name, first.version),
        n => format!(
            "{} in {} {} and {} more",
            vuln.id,
            first.name,
            first.version,
            n - 1
        ),
    };
    vuln.packages = packages;
}

/// Whether `id` names the finding's vulnerability (its id or any alias), ignoring case.
pub(crate) fn names(finding: &Finding, id: &str) -> bool {
    let Some(v) = &finding.vulnerability else {
        return false;
    };
    v.id.eq_ignore_ascii_case(id) || v.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use osprey_model::{ImageResource, PackageType, Resource, Severity, Vulnerability};

    pub fn package(name: &str, fixed: &[&str]) -> VulnerablePackage {
        VulnerablePackage {
            name: name.into(),
            version: "1.0".into(),
            kind: PackageType::Python,
            purl: format!("pkg:pypi/{name}@1.0"),
            source_name: None,
            source_version: None,
            fixed_versions: fixed.iter().map(|s| s.to_string()).collect(),
            path: Some(format!("/usr/lib/python3/{name}/METADATA")),
            layer: Some(1),
            layer_diff_id: None,
            advisories: vec!["GHSA-1".into()],
            ecosystem: "PyPI".into(),
            vulnerable_ranges: vec!["<2.0".into()],
        }
    }

    pub fn finding(id: &str, label: SeverityLabel, packages: Vec<VulnerablePackage>) -> Finding {
        Finding {
            id: format!("f-{id}"),
            kind: "Vulnerability:Package/CVE".into(),
            title: String::new(),
            description: String::new(),
            severity: Severity::label(label),
            resource: Resource {
                image: Some(ImageResource {
                    reference: "oci-dir:x".into(),
                    digest: None,
                    os: None,
                }),
                kubernetes: None,
            },
            vulnerability: Some(Vulnerability {
                id: id.into(),
                aliases: vec!["GHSA-1".into()],
                cvss: vec![],
                vendor_severity: vec![],
                fix_available: FixAvailable::of(
                    packages.iter().map(|p| !p.fixed_versions.is_empty()),
                ),
                packages,
                references: vec![],
                published: None,
                modified: None,
            }),
            count: 1,
            ..Finding::default()
        }
    }

    #[test]
    fn severity_and_unfixed_filters() {
        let findings = vec![
            finding(
                "CVE-1",
                SeverityLabel::High,
                vec![package("a", &["2.0"]), package("b", &[])],
            ),
            finding("CVE-2", SeverityLabel::Low, vec![package("a", &["2.0"])]),
            finding("CVE-3", SeverityLabel::Critical, vec![package("c", &[])]),
        ];
        let filters = Filters {
            severities: vec![SeverityLabel::High, SeverityLabel::Critical],
            ignore_unfixed: true,
        };
        let out = apply(findings, &filters, &[]);
        assert_eq!(out.findings.len(), 1);
        let v = out.findings[0].vulnerability.as_ref().unwrap();
        assert_eq!(v.packages.len(), 1, "the unfixed package left the finding");
        assert_eq!(v.fix_available, FixAvailable::Yes, "PARTIAL became YES");
        assert!(out.suppressed.is_empty());
    }

    struct OnlyB;
    impl Suppressor for OnlyB {
        fn suppression(&self, _: &Finding, p: &VulnerablePackage) -> Option<Suppression> {
            (p.name == "b").then(|| Suppression {
                by: "test".into(),
                source: "t".into(),
                status: "ignored".into(),
                justification: None,
                reason: String::new(),
            })
        }
    }

    #[test]
    fn suppression_splits_a_finding() {
        let out = apply(
            vec![finding(
                "CVE-1",
                SeverityLabel::High,
                vec![package("a", &["2.0"]), package("b", &[])],
            )],
            &Filters::default(),
            &[&OnlyB],
        );
        assert_eq!(out.findings.len(), 1);
        assert_eq!(
            out.findings[0].vulnerability.as_ref().unwrap().packages[0].name,
            "a"
        );
        assert_eq!(out.findings[0].title, "CVE-1 in a 1.0");
        assert_eq!(out.suppressed.len(), 1);
        assert_eq!(
            out.suppressed[0].vulnerability.as_ref().unwrap().packages[0].name,
            "b"
        );
        assert_eq!(out.suppressed[0].suppression.as_ref().unwrap().by, "test");
    }
}
