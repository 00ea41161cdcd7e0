//! Building a database file from imported advisories.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use super::{
    Block, DbError, EcosystemCounts, FORMAT_VERSION, INDEX_ENTRY_LEN, MAGIC, Metadata,
    PREAMBLE_LEN, SourceInfo, key_hash,
};
use crate::advisory::Advisory;

/// Gathers advisories from feeds, then writes the database file.
#[derive(Default)]
pub struct Builder {
    /// (ecosystem, name) → advisory id → advisory holding only that package's entries.
    packages: HashMap<(String, String), BTreeMap<String, Advisory>>,
    sources: Vec<SourceInfo>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Adds one feed's advisories. An advisory id already present for the same package (from
    /// an earlier feed, or twice in one) is replaced by the later one.
    pub fn add(&mut self, source: SourceInfo, advisories: Vec<Advisory>) {
        for mut advisory in advisories {
            let affected = std::mem::take(&mut advisory.affected);
            let mut by_key: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
            for a in affected {
                by_key
                    .entry((a.ecosystem.clone(), a.name.clone()))
                    .or_default()
                    .push(a);
            }
            for (key, entries) in by_key {
                let mut copy = advisory.clone();
                copy.affected = entries;
                self.packages
                    .entry(key)
                    .or_default()
                    .insert(copy.id.clone(), copy);
            }
        }
        self.sources.push(source);
    }

    /// Writes the database to `path` atomically (a temporary file beside it, renamed over it)
    /// and returns its metadata.
    pub fn write(self, path: &Path, built_at: jiff::Timestamp) -> Result<Metadata, DbError> {
        let io = |e: std::io::Error| DbError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut ecosystems: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        let mut keys: Vec<((String, String), BTreeMap<String, Advisory>)> =
            self.packages.into_iter().collect();
        keys.sort_by(|a, b| {
            key_hash(&a.0.0, &a.0.1)
                .cmp(&key_hash(&b.0.0, &b.0.1))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut compressor = zstd::bulk::Compressor::new(9).map_err(io)?;
        compressor.include_checksum(true).map_err(io)?;
        let mut index = Vec::with_capacity(keys.len() * INDEX_ENTRY_LEN as usize);
        let mut blocks = Vec::new();
        let count = keys.len();
        for ((ecosystem, name), advisories) in keys {
            let entry = ecosystems.entry(ecosystem.clone()).or_default();
            entry.1 += 1;
            for id in advisories.keys() {
                entry.0.insert(id.clone());
                ids.insert(id.clone());
            }
            let hash = key_hash(&ecosystem, &name);
            let block = Block {
                ecosystem,
                name,
                advisories: advisories.into_values().collect(),
            };
            let raw = postcard::to_stdvec(&block).map_err(|e| io(std::io::Error::other(e)))?;
            let packed = compressor.compress(&raw).map_err(io)?;
            let too_big = |what: &str| {
                io(std::io::Error::other(format!(
                    "the block of {} {} is too large ({what})",
                    block.ecosystem, block.name
                )))
            };
            index.extend_from_slice(&hash.to_le_bytes());
            index.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
            index.extend_from_slice(
                &u32::try_from(packed.len())
                    .map_err(|_| too_big("compressed"))?
                    .to_le_bytes(),
            );
            index.extend_from_slice(
                &u32::try_from(raw.len())
                    .map_err(|_| too_big("raw"))?
                    .to_le_bytes(),
            );
            blocks.extend_from_slice(&packed);
        }
        let metadata = Metadata {
            format: FORMAT_VERSION,
            built_at: built_at.to_string(),
            built_by: format!("osprey {}", env!("CARGO_PKG_VERSION")),
            sources: self.sources,
            ecosystems: ecosystems
                .into_iter()
                .map(|(e, (ids, packages))| {
                    (
                        e,
                        EcosystemCounts {
                            advisories: ids.len(),
                            packages,
                        },
                    )
                })
                .collect(),
            advisories: ids.len(),
            packages: count,
        };
        let meta_json = serde_json::to_vec(&metadata).map_err(|e| io(e.into()))?;
        // Block offsets in the index are relative to the blocks section; make them absolute.
        let blocks_start = PREAMBLE_LEN + meta_json.len() as u64 + index.len() as u64;
        for entry in index.chunks_exact_mut(INDEX_ENTRY_LEN as usize) {
            let rel = u64::from_le_bytes(entry[8..16].try_into().expect("8 bytes"));
            entry[8..16].copy_from_slice(&(rel + blocks_start).to_le_bytes());
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            w.write_all(MAGIC).map_err(io)?;
            w.write_all(&FORMAT_VERSION.to_le_bytes()).map_err(io)?;
            w.write_all(&0u32.to_le_bytes()).map_err(io)?;
            w.write_all(&(meta_json.len() as u64).to_le_bytes())
                .map_err(io)?;
            w.write_all(&(count as u64).to_le_bytes()).map_err(io)?;
            w.write_all(&meta_json).map_err(io)?;
            w.write_all(&index).map_err(io)?;
            w.write_all(&blocks).map_err(io)?;
            w.flush().map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(metadata)
    }
}
