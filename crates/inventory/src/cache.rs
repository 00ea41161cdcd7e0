//! The per-layer analysis cache: a layer's [`LayerAnalysis`] depends only on its bytes (named
//! by its diff-id) and on the analysers, so it is stored under both. A second inventory of an
//! image, or of another image sharing layers, analyses only the layers not seen before; for a
//! registry image a cached layer is not even downloaded.
//!
//! Entries are zstd-compressed JSON written atomically (temporary file, then rename); an entry
//! that cannot be read or decoded is a miss, never an error.

use std::path::{Path, PathBuf};

use osprey_image::Digest;
use sha2::{Digest as _, Sha256};

use crate::analysis::LayerAnalysis;
use crate::catalogers;
use crate::limits::InventoryLimits;

/// What names a layer's bytes: the diff-id, and the blob digest where the source addresses
/// blobs by digest (registries, OCI layouts). With the blob digest in the key, an image whose
/// config claims a known diff-id for different bytes misses the cache, is analysed, and fails
/// its diff-id check. Sources without blob digests (legacy `docker save` members) are keyed by
/// diff-id alone: a hit there trusts the archive's config.
pub(crate) struct LayerKey<'a> {
    pub diff_id: &'a Digest,
    pub blob: Option<&'a Digest>,
}

/// Version of the entry format; part of every key.
const FORMAT: u32 = 1;

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
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

    fn path(&self, key: &LayerKey<'_>, fingerprint: &str) -> PathBuf {
        let name = match key.blob.filter(|b| *b != key.diff_id) {
            Some(blob) => format!("{}.{}.json.zst", key.diff_id.hex(), &blob.hex()[..16]),
            None => format!("{}.json.zst", key.diff_id.hex()),
        };
        self.dir
            .join("inventory")
            .join(format!("v{FORMAT}-{fingerprint}"))
            .join(name)
    }

    pub(crate) fn get(&self, key: &LayerKey<'_>, fingerprint: &str) -> Option<LayerAnalysis> {
        let path = self.path(key, fingerprint);
        let compressed = std::fs::read(&path).ok()?;
        let json = zstd::decode_all(&compressed[..]).ok()?;
        match serde_json::from_slice(&json) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(
                    "{}: unreadable cache entry ({e}); analysing the layer again",
                    path.display()
                );
                None
            }
        }
    }

    pub(crate) fn put(&self, key: &LayerKey<'_>, fingerprint: &str, analysis: &LayerAnalysis) {
        let path = self.path(key, fingerprint);
        if let Err(e) = write_atomically(&path, analysis) {
            tracing::warn!("{}: cannot write cache entry: {e}", path.display());
        }
    }
}

fn write_atomically(path: &Path, analysis: &LayerAnalysis) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a directory");
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec(analysis)?;
    let compressed = zstd::encode_all(&json[..], 3)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &compressed)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What the analysis of a layer depends on besides the layer: the code that analyses it (a hash
/// of this crate's and the image crate's sources, made by `build.rs`), the catalogers and the
/// limits.
pub(crate) fn fingerprint(limits: &InventoryLimits, image_limits: &osprey_image::Limits) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(env!("OSPREY_ANALYSIS_SOURCE_HASH").as_bytes());
    for c in catalogers::registry() {
        h.update(c.name().as_bytes());
        h.update(b";");
    }
    h.update(format!("{limits:?}").as_bytes());
    h.update(
        format!(
            "{}:{}:{}",
            image_limits.max_file_read, image_limits.max_path_len, image_limits.max_files
        )
        .as_bytes(),
    );
    hex::encode(&h.finalize()[..8])
}
