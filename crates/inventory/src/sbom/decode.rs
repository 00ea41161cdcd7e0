//! Reading SBOMs back: the packages (and OS) of a CycloneDX or SPDX JSON document, whoever
//! wrote it, so `osprey sbom scan` can match them. Packages are known by their package URLs;
//! components without one are counted and left out. Layer and source-package facts come from
//! Osprey's own properties, and from Trivy's and Syft's where present.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use osprey_model::{Location, Os, Package, PackageType};
use packageurl::PackageUrl;
use serde::Deserialize;

use super::Subject;
use crate::Inventory;

/// Limits on SBOM input.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_packages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 512 << 20,
            max_packages: 2_000_000,
        }
    }
}

/// What an SBOM holds.
#[derive(Debug)]
pub struct Decoded {
    pub subject: Subject,
    pub inventory: Inventory,
    /// Things left out, for the user.
    pub warnings: Vec<String>,
}

/// Reads a CycloneDX or SPDX JSON file.
pub fn read(path: &Path) -> Result<Decoded, String> {
    let label = path.display().to_string();
    let limits = Limits::default();
    let meta = std::fs::metadata(path).map_err(|e| format!("{label}: {e}"))?;
    if meta.len() > limits.max_bytes {
        return Err(format!(
            "{label}: {} bytes, over the {}-byte limit for an SBOM",
            meta.len(),
            limits.max_bytes
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{label}: {e}"))?;
    decode(&label, &bytes, &limits)
}

/// Decodes SBOM bytes; `label` names the input in errors.
pub fn decode(label: &str, bytes: &[u8], limits: &Limits) -> Result<Decoded, String> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("{label}: not a JSON SBOM: {e}"))?;
    let mut out = if probe.bom_format.as_deref() == Some("CycloneDX") {
        let bom: CdxBom = serde_json::from_slice(bytes)
            .map_err(|e| format!("{label}: not a CycloneDX document: {e}"))?;
        cyclonedx(bom, limits).map_err(|e| format!("{label}: {e}"))?
    } else if probe
        .spdx_version
        .as_deref()
        .is_some_and(|v| v.starts_with("SPDX-2"))
    {
        let doc: SpdxDoc = serde_json::from_slice(bytes)
            .map_err(|e| format!("{label}: not an SPDX document: {e}"))?;
        spdx(doc, limits).map_err(|e| format!("{label}: {e}"))?
    } else {
        return Err(format!(
            "{label}: neither CycloneDX (bomFormat) nor SPDX 2 (spdxVersion) JSON"
        ));
    };
    // The OS: a declared operating-system component, else the distro qualifier of a purl.
    if out.inventory.os.is_none() {
        out.inventory.os = out.inventory.packages.iter().find_map(|p| {
            p.properties
                .get("sbom.distro")
                .and_then(|d| os_from_distro(d))
        });
    }
    for p in &mut out.inventory.packages {
        p.properties.remove("sbom.distro");
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "bomFormat")]
    bom_format: Option<String>,
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<String>,
}

#[derive(Deserialize)]
struct CdxBom {
    #[serde(default)]
    metadata: Option<CdxMetadata>,
    #[serde(default)]
    components: Vec<CdxComponent>,
}

#[derive(Deserialize)]
struct CdxMetadata {
    #[serde(default)]
    component: Option<CdxComponent>,
}

#[derive(Deserialize)]
struct CdxComponent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    properties: Vec<NameValue>,
    #[serde(default)]
    evidence: Option<CdxEvidence>,
    #[serde(default)]
    components: Vec<CdxComponent>,
}

#[derive(Deserialize)]
struct NameValue {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct CdxEvidence {
    #[serde(default)]
    occurrences: Vec<CdxOccurrence>,
}

#[derive(Deserialize)]
struct CdxOccurrence {
    #[serde(default)]
    location: String,
}

fn cyclonedx(bom: CdxBom, limits: &Limits) -> Result<Decoded, String> {
    let root = bom.metadata.and_then(|m| m.component);
    let subject = Subject {
        name: root
            .as_ref()
            .map_or_else(|| "sbom".to_string(), |c| c.name.clone()),
        version: root.as_ref().and_then(|c| c.version.clone()),
        is_image: root.as_ref().is_some_and(|c| c.kind == "container"),
        purl: root.as_ref().and_then(|c| c.purl.clone()),
        properties: Vec::new(),
    };
    let mut inventory = Inventory::default();
    let mut skipped = 0;
    // Depth first, in document order.
    let mut stack: Vec<CdxComponent> = bom.components.into_iter().rev().collect();
    while let Some(mut c) = stack.pop() {
        stack.extend(std::mem::take(&mut c.components).into_iter().rev());
        if c.kind == "operating-system" {
            if inventory.os.is_none() && !c.name.is_empty() {
                let version = c.version.clone().filter(|v| !v.is_empty());
                inventory.os = Some(Os {
                    id: c.name.to_ascii_lowercase(),
                    version_id: version.clone(),
                    version,
                    pretty_name: c.description.clone(),
                    ..Os::default()
                });
            }
            continue;
        }
        let props: BTreeMap<&str, &str> = c
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        let Some(mut package) = c.purl.as_deref().and_then(|p| from_purl(p, &props)) else {
            skipped += 1;
            continue;
        };
        let mut paths: Vec<String> = c
            .evidence
            .map(|e| e.occurrences.into_iter().map(|o| o.location).collect())
            .unwrap_or_default();
        for key in ["aquasecurity:trivy:FilePath", "syft:location:0:path"] {
            if let Some(p) = props.get(key) {
                paths.push(p.to_string());
            }
        }
        let layer = props.get("osprey:layer:index").and_then(|l| l.parse().ok());
        let diff_id = props
            .get("osprey:layer:diff-id")
            .or_else(|| props.get("aquasecurity:trivy:LayerDiffID"))
            .map(|d| d.to_string());
        paths.dedup();
        package.locations = paths
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| Location {
                path: p,
                layer,
                layer_diff_id: diff_id.clone(),
            })
            .collect();
        if inventory.packages.len() >= limits.max_packages {
            return Err(format!("more than {} packages", limits.max_packages));
        }
        inventory.packages.push(package);
    }
    let mut warnings = Vec::new();
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} components without a package URL were not checked"
        ));
    }
    Ok(Decoded {
        subject,
        inventory,
        warnings,
    })
}

#[derive(Deserialize)]
struct SpdxDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version_info: Option<String>,
    #[serde(default)]
    external_refs: Vec<SpdxRef>,
    #[serde(default)]
    primary_package_purpose: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxRef {
    #[serde(default)]
    reference_type: String,
    #[serde(default)]
    reference_locator: String,
}

fn spdx(doc: SpdxDoc, limits: &Limits) -> Result<Decoded, String> {
    if doc.packages.len() > limits.max_packages {
        return Err(format!("more than {} packages", limits.max_packages));
    }
    let mut inventory = Inventory::default();
    let mut skipped = 0;
    for p in doc.packages {
        if p.primary_package_purpose.as_deref() == Some("OPERATING-SYSTEM") {
            if inventory.os.is_none() && !p.name.is_empty() {
                inventory.os = Some(Os {
                    id: p.name.to_ascii_lowercase(),
                    version_id: p.version_info.clone(),
                    version: p.version_info.clone(),
                    ..Os::default()
                });
            }
            continue;
        }
        let purl = p
            .external_refs
            .iter()
            .find(|r| r.reference_type == "purl")
            .map(|r| r.reference_locator.as_str());
        match purl.and_then(|u| from_purl(u, &BTreeMap::new())) {
            Some(package) => inventory.packages.push(package),
            None => skipped += 1,
        }
    }
    let mut warnings = Vec::new();
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} packages without a package URL were not checked"
        ));
    }
    let subject = Subject {
        name: doc.name,
        version: None,
        is_image: false,
        purl: None,
        properties: Vec::new(),
    };
    Ok(Decoded {
        subject,
        inventory,
        warnings,
    })
}

/// A package from its purl (and the SBOM writer's properties).
fn from_purl(text: &str, props: &BTreeMap<&str, &str>) -> Option<Package> {
    let purl = PackageUrl::from_str(text).ok()?;
    let kind = match purl.ty() {
        "deb" => PackageType::Deb,
        "apk" => PackageType::Apk,
        "rpm" => PackageType::Rpm,
        "pypi" => PackageType::Python,
        "npm" => PackageType::Npm,
        "maven" => PackageType::JavaArchive,
        "golang" => PackageType::GoModule,
        "cargo" => PackageType::RustCrate,
        "nuget" => PackageType::Dotnet,
        "composer" => PackageType::PhpComposer,
        "gem" => PackageType::Gem,
        _ => return None,
    };
    let version = purl.version()?.to_string();
    let q = purl.qualifiers();
    let namespace = purl.namespace().map(str::to_string);
    let name = match (kind, &namespace) {
        (PackageType::Npm | PackageType::GoModule | PackageType::PhpComposer, Some(ns)) => {
            format!("{ns}/{}", purl.name())
        }
        _ => purl.name().to_string(),
    };
    let version = match (kind, q.get("epoch")) {
        (PackageType::Rpm, Some(e)) if e != "0" => format!("{e}:{version}"),
        _ => version,
    };
    let mut p = Package::new(kind, name, version, "sbom");
    p.purl = text.to_string();
    if kind == PackageType::JavaArchive {
        p.group = namespace.clone();
    }
    p.arch = q.get("arch").map(|a| a.to_string());
    if kind.is_os() {
        // `upstream=openssl` or Syft's `upstream=openssl@3.0.11-1`.
        let upstream = q.get("upstream").map(|u| u.to_string());
        let (src_name, src_version) = match upstream
            .as_deref()
            .map(|u| u.split_once('@').map_or((u, None), |(n, v)| (n, Some(v))))
        {
            Some((n, v)) => (Some(n.to_string()), v.map(str::to_string)),
            None => (None, None),
        };
        p.source_name = props
            .get("osprey:package:source-name")
            .or_else(|| props.get("aquasecurity:trivy:SrcName"))
            .map(|s| s.to_string())
            .or(src_name);
        p.source_version = props
            .get("osprey:package:source-version")
            .or_else(|| props.get("aquasecurity:trivy:SrcVersion"))
            .map(|s| s.to_string())
            .or(src_version);
        if let Some(ns) = &namespace {
            p.properties.insert("vendor".into(), ns.clone());
        }
        if let Some(d) = q.get("distro") {
            p.properties.insert(
                "sbom.distro".into(),
                format!("{}|{d}", namespace.as_deref().unwrap_or("")),
            );
        }
    }
    Some(p)
}

/// `debian|debian-12`, `alpine|alpine-3.18.4`, `debian|bookworm` → an OS.
fn os_from_distro(value: &str) -> Option<Os> {
    let (vendor, distro) = value.split_once('|')?;
    let (id, version) = match distro.rsplit_once('-') {
        Some((id, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => {
            (id.to_string(), Some(v.to_string()))
        }
        _ if distro.starts_with(|c: char| c.is_ascii_digit()) => {
            (vendor.to_string(), Some(distro.to_string()))
        }
        _ => (vendor.to_string(), None),
    };
    let id = if id.is_empty() {
        vendor.to_string()
    } else {
        id
    };
    let version = version.or_else(|| (id == "debian").then(|| codename_version(distro)).flatten());
    Some(Os {
        id,
        version_id: version.clone(),
        version,
        ..Os::default()
    })
}

fn codename_version(codename: &str) -> Option<String> {
    Some(
        match codename {
            "buster" => "10",
            "bullseye" => "11",
            "bookworm" => "12",
            "trixie" => "13",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclonedx_from_trivy_and_syft_shapes() {
        let doc = br#"{"bomFormat": "CycloneDX", "specVersion": "1.5",
          "metadata": {"component": {"type": "container", "name": "app:v1", "version": "sha256:abc"}},
          "components": [
            {"type": "operating-system", "name": "debian", "version": "12.4"},
            {"type": "library", "name": "libssl3", "version": "3.0.11-1~deb12u2", "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.4",
             "properties": [{"name": "aquasecurity:trivy:SrcName", "value": "openssl"}, {"name": "aquasecurity:trivy:LayerDiffID", "value": "sha256:l1"}]},
            {"type": "library", "name": "requests", "purl": "pkg:pypi/requests@2.19.1", "evidence": {"occurrences": [{"location": "/usr/lib/x/METADATA"}]},
             "components": [{"type": "library", "name": "nested", "purl": "pkg:npm/%40scope/nested@1.0.0"}]},
            {"type": "file", "name": "no purl"}
          ]}"#;
        let d = decode("x.cdx.json", doc, &Limits::default()).unwrap();
        assert_eq!(d.subject.name, "app:v1");
        let os = d.inventory.os.unwrap();
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            ("debian", Some("12.4"))
        );
        let names: Vec<&str> = d
            .inventory
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["libssl3", "requests", "@scope/nested"]);
        let ssl = &d.inventory.packages[0];
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.locations.len(), 0, "no path: no location");
        assert_eq!(
            d.inventory.packages[1].locations[0].path,
            "/usr/lib/x/METADATA"
        );
        assert_eq!(
            d.warnings,
            ["1 components without a package URL were not checked"]
        );
        assert!(ssl.properties.is_empty() || !ssl.properties.contains_key("sbom.distro"));
    }

    #[test]
    fn spdx_and_distro_from_purls() {
        let doc = br#"{"spdxVersion": "SPDX-2.3", "name": "alpine", "packages": [
            {"name": "musl", "versionInfo": "1.1.22-r3", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:apk/alpine/musl@1.1.22-r3?arch=x86_64&upstream=musl&distro=alpine-3.10.4"}]},
            {"name": "rpmthing", "externalRefs": [{"referenceType": "purl", "referenceLocator": "pkg:rpm/redhat/bash@5.1-2?epoch=1"}]},
            {"name": "x"}
        ]}"#;
        let d = decode("x.spdx.json", doc, &Limits::default()).unwrap();
        let os = d.inventory.os.unwrap();
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            ("alpine", Some("3.10.4"))
        );
        assert_eq!(d.inventory.packages[0].source_name.as_deref(), Some("musl"));
        assert_eq!(d.inventory.packages[1].version, "1:5.1-2");
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn not_sboms() {
        assert!(
            decode("a.json", b"{}", &Limits::default())
                .unwrap_err()
                .contains("neither CycloneDX")
        );
        assert!(
            decode("a.json", b"nope", &Limits::default())
                .unwrap_err()
                .starts_with("a.json: not a JSON SBOM")
        );
        assert!(
            decode(
                "a.json",
                br#"{"bomFormat": "CycloneDX", "components": 5}"#,
                &Limits::default()
            )
            .unwrap_err()
            .contains("not a CycloneDX")
        );
        assert_eq!(
            os_from_distro("debian|bookworm")
                .unwrap()
                .version_id
                .as_deref(),
            Some("12")
        );
    }
}
