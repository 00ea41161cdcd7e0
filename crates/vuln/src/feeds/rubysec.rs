//! The Ruby advisory database (rubysec/ruby-advisory-db): one YAML file per advisory under
//! `gems/<gem>/`. Affected versions are not ranges there but the complement of
//! `patched_versions` and `unaffected_versions`, each a list of RubyGems requirements
//! (`"~> 2.2.8, >= 2.2.8.1"`); they are stored as such ([`Range::Outside`]) and evaluated with
//! RubyGems' ordering, as bundler-audit does. Interpreter advisories (`rubies/`) have no gem
//! to match and are skipped.

use std::path::Path;

use serde::Deserialize;

use super::{FeedError, Ingest, Limits, clip, feed_files, has_extension, read_capped};
use crate::advisory::{Advisory, Affected, Constraint, Op, Range, Rating};
use crate::version::{Scheme, Version};

/// Imports every `.yml`/`.yaml` advisory under `path` (or one file).
pub fn import(path: &Path, limits: &Limits) -> Result<Ingest, FeedError> {
    let files = feed_files(path, |name| has_extension(name, &["yml", "yaml"]))?;
    let mut ingest = Ingest::default();
    for file in files {
        let label = file.display().to_string();
        ingest.records += 1;
        let bytes = match read_capped(&file, limits.max_record_bytes) {
            Ok(b) => b,
            Err(e) => {
                ingest.problem(label, e.reason());
                continue;
            }
        };
        match parse(&bytes, &file, limits) {
            Ok(Some(a)) => ingest.advisories.push(a),
            Ok(None) => ingest.skipped += 1,
            Err(reason) => ingest.problem(label, reason),
        }
    }
    Ok(ingest)
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    gem: Option<String>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    cve: Option<Scalar>,
    #[serde(default)]
    ghsa: Option<String>,
    #[serde(default)]
    osvdb: Option<Scalar>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    date: Option<Scalar>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    cvss_v2: Option<f64>,
    #[serde(default)]
    cvss_v3: Option<f64>,
    #[serde(default)]
    cvss_v4: Option<f64>,
    #[serde(default)]
    patched_versions: Option<Vec<String>>,
    #[serde(default)]
    unaffected_versions: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Related>,
}

#[derive(Deserialize)]
struct Related {
    #[serde(default)]
    url: Option<Vec<String>>,
}

/// A scalar as text (`cve: 2023-50725` is a plain scalar, `date: 2023-12-18` may read as a date).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.trim().to_string(),
            Scalar::Int(n) => n.to_string(),
        }
    }
}

/// Parses one advisory file; `Ok(None)` for interpreter advisories (no gem to match).
pub fn parse(bytes: &[u8], file: &Path, limits: &Limits) -> Result<Option<Advisory>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let raw: Raw = serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "not a RubySec advisory: {}",
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    if raw.engine.is_some() && raw.gem.is_none() {
        return Ok(None);
    }
    let gem = raw
        .gem
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .ok_or("no gem")?;
    let mut ids = Vec::new();
    if let Some(cve) = &raw.cve {
        ids.push(format!("CVE-{}", cve.text().trim_start_matches("CVE-")));
    }
    if let Some(ghsa) = raw.ghsa.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        ids.push(format!("GHSA-{}", ghsa.trim_start_matches("GHSA-")));
    }
    if let Some(osvdb) = &raw.osvdb {
        ids.push(format!("OSVDB-{}", osvdb.text()));
    }
    if ids.is_empty() {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("advisory");
        ids.push(format!("RUBYSEC-{gem}-{stem}"));
    }
    let mut sets = Vec::new();
    for req in raw
        .patched_versions
        .iter()
        .flatten()
        .chain(raw.unaffected_versions.iter().flatten())
    {
        sets.push(requirement(req)?);
    }
    if sets.len() > limits.max_list_len {
        return Err(format!(
            "{} requirements, over the limit of {}",
            sets.len(),
            limits.max_list_len
        ));
    }
    let mut ratings = Vec::new();
    for (version, score) in [
        ("4.0", raw.cvss_v4),
        ("3.1", raw.cvss_v3),
        ("2.0", raw.cvss_v2),
    ] {
        if let Some(score) = score.filter(|s| (0.0..=10.0).contains(s)) {
            ratings.push(Rating::Score {
                source: "rubysec".into(),
                version: version.into(),
                score,
            });
        }
    }
    let mut references: Vec<String> = raw
        .url
        .into_iter()
        .chain(raw.related.and_then(|r| r.url).unwrap_or_default())
        .collect();
    references.dedup();
    references.truncate(limits.max_references);
    let id = ids.remove(0);
    Ok(Some(Advisory {
        id,
        aliases: ids,
        summary: clip(
            raw.title.as_deref().unwrap_or_default().trim(),
            limits.max_summary_chars,
        ),
        details: clip(
            raw.description.as_deref().unwrap_or_default().trim(),
            limits.max_details_chars,
        ),
        published: raw.date.map(|d| format!("{}T00:00:00Z", d.text())),
        modified: None,
        ratings,
        references,
        source: "rubysec".into(),
        informational: None,
        affected: vec![Affected {
            ecosystem: "RubyGems".into(),
            name: gem.to_string(),
            ranges: vec![Range::Outside(sets)],
            versions: Vec::new(),
            ratings: Vec::new(),
        }],
    }))
}

/// `"~> 2.2.8, >= 2.2.8.1"` → constraints; a bare version means `=`.
pub fn requirement(text: &str) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (op, version) = [
            ("~>", Op::Pessimistic),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(s, op)| part.strip_prefix(s).map(|rest| (*op, rest.trim())))
        .unwrap_or((Op::Eq, part));
        if Version::parse(Scheme::RubyGems, version).is_none() {
            return Err(format!(
                "requirement {text:?}: {version:?} is not a gem version"
            ));
        }
        out.push(Constraint {
            op,
            version: version.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advisory() {
        let yaml = "---\ngem: resque\ncve: 2023-50725\nghsa: gc3j-vvwf-4rp8\nurl: https://x\ntitle: XSS\ndate: 2023-12-18\ndescription: |\n  text\ncvss_v3: 6.3\npatched_versions:\n  - \">= 2.2.1\"\nunaffected_versions:\n  - \"< 1.0\"\nrelated:\n  url:\n    - https://y\n";
        let a = parse(
            yaml.as_bytes(),
            Path::new("CVE-2023-50725.yml"),
            &Limits::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.id, "CVE-2023-50725");
        assert_eq!(a.aliases, ["GHSA-gc3j-vvwf-4rp8"]);
        assert_eq!(a.published.as_deref(), Some("2023-12-18T00:00:00Z"));
        assert_eq!(a.references, ["https://x", "https://y"]);
        assert!(matches!(a.ratings[0], Rating::Score { score, .. } if score == 6.3));
        let Range::Outside(sets) = &a.affected[0].ranges[0] else {
            panic!()
        };
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0],
            [Constraint {
                op: Op::Ge,
                version: "2.2.1".into()
            }]
        );
    }

    #[test]
    fn requirements() {
        assert_eq!(
            requirement("~> 2.2.8, >= 2.2.8.1").unwrap(),
            [
                Constraint {
                    op: Op::Pessimistic,
                    version: "2.2.8".into()
                },
                Constraint {
                    op: Op::Ge,
                    version: "2.2.8.1".into()
                }
            ]
        );
        assert_eq!(
            requirement("1.0").unwrap(),
            [Constraint {
                op: Op::Eq,
                version: "1.0".into()
            }]
        );
        assert!(requirement(">= banana!").unwrap_err().contains("banana"));
    }

    #[test]
    fn interpreters_and_bad_files() {
        let ruby = "engine: ruby\ncve: 2020-1\npatched_versions:\n  - \">= 2.7.2\"\n";
        assert_eq!(
            parse(ruby.as_bytes(), Path::new("x.yml"), &Limits::default()),
            Ok(None)
        );
        assert!(
            parse(b"gem: [", Path::new("x.yml"), &Limits::default())
                .unwrap_err()
                .contains("not a RubySec advisory")
        );
        assert_eq!(
            parse(b"title: t\n", Path::new("x.yml"), &Limits::default()),
            Err("no gem".into())
        );
    }
}
