//! One layer, one pass: record its file changes and run the catalogers on the files they want.

use std::io::Read;

use osprey_image::{EntryKind, Image, ImageError, LayerChanges, Notice, WalkBudget};
use osprey_model::Package;
use serde::{Deserialize, Serialize};

use crate::catalogers::{self, FileRef};
use crate::limits::InventoryLimits;

/// What a cataloger learned from one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// Packages recorded by this file.
    Packages {
        cataloger: String,
        packages: Vec<Package>,
    },
    /// An OS release file, kept whole (they are a few hundred bytes).
    Release { content: String },
    /// Licences declared by a file about the package that owns it (dpkg copyright).
    Licenses { licenses: Vec<String> },
    /// The file was wanted but could not be parsed.
    Unparsed { cataloger: String, reason: String },
}

/// Everything one layer contributes, independent of the other layers (hence cacheable by
/// diff-id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerAnalysis {
    pub changes: LayerChanges,
    /// Clean paths (no leading `/`) and what was learned there.
    pub facts: Vec<(String, Fact)>,
    pub notices: Vec<Notice>,
}

pub(crate) fn analyze_layer(
    image: &Image,
    index: usize,
    budget: &WalkBudget,
    limits: &InventoryLimits,
) -> Result<LayerAnalysis, ImageError> {
    let mut out = LayerAnalysis::default();
    let mut buf: Vec<u8> = Vec::new();
    let all = catalogers::registry();
    let report = image.walk_layer::<ImageError>(index, budget, |entry| {
        out.changes.record(entry, index);
        if entry.kind != EntryKind::File {
            return Ok(());
        }
        let file = FileRef::new(entry.path, entry.meta.size, entry.meta.mode);
        let wanting: Vec<&dyn catalogers::Cataloger> =
            all.iter().copied().filter(|c| c.wants(&file)).collect();
        if wanting.is_empty() {
            return Ok(());
        }
        let max = wanting
            .iter()
            .map(|c| c.max_size(limits))
            .max()
            .unwrap_or(0);
        if entry.meta.size > max || entry.truncated() {
            for c in &wanting {
                out.facts.push((
                    entry.path.to_string(),
                    Fact::Unparsed {
                        cataloger: c.name().into(),
                        reason: format!("{} bytes, over the {max}-byte limit", entry.meta.size),
                    },
                ));
            }
            return Ok(());
        }
        // The buffer keeps its initialised length across files: only growth costs zeroing.
        let size = entry.meta.size as usize;
        if buf.len() < size {
            buf.resize(size, 0);
        }
        if let Err(e) = entry.read_exact(&mut buf[..size]) {
            // The layer stream itself failed (corrupt, truncated, digest mismatch).
            return Err(ImageError::from_io(&format!("/{}", entry.path), e));
        }
        let data = &buf[..size];
        for c in wanting {
            if let Some(fact) = catalogers::run(c, &file, data, limits) {
                out.facts.push((entry.path.to_string(), fact));
            }
        }
        Ok(())
    })?;
    out.notices = report.notices;
    Ok(out)
}
