//! The ignore file (`.ospreyignore.yaml`): rules that accept known findings, each with an
//! optional package and path scope, an expiry date and a reason.
//!
//! ```yaml
//! ignore:
//!   - id: CVE-2023-4863          # the vulnerability or any alias; globs allowed (GHSA-*)
//!     package: "pkg:deb/debian/libwebp*"   # optional: glob on the package name or purl
//!     path: "/usr/lib/**"        # optional: glob on the file that declares the package
//!     expires: 2026-12-31        # optional: the rule stops applying after this day
//!     reason: not reachable from our code
//! ```

use std::path::Path;

use globset::{Glob, GlobMatcher};
use osprey_model::{Finding, Suppression, VulnerablePackage};
use serde::Deserialize;

use super::Suppressor;

/// The largest ignore file read.
const MAX_BYTES: u64 = 4 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    ignore: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// One active rule.
#[derive(Debug)]
struct Rule {
    id: GlobMatcher,
    package: Option<GlobMatcher>,
    path: Option<GlobMatcher>,
    reason: String,
}

/// The rules of one ignore file that apply today.
#[derive(Debug)]
pub struct IgnoreFile {
    source: String,
    rules: Vec<Rule>,
    /// Rules past their expiry date: (id, date).
    pub expired: Vec<(String, String)>,
}

impl IgnoreFile {
    /// Reads and checks an ignore file; rules that expired before `today` are set aside.
    pub fn load(path: &Path, today: jiff::civil::Date) -> Result<IgnoreFile, String> {
        let label = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| format!("{label}: {e}"))?;
        if meta.len() > MAX_BYTES {
            return Err(format!(
                "{label}: {} bytes, over the {MAX_BYTES}-byte limit for an ignore file",
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{label}: {e}"))?;
        IgnoreFile::parse(&label, &text, today)
    }

    pub fn parse(label: &str, text: &str, today: jiff::civil::Date) -> Result<IgnoreFile, String> {
        let doc: Document = if text.trim().is_empty() {
            Document { ignore: Vec::new() }
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| format!("{label}: {}", one_line(&e.to_string())))?
        };
        let glob = |what: &str, n: usize, pattern: &str| -> Result<GlobMatcher, String> {
            Glob::new(pattern.trim())
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("{label}: rule {}: {what} {pattern:?}: {e}", n + 1))
        };
        let mut rules = Vec::new();
        let mut expired = Vec::new();
        for (n, raw) in doc.ignore.into_iter().enumerate() {
            if raw.id.trim().is_empty() {
                return Err(format!("{label}: rule {}: id is empty", n + 1));
            }
            if let Some(date) = &raw.expires {
                let day: jiff::civil::Date = date.trim().parse().map_err(|_| {
                    format!(
                        "{label}: rule {} ({}): expires {date:?} is not a date (YYYY-MM-DD)",
                        n + 1,
                        raw.id
                    )
                })?;
                if day < today {
                    expired.push((raw.id.clone(), day.to_string()));
                    continue;
                }
            }
            rules.push(Rule {
                id: glob("id", n, &raw.id.to_ascii_uppercase())?,
                package: raw
                    .package
                    .as_deref()
                    .map(|p| glob("package", n, p))
                    .transpose()?,
                path: raw
                    .path
                    .as_deref()
                    .map(|p| glob("path", n, p))
                    .transpose()?,
                reason: raw.reason.unwrap_or_default().trim().to_string(),
            });
        }
        Ok(IgnoreFile {
            source: label.to_string(),
            rules,
            expired,
        })
    }

    /// Rules in force.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Suppressor for IgnoreFile {
    fn suppression(&self, finding: &Finding, package: &VulnerablePackage) -> Option<Suppression> {
        let vuln = finding.vulnerability.as_ref()?;
        let rule = self.rules.iter().find(|r| {
            let id_matches = std::iter::once(&vuln.id)
                .chain(&vuln.aliases)
                .any(|id| r.id.is_match(id.to_ascii_uppercase()));
            let package_matches = r
                .package
                .as_ref()
                .is_none_or(|g| g.is_match(&package.name) || g.is_match(&package.purl));
            let path_matches = r
                .path
                .as_ref()
                .is_none_or(|g| package.path.as_deref().is_some_and(|p| g.is_match(p)));
            id_matches && package_matches && path_matches
        })?;
        Some(Suppression {
            by: "ignore-file".into(),
            source: self.source.clone(),
            status: "ignored".into(),
            justification: None,
            reason: rule.reason.clone(),
        })
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{finding, package};
    use super::super::{Filters, apply};
    use super::*;
    use osprey_model::SeverityLabel;

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 11, 28)
    }

    #[test]
    fn rules_scope_by_id_package_path_and_date() {
        let yaml = "ignore:\n  - id: cve-1\n    package: \"pkg:pypi/a*\"\n    reason: not reachable\n  - id: GHSA-*\n    path: /opt/**\n  - id: CVE-3\n    expires: 2026-01-01\n  - id: CVE-4\n    expires: 2027-01-01\n";
        let rules = IgnoreFile::parse(".ospreyignore.yaml", yaml, today()).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules.expired,
            [("CVE-3".to_string(), "2026-01-01".to_string())]
        );
        let findings = vec![
            finding(
                "CVE-1",
                SeverityLabel::High,
                vec![package("a", &[]), package("b", &[])],
            ),
            finding("CVE-3", SeverityLabel::High, vec![package("a", &[])]),
            finding("CVE-4", SeverityLabel::High, vec![package("a", &[])]),
        ];
        let out = apply(findings, &Filters::default(), &[&rules]);
        let kept: Vec<&str> = out.findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            kept,
            ["CVE-1 in b 1.0", "CVE-3 in a 1.0"],
            "b stays; the expired rule no longer hides CVE-3"
        );
        assert_eq!(out.suppressed.len(), 2);
        assert_eq!(
            out.suppressed[0].suppression.as_ref().unwrap().reason,
            "not reachable"
        );
        assert_eq!(
            out.suppressed[1].vulnerability.as_ref().unwrap().id,
            "CVE-4"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = IgnoreFile::parse("i.yaml", "ignore:\n  - id: CVE-1\n    pakage: x\n", today())
            .unwrap_err();
        assert!(
            err.starts_with("i.yaml:") && err.contains("pakage"),
            "{err}"
        );
        let err = IgnoreFile::parse(
            "i.yaml",
            "ignore:\n  - id: CVE-1\n    expires: soon\n",
            today(),
        )
        .unwrap_err();
        assert!(err.contains("expires \"soon\" is not a date"), "{err}");
        let err = IgnoreFile::parse("i.yaml", "ignore:\n  - id: \"[\"\n", today()).unwrap_err();
        assert!(err.contains("rule 1: id"), "{err}");
        assert!(IgnoreFile::parse("i.yaml", "", today()).unwrap().is_empty());
    }
}
