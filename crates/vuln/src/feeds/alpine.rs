//! The Alpine secdb: per release and repository, for each **origin** package, the versions
//! that fixed which vulnerabilities (`secfixes: {1.2.3-r1: [CVE-…]}`). The same document
//! comes as YAML (the archived git repository) or JSON (secdb.alpinelinux.org).
//!
//! Each (package, fixed version, id) becomes an affected range `introduced 0, fixed V` in
//! `Alpine:vX.Y`; one advisory per id gathers every package it names. A fixed version of `0`
//! means "never affected" in Alpine and is skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{FeedError, Ingest, Limits, feed_files, has_extension, null_default, read_capped};
use crate::advisory::{Advisory, Affected, Event, Range};
use crate::ecosystem;

/// Imports a secdb file or every `.yaml`/`.yml`/`.json` file under a directory.
pub fn import(path: &Path, limits: &Limits) -> Result<Ingest, FeedError> {
    let files = feed_files(path, |name| has_extension(name, &["yaml", "yml", "json"]))?;
    // One advisory per (release, id), gathering packages across files of the release.
    let mut by_id: BTreeMap<(String, String), Advisory> = BTreeMap::new();
    let mut ingest = Ingest::default();
    for file in files {
        let label = file.display().to_string();
        match read_capped(&file, limits.max_feed_bytes) {
            Ok(bytes) => add_document(&label, &bytes, &mut by_id, &mut ingest),
            Err(e) => ingest.problem(label, e.reason()),
        }
    }
    ingest.advisories = by_id.into_values().collect();
    Ok(ingest)
}

/// Parses one secdb document (YAML or JSON) into the advisories of its release.
pub fn parse_document(label: &str, bytes: &[u8]) -> Ingest {
    let mut by_id = BTreeMap::new();
    let mut ingest = Ingest::default();
    add_document(label, bytes, &mut by_id, &mut ingest);
    ingest.advisories = by_id.into_values().collect();
    ingest
}

/// Adds one document's advisories to those gathered so far (one per release and id).
fn add_document(
    label: &str,
    bytes: &[u8],
    by_id: &mut BTreeMap<(String, String), Advisory>,
    ingest: &mut Ingest,
) {
    let doc = match parse(bytes) {
        Ok(d) => d,
        Err(reason) => return ingest.problem(label, reason),
    };
    let release = doc.distroversion.trim();
    if release.is_empty() {
        return ingest.problem(label, "no distroversion");
    }
    let eco = ecosystem::canonical(&format!("Alpine:{release}"));
    for entry in doc.packages {
        ingest.records += 1;
        let name = entry.pkg.name.0.trim();
        if name.is_empty() {
            ingest.problem(label, "a package without a name");
            continue;
        }
        for (fixed, ids) in entry.pkg.secfixes {
            let ids: Vec<String> = ids
                .unwrap_or_default()
                .iter()
                .flat_map(|s| ids_in(&s.0))
                .collect();
            if fixed.0.trim() == "0" {
                ingest.skipped += ids.len();
                continue;
            }
            if fixed
                .0
                .trim()
                .parse::<crate::version::ApkVersion>()
                .is_err()
            {
                ingest.problem(
                    label,
                    format!("{name}: fixed version {:?} is not an apk version", fixed.0),
                );
                continue;
            }
            for id in ids {
                let advisory = by_id
                    .entry((eco.clone(), id.clone()))
                    .or_insert_with(|| Advisory {
                        id: id.clone(),
                        aliases: Vec::new(),
                        summary: String::new(),
                        details: String::new(),
                        published: None,
                        modified: None,
                        ratings: Vec::new(),
                        references: vec![reference(&id)],
                        source: "alpine-secdb".into(),
                        informational: None,
                        affected: Vec::new(),
                    });
                let range = Range::Ecosystem(vec![
                    Event::Introduced("0".into()),
                    Event::Fixed(fixed.0.trim().to_string()),
                ]);
                match advisory.affected.iter_mut().find(|a| a.name == name) {
                    Some(a) => a.ranges.push(range),
                    None => advisory.affected.push(Affected {
                        ecosystem: eco.clone(),
                        name: name.to_string(),
                        ranges: vec![range],
                        versions: Vec::new(),
                        ratings: Vec::new(),
                    }),
                }
            }
        }
    }
}

/// A web page about an id.
fn reference(id: &str) -> String {
    if id.starts_with("CVE-") {
        format!("https://security.alpinelinux.org/vuln/{id}")
    } else {
        format!("https://www.google.com/search?q={id}")
    }
}

/// The identifiers in one secfixes line: `CVE-2019-1 CVE-2019-2`, `XSA-307 (xen)`.
fn ids_in(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|t| t.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '[' | ']')))
        .filter(|t| {
            t.starts_with(|c: char| c.is_ascii_uppercase())
                && t.contains('-')
                && t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

fn parse(bytes: &[u8]) -> Result<Secdb, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not a secdb document: {e}"))
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            format!(
                "not a secdb document: {}",
                e.to_string().lines().next().unwrap_or_default()
            )
        })
    }
}

#[derive(Deserialize)]
struct Secdb {
    #[serde(default)]
    distroversion: String,
    #[serde(default, deserialize_with = "null_default")]
    packages: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: Text,
    #[serde(default, deserialize_with = "null_default")]
    secfixes: BTreeMap<Text, Option<Vec<Text>>>,
}

/// A scalar read as its text: YAML would read `1.10` as the number 1.1 and `0` as an integer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.yaml"),
            "---\ndistroversion: v3.10\nreponame: main\npackages:\n  - pkg:\n      name: openssl\n      secfixes:\n        1.1.1d-r2:\n          - CVE-2019-1547 CVE-2019-1549\n        1.10-r0:\n          - CVE-2019-9\n        0:\n          - CVE-2000-1\n  - pkg:\n      name: libssl-extra\n      secfixes:\n        1.0-r1:\n          - CVE-2019-1547\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("community.json"),
            r#"{"distroversion": "v3.10", "packages": [{"pkg": {"name": "xen", "secfixes": {"4.12.1-r0": ["XSA-307 (xen)"]}}}]}"#,
        )
        .unwrap();
        let ingest = import(dir.path(), &Limits::default()).unwrap();
        assert!(ingest.problems.is_empty(), "{:?}", ingest.problems);
        assert_eq!(ingest.skipped, 1, "fixed version 0 means never affected");
        let ids: Vec<&str> = ingest.advisories.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            ["CVE-2019-1547", "CVE-2019-1549", "CVE-2019-9", "XSA-307"]
        );
        let a = &ingest.advisories[0];
        assert_eq!(a.affected.len(), 2, "one advisory gathers both packages");
        assert_eq!(a.affected[0].ecosystem, "Alpine:v3.10");
        assert_eq!(a.affected[0].name, "openssl");
        assert_eq!(
            a.affected[0].ranges,
            [Range::Ecosystem(vec![
                Event::Introduced("0".into()),
                Event::Fixed("1.1.1d-r2".into())
            ])]
        );
        let nine = &ingest.advisories[2];
        assert_eq!(
            nine.affected[0].ranges,
            [Range::Ecosystem(vec![
                Event::Introduced("0".into()),
                Event::Fixed("1.10-r0".into())
            ])],
            "1.10 stays 1.10"
        );
    }

    #[test]
    fn bad_documents_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "packages: [1, 2").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "packages:\n").unwrap();
        std::fs::write(dir.path().join("c.yaml"), "distroversion: v3.1\npackages:\n  - pkg:\n      name: x\n      secfixes:\n        not-a-version:\n          - CVE-1-2\n").unwrap();
        let ingest = import(dir.path(), &Limits::default()).unwrap();
        let reasons: Vec<String> = ingest.problems.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].contains("a.yaml: not a secdb document"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("b.yaml: no distroversion"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("not an apk version"), "{reasons:?}");
    }
}
