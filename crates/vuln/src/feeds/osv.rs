//! OSV records (https://ossf.github.io/osv-schema/) from directories, single files or
//! `all.zip` archives, in JSON or YAML.
//!
//! Kept: `ECOSYSTEM` and `SEMVER` ranges and explicit `versions` (`GIT` ranges name commits,
//! which installed packages do not carry); `severity` CVSS vectors at record and package
//! level; severity labels in `database_specific` / `ecosystem_specific`; RustSec's
//! `database_specific.cvss` and `informational`. Withdrawn records are left out.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::{
    FeedError, Ingest, Limits, clip, cvss_rating, feed_files, label_rating, null_default,
    read_capped,
};
use crate::advisory::{Advisory, Affected, Event, Range, Rating};
use crate::ecosystem;

/// Imports every OSV record under `path`: a directory (searched recursively for `.json`,
/// `.yaml` and `.yml` files), a `.zip` archive, or one record file.
pub fn import(path: &Path, limits: &Limits) -> Result<Ingest, FeedError> {
    let meta = std::fs::metadata(path).map_err(|e| FeedError::io(path, e))?;
    let mut ingest = Ingest::default();
    if meta.is_dir() {
        let files = feed_files(path, |name| record_format(Path::new(name)).is_some())?;
        for file in files {
            let label = file.display().to_string();
            ingest.records += 1;
            match read_capped(&file, limits.max_record_bytes) {
                Ok(bytes) => add(&mut ingest, &label, &bytes, record_format(&file), limits),
                Err(e) => ingest.problem(label, e.reason()),
            }
        }
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        import_zip(path, limits, &mut ingest)?;
    } else {
        let bytes = read_capped(path, limits.max_record_bytes)?;
        ingest.records += 1;
        let format = record_format(path).or(Some(Format::Json));
        add(
            &mut ingest,
            &path.display().to_string(),
            &bytes,
            format,
            limits,
        );
    }
    Ok(ingest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

fn record_format(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some(Format::Json),
        "yaml" | "yml" => Some(Format::Yaml),
        _ => None,
    }
}

fn import_zip(path: &Path, limits: &Limits, ingest: &mut Ingest) -> Result<(), FeedError> {
    let file = std::fs::File::open(path).map_err(|e| FeedError::io(path, e))?;
    let len = file.metadata().map_err(|e| FeedError::io(path, e))?.len();
    if len > limits.max_feed_bytes {
        return Err(FeedError::invalid(
            path,
            format!(
                "archive is {len} bytes, over the {}-byte limit",
                limits.max_feed_bytes
            ),
        ));
    }
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| FeedError::invalid(path, format!("not a zip archive: {e}")))?;
    if archive.len() > limits.max_zip_entries {
        return Err(FeedError::invalid(
            path,
            format!(
                "{} entries, over the limit of {}",
                archive.len(),
                limits.max_zip_entries
            ),
        ));
    }
    let mut buf = Vec::new();
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                ingest.problem(
                    format!("{}!#{i}", path.display()),
                    format!("unreadable entry: {e}"),
                );
                continue;
            }
        };
        let name = match entry.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                ingest.problem(
                    format!("{}!#{i}", path.display()),
                    format!("entry name: {e}"),
                );
                continue;
            }
        };
        let label = format!("{}!{name}", path.display());
        let Some(format) = record_format(Path::new(&name)) else {
            continue;
        };
        if !entry.is_file() {
            continue;
        }
        ingest.records += 1;
        if entry.size() > limits.max_record_bytes {
            ingest.problem(
                label,
                format!(
                    "{} bytes, over the {}-byte record limit",
                    entry.size(),
                    limits.max_record_bytes
                ),
            );
            continue;
        }
        buf.clear();
        // The declared size is not trusted: read at most one byte past the limit.
        if let Err(e) = (&mut entry)
            .take(limits.max_record_bytes + 1)
            .read_to_end(&mut buf)
        {
            ingest.problem(label, format!("unreadable entry: {e}"));
            continue;
        }
        if buf.len() as u64 > limits.max_record_bytes {
            ingest.problem(
                label,
                format!("over the {}-byte record limit", limits.max_record_bytes),
            );
            continue;
        }
        add(ingest, &label, &buf, Some(format), limits);
    }
    Ok(())
}

fn add(ingest: &mut Ingest, label: &str, bytes: &[u8], format: Option<Format>, limits: &Limits) {
    let parsed = match format {
        Some(Format::Yaml) => std::str::from_utf8(bytes)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|s| {
                serde_saphyr::from_str::<Record>(s).map_err(|e| first_line(&e.to_string()))
            }),
        _ => serde_json::from_slice::<Record>(bytes).map_err(|e| e.to_string()),
    };
    let record = match parsed {
        Ok(r) => r,
        Err(reason) => return ingest.problem(label, format!("not an OSV record: {reason}")),
    };
    match convert(record, limits) {
        Ok(Converted::Advisory(a)) => ingest.advisories.push(*a),
        Ok(Converted::Withdrawn) => ingest.withdrawn += 1,
        Ok(Converted::Nothing) => ingest.skipped += 1,
        Err(reason) => ingest.problem(label, reason),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Parses one OSV record (JSON) into an advisory: `Ok(None)` when it is withdrawn or affects
/// nothing matchable. Used by the fuzz target.
pub fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Option<Advisory>, String> {
    let record: Record =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OSV record: {e}"))?;
    match convert(record, limits)? {
        Converted::Advisory(a) => Ok(Some(*a)),
        Converted::Withdrawn | Converted::Nothing => Ok(None),
    }
}

enum Converted {
    Advisory(Box<Advisory>),
    Withdrawn,
    Nothing,
}

fn convert(r: Record, limits: &Limits) -> Result<Converted, String> {
    if r.id.trim().is_empty() {
        return Err("the record has no id".into());
    }
    if r.withdrawn.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        return Ok(Converted::Withdrawn);
    }
    for (what, len) in [
        ("aliases", r.aliases.len()),
        ("affected", r.affected.len()),
        ("references", r.references.len()),
    ] {
        if len > limits.max_list_len {
            return Err(format!(
                "{what} has {len} entries, over the limit of {}",
                limits.max_list_len
            ));
        }
    }
    let source_label = r.id.split('-').next().unwrap_or("OSV").to_string();
    let mut ratings: Vec<Rating> = r.severity.iter().filter_map(|s| s.rating()).collect();
    ratings.extend(specific_label(&source_label, r.database_specific.as_ref()));
    let mut informational = None;
    let mut affected = Vec::new();
    for a in r.affected {
        let Some(package) = a.package else { continue };
        let (Some(eco), Some(name)) = (package.ecosystem, package.name) else {
            continue;
        };
        if eco.trim().is_empty() || name.trim().is_empty() {
            continue;
        }
        let eco = ecosystem::canonical(&eco);
        if a.versions.len() > limits.max_list_len {
            return Err(format!(
                "{name}: versions has {} entries, over the limit of {}",
                a.versions.len(),
                limits.max_list_len
            ));
        }
        let mut ranges = Vec::new();
        for range in a.ranges {
            if range.events.len() > limits.max_list_len {
                return Err(format!(
                    "{name}: a range has {} events, over the limit of {}",
                    range.events.len(),
                    limits.max_list_len
                ));
            }
            let events: Vec<Event> = range
                .events
                .into_iter()
                .filter_map(RawEvent::into_event)
                .collect();
            if events.is_empty() {
                continue;
            }
            match range.kind.as_str() {
                "ECOSYSTEM" => ranges.push(Range::Ecosystem(events)),
                "SEMVER" => ranges.push(Range::Semver(events)),
                _ => {}
            }
        }
        let versions: Vec<String> = a
            .versions
            .into_iter()
            .filter(|v| !v.trim().is_empty())
            .collect();
        if ranges.is_empty() && versions.is_empty() {
            continue;
        }
        let mut pkg_ratings: Vec<Rating> = a.severity.iter().filter_map(|s| s.rating()).collect();
        if let Some(db) = &a.database_specific {
            if let Some(v) = db.get("cvss").and_then(|v| v.as_str()) {
                pkg_ratings.extend(cvss_rating(v));
            }
            if let Some(info) = db.get("informational").and_then(|v| v.as_str()) {
                informational = Some(info.to_string());
            }
        }
        pkg_ratings.extend(specific_label(&source_label, a.database_specific.as_ref()));
        pkg_ratings.extend(specific_label(&source_label, a.ecosystem_specific.as_ref()));
        affected.push(Affected {
            name: ecosystem::normalize_name(&eco, &name),
            ecosystem: eco,
            ranges,
            versions,
            ratings: pkg_ratings,
        });
    }
    if affected.is_empty() {
        return Ok(Converted::Nothing);
    }
    let mut aliases: Vec<String> = r
        .aliases
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty() && *a != r.id)
        .collect();
    aliases.sort();
    aliases.dedup();
    let mut references: Vec<String> = r
        .references
        .into_iter()
        .filter_map(|x| x.url)
        .filter(|u| !u.is_empty())
        .collect();
    references.dedup();
    references.truncate(limits.max_references);
    Ok(Converted::Advisory(Box::new(Advisory {
        id: r.id.trim().to_string(),
        aliases,
        summary: clip(
            r.summary.as_deref().unwrap_or_default().trim(),
            limits.max_summary_chars,
        ),
        details: clip(
            r.details.as_deref().unwrap_or_default().trim(),
            limits.max_details_chars,
        ),
        published: r.published.filter(|p| !p.starts_with("0001-")),
        modified: r.modified.filter(|p| !p.starts_with("0001-")),
        ratings,
        references,
        source: "osv".into(),
        informational,
        affected,
    })))
}

/// A severity label under `severity` (or Debian's `urgency`) in a `*_specific` object.
fn specific_label(source: &str, value: Option<&serde_json::Value>) -> Option<Rating> {
    let v = value?;
    let label = v.get("severity").or_else(|| v.get("urgency"))?.as_str()?;
    label_rating(source, label)
}

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    severity: Vec<RawSeverity>,
    #[serde(default, deserialize_with = "null_default")]
    affected: Vec<RawAffected>,
    #[serde(default, deserialize_with = "null_default")]
    references: Vec<RawReference>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    score: String,
}

impl RawSeverity {
    fn rating(&self) -> Option<Rating> {
        match self.kind.as_str() {
            "CVSS_V2" | "CVSS_V3" | "CVSS_V4" => cvss_rating(&self.score),
            other => label_rating(other, &self.score),
        }
    }
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default, deserialize_with = "null_default")]
    severity: Vec<RawSeverity>,
    #[serde(default, deserialize_with = "null_default")]
    ranges: Vec<RawRange>,
    #[serde(default, deserialize_with = "null_default")]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, deserialize_with = "null_default")]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

impl RawEvent {
    fn into_event(self) -> Option<Event> {
        let keep = |v: String| {
            let v = v.trim().to_string();
            (!v.is_empty()).then_some(v)
        };
        if let Some(v) = self.introduced.and_then(keep) {
            return Some(Event::Introduced(v));
        }
        if let Some(v) = self.fixed.and_then(keep) {
            return Some(Event::Fixed(v));
        }
        if let Some(v) = self.last_affected.and_then(keep) {
            return Some(Event::LastAffected(v));
        }
        self.limit
            .and_then(keep)
            .filter(|v| v != "*")
            .map(Event::Limit)
    }
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(default)]
    url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Option<Advisory>, String> {
        parse_json(json.as_bytes(), &Limits::default())
    }

    #[test]
    fn a_full_record() {
        let a = parse(
            r#"{
              "schema_version": "1.6.0", "id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2024-1", "PYSEC-2024-9"],
              "summary": " Bad thing ", "details": "More", "published": "2024-01-01T00:00:00Z",
              "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
              "affected": [{
                 "package": {"ecosystem": "PyPI", "name": "Django_Rest.Framework", "purl": "pkg:pypi/x"},
                 "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}, {"fixed": "abc"}]},
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1"}], "database_specific": {}}],
                 "versions": ["3.0"], "unknown_field": 1
              }],
              "references": [{"type": "WEB", "url": "https://example.com"}],
              "database_specific": {"severity": "MODERATE"}, "new_top_level": {"x": 1}
            }"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.id, "GHSA-xxxx-yyyy-zzzz");
        assert_eq!(a.aliases, ["CVE-2024-1", "PYSEC-2024-9"]);
        assert_eq!(a.summary, "Bad thing");
        assert_eq!(a.affected.len(), 1);
        assert_eq!(a.affected[0].name, "django-rest-framework");
        assert_eq!(
            a.affected[0].ranges,
            [Range::Ecosystem(vec![
                Event::Introduced("0".into()),
                Event::Fixed("3.1".into())
            ])]
        );
        assert_eq!(a.ratings.len(), 2);
        assert!(
            matches!(&a.ratings[1], Rating::Label { source, label } if source == "GHSA" && label == "MODERATE")
        );
        assert_eq!(a.references, ["https://example.com"]);
    }

    #[test]
    fn withdrawn_and_unmatchable_records() {
        assert_eq!(
            parse(r#"{"id": "X-1", "withdrawn": "2024-01-01T00:00:00Z", "affected": []}"#),
            Ok(None)
        );
        assert_eq!(
            parse(
                r#"{"id": "X-2", "affected": [{"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]}"#
            ),
            Ok(None)
        );
        assert_eq!(
            parse(r#"{"id": "X-3", "aliases": null, "affected": null, "references": null}"#),
            Ok(None)
        );
    }

    #[test]
    fn malformed_records_name_the_reason() {
        assert!(parse("{").unwrap_err().contains("not an OSV record"));
        assert!(parse(r#"{"summary": "no id"}"#).unwrap_err().contains("id"));
        assert!(parse(r#"{"id": "  "}"#).unwrap_err().contains("no id"));
        assert!(
            parse(r#"{"id": "X", "affected": "wrong"}"#)
                .unwrap_err()
                .contains("not an OSV record")
        );
        let limits = Limits {
            max_list_len: 2,
            ..Limits::default()
        };
        let err = parse_json(br#"{"id": "X", "aliases": ["a", "b", "c"]}"#, &limits).unwrap_err();
        assert!(err.contains("aliases has 3 entries"), "{err}");
    }

    #[test]
    fn rustsec_specifics() {
        let a = parse(
            r#"{"id": "RUSTSEC-2020-1", "affected": [{"package": {"ecosystem": "crates.io", "name": "Foo_Bar"},
               "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.0.0-0"}, {"fixed": "1.0.0"}]}],
               "database_specific": {"cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "informational": "unmaintained"}}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.affected[0].name, "foo-bar");
        assert_eq!(a.informational.as_deref(), Some("unmaintained"));
        assert!(matches!(&a.affected[0].ratings[0], Rating::Cvss { score, .. } if *score == 7.5));
    }
}
