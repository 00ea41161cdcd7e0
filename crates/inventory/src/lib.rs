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

/// How to take an inventory.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub limits: InventoryLimits,
}

/// What an inventory found.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub os: Option<Os>,
    pub packages: Vec<Package>,
    /// Limits hit and files that could not be parsed.
    pub notices: Vec<InventoryNotice>,
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
    let analyses = image.map_layers(|index| {
        let a = analysis::analyze_layer(image, index, &budget, &options.limits)?;
        progress(index);
        Ok(a)
    });
    let analyses = analyses
        .into_iter()
        .collect::<Result<Vec<_>, ImageError>>()?;
    Ok(merge::merge(image, analyses))
}
