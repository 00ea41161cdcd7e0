//! The inventory of an image or file system: which operating system it runs and every package
//! installed in it, each attributed to the file it was found in and the layer that introduced
//! it — the input of SBOMs and of vulnerability matching.
//!
//! How it works: every layer is walked once (in parallel across layers). Catalogers — one per
//! ecosystem, each a module under `catalogers/` — say which files they want; the walker reads
//! those (bounded) and hands them over, and the results are recorded as facts keyed by path.
//! A layer's facts and file changes depend only on that layer, so they can be cached by its
//! diff-id. The merge then keeps the facts still visible in the final image (whiteouts and
//! overwrites applied) and finds, for each package, the lowest layer that already had it.
//!
//! Engines do no printing; problems with single files (a corrupt package database) become
//! notices on the result, never failures of the whole inventory.

#![forbid(unsafe_code)]

mod analysis;
mod cache;
mod catalogers;
mod limits;
mod merge;
mod os;
pub mod sbom;

use osprey_image::{Image, ImageError, Notice};
use osprey_model::{Os, Package};

pub use analysis::{Fact, LayerAnalysis};
pub use catalogers::{cataloger_names, parse_file};
pub use limits::InventoryLimits;
pub use os::parse_os_release;
pub use osprey_image::LayerCache as Cache;

/// How to take an inventory.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub limits: InventoryLimits,
    /// Per-layer analysis cache; `None` analyses every layer.
    pub cache: Option<Cache>,
}

/// What an inventory found.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub os: Option<Os>,
    pub packages: Vec<Package>,
    /// Limits hit and files that could not be parsed.
    pub notices: Vec<InventoryNotice>,
    /// How the layers were obtained (not part of the inventory itself).
    #[serde(skip)]
    pub stats: Stats,
}

/// Layers analysed now and taken from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub layers_analyzed: usize,
    pub layers_cached: usize,
}

/// Something that was not read or not understood.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum InventoryNotice {
    /// From reading the image (limits, paths escaping the root).
    Image(Notice),
    /// A file a cataloger could not parse.
    Unparsed {
        path: String,
        cataloger: String,
        reason: String,
    },
}

impl std::fmt::Display for InventoryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InventoryNotice::Image(n) => write!(f, "{n}"),
            InventoryNotice::Unparsed {
                path,
                cataloger,
                reason,
            } => write!(f, "{path}: {cataloger}: {reason}"),
        }
    }
}

/// Errors that stop an inventory: the image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Takes the inventory of an opened image (or `dir:` file system).
pub fn inventory(image: &Image, options: &Options) -> Result<Inventory, InventoryError> {
    inventory_with(image, options, |_| {})
}

/// As [`inventory`], calling `progress(layer)` as each layer is analysed.
pub fn inventory_with(
    image: &Image,
    options: &Options,
    progress: impl Fn(usize) + Sync,
) -> Result<Inventory, InventoryError> {
    let budget = osprey_image::WalkBudget::new();
    let version = cache::version(&options.limits, image.limits());
    let analyses = image.map_layers(|index| {
        let key = osprey_image::LayerKey::of(&image.layers[index]);
        let cached = match (&options.cache, &key) {
            (Some(c), Some(k)) => c.get::<analysis::LayerAnalysis>(cache::ENGINE, &version, k),
            _ => None,
        };
        let result = match cached {
            Some(a) => {
                tracing::info!("layer {}: analysis from cache", index + 1);
                (a, true)
            }
            None => {
                let a = analysis::analyze_layer(image, index, &budget, &options.limits)?;
                if let (Some(c), Some(k)) = (&options.cache, &key) {
                    c.put(cache::ENGINE, &version, k, &a);
                }
                (a, false)
            }
        };
        progress(index);
        Ok(result)
    });
    let mut stats = Stats::default();
    let mut layers = Vec::with_capacity(analyses.len());
    for result in analyses {
        let (a, cached) = result?;
        if cached {
            stats.layers_cached += 1;
        } else {
            stats.layers_analyzed += 1;
        }
        layers.push(a);
    }
    let mut inventory = merge::merge(image, layers);
    inventory.stats = stats;
    Ok(inventory)
}
