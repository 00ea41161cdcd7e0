//! SARIF 2.1.0 for code-scanning dashboards: one rule per vulnerability, one result per
//! vulnerable package, located at the file that declares the package. Written with Osprey's
//! own serde types (validated against the OASIS schema in the tests): serde-sarif 0.8 needs
//! a build script and does not build unless another crate enables serde's derive feature,
//! and the subset emitted here is small.

use std::collections::BTreeMap;
use std::io::Write;

use osprey_model::{Finding, ImageResource, SeverityLabel, VulnerablePackage};
use serde::Serialize;

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    results: Vec<SarifResult>,
    original_uri_base_ids: BTreeMap<&'static str, Uri>,
    properties: RunProperties<'a>,
}

#[derive(Serialize)]
struct RunProperties<'a> {
    #[serde(rename = "imageName")]
    image_name: &'a str,
    #[serde(rename = "imageDigest", skip_serializing_if = "Option::is_none")]
    image_digest: Option<&'a str>,
}

#[derive(Serialize)]
struct Uri {
    uri: &'static str,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    full_name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'static str,
    short_description: Text,
    full_description: Text,
    default_configuration: Configuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<&'a str>,
    help: Help,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: Vec<String>,
    precision: &'static str,
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    security_severity: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    partial_fingerprints: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<SarifSuppression>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    message: Text,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
    start_column: u32,
    end_line: u32,
    end_column: u32,
}

#[derive(Serialize)]
struct SarifSuppression {
    kind: &'static str,
    status: &'static str,
    justification: String,
}

/// Writes the findings (and the suppressed ones shown) of a scan of `target` as a SARIF log.
pub fn write(
    out: &mut dyn Write,
    target: &ImageResource,
    findings: &[Finding],
    suppressed: &[Finding],
) -> std::io::Result<()> {
    let mut rules: Vec<Rule<'_>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut results = Vec::new();
    for f in findings.iter().chain(suppressed) {
        let Some(v) = &f.vulnerability else { continue };
        let rule_index = *index.entry(&v.id).or_insert_with(|| {
            rules.push(rule(f));
            rules.len() - 1
        });
        for p in &v.packages {
            results.push(result(f, p, rule_index));
        }
    }
    let log = Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "osprey",
                    full_name: "Osprey container threat detection",
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    information_uri: "https://github.com/osprey-security/osprey",
                    rules,
                },
            },
            results,
            original_uri_base_ids: BTreeMap::from([("ROOTPATH", Uri { uri: "file:///" })]),
            properties: RunProperties {
                image_name: &target.reference,
                image_digest: target.digest.as_deref(),
            },
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn level(label: SeverityLabel) -> &'static str {
    match label {
        SeverityLabel::Critical | SeverityLabel::High => "error",
        SeverityLabel::Medium => "warning",
        SeverityLabel::Low | SeverityLabel::Info | SeverityLabel::Untriaged => "note",
    }
}

fn rule(f: &Finding) -> Rule<'_> {
    let v = f.vulnerability.as_ref().expect("vulnerability findings");
    let summary = if f.description.is_empty() {
        v.id.clone()
    } else {
        f.description.clone()
    };
    let first = v.packages.first();
    let os = first.is_some_and(|p| p.kind.is_os());
    let score = f.severity.score.map(|s| format!("{s:.1}"));
    let links = v
        .references
        .iter()
        .take(5)
        .map(|r| format!("- {r}"))
        .collect::<Vec<_>>()
        .join("\n");
    Rule {
        id: &v.id,
        name: if os {
            "OsPackageVulnerability"
        } else {
            "LanguageSpecificPackageVulnerability"
        },
        short_description: Text {
            text: format!("{}: {}", v.id, first_line(&summary)),
        },
        full_description: Text {
            text: summary.clone(),
        },
        default_configuration: Configuration {
            level: level(f.severity.label),
        },
        help_uri: v.references.first().map(String::as_str),
        help: Help {
            text: format!(
                "Vulnerability {}\nSeverity: {}\n{summary}",
                v.id, f.severity.label
            ),
            markdown: format!(
                "**Vulnerability {}**\n\n| Severity | Fix available |\n| --- | --- |\n| {} | {} |\n\n{summary}\n\n{links}",
                v.id,
                f.severity.label,
                v.fix_available.as_str()
            ),
        },
        properties: RuleProperties {
            tags: vec![
                "vulnerability".into(),
                "security".into(),
                f.severity.label.to_string(),
            ],
            precision: "very-high",
            security_severity: score,
        },
    }
}

fn result(f: &Finding, p: &VulnerablePackage, rule_index: usize) -> SarifResult {
    let v = f.vulnerability.as_ref().expect("vulnerability findings");
    let path = p.path.as_deref().unwrap_or("/");
    let fixed = if p.fixed_versions.is_empty() {
        "none".to_string()
    } else {
        p.fixed_versions.join(", ")
    };
    let message = format!(
        "Package: {}\nInstalled Version: {}\nVulnerability: {}\nSeverity: {}\nFixed Version: {fixed}\nLink: {}",
        p.name,
        p.version,
        v.id,
        f.severity.label,
        v.references.first().map_or("-", String::as_str)
    );
    SarifResult {
        rule_id: v.id.clone(),
        rule_index,
        level: level(f.severity.label),
        message: Text { text: message },
        locations: vec![Location {
            physical_location: PhysicalLocation {
                artifact_location: ArtifactLocation {
                    uri: path.trim_start_matches('/').replace('!', "/"),
                    uri_base_id: "ROOTPATH",
                },
                region: Region {
                    start_line: 1,
                    start_column: 1,
                    end_line: 1,
                    end_column: 1,
                },
            },
            message: Text {
                text: format!("{path}: {}@{}", p.name, p.version),
            },
        }],
        partial_fingerprints: BTreeMap::from([(
            "osprey/v1",
            format!("{}:{}:{}@{}", f.id, path, p.name, p.version),
        )]),
        suppressions: f
            .suppression
            .iter()
            .map(|s| SarifSuppression {
                kind: "external",
                status: "accepted",
                justification: [
                    Some(s.status.as_str()),
                    s.justification.as_deref(),
                    (!s.reason.is_empty()).then_some(s.reason.as_str()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": "),
            })
            .collect(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
