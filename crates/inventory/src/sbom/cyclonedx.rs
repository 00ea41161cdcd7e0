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
        components.push(component(p, r));
    }
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
    };
    serde_json::to_writer_pretty(&mut *out, &bom)?;
    writeln!(out)
}
