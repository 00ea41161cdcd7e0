//! Advisory feeds, each converted to [`Advisory`] records on import: OSV (JSON or YAML, in
//! directories or `all.zip` archives), the Alpine secdb, the Debian security tracker (its
//! JSON and the DSA/DLA lists) and the Ruby advisory database.
//!
//! A malformed record is reported with its file and reason and skipped; it never stops the
//! build. Unknown fields are ignored.

pub mod alpine;
pub mod debian;
pub mod osv;
pub mod rubysec;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::advisory::{Advisory, Rating};

/// Limits on untrusted feed input. Defaults are far above any real feed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest single record file (an OSV JSON or a RubySec YAML).
    pub max_record_bytes: u64,
    /// Largest whole-feed file (the Debian tracker JSON, a secdb file, an `all.zip`).
    pub max_feed_bytes: u64,
    /// Most entries read from one zip archive.
    pub max_zip_entries: usize,
    /// Caps on stored text: longer summaries and details are cut at a character boundary.
    pub max_summary_chars: usize,
    pub max_details_chars: usize,
    /// Caps on list lengths per record; longer lists make the record malformed.
    pub max_list_len: usize,
    /// Most references kept per advisory (the rest are dropped).
    pub max_references: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 32 << 20,
            max_feed_bytes: 2 << 30,
            max_zip_entries: 2_000_000,
            max_summary_chars: 1024,
            max_details_chars: 16 * 1024,
            max_list_len: 200_000,
            max_references: 64,
        }
    }
}

/// A record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (and for archives, the entry: `all.zip!GO-2024-1.json`).
    pub file: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

/// What one feed import produced.
#[derive(Debug, Default)]
pub struct Ingest {
    pub advisories: Vec<Advisory>,
    pub problems: Vec<Problem>,
    /// Records read (files, archive entries, or entries of one big file).
    pub records: usize,
    /// Withdrawn advisories left out.
    pub withdrawn: usize,
    /// Records with nothing Osprey can match (no supported ecosystem, "never affected").
    pub skipped: usize,
}

impl Ingest {
    pub(crate) fn problem(&mut self, file: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: file.into(),
            reason: reason.into(),
        });
    }

    /// Appends another import's results.
    pub fn extend(&mut self, other: Ingest) {
        self.advisories.extend(other.advisories);
        self.problems.extend(other.problems);
        self.records += other.records;
        self.withdrawn += other.withdrawn;
        self.skipped += other.skipped;
    }
}

/// Why a whole feed could not be read (a missing path, an unreadable archive).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl FeedError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> FeedError {
        FeedError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> FeedError {
        FeedError::Invalid {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// What is wrong, without the path.
    pub fn reason(&self) -> String {
        match self {
            FeedError::Io { source, .. } => source.to_string(),
            FeedError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

/// `null` reads as the default (OSV writers emit `"aliases": null`).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The files of a feed: `path` itself when it is a file, else every regular file under it whose
/// name `wanted` accepts, sorted (so builds are reproducible).
pub(crate) fn feed_files(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, FeedError> {
    let meta = std::fs::metadata(path).map_err(|e| FeedError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(true) {
        let entry = entry.map_err(|e| FeedError::invalid(path, e.to_string()))?;
        if entry.file_type().is_file() && wanted(&entry.file_name().to_string_lossy()) {
            files.push(entry.into_path());
        }
    }
    files.sort();
    Ok(files)
}

/// Whether a file name ends in one of `extensions` (without the dot).
pub(crate) fn has_extension(name: &str, extensions: &[&str]) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, e)| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Reads a whole file, refusing files over `max` bytes.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, FeedError> {
    let meta = std::fs::metadata(path).map_err(|e| FeedError::io(path, e))?;
    if meta.len() > max {
        return Err(FeedError::invalid(
            path,
            format!("file is {} bytes, over the {max}-byte limit", meta.len()),
        ));
    }
    std::fs::read(path).map_err(|e| FeedError::io(path, e))
}

/// Cuts `text` to at most `max` characters.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// The first paragraph of `text`, cut to about `max` characters at a word boundary.
pub(crate) fn clip_words(text: &str, max: usize) -> String {
    let para = text
        .trim()
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    if para.chars().count() <= max {
        return para;
    }
    let cut = clip(&para, max);
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// A CVSS rating from a vector, scored; `None` when the vector does not parse.
pub(crate) fn cvss_rating(vector: &str) -> Option<Rating> {
    let vector = vector.trim();
    let parsed: cvss::Cvss = vector.parse().ok()?;
    let score = parsed.score();
    score.is_finite().then(|| Rating::Cvss {
        vector: vector.to_string(),
        score,
    })
}

/// A label rating when `label` is a severity word.
pub(crate) fn label_rating(source: &str, label: &str) -> Option<Rating> {
    let label = label.trim();
    osprey_model::SeverityLabel::parse_loose(label)?;
    Some(Rating::Label {
        source: source.to_string(),
        label: label.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_vectors_are_scored() {
        match cvss_rating("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") {
            Some(Rating::Cvss { score, .. }) => assert_eq!(score, 9.8),
            other => panic!("{other:?}"),
        }
        match cvss_rating("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") {
            Some(Rating::Cvss { score, .. }) => assert_eq!(score, 9.3),
            other => panic!("{other:?}"),
        }
        match cvss_rating("AV:N/AC:L/Au:N/C:P/I:P/A:P") {
            Some(Rating::Cvss { score, .. }) => assert_eq!(score, 7.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(cvss_rating("CVSS:3.1/AV:X"), None);
        assert_eq!(
            label_rating("GHSA", "MODERATE"),
            Some(Rating::Label {
                source: "GHSA".into(),
                label: "MODERATE".into()
            })
        );
        assert_eq!(label_rating("GHSA", "whatever"), None);
    }

    #[test]
    fn clipping_respects_characters() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(
            clip_words("one two three\nfour\n\nnext paragraph", 100),
            "one two three four"
        );
        assert_eq!(clip_words("one two three four", 10), "one two…");
    }
}
