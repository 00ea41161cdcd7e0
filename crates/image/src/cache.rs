//! Per-layer result caches of the engines that read images (inventory, malware): a layer's
//! result depends only on its bytes and on the engine's settings, so it is stored under the
//! layer's names and a fingerprint of those settings. A second look at an image, or at another
//! image sharing layers, reads only the layers not seen before; for a registry image a cached
//! layer is not even downloaded.
//!
//! Entries are zstd-compressed JSON written atomically (temporary file, then rename); an entry
//! that cannot be read or decoded is a miss, never an error.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Digest;

/// What names a layer's bytes: the diff-id, and the blob digest where the source addresses
/// blobs by digest (registries, OCI layouts). With the blob digest in the key, an image whose
/// config claims a known diff-id for different bytes misses the cache, is read, and fails its
/// diff-id check. Sources without blob digests (legacy `docker save` members) are keyed by
/// diff-id alone: a hit there trusts the archive's config.
#[derive(Debug, Clone, Copy)]
pub struct LayerKey<'a> {
    pub diff_id: &'a Digest,
    pub blob: Option<&'a Digest>,
}

impl<'a> LayerKey<'a> {
    /// The key of layer `info`, when its diff-id is known.
    pub fn of(info: &'a crate::LayerInfo) -> Option<LayerKey<'a>> {
        info.diff_id.as_ref().map(|diff_id| LayerKey {
            diff_id,
            blob: info.digest.as_ref(),
        })
    }
}

/// A cache directory shared by the engines; each keeps its entries under its own name.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

impl LayerCache {
    pub fn new(dir: impl Into<PathBuf>) -> LayerCache {
        LayerCache { dir: dir.into() }
    }

    /// `$OSPREY_CACHE_DIR`, else `$XDG_CACHE_HOME/osprey`, else `~/.cache/osprey`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("OSPREY_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return Some(Path::new(&x).join("osprey"));
        }
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/osprey"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/ENGINE/VERSION/KEY.json.zst`; `version` carries the engine's entry format and
    /// settings fingerprint.
    fn path(&self, engine: &str, version: &str, key: &LayerKey<'_>) -> PathBuf {
        let name = match key.blob.filter(|b| *b != key.diff_id) {
            Some(blob) => format!("{}.{}.json.zst", key.diff_id.hex(), &blob.hex()[..16]),
            None => format!("{}.json.zst", key.diff_id.hex()),
        };
        self.dir.join(engine).join(version).join(name)
    }

    /// The stored result, or `None` (absent, unreadable, or of another shape).
    pub fn get<T: DeserializeOwned>(
        &self,
        engine: &str,
        version: &str,
        key: &LayerKey<'_>,
    ) -> Option<T> {
        let path = self.path(engine, version, key);
        let compressed = std::fs::read(&path).ok()?;
        let json = zstd::decode_all(&compressed[..]).ok()?;
        match serde_json::from_slice(&json) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(
                    "{}: unreadable cache entry ({e}); reading the layer again",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores a result; a failure to write is logged, never fatal.
    pub fn put<T: Serialize>(&self, engine: &str, version: &str, key: &LayerKey<'_>, value: &T) {
        let path = self.path(engine, version, key);
        if let Err(e) = write_atomically(&path, value) {
            tracing::warn!("{}: cannot write cache entry: {e}", path.display());
        }
    }
}

fn write_atomically<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_vec(value)?;
    write_file_atomically(path, &zstd::encode_all(&json[..], 3)?)
}

/// Writes `bytes` to `path` through a temporary file in the same directory (created when
/// missing) and a rename, so readers never see a partial file. Shared by every cache.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_entries_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(dir.path());
        let diff: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let key = LayerKey {
            diff_id: &diff,
            blob: None,
        };
        assert_eq!(cache.get::<Vec<u32>>("e", "v1", &key), None);
        cache.put("e", "v1", &key, &vec![1u32, 2]);
        assert_eq!(cache.get::<Vec<u32>>("e", "v1", &key), Some(vec![1, 2]));
        assert_eq!(cache.get::<Vec<u32>>("e", "v2", &key), None);
        assert_eq!(cache.get::<String>("e", "v1", &key), None);
        std::fs::write(cache.path("e", "v1", &key), b"not zstd").unwrap();
        assert_eq!(cache.get::<Vec<u32>>("e", "v1", &key), None);
    }
}
