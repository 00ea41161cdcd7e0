//! SPDX 2.3 JSON.

use osprey_model::Package;
use serde::Serialize;

use super::Document;
use super::license::{Classified, classify, id_safe, license_ref};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxDocument<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo<'a>,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
struct CreationInfo<'a> {
    created: &'a str,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
}

/// `SPDXRef-` + letters, digits, `.` and `-`.
fn spdx_ref(prefix: &str, parts: &[&str]) -> String {
    format!("SPDXRef-{prefix}-{}", id_safe(&parts.join("-")))
}

/// The declared licence as an SPDX expression; non-SPDX names become `LicenseRef-`s, recorded
/// in `extracted`.
fn declared(p: &Package, extracted: &mut Vec<ExtractedLicense>) -> String {
    let terms: Vec<String> = p
        .licenses
        .iter()
        .map(|l| match classify(l) {
            Classified::Id(id) => id,
            Classified::Expression(e) => format!("({e})"),
            Classified::Name(name) => {
                let id = license_ref(&name);
                if !extracted.iter().any(|x| x.license_id == id) {
                    extracted.push(ExtractedLicense {
                        license_id: id.clone(),
                        extracted_text: name.clone(),
                        name,
                    });
                }
                id
            }
        })
        .collect();
    match terms.as_slice() {
        [] => "NOASSERTION".to_string(),
        [one] => one
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string(),
        many => many.join(" AND "),
    }
}

/// Writes the document as SPDX 2.3 JSON.
pub fn write(doc: &Document<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let subject = doc.subject;
    let root_id = spdx_ref(
        if subject.is_image {
            "Image"
        } else {
            "FileSystem"
        },
        &[&subject.name],
    );
    let mut packages = vec![SpdxPackage {
        spdx_id: root_id.clone(),
        name: subject.name.clone(),
        version_info: subject.version.clone(),
        download_location: "NOASSERTION",
        files_analyzed: false,
        license_concluded: "NOASSERTION",
        license_declared: "NOASSERTION".into(),
        copyright_text: "NOASSERTION",
        source_info: None,
        supplier: None,
        external_refs: subject
            .purl
            .iter()
            .map(|p| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: p.clone(),
            })
            .collect(),
        primary_package_purpose: if subject.is_image {
            "CONTAINER"
        } else {
            "SOURCE"
        },
    }];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: root_id.clone(),
    }];
    let mut contains = |id: String| {
        relationships.push(Relationship {
            spdx_element_id: root_id.clone(),
            relationship_type: "CONTAINS",
            related_spdx_element: id,
        });
    };
    if let Some(os) = &doc.inventory.os {
        let id = spdx_ref("OperatingSystem", &[&os.id]);
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: os.id.clone(),
            version_info: os.version.clone().or_else(|| os.version_id.clone()),
            download_location: "NOASSERTION",
            files_analyzed: false,
            license_concluded: "NOASSERTION",
            license_declared: "NOASSERTION".into(),
            copyright_text: "NOASSERTION",
            source_info: Some(format!("from {}", os.sources.join(", "))),
            supplier: None,
            external_refs: Vec::new(),
            primary_package_purpose: "OPERATING_SYSTEM",
        });
        contains(id);
    }
    let mut extracted = Vec::new();
    for (i, p) in doc.inventory.packages.iter().enumerate() {
        let id = spdx_ref("Package", &[p.kind.as_str(), &p.name, &i.to_string()]);
        let paths: Vec<&str> = p.locations.iter().map(|l| l.path.as_str()).collect();
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: match &p.group {
                Some(g) => format!("{g}:{}", p.name),
                None => p.name.clone(),
            },
            version_info: (!p.version.is_empty()).then(|| p.version.clone()),
            download_location: "NOASSERTION",
            files_analyzed: false,
            license_concluded: "NOASSERTION",
            license_declared: declared(p, &mut extracted),
            copyright_text: "NOASSERTION",
            source_info: (!paths.is_empty())
                .then(|| format!("found by osprey {} in {}", p.cataloger, paths.join(", "))),
            supplier: p
                .properties
                .get("maintainer")
                .or(p.properties.get("vendor"))
                .map(|m| format!("Organization: {m}")),
            external_refs: (!p.purl.is_empty())
                .then(|| ExternalRef {
                    reference_category: "PACKAGE-MANAGER",
                    reference_type: "purl",
                    reference_locator: p.purl.clone(),
                })
                .into_iter()
                .collect(),
            primary_package_purpose: if p.kind.is_os() { "INSTALL" } else { "LIBRARY" },
        });
        contains(id);
    }
    let name = subject.name.clone();
    let namespace_name = id_safe(&name);
    let document = SpdxDocument {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name,
        document_namespace: format!(
            "https://github.com/osprey-security/osprey/spdxdocs/{}/{namespace_name}-{}",
            if subject.is_image {
                "image"
            } else {
                "filesystem"
            },
            doc.uuid()
        ),
        creation_info: CreationInfo {
            created: &doc.created,
            creators: vec![format!("Tool: osprey-{}", doc.tool_version)],
        },
        packages,
        relationships,
        has_extracted_licensing_infos: extracted,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}
