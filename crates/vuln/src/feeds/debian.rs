//! The Debian security tracker: its JSON export (`tracker/data/json`: source package → issue
//! → release codename → status, fixed version, urgency) and the DSA/DLA lists
//! (`data/DSA/list`, `data/DLA/list`: advisory → CVEs → `[codename] - package version`).
//!
//! Releases are named by codename in the tracker and by number in OSV (`Debian:12`); both are
//! stored by number. Issues resolved with fixed version `0` ("not affected") and releases
//! without a number (sid) are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    FeedError, Ingest, Limits, clip, feed_files, has_extension, label_rating, read_capped,
};
use crate::advisory::{Advisory, Affected, Event, Range};
use crate::version::{Scheme, Version};

/// The release number of a Debian codename.
pub fn release_number(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "woody" => "3.0",
        "sarge" => "3.1",
        "etch" => "4.0",
        "lenny" => "5.0",
        "squeeze" => "6.0",
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        _ => return None,
    })
}

/// Imports a tracker JSON file, a DSA/DLA list file, or every such file under a directory
/// (`*.json`, `list`, `*.list`).
pub fn import(path: &Path, limits: &Limits) -> Result<Ingest, FeedError> {
    let files = feed_files(path, |name| {
        name == "list" || has_extension(name, &["list", "json"])
    })?;
    if files.is_empty() {
        return Err(FeedError::invalid(
            path,
            "no tracker JSON (*.json) or DSA/DLA list (list, *.list) in the directory",
        ));
    }
    let mut ingest = Ingest::default();
    for file in files {
        let bytes = read_capped(&file, limits.max_feed_bytes)?;
        let label = file.display().to_string();
        if file.extension().is_some_and(|e| e == "json") {
            tracker_json(&label, &bytes, limits, &mut ingest);
        } else {
            advisory_list(&label, &bytes, limits, &mut ingest);
        }
    }
    Ok(ingest)
}

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: Releases,
}

/// A map of codename to status; an empty export writes `[]` instead of `{}`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Releases {
    Map(BTreeMap<String, Release>),
    /// `[]`: nothing to read.
    Empty(#[allow(dead_code)] Vec<serde::de::IgnoredAny>),
    #[default]
    None,
}

#[derive(Deserialize)]
struct Release {
    #[serde(default)]
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
}

/// Adds the advisories of a tracker JSON export (`tracker/data/json`).
pub fn tracker_json(label: &str, bytes: &[u8], limits: &Limits, ingest: &mut Ingest) {
    // Packages are parsed one at a time, so one malformed package costs only itself.
    let packages: BTreeMap<String, &RawValue> = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => return ingest.problem(label, format!("not a tracker JSON export: {e}")),
    };
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (package, raw) in packages {
        let issues: BTreeMap<String, Issue> = match serde_json::from_str(raw.get()) {
            Ok(i) => i,
            Err(e) => {
                ingest.problem(
                    format!("{label}: {package}"),
                    format!("malformed package entry: {e}"),
                );
                continue;
            }
        };
        for (id, issue) in issues {
            ingest.records += 1;
            let Releases::Map(releases) = issue.releases else {
                // `[]` or absent: the tracker states nothing for any release.
                ingest.skipped += 1;
                continue;
            };
            let mut affected = Vec::new();
            for (codename, release) in releases {
                let Some(number) = release_number(&codename) else {
                    continue;
                };
                let events = match (
                    release.status.as_str(),
                    release.fixed_version.as_deref().map(str::trim),
                ) {
                    (_, Some("0")) => continue,
                    ("resolved", Some(v)) if Version::parse(Scheme::Dpkg, v).is_some() => {
                        vec![Event::Introduced("0".into()), Event::Fixed(v.to_string())]
                    }
                    ("resolved", Some(v)) => {
                        ingest.problem(
                            format!("{label}: {package} {id} {codename}"),
                            format!("fixed version {v:?} is not a Debian version"),
                        );
                        continue;
                    }
                    ("open", _) => vec![Event::Introduced("0".into())],
                    // `undetermined` and anything newer: no statement to match on.
                    _ => continue,
                };
                let ratings = release
                    .urgency
                    .as_deref()
                    .filter(|u| {
                        !matches!(u.trim_end_matches('*'), "not yet assigned" | "end-of-life")
                    })
                    .and_then(|u| label_rating("debian", u))
                    .into_iter()
                    .collect();
                affected.push(Affected {
                    ecosystem: format!("Debian:{number}"),
                    name: package.clone(),
                    ranges: vec![Range::Ecosystem(events)],
                    versions: Vec::new(),
                    ratings,
                });
            }
            if affected.is_empty() {
                ingest.skipped += 1;
                continue;
            }
            let advisory = by_id.entry(id.clone()).or_insert_with(|| Advisory {
                id: id.clone(),
                aliases: Vec::new(),
                summary: String::new(),
                details: clip(
                    issue.description.as_deref().unwrap_or_default().trim(),
                    limits.max_details_chars,
                ),
                published: None,
                modified: None,
                ratings: Vec::new(),
                references: vec![format!("https://security-tracker.debian.org/tracker/{id}")],
                source: "debian-tracker".into(),
                informational: None,
                affected: Vec::new(),
            });
            advisory.affected.extend(affected);
        }
    }
    ingest.advisories.extend(by_id.into_values());
}

/// Adds the advisories of a DSA or DLA list.
pub fn advisory_list(label: &str, bytes: &[u8], limits: &Limits, ingest: &mut Ingest) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return ingest.problem(label, "not UTF-8 text");
    };
    let mut current: Option<Advisory> = None;
    let finish = |current: &mut Option<Advisory>, ingest: &mut Ingest| {
        if let Some(a) = current.take() {
            if a.affected.is_empty() {
                ingest.skipped += 1;
            } else {
                ingest.advisories.push(a);
            }
        }
    };
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{label}:{}", n + 1);
        if let Some(rest) = line.strip_prefix('[') {
            // `[29 Mar 2023] DSA-5380-1 xorg-server - security update`
            finish(&mut current, ingest);
            ingest.records += 1;
            let Some((date, head)) = rest.split_once(']') else {
                ingest.problem(at(), "an advisory line without a closing ']'");
                continue;
            };
            let mut words = head.split_whitespace();
            let Some(id) = words.next().filter(|id| id.contains('-')) else {
                ingest.problem(at(), "an advisory line without an advisory id");
                continue;
            };
            let summary: Vec<&str> = words.collect();
            current = Some(Advisory {
                id: id.to_string(),
                aliases: Vec::new(),
                summary: clip(&summary.join(" "), limits.max_summary_chars),
                details: String::new(),
                published: list_date(date),
                modified: None,
                ratings: Vec::new(),
                references: vec![format!("https://security-tracker.debian.org/tracker/{id}")],
                source: "debian-dsa".into(),
                informational: None,
                affected: Vec::new(),
            });
            continue;
        }
        let Some(advisory) = current.as_mut() else {
            continue;
        };
        let body = line.trim();
        if let Some(ids) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            advisory
                .aliases
                .extend(ids.split_whitespace().map(str::to_string));
        } else if let Some(rest) = body.strip_prefix('[') {
            // `[bullseye] - xorg-server 2:1.20.11-1+deb11u6`
            let Some((codename, statement)) = rest.split_once(']') else {
                ingest.problem(at(), "a release line without a closing ']'");
                continue;
            };
            let Some(number) = release_number(codename.trim()) else {
                continue;
            };
            let mut words = statement.trim().trim_start_matches('-').split_whitespace();
            let (Some(package), Some(version)) = (words.next(), words.next()) else {
                ingest.problem(at(), "a release line without a package and version");
                continue;
            };
            if version.starts_with('<') {
                // <not-affected>, <unfixed>, <end-of-life>: nothing to match on.
                continue;
            }
            if Version::parse(Scheme::Dpkg, version).is_none() {
                ingest.problem(at(), format!("{version:?} is not a Debian version"));
                continue;
            }
            advisory.affected.push(Affected {
                ecosystem: format!("Debian:{number}"),
                name: package.to_string(),
                ranges: vec![Range::Ecosystem(vec![
                    Event::Introduced("0".into()),
                    Event::Fixed(version.to_string()),
                ])],
                versions: Vec::new(),
                ratings: Vec::new(),
            });
        }
    }
    finish(&mut current, ingest);
}

/// `29 Mar 2023` → `2023-03-29T00:00:00Z`.
fn list_date(text: &str) -> Option<String> {
    let mut parts = text.split_whitespace();
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)?
        + 1;
    let day: u8 = day.parse().ok()?;
    let year: u16 = year.parse().ok()?;
    Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_json_export() {
        let json = br#"{
          "openssl": {"CVE-2023-1": {"description": "d", "releases": {
               "bookworm": {"status": "resolved", "fixed_version": "3.0.11-1~deb12u2", "urgency": "medium"},
               "bullseye": {"status": "open", "urgency": "low**"},
               "buster": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
               "trixie": {"status": "undetermined"},
               "sid": {"status": "resolved", "fixed_version": "3.0.12-1"}}}},
          "broken": {"CVE-2023-2": {"releases": {"bookworm": {"status": 5}}}},
          "chromium-browser": {"CVE-2022-0358": {"releases": []}}
        }"#;
        let mut ingest = Ingest::default();
        tracker_json("t.json", json, &Limits::default(), &mut ingest);
        assert_eq!(ingest.problems.len(), 1, "{:?}", ingest.problems);
        assert!(ingest.problems[0].file.contains("broken"));
        assert_eq!(ingest.advisories.len(), 1);
        let a = &ingest.advisories[0];
        let ecos: Vec<&str> = a.affected.iter().map(|x| x.ecosystem.as_str()).collect();
        assert_eq!(ecos, ["Debian:12", "Debian:11"]);
        assert_eq!(
            a.affected[0].ranges,
            [Range::Ecosystem(vec![
                Event::Introduced("0".into()),
                Event::Fixed("3.0.11-1~deb12u2".into())
            ])]
        );
        assert_eq!(
            a.affected[1].ranges,
            [Range::Ecosystem(vec![Event::Introduced("0".into())])]
        );
        assert_eq!(a.affected[1].ratings.len(), 1, "low** is a rating");
    }

    #[test]
    fn dsa_list() {
        let list = b"[29 Mar 2023] DSA-5380-1 xorg-server - security update\n\t{CVE-2023-1393}\n\t[bullseye] - xorg-server 2:1.20.11-1+deb11u6\n\t[buster] - xorg-server <not-affected> (Vulnerable code introduced later)\n[17 Mar 2023] DSA-5356-2 sox - regression update\n\t[bullseye] - sox 14.4.2+git20190427-2+deb11u2\n\tNOTE: x\n[1 Jan 2001] DSA-1-1 old - update\n\t[hamm] - old 1.0\n";
        let mut ingest = Ingest::default();
        advisory_list("DSA.list", list, &Limits::default(), &mut ingest);
        assert!(ingest.problems.is_empty(), "{:?}", ingest.problems);
        assert_eq!(ingest.records, 3);
        assert_eq!(ingest.skipped, 1);
        let a = &ingest.advisories[0];
        assert_eq!(a.id, "DSA-5380-1");
        assert_eq!(a.aliases, ["CVE-2023-1393"]);
        assert_eq!(a.summary, "xorg-server - security update");
        assert_eq!(a.published.as_deref(), Some("2023-03-29T00:00:00Z"));
        assert_eq!(a.affected.len(), 1);
        assert_eq!(a.affected[0].ecosystem, "Debian:11");
        assert_eq!(ingest.advisories[1].affected[0].name, "sox");
    }
}
