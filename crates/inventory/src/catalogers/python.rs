//! Python packages: `*.dist-info/METADATA` (wheels), `*.egg-info/PKG-INFO` and single-file
//! `*.egg-info`, `EGG-INFO/PKG-INFO` of unzipped eggs, and zipped `.egg` / `.whl` archives.

use std::io::Read;

use osprey_model::{Location, Package, PackageType};

use super::text::{field, fields, header_block, lossy};
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct Python;

impl Cataloger for Python {
    fn name(&self) -> &'static str {
        "python"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        let parent = file.parent_name();
        (file.name == "METADATA" && parent.ends_with(".dist-info"))
            || (file.name == "PKG-INFO" && (parent.ends_with(".egg-info") || parent == "EGG-INFO"))
            || file.name.ends_with(".egg-info")
            || file.name.ends_with(".egg")
            || file.name.ends_with(".whl")
    }
    fn max_size(&self, limits: &InventoryLimits) -> u64 {
        limits.max_archive_bytes
    }
    fn heavy(&self) -> bool {
        true
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        limits: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let location = file.absolute();
        let metadata = if file.name.ends_with(".egg") || file.name.ends_with(".whl") {
            match archive_metadata(data, limits)? {
                Some(m) => m,
                None => return Ok(None),
            }
        } else {
            if data.len() as u64 > limits.max_metadata_bytes {
                return Err("metadata file too large".into());
            }
            lossy(data).into_owned()
        };
        Ok(packages(
            self.name(),
            parse_metadata(&metadata, &location).into_iter().collect(),
        ))
    }
}

/// The METADATA / PKG-INFO of an egg or wheel.
fn archive_metadata(data: &[u8], limits: &InventoryLimits) -> Result<Option<String>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    let wanted = (0..zip.len().min(limits.max_archive_entries)).find(|&i| {
        zip.name_for_index(i).and_then(|r| r.ok()).is_some_and(|n| {
            n == "EGG-INFO/PKG-INFO"
                || (n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        })
    });
    let Some(i) = wanted else { return Ok(None) };
    let entry = zip.by_index(i).map_err(|e| e.to_string())?;
    let mut text = String::new();
    entry
        .take(limits.max_metadata_bytes)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading metadata: {e}"))?;
    Ok(Some(text))
}

/// A package from METADATA / PKG-INFO headers (Name and Version required).
pub(crate) fn parse_metadata(text: &str, location: &str) -> Option<Package> {
    let h = header_block(text);
    let name = field(&h, "Name")?.trim();
    let version = field(&h, "Version")?.trim();
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let mut p = Package::new(PackageType::Python, name, version, "python");
    p.licenses = licenses(&h);
    if let Some(a) = field(&h, "Author").filter(|a| !a.is_empty() && *a != "UNKNOWN") {
        p.properties.insert("author".into(), a.to_string());
    }
    p.locations.push(Location::at(location.to_string()));
    Some(p)
}

/// `License-Expression`, else a short `License`, else the licence classifiers.
fn licenses(h: &[(&str, String)]) -> Vec<String> {
    if let Some(e) = field(h, "License-Expression").filter(|e| !e.is_empty()) {
        return vec![e.to_string()];
    }
    if let Some(l) = field(h, "License")
        .filter(|l| !l.is_empty() && *l != "UNKNOWN" && !l.contains('\n') && l.len() < 100)
    {
        return vec![l.to_string()];
    }
    fields(h, "Classifier")
        .filter_map(|c| c.strip_prefix("License ::"))
        .map(|c| c.rsplit("::").next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let m =
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\nLicense: Apache 2.0\n\nBody";
        let p = parse_metadata(m, "/x/METADATA").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("requests", "2.19.1")
        );
        assert_eq!(p.licenses, ["Apache 2.0"]);
        let c = "Name: x\nVersion: 1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(parse_metadata(c, "/m").unwrap().licenses, ["MIT License"]);
        assert!(parse_metadata("Name: x\n", "/m").is_none());
    }
}
