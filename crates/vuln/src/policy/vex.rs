//! OpenVEX documents (https://github.com/openvex/spec): statements that a vulnerability does
//! not affect (`not_affected`) or no longer affects (`fixed`) a product suppress the matching
//! findings; `affected` and `under_investigation` change nothing.
//!
//! A statement applies to a vulnerable package when it names the vulnerability (its name or
//! an alias equals the finding's id or an alias) and either a product or a subcomponent
//! identifies the package by purl, or a product identifies the scanned image (its digest,
//! its reference, or a `pkg:oci` purl with its digest) and no subcomponent narrows it. Both
//! the v0.2 shapes (objects with `@id`) and the v0.0.1 shapes (plain strings) are read. Of
//! several statements about the same vulnerability and package, the last one counts.

use std::path::Path;

use osprey_model::{Finding, Suppression, VulnerablePackage};
use packageurl::PackageUrl;
use serde::Deserialize;
use std::str::FromStr;

use super::{Suppressor, names};

/// The largest VEX document read.
const MAX_BYTES: u64 = 64 << 20;

#[derive(Deserialize)]
struct Document {
    /// Required: it tells an OpenVEX document from any other JSON.
    #[serde(rename = "@context")]
    #[allow(dead_code)]
    context: String,
    #[serde(default)]
    statements: Vec<RawStatement>,
}

#[derive(Deserialize)]
struct RawStatement {
    vulnerability: RawVulnerability,
    #[serde(default)]
    products: Vec<RawComponent>,
    /// v0.0.1 put subcomponents beside products.
    #[serde(default)]
    subcomponents: Vec<RawComponent>,
    status: String,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    impact_statement: Option<String>,
    #[serde(default)]
    status_notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVulnerability {
    Name(String),
    Object {
        #[serde(default)]
        name: Option<String>,
        #[serde(rename = "@id", default)]
        id: Option<String>,
        #[serde(default)]
        aliases: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawComponent {
    Id(String),
    Object {
        #[serde(rename = "@id", default)]
        id: Option<String>,
        #[serde(default)]
        identifiers: Option<Identifiers>,
        #[serde(default)]
        subcomponents: Vec<RawComponent>,
    },
}

#[derive(Deserialize)]
struct Identifiers {
    #[serde(default)]
    purl: Option<String>,
}

impl RawComponent {
    fn ids(&self) -> Vec<String> {
        match self {
            RawComponent::Id(s) => vec![s.clone()],
            RawComponent::Object {
                id, identifiers, ..
            } => id
                .iter()
                .cloned()
                .chain(identifiers.as_ref().and_then(|i| i.purl.clone()))
                .collect(),
        }
    }

    fn subcomponents(&self) -> &[RawComponent] {
        match self {
            RawComponent::Id(_) => &[],
            RawComponent::Object { subcomponents, .. } => subcomponents,
        }
    }
}

/// One statement, flattened.
#[derive(Debug)]
struct Statement {
    vulnerabilities: Vec<String>,
    /// Products and, for each, the subcomponents that narrow it (empty: the whole product).
    products: Vec<(Vec<String>, Vec<String>)>,
    status: String,
    justification: Option<String>,
    reason: String,
}

/// The statements of one or more VEX documents, in order.
#[derive(Debug, Default)]
pub struct Vex {
    statements: Vec<(String, Statement)>,
    /// Identifiers of the scanned image (digest, reference, `pkg:oci` purl).
    target: Vec<String>,
}

impl Vex {
    /// `target` lists what identifies the scanned image: its digest and reference.
    pub fn new(target: Vec<String>) -> Vex {
        Vex {
            statements: Vec::new(),
            target,
        }
    }

    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        let label = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| format!("{label}: {e}"))?;
        if meta.len() > MAX_BYTES {
            return Err(format!(
                "{label}: {} bytes, over the {MAX_BYTES}-byte limit for a VEX document",
                meta.len()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{label}: {e}"))?;
        self.add(&label, &bytes)
    }

    pub fn add(&mut self, label: &str, bytes: &[u8]) -> Result<(), String> {
        let doc: Document = serde_json::from_slice(bytes)
            .map_err(|e| format!("{label}: not an OpenVEX document: {e}"))?;
        for (n, s) in doc.statements.into_iter().enumerate() {
            let vulnerabilities: Vec<String> = match s.vulnerability {
                RawVulnerability::Name(n) => vec![n],
                RawVulnerability::Object { name, id, aliases } => {
                    name.into_iter().chain(id).chain(aliases).collect()
                }
            };
            if vulnerabilities.is_empty() {
                return Err(format!(
                    "{label}: statement {}: the vulnerability has no name",
                    n + 1
                ));
            }
            let status = s.status.trim().to_ascii_lowercase();
            if !matches!(
                status.as_str(),
                "not_affected" | "affected" | "fixed" | "under_investigation"
            ) {
                return Err(format!(
                    "{label}: statement {}: unknown status {:?}",
                    n + 1,
                    s.status
                ));
            }
            let top_subs: Vec<String> =
                s.subcomponents.iter().flat_map(RawComponent::ids).collect();
            let products = s
                .products
                .iter()
                .map(|p| {
                    let mut subs: Vec<String> = p
                        .subcomponents()
                        .iter()
                        .flat_map(RawComponent::ids)
                        .collect();
                    subs.extend(top_subs.iter().cloned());
                    (p.ids(), subs)
                })
                .collect();
            let reason = [s.impact_statement, s.status_notes]
                .into_iter()
                .flatten()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            self.statements.push((
                label.to_string(),
                Statement {
                    vulnerabilities,
                    products,
                    status,
                    justification: s.justification.filter(|j| !j.trim().is_empty()),
                    reason,
                },
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.statements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    fn is_target(&self, id: &str) -> bool {
        if self.target.iter().any(|t| t == id) {
            return true;
        }
        // pkg:oci/name@sha256:… names the image by its digest.
        match PackageUrl::from_str(id) {
            Ok(p) if p.ty() == "oci" => p
                .version()
                .is_some_and(|v| self.target.iter().any(|t| t == v)),
            _ => false,
        }
    }

    fn applies(&self, s: &Statement, package: &VulnerablePackage) -> bool {
        s.products.iter().any(|(ids, subs)| {
            if ids.iter().any(|id| purl_matches(id, &package.purl)) {
                return true;
            }
            ids.iter().any(|id| self.is_target(id))
                && (subs.is_empty() || subs.iter().any(|sub| purl_matches(sub, &package.purl)))
        })
    }
}

impl Suppressor for Vex {
    fn suppression(&self, finding: &Finding, package: &VulnerablePackage) -> Option<Suppression> {
        let (source, last) = self.statements.iter().rfind(|(_, s)| {
            s.vulnerabilities.iter().any(|v| names(finding, v)) && self.applies(s, package)
        })?;
        if !matches!(last.status.as_str(), "not_affected" | "fixed") {
            return None;
        }
        Some(Suppression {
            by: "vex".into(),
            source: source.clone(),
            status: last.status.clone(),
            justification: last.justification.clone(),
            reason: last.reason.clone(),
        })
    }
}

/// Whether the VEX identifier `pattern` names the package `purl`: same type, namespace and
/// name; the same version when the pattern has one; the pattern's qualifiers a subset.
pub fn purl_matches(pattern: &str, purl: &str) -> bool {
    let (Ok(p), Ok(x)) = (PackageUrl::from_str(pattern), PackageUrl::from_str(purl)) else {
        return false;
    };
    p.ty() == x.ty()
        && p.namespace() == x.namespace()
        && p.name() == x.name()
        && p.version().is_none_or(|v| x.version() == Some(v))
        && p.qualifiers()
            .iter()
            .all(|(k, v)| x.qualifiers().get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{finding, package};
    use super::super::{Filters, apply};
    use super::*;
    use osprey_model::SeverityLabel;

    #[test]
    fn purls() {
        assert!(purl_matches("pkg:pypi/a", "pkg:pypi/a@1.0"));
        assert!(purl_matches("pkg:pypi/a@1.0", "pkg:pypi/a@1.0"));
        assert!(!purl_matches("pkg:pypi/a@2.0", "pkg:pypi/a@1.0"));
        assert!(!purl_matches("pkg:npm/a", "pkg:pypi/a@1.0"));
        assert!(purl_matches(
            "pkg:deb/debian/openssl?arch=amd64",
            "pkg:deb/debian/openssl@3.0?arch=amd64&distro=debian-12"
        ));
        assert!(!purl_matches(
            "pkg:deb/debian/openssl?arch=arm64",
            "pkg:deb/debian/openssl@3.0?arch=amd64"
        ));
        assert!(!purl_matches("not a purl", "pkg:pypi/a@1.0"));
    }

    #[test]
    fn statements_suppress_per_package() {
        let mut vex = Vex::new(vec!["sha256:abc".into(), "oci-dir:x".into()]);
        vex.add(
            "app.openvex.json",
            br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
                {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:pypi/a@1.0"}], "status": "not_affected",
                 "justification": "vulnerable_code_not_in_execute_path", "impact_statement": "never called"},
                {"vulnerability": {"name": "GHSA-1"}, "products": [{"@id": "pkg:oci/app@sha256:abc", "subcomponents": [{"@id": "pkg:pypi/b"}]}], "status": "fixed"},
                {"vulnerability": "CVE-9", "products": ["pkg:pypi/a"], "status": "not_affected"},
                {"vulnerability": "CVE-9", "products": ["pkg:pypi/a"], "status": "affected"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(vex.len(), 4);
        let findings = vec![
            finding(
                "CVE-1",
                SeverityLabel::High,
                vec![package("a", &[]), package("b", &[]), package("c", &[])],
            ),
            finding("CVE-9", SeverityLabel::High, vec![package("a", &[])]),
        ];
        let out = apply(findings, &Filters::default(), &[&vex]);
        assert_eq!(out.findings.len(), 2);
        assert_eq!(
            out.findings[0].title, "CVE-1 in c 1.0",
            "a by its purl, b through the image's subcomponent (alias GHSA-1)"
        );
        assert_eq!(
            out.findings[1].vulnerability.as_ref().unwrap().id,
            "CVE-9",
            "the later `affected` statement wins"
        );
        let s: Vec<(&str, Option<&str>)> = out
            .suppressed
            .iter()
            .map(|f| {
                (
                    f.suppression.as_ref().unwrap().status.as_str(),
                    f.suppression.as_ref().unwrap().justification.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            s,
            [
                ("not_affected", Some("vulnerable_code_not_in_execute_path")),
                ("fixed", None)
            ]
        );
        assert_eq!(
            out.suppressed[0].suppression.as_ref().unwrap().reason,
            "never called"
        );
    }

    #[test]
    fn bad_documents() {
        let mut vex = Vex::default();
        assert!(
            vex.add("v.json", b"[]")
                .unwrap_err()
                .starts_with("v.json: not an OpenVEX document")
        );
        let err = vex.add("v.json", br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": "CVE-1", "status": "maybe"}]}"#).unwrap_err();
        assert!(err.contains("unknown status \"maybe\""), "{err}");
    }
}
