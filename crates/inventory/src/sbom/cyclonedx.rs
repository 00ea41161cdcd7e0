//! CycloneDX 1.6 JSON.

use osprey_model::{Package, PackageType};
use serde::Serialize;

use super::Document;
use super::license::{Classified, classify};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata<'a>,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    timestamp: &'a str,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
pub(crate) struct Component {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum LicenseChoice {
    License { license: License },
    Expression { expression: String },
}

#[derive(Serialize)]
struct License {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Evidence {
    occurrences: Vec<Occurrence>,
}

#[derive(Serialize)]
struct Occurrence {
    location: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// CycloneDX allows a list of licences or exactly one expression, never both.
fn licenses(list: &[String]) -> Vec<LicenseChoice> {
    let classified: Vec<Classified> = list.iter().map(|l| classify(l)).collect();
    if let [Classified::Expression(e)] = classified.as_slice() {
        return vec![LicenseChoice::Expression {
            expression: e.clone(),
        }];
    }
    classified
        .into_iter()
        .map(|c| LicenseChoice::License {
            license: match c {
                Classified::Id(id) => License {
                    id: Some(id),
                    name: None,
                },
                Classified::Expression(e) | Classified::Name(e) => License {
                    id: None,
                    name: Some(e),
                },
            },
        })
        .collect()
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.to_string(),
        value: value.into(),
    }
}

fn component(p: &Package, bom_ref: String) -> Component {
    let mut properties = vec![
        prop("osprey:package:type", p.kind.as_str()),
        prop("osprey:cataloger", &p.cataloger),
    ];
    if let Some(s) = &p.source_name {
        properties.push(prop("osprey:package:source-name", s));
    }
    if let Some(s) = &p.source_version {
        properties.push(prop("osprey:package:source-version", s));
    }
    if let Some(a) = &p.arch {
        properties.push(prop("osprey:package:arch", a));
    }
    for l in &p.locations {
        if let Some(layer) = l.layer {
            properties.push(prop("osprey:layer:index", layer.to_string()));
        }
        if let Some(d) = &l.layer_diff_id {
            properties.push(prop("osprey:layer:diff-id", d));
        }
    }
    properties.dedup_by(|a, b| a.name == b.name && a.value == b.value);
    for (k, v) in &p.properties {
        properties.push(prop(&format!("osprey:{k}"), v));
    }
    Component {
        bom_ref,
        kind: if p.kind == PackageType::GoModule && p.properties.contains_key("go.main-module") {
            "application"
        } else {
            "library"
        },
        group: p.group.clone(),
        name: p.name.clone(),
        version: (!p.version.is_empty()).then(|| p.version.clone()),
        purl: (!p.purl.is_empty()).then(|| p.purl.clone()),
        licenses: licenses(&p.licenses),
        properties,
        evidence: (!p.locations.is_empty()).then(|| Evidence {
            occurrences: p
                .locations
                .iter()
                .map(|l| Occurrence {
                    location: l.path.clone(),
                })
                .collect(),
        }),
        ..Component::default()
    }
}

/// Writes the document as CycloneDX 1.6 JSON.
pub fn write(doc: &Document<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let subject = doc.subject;
    let root_ref = subject
        .purl
        .clone()
        .unwrap_or_else(|| format!("osprey:subject:{}", subject.name));
    let root = Component {
        bom_ref: root_ref.clone(),
        kind: if subject.is_image {
            "container"
        } else {
            "file"
        },
        name: subject.name.clone(),
        version: subject.version.clone(),
        purl: subject.purl.clone(),
        properties: subject
            .properties
            .iter()
            .map(|(k, v)| prop(k, v.clone()))
            .collect(),
        ..Component::default()
    };
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = &doc.inventory.os {
        let r = format!("osprey:os:{}", os.purl_distro());
        components.push(Component {
            bom_ref: r.clone(),
            kind: "operating-system",
            name: os.id.clone(),
            version: os.version.clone().or_else(|| os.version_id.clone()),
            description: os.pretty_name.clone(),
            ..Component::default()
        });
        refs.push(r);
    }
    let mut seen = std::collections::HashSet::new();
    let mut by_purl: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for (i, p) in doc.inventory.packages.iter().enumerate() {
        let base = if p.purl.is_empty() {
            format!("osprey:package:{i}")
        } else {
            p.purl.clone()
        };
        let r = if seen.insert(base.clone()) {
            base
        } else {
            format!("{base}#{i}")
        };
        refs.push(r.clone());
        if !p.purl.is_empty() {
            by_purl.entry(p.purl.as_str()).or_insert_with(|| r.clone());
        }
        components.push(component(p, r));
    }
    let vulnerabilities = doc
        .findings
        .iter()
        .filter_map(|f| vulnerability(f, &by_purl))
        .collect();
    let bom = Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", doc.uuid()),
        version: 1,
        metadata: Metadata {
            timestamp: &doc.created,
            tools: Tools {
                components: vec![Component {
                    bom_ref: "osprey".into(),
                    kind: "application",
                    name: "osprey".into(),
                    version: Some(doc.tool_version.to_string()),
                    ..Component::default()
                }],
            },
            component: root,
        },
        components,
        dependencies: vec![Dependency {
            reference: root_ref,
            depends_on: refs,
        }],
        vulnerabilities,
    };
    serde_json::to_writer_pretty(&mut *out, &bom)?;
    writeln!(out)
}

/// A CycloneDX vulnerability: ids, ratings, the affected components, and for suppressed
/// findings the VEX analysis (state, justification, detail).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Vulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<VulnReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ratings: Vec<Rating>,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendation: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    advisories: Vec<Advisory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<Analysis>,
    affects: Vec<Affects>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Source {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize)]
struct VulnReference {
    id: String,
    source: Source,
}

#[derive(Serialize)]
struct Rating {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<String>,
}

#[derive(Serialize)]
struct Advisory {
    url: String,
}

#[derive(Serialize)]
struct Analysis {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    justification: Option<&'static str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
}

#[derive(Serialize)]
struct Affects {
    #[serde(rename = "ref")]
    reference: String,
    versions: Vec<AffectedVersion>,
}

#[derive(Serialize)]
struct AffectedVersion {
    version: String,
    status: &'static str,
}

fn source_of(id: &str) -> Source {
    let (name, url) = match id.split('-').next().unwrap_or("") {
        "CVE" => ("NVD", format!("https://nvd.nist.gov/vuln/detail/{id}")),
        "GHSA" => ("GitHub", format!("https://github.com/advisories/{id}")),
        "GO" => ("Go", format!("https://pkg.go.dev/vuln/{id}")),
        "RUSTSEC" => ("RustSec", format!("https://rustsec.org/advisories/{id}")),
        "PYSEC" => ("PyPA", format!("https://osv.dev/vulnerability/{id}")),
        "DSA" | "DLA" => (
            "Debian",
            format!("https://security-tracker.debian.org/tracker/{id}"),
        ),
        _ => ("OSV", format!("https://osv.dev/vulnerability/{id}")),
    };
    Source {
        name: name.to_string(),
        url: Some(url),
    }
}

fn severity_word(label: osprey_model::SeverityLabel) -> &'static str {
    match label {
        osprey_model::SeverityLabel::Critical => "critical",
        osprey_model::SeverityLabel::High => "high",
        osprey_model::SeverityLabel::Medium => "medium",
        osprey_model::SeverityLabel::Low => "low",
        osprey_model::SeverityLabel::Untriaged => "unknown",
        osprey_model::SeverityLabel::Info => "info",
    }
}

/// VEX justifications that CycloneDX's analysis enumerates, from OpenVEX's.
fn cdx_justification(openvex: Option<&str>) -> Option<&'static str> {
    Some(match openvex? {
        "component_not_present" => "requires_dependency",
        "vulnerable_code_not_present" => "code_not_present",
        "vulnerable_code_not_in_execute_path" => "code_not_reachable",
        "vulnerable_code_cannot_be_controlled_by_adversary" => "requires_environment",
        "inline_mitigations_already_exist" => "protected_by_mitigating_control",
        _ => return None,
    })
}

fn vulnerability(
    f: &osprey_model::Finding,
    by_purl: &std::collections::HashMap<&str, String>,
) -> Option<Vulnerability> {
    let v = f.vulnerability.as_ref()?;
    let affects: Vec<Affects> = v
        .packages
        .iter()
        .filter_map(|p| {
            Some(Affects {
                reference: by_purl.get(p.purl.as_str())?.clone(),
                versions: vec![AffectedVersion {
                    version: p.version.clone(),
                    status: "affected",
                }],
            })
        })
        .collect();
    if affects.is_empty() {
        return None;
    }
    let mut ratings: Vec<Rating> = v
        .cvss
        .iter()
        .map(|c| Rating {
            source: Some(source_of(&c.source)),
            score: Some(c.base_score),
            severity: severity_word(osprey_model::SeverityLabel::from_score(c.base_score)),
            method: Some(match c.version.as_str() {
                "4.0" => "CVSSv4",
                "3.1" => "CVSSv31",
                "3.0" => "CVSSv3",
                _ => "CVSSv2",
            }),
            vector: Some(c.vector.clone()),
        })
        .collect();
    for s in &v.vendor_severity {
        if let Some(label) = osprey_model::SeverityLabel::parse_loose(&s.label) {
            ratings.push(Rating {
                source: Some(Source {
                    name: s.source.clone(),
                    url: None,
                }),
                score: None,
                severity: severity_word(label),
                method: Some("other"),
                vector: None,
            });
        }
    }
    if ratings.is_empty() {
        ratings.push(Rating {
            source: None,
            score: None,
            severity: severity_word(f.severity.label),
            method: None,
            vector: None,
        });
    }
    let fixes: Vec<String> = v
        .packages
        .iter()
        .filter_map(|p| {
            p.fixed_versions
                .first()
                .map(|x| format!("{} to {x}", p.name))
        })
        .collect();
    let analysis = f.suppression.as_ref().map(|s| Analysis {
        state: if s.status == "fixed" {
            "resolved"
        } else {
            "not_affected"
        },
        justification: cdx_justification(s.justification.as_deref()),
        detail: [
            Some(s.by.as_str()),
            (!s.reason.is_empty()).then_some(s.reason.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": "),
    });
    Some(Vulnerability {
        bom_ref: format!("osprey:vulnerability:{}", f.id),
        id: v.id.clone(),
        source: Some(source_of(&v.id)),
        references: v
            .aliases
            .iter()
            .map(|a| VulnReference {
                id: a.clone(),
                source: source_of(a),
            })
            .collect(),
        ratings,
        description: f.description.clone(),
        recommendation: (!fixes.is_empty()).then(|| format!("Upgrade {}.", fixes.join(", "))),
        advisories: v
            .references
            .iter()
            .map(|u| Advisory { url: u.clone() })
            .collect(),
        published: v.published.clone(),
        updated: v.modified.clone(),
        analysis,
        affects,
        properties: vec![prop("osprey:fix-available", v.fix_available.as_str())],
    })
}
