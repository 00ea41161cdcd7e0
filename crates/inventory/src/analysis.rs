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

/// A file handed to a worker thread: its bytes (`data[..len]`) and the catalogers that want it.
struct Job {
    path: String,
    mode: u32,
    data: Vec<u8>,
    len: usize,
    catalogers: Vec<&'static dyn catalogers::Cataloger>,
}

/// Buffers workers give back, so heavy files cost no allocation or zeroing once warm.
type Pool = std::sync::Mutex<Vec<Vec<u8>>>;

pub(crate) fn analyze_layer(
    image: &Image,
    index: usize,
    budget: &WalkBudget,
    limits: &InventoryLimits,
) -> Result<LayerAnalysis, ImageError> {
    // Heavy files go to workers through a queue of this depth: memory stays within
    // (workers + depth) × the largest file read.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1);
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(workers);
    let job_rx = std::sync::Mutex::new(job_rx);
    let (fact_tx, fact_rx) = std::sync::mpsc::channel::<(String, Fact)>();
    let pool: Pool = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (job_rx, fact_tx, pool) = (&job_rx, fact_tx.clone(), &pool);
            scope.spawn(move || {
                loop {
                    let job = match job_rx.lock().expect("no panics while holding").recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    let file = FileRef::new(&job.path, job.len as u64, job.mode);
                    for c in job.catalogers {
                        if let Some(fact) = catalogers::run(c, &file, &job.data[..job.len], limits)
                        {
                            let _ = fact_tx.send((job.path.clone(), fact));
                        }
                    }
                    let mut free = pool.lock().expect("no panics while holding");
                    if free.len() <= workers {
                        free.push(job.data);
                    }
                }
            });
        }
        drop(fact_tx);
        let walked = walk(image, index, budget, limits, &job_tx, &pool);
        drop(job_tx);
        walked.map(|mut out| {
            out.facts.extend(fact_rx.iter());
            // Workers finish in any order; the analysis must not depend on it.
            out.facts.sort_by(|a, b| {
                (a.0.as_str(), fact_order(&a.1)).cmp(&(b.0.as_str(), fact_order(&b.1)))
            });
            out
        })
    })
}

/// A stable order for facts about the same path.
fn fact_order(f: &Fact) -> (u8, &str) {
    match f {
        Fact::Packages { cataloger, .. } => (0, cataloger),
        Fact::Release { .. } => (1, ""),
        Fact::Licenses { .. } => (2, ""),
        Fact::Unparsed { cataloger, .. } => (3, cataloger),
    }
}

fn walk(
    image: &Image,
    index: usize,
    budget: &WalkBudget,
    limits: &InventoryLimits,
    jobs: &std::sync::mpsc::SyncSender<Job>,
    pool: &Pool,
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
        let wanting: Vec<&'static dyn catalogers::Cataloger> =
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
        let size = entry.meta.size as usize;
        if wanting.iter().any(|c| c.heavy()) {
            let mut data = pool
                .lock()
                .expect("no panics while holding")
                .pop()
                .unwrap_or_default();
            if data.len() < size {
                data.resize(size, 0);
            }
            entry
                .read_exact(&mut data[..size])
                .map_err(|e| ImageError::from_io(&format!("/{}", entry.path), e))?;
            let job = Job {
                path: entry.path.to_string(),
                mode: entry.meta.mode,
                data,
                len: size,
                catalogers: wanting,
            };
            if jobs.send(job).is_err() {
                return Err(ImageError::Internal("inventory workers stopped".into()));
            }
            return Ok(());
        }
        // The buffer keeps its initialised length across files: only growth costs zeroing.
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
