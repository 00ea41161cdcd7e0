//! Opening a database file and looking packages up.

use std::fs::File;
use std::path::Path;

use super::{
    Block, DbError, FORMAT_VERSION, INDEX_ENTRY_LEN, Limits, MAGIC, Metadata, PREAMBLE_LEN,
    key_hash,
};
use crate::advisory::Advisory;

/// Positional reads, so lookups from several threads need no lock.
pub trait ReadAt: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    fn len(&self) -> std::io::Result<u64>;

    fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ReadAt for File {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_read(self, buf, offset)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= self.as_slice().len())
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.as_slice().len() as u64)
    }
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    hash: u64,
    offset: u64,
    len: u32,
    raw_len: u32,
}

/// An open database.
pub struct Database<R: ReadAt = File> {
    source: R,
    label: String,
    metadata: Metadata,
    index: Vec<IndexEntry>,
    limits: Limits,
}

impl<R: ReadAt> std::fmt::Debug for Database<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("label", &self.label)
            .field("packages", &self.index.len())
            .finish()
    }
}

impl Database<File> {
    /// Opens the database at `path`: reads the metadata and the index, nothing else.
    pub fn open(path: &Path) -> Result<Database<File>, DbError> {
        let label = path.display().to_string();
        let file = File::open(path).map_err(|e| DbError::Io {
            path: label.clone(),
            source: e,
        })?;
        Database::from_source(file, label, Limits::default())
    }
}

impl<R: ReadAt> Database<R> {
    /// Opens a database held by any positional reader; `label` names it in errors.
    pub fn from_source(source: R, label: String, limits: Limits) -> Result<Database<R>, DbError> {
        let corrupt = |reason: String| DbError::Corrupt {
            path: label.clone(),
            reason,
        };
        let io = |e: std::io::Error| DbError::Io {
            path: label.clone(),
            source: e,
        };
        let len = source.len().map_err(io)?;
        let mut preamble = [0u8; PREAMBLE_LEN as usize];
        if len < PREAMBLE_LEN
            || source.read_exact_at(&mut preamble, 0).is_err()
            || &preamble[..8] != MAGIC
        {
            return Err(DbError::NotADatabase { path: label });
        }
        let word =
            |at: usize| u64::from_le_bytes(preamble[at..at + 8].try_into().expect("8 bytes"));
        let format = u32::from_le_bytes(preamble[8..12].try_into().expect("4 bytes"));
        if format != FORMAT_VERSION {
            return Err(DbError::UnsupportedFormat {
                path: label,
                found: format,
            });
        }
        let (meta_len, count) = (word(16), word(24));
        if meta_len > limits.max_metadata_bytes || meta_len > len - PREAMBLE_LEN {
            return Err(corrupt(format!(
                "metadata length {meta_len} does not fit the file"
            )));
        }
        let index_start = PREAMBLE_LEN + meta_len;
        let index_len = count
            .checked_mul(INDEX_ENTRY_LEN)
            .filter(|n| *n <= len - index_start);
        let Some(index_len) = index_len else {
            return Err(corrupt(format!(
                "an index of {count} entries does not fit the file"
            )));
        };
        let mut meta = vec![0u8; meta_len as usize];
        source.read_exact_at(&mut meta, PREAMBLE_LEN).map_err(io)?;
        let metadata: Metadata =
            serde_json::from_slice(&meta).map_err(|e| corrupt(format!("metadata: {e}")))?;
        let mut raw = vec![0u8; index_len as usize];
        source.read_exact_at(&mut raw, index_start).map_err(io)?;
        let blocks_start = index_start + index_len;
        let mut index = Vec::with_capacity(count as usize);
        let mut previous = 0u64;
        for e in raw.chunks_exact(INDEX_ENTRY_LEN as usize) {
            let entry = IndexEntry {
                hash: u64::from_le_bytes(e[0..8].try_into().expect("8 bytes")),
                offset: u64::from_le_bytes(e[8..16].try_into().expect("8 bytes")),
                len: u32::from_le_bytes(e[16..20].try_into().expect("4 bytes")),
                raw_len: u32::from_le_bytes(e[20..24].try_into().expect("4 bytes")),
            };
            let end = entry.offset.checked_add(u64::from(entry.len));
            if entry.offset < blocks_start || end.is_none_or(|end| end > len) {
                return Err(corrupt("an index entry points outside the file".into()));
            }
            if entry.hash < previous {
                return Err(corrupt("the index is not sorted".into()));
            }
            previous = entry.hash;
            index.push(entry);
        }
        Ok(Database {
            source,
            label,
            metadata,
            index,
            limits,
        })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Where the database was opened from.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The advisories that name `name` (normalized, see [`crate::ecosystem::normalize_name`])
    /// in `ecosystem`; each holds only that package's `affected` entries.
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Advisory>, DbError> {
        let hash = key_hash(ecosystem, name);
        let first = self.index.partition_point(|e| e.hash < hash);
        for entry in self.index[first..].iter().take_while(|e| e.hash == hash) {
            let block = self.read_block(entry)?;
            if block.ecosystem == ecosystem && block.name == name {
                return Ok(block.advisories);
            }
        }
        Ok(Vec::new())
    }

    /// Every block, in index order (for checks and statistics).
    pub fn blocks(&self) -> impl Iterator<Item = Result<Block, DbError>> + '_ {
        self.index.iter().map(|e| self.read_block(e))
    }

    fn read_block(&self, entry: &IndexEntry) -> Result<Block, DbError> {
        let corrupt = |reason: String| DbError::Corrupt {
            path: self.label.clone(),
            reason,
        };
        if u64::from(entry.len) > self.limits.max_block_bytes
            || u64::from(entry.raw_len) > self.limits.max_block_raw_bytes
        {
            return Err(corrupt(format!(
                "a block of {} bytes ({} unpacked) is over the limit",
                entry.len, entry.raw_len
            )));
        }
        let mut packed = vec![0u8; entry.len as usize];
        self.source
            .read_exact_at(&mut packed, entry.offset)
            .map_err(|e| DbError::Io {
                path: self.label.clone(),
                source: e,
            })?;
        // A decompression context costs an allocation of ~100 KiB to set up: one per thread,
        // reused across lookups (measured: a third of a 2,500-package match).
        thread_local! {
            static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let raw = DCTX
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new()?);
                }
                match slot.as_mut() {
                    Some(d) => d.decompress(&packed, entry.raw_len as usize),
                    None => Err(std::io::Error::other("no decompressor")),
                }
            })
            .map_err(|e| corrupt(format!("block at {}: {e}", entry.offset)))?;
        if raw.len() != entry.raw_len as usize {
            return Err(corrupt(format!(
                "block at {} unpacks to {} bytes, not {}",
                entry.offset,
                raw.len(),
                entry.raw_len
            )));
        }
        postcard::from_bytes(&raw).map_err(|e| corrupt(format!("block at {}: {e}", entry.offset)))
    }
}
