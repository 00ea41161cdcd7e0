//! The inventory's use of the per-layer cache of the image crate: a layer's
//! [`crate::analysis::LayerAnalysis`] depends only on its bytes and on the analysers, so it
//! is stored under the layer's names and a fingerprint of the analysers.

use sha2::{Digest as _, Sha256};

use crate::catalogers;
use crate::limits::InventoryLimits;

/// Version of the entry format; part of every key.
const FORMAT: u32 = 1;

/// The cache's engine directory.
pub(crate) const ENGINE: &str = "inventory";

/// What the analysis of a layer depends on besides the layer: the code that analyses it (a hash
/// of this crate's and the image crate's sources, made by `build.rs`), the catalogers and the
/// limits.
pub(crate) fn version(limits: &InventoryLimits, image_limits: &osprey_image::Limits) -> String {
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
    format!("v{FORMAT}-{}", hex::encode(&h.finalize()[..8]))
}
