//! Catalogers: one module per ecosystem. Each says which files it wants (cheaply, from the
//! path, size and mode) and turns a file's bytes into a [`Fact`]. Adding an ecosystem means
//! adding a module and one line in [`registry`].

mod apk;
mod dotnet;
mod dpkg;
mod golang;
mod java;
pub(crate) mod npm;
mod php;
mod python;
mod release;
mod rpm;
mod ruby;
mod rust;
mod text;

use crate::analysis::Fact;
use crate::limits::InventoryLimits;

/// A file offered to catalogers: clean path (no leading `/`), its last component, size, mode.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    pub path: &'a str,
    pub name: &'a str,
    pub size: u64,
    pub mode: u32,
}

impl<'a> FileRef<'a> {
    pub fn new(path: &'a str, size: u64, mode: u32) -> FileRef<'a> {
        FileRef {
            path,
            name: path.rsplit('/').next().unwrap_or(path),
            size,
            mode,
        }
    }

    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }

    /// The parent directory's name (`dist-info` dirs, `status.d`, …).
    pub fn parent_name(&self) -> &'a str {
        let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
        dir.rsplit('/').next().unwrap_or(dir)
    }

    /// The absolute path, for locations.
    pub fn absolute(&self) -> String {
        format!("/{}", self.path)
    }
}

pub(crate) trait Cataloger: Sync {
    /// Stable name, recorded on packages.
    fn name(&self) -> &'static str;
    /// Whether the file's content is needed. Called for every regular file of every layer.
    fn wants(&self, file: &FileRef<'_>) -> bool;
    /// Whether parsing costs more than reading (archives, binaries): such files are parsed on
    /// worker threads while the layer walk goes on.
    fn heavy(&self) -> bool {
        false
    }
    /// Largest file this cataloger reads.
    fn max_size(&self, limits: &InventoryLimits) -> u64 {
        limits.max_metadata_bytes
    }
    /// Parses the file. `Ok(None)`: nothing of interest in it (not a Go binary, say).
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        limits: &InventoryLimits,
    ) -> Result<Option<Fact>, String>;
}

/// Every cataloger, in a fixed order.
pub(crate) fn registry() -> &'static [&'static dyn Cataloger] {
    &[
        &release::Release,
        &dpkg::Dpkg,
        &dpkg::Copyright,
        &apk::Apk,
        &rpm::Rpm,
        &python::Python,
        &npm::PackageJson,
        &npm::PackageLock,
        &npm::YarnLock,
        &java::Java,
        &golang::GoBinary,
        &rust::Auditable,
        &rust::CargoLock,
        &dotnet::DepsJson,
        &php::Composer,
        &ruby::Gemspec,
        &ruby::GemfileLock,
    ]
}

/// Names of all catalogers.
pub fn cataloger_names() -> Vec<&'static str> {
    registry().iter().map(|c| c.name()).collect()
}

pub(crate) fn run(
    c: &dyn Cataloger,
    file: &FileRef<'_>,
    data: &[u8],
    limits: &InventoryLimits,
) -> Option<Fact> {
    match c.parse(file, data, limits) {
        Ok(fact) => fact,
        Err(reason) => Some(Fact::Unparsed {
            cataloger: c.name().into(),
            reason,
        }),
    }
}

/// Runs every cataloger that wants a file (as if it were at `path`, with `mode`) on its bytes.
/// For tests and tools that look at single files.
pub fn parse_file(path: &str, mode: u32, data: &[u8], limits: &InventoryLimits) -> Vec<Fact> {
    let path = path.trim_start_matches('/');
    let file = FileRef::new(path, data.len() as u64, mode);
    registry()
        .iter()
        .filter(|c| c.wants(&file))
        .filter_map(|c| run(*c, &file, data, limits))
        .collect()
}

/// Joins a clean directory and a relative path.
pub(crate) fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

/// Packages of one cataloger found in a file, as a fact.
pub(crate) fn packages(cataloger: &str, packages: Vec<osprey_model::Package>) -> Option<Fact> {
    if packages.is_empty() {
        None
    } else {
        Some(Fact::Packages {
            cataloger: cataloger.to_string(),
            packages,
        })
    }
}
