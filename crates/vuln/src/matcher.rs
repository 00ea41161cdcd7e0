//! Matching installed packages against the database.
//!
//! OS packages are looked up only in their own distribution release (`Debian:12`), by source
//! package, and compared with the distribution's ordering; language packages by ecosystem and
//! normalized name. Each lookup key is read once per scan however many packages share it
//! (every binary package of one source).

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use osprey_model::{Os, Package};

use crate::advisory::{Advisory, Verdict};
use crate::db::{Database, DbError, ReadAt};
use crate::ecosystem;

/// What to match.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    /// Also report informational advisories (RustSec `unmaintained`, `unsound`), which are
    /// not vulnerabilities.
    pub include_informational: bool,
}

/// One advisory that affects one installed package.
#[derive(Debug, Clone)]
pub struct PackageMatch {
    /// Index into the scanned packages.
    pub package: usize,
    pub ecosystem: String,
    /// The advisory, with only the matching package's `affected` entries.
    pub advisory: Rc<Advisory>,
    /// Fixed versions above the installed one, lowest first.
    pub fixed: Vec<String>,
    /// The ranges that matched, written out.
    pub ranges: Vec<String>,
}

/// The outcome of matching a set of packages.
#[derive(Debug, Default)]
pub struct MatchReport {
    pub matches: Vec<PackageMatch>,
    /// Ecosystems of scanned packages that the database holds nothing for (an OS release it
    /// does not cover, say): their packages could not be checked.
    pub uncovered: BTreeSet<String>,
    /// Packages whose version does not parse in their ecosystem (index, ecosystem).
    pub incomparable: Vec<(usize, String)>,
    /// Packages without an ecosystem to look them up in (an OS package of an unknown
    /// distribution, a jar without a group).
    pub unkeyed: usize,
    /// Distinct lookup keys read.
    pub lookups: usize,
}

/// A lookup key (ecosystem, name) and what the database holds for it.
type Prefetched = ((String, String), Vec<Advisory>);

/// Looks up every distinct key of `packages` on scoped worker threads.
fn prefetch<R: ReadAt>(
    db: &Database<R>,
    packages: &[Package],
    os: Option<&Os>,
) -> Result<HashMap<(String, String), Vec<Advisory>>, DbError> {
    let mut keys: Vec<(String, String)> = packages
        .iter()
        .filter_map(|p| ecosystem::lookup_key(p, os))
        .filter(|k| db.metadata().covers(&k.0))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if workers < 2 || keys.len() < 64 {
        return Ok(HashMap::new());
    }
    let chunk = keys.len().div_ceil(workers);
    let parts: Vec<Result<Vec<Prefetched>, DbError>> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|k| Ok((k.clone(), db.lookup(&k.0, &k.1)?)))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = HashMap::with_capacity(keys.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Matches `packages` (of an image whose OS is `os`) against `db`.
pub fn match_packages<R: ReadAt>(
    db: &Database<R>,
    packages: &[Package],
    os: Option<&Os>,
    options: &MatchOptions,
) -> Result<MatchReport, DbError> {
    let mut report = MatchReport::default();
    let mut cache: HashMap<(String, String), Rc<Vec<Rc<Advisory>>>> = HashMap::new();
    // Lookups (read, unpack, decode a block) are independent and dominate the time: do them
    // first, on every core, then evaluate in package order.
    let mut prefetched = prefetch(db, packages, os)?;
    for (index, package) in packages.iter().enumerate() {
        let Some(key) = ecosystem::lookup_key(package, os) else {
            report.unkeyed += 1;
            continue;
        };
        if !db.metadata().covers(&key.0) {
            report.uncovered.insert(key.0);
            continue;
        }
        let advisories = match cache.get(&key) {
            Some(a) => Rc::clone(a),
            None => {
                let looked_up = match prefetched.remove(&key) {
                    Some(found) => found,
                    None => db.lookup(&key.0, &key.1)?,
                };
                let found: Vec<Rc<Advisory>> = looked_up.into_iter().map(Rc::new).collect();
                report.lookups += 1;
                let found = Rc::new(found);
                cache.insert(key.clone(), Rc::clone(&found));
                found
            }
        };
        let version = ecosystem::comparable_version(package);
        let mut incomparable = false;
        for advisory in advisories.iter() {
            if advisory.informational.is_some() && !options.include_informational {
                continue;
            }
            let mut fixed = Vec::new();
            let mut ranges = Vec::new();
            let mut hit = false;
            for affected in &advisory.affected {
                match affected.evaluate(version) {
                    Verdict::Affected {
                        fixed: f,
                        ranges: r,
                    } => {
                        hit = true;
                        fixed.extend(f);
                        ranges.extend(r);
                    }
                    Verdict::Incomparable => incomparable = true,
                    Verdict::NotAffected => {}
                }
            }
            if hit {
                fixed.dedup();
                report.matches.push(PackageMatch {
                    package: index,
                    ecosystem: key.0.clone(),
                    advisory: Rc::clone(advisory),
                    fixed,
                    ranges,
                });
            }
        }
        if incomparable {
            report.incomparable.push((index, key.0));
        }
    }
    Ok(report)
}
