//! The vulnerability database: one file that opens in milliseconds and answers "which
//! advisories name this package in this ecosystem" with one binary search and one small read.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! 0   magic "OSPREYVD"
//! 8   u32 format version (1)
//! 12  u32 reserved (0)
//! 16  u64 length of the metadata JSON
//! 24  u64 number of index entries
//! 32  metadata JSON (build time, sources, counts per ecosystem)
//!     index: entries of (u64 key hash, u64 block offset, u32 block length, u32 raw length),
//!            sorted by hash
//!     blocks: one per (ecosystem, package name): zstd (with checksum) of the postcard
//!            encoding of a [`Block`]
//! ```
//!
//! The key hash is FNV-1a of `ecosystem \0 name`; a block stores its key, so a hash collision
//! costs one extra read and is resolved there. Why not SQLite: the data is written once and
//! only looked up by exact key, and a sorted hash index plus compressed blocks is a fraction
//! of the size and opens without parsing a schema.

mod reader;
mod writer;

use std::collections::BTreeMap;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

pub use reader::{Database, ReadAt};
pub use writer::Builder;

use crate::advisory::Advisory;

pub(crate) const MAGIC: &[u8; 8] = b"OSPREYVD";
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const PREAMBLE_LEN: u64 = 32;
pub(crate) const INDEX_ENTRY_LEN: u64 = 24;

/// Limits the reader applies to a database file (it may come from a download).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_metadata_bytes: u64,
    pub max_block_bytes: u64,
    pub max_block_raw_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metadata_bytes: 64 << 20,
            max_block_bytes: 256 << 20,
            max_block_raw_bytes: 1 << 30,
        }
    }
}

/// What the database holds and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    /// RFC 3339.
    pub built_at: String,
    /// The Osprey version that built it.
    pub built_by: String,
    pub sources: Vec<SourceInfo>,
    pub ecosystems: BTreeMap<String, EcosystemCounts>,
    /// Distinct advisory ids.
    pub advisories: usize,
    /// Distinct (ecosystem, package) keys.
    pub packages: usize,
}

impl Metadata {
    /// Whether any advisory names a package of `ecosystem`.
    pub fn covers(&self, ecosystem: &str) -> bool {
        self.ecosystems.contains_key(ecosystem)
    }

    /// Time since the build, `None` when the build time does not parse.
    pub fn age(&self, now: jiff::Timestamp) -> Option<jiff::SignedDuration> {
        let built: jiff::Timestamp = self.built_at.parse().ok()?;
        Some(now.duration_since(built))
    }
}

/// One imported feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `osv`, `alpine-secdb`, `debian-tracker`, `rubysec`.
    pub kind: String,
    /// Path or URL it was read from.
    pub location: String,
    pub records: usize,
    pub advisories: usize,
    pub withdrawn: usize,
    pub skipped: usize,
    /// Malformed records left out.
    pub problems: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcosystemCounts {
    pub advisories: usize,
    pub packages: usize,
}

/// The advisories of one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub ecosystem: String,
    pub name: String,
    /// Each advisory with only this package's `affected` entries.
    pub advisories: Vec<Advisory>,
}

/// Why a database cannot be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: not an Osprey vulnerability database (build one with `osprey db build` or fetch one with `osprey db update`)"
    )]
    NotADatabase { path: String },
    #[error(
        "{path}: database format {found} is not supported by this Osprey (it reads format {FORMAT_VERSION}); rebuild or update the database"
    )]
    UnsupportedFormat { path: String, found: u32 },
    #[error("{path}: corrupt database: {reason}")]
    Corrupt { path: String, reason: String },
}

pub(crate) fn key_hash(ecosystem: &str, name: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(ecosystem.as_bytes());
    h.write(&[0]);
    h.write(name.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests;
