//! Java archives (jar, war, ear, par, …): the `pom.properties` files an archive carries (one
//! per artifact, so shaded jars report every shaded artifact), else its `MANIFEST.MF`, else
//! its file name; archives nested inside (war `WEB-INF/lib`, Spring Boot `BOOT-INF/lib`,
//! `META-INF/jars`) are opened in memory up to a depth and a byte budget.

use std::io::{Cursor, Read};

use osprey_model::{Location, Package, PackageType};

use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

const EXTENSIONS: &[&str] = &[
    ".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi", ".kar", ".lpkg",
];

fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

pub(crate) struct Java;

impl Cataloger for Java {
    fn name(&self) -> &'static str {
        "java-archive"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        is_archive_name(file.name)
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
        let mut budget = Budget {
            remaining: limits.max_nested_bytes,
        };
        let mut out = Vec::new();
        scan(
            data,
            &file.absolute(),
            file.name,
            1,
            limits,
            &mut budget,
            &mut out,
        )?;
        Ok(packages(self.name(), out))
    }
}

struct Budget {
    remaining: u64,
}

/// Reads one archive (and, recursively, the archives in it), appending packages.
fn scan(
    data: &[u8],
    location: &str,
    file_name: &str,
    depth: u32,
    limits: &InventoryLimits,
    budget: &mut Budget,
    out: &mut Vec<Package>,
) -> Result<(), String> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(data)).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut poms = Vec::new();
    let mut manifest = None;
    let mut nested = Vec::new();
    for i in 0..zip.len().min(limits.max_archive_entries) {
        let Some(name) = zip
            .name_for_index(i)
            .and_then(|r| r.ok())
            .map(|n| n.into_owned())
        else {
            continue;
        };
        if name.ends_with("pom.properties") {
            if let Some(props) = read_text(&mut zip, i, 1 << 20).map(|t| parse_properties(&t)) {
                poms.push((name, props));
            }
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            manifest = read_text(&mut zip, i, 4 << 20).map(|t| parse_manifest(&t));
        } else if is_archive_name(&name) && !name.ends_with('/') {
            nested.push((i, name));
        }
    }

    let here = Location::at(location.to_string());
    for (pom_path, props) in &poms {
        let (Some(artifact), Some(version)) = (get(props, "artifactId"), get(props, "version"))
        else {
            continue;
        };
        let mut p = Package::new(PackageType::JavaArchive, artifact, version, "java-archive");
        p.group = get(props, "groupId").map(str::to_string);
        p.properties
            .insert("maven.pom-properties".into(), pom_path.clone());
        p.locations.push(here.clone());
        out.push(p);
    }
    if poms.is_empty()
        && let Some(p) = from_manifest_or_name(manifest.as_deref(), file_name, &here)
    {
        out.push(p);
    }

    if depth >= limits.max_archive_depth {
        return Ok(());
    }
    for (i, name) in nested {
        let Ok(entry) = zip.by_index(i) else { continue };
        let size = entry.size();
        if size > limits.max_archive_bytes || size > budget.remaining {
            continue;
        }
        let mut inner = Vec::with_capacity(size as usize);
        if entry.take(size).read_to_end(&mut inner).is_err() {
            continue;
        }
        budget.remaining = budget.remaining.saturating_sub(inner.len() as u64);
        let inner_name = name.rsplit('/').next().unwrap_or(&name).to_string();
        // A broken inner archive does not spoil the outer one.
        let _ = scan(
            &inner,
            &format!("{location}!/{name}"),
            &inner_name,
            depth + 1,
            limits,
            budget,
            out,
        );
    }
    Ok(())
}

fn read_text(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, i: usize, limit: u64) -> Option<String> {
    let entry = zip.by_index(i).ok()?;
    let mut buf = Vec::new();
    entry.take(limit).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn get<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `key=value` lines of a Java properties file (comments and blank lines skipped).
fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            l.split_once(['=', ':'])
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Main attributes of a manifest; continuation lines (a leading space) are joined.
fn parse_manifest(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // per-entry sections follow
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(cont);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// `name-1.2.3.jar` → (`name`, `1.2.3`): the version starts at the first `-` followed by a digit.
fn split_file_name(file_name: &str) -> (String, Option<String>) {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    let bytes = stem.as_bytes();
    for i in 0..bytes.len().saturating_sub(1) {
        if bytes[i] == b'-' && bytes[i + 1].is_ascii_digit() {
            return (stem[..i].to_string(), Some(stem[i + 1..].to_string()));
        }
    }
    (stem.to_string(), None)
}

fn from_manifest_or_name(
    manifest: Option<&[(String, String)]>,
    file_name: &str,
    here: &Location,
) -> Option<Package> {
    let (name, name_version) = split_file_name(file_name);
    let m = manifest.unwrap_or(&[]);
    let version = [
        "Implementation-Version",
        "Bundle-Version",
        "Specification-Version",
    ]
    .iter()
    .find_map(|k| get(m, k))
    .map(str::to_string)
    .or(name_version)?;
    if name.is_empty() {
        return None;
    }
    let mut p = Package::new(PackageType::JavaArchive, name, version, "java-archive");
    p.group = get(m, "Implementation-Vendor-Id").map(str::to_string);
    if let Some(t) = get(m, "Implementation-Title").or_else(|| get(m, "Bundle-Name")) {
        p.properties.insert("manifest.title".into(), t.to_string());
    }
    p.locations.push(here.clone());
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_manifests() {
        assert_eq!(
            split_file_name("trivy-heuristic-1.0.0-SNAPSHOT.jar"),
            ("trivy-heuristic".into(), Some("1.0.0-SNAPSHOT".into()))
        );
        assert_eq!(
            split_file_name("log4j-1.2.16.jar"),
            ("log4j".into(), Some("1.2.16".into()))
        );
        assert_eq!(split_file_name("app.war"), ("app".into(), None));
        let m = parse_manifest(
            "Manifest-Version: 1.0\nExport-Package: a;version=\"1\",b\n c\nImplementation-Version: 2.5\n\nName: x\nImplementation-Version: 9\n",
        );
        assert_eq!(get(&m, "Export-Package"), Some("a;version=\"1\",bc"));
        assert_eq!(get(&m, "Implementation-Version"), Some("2.5"));
    }
}
