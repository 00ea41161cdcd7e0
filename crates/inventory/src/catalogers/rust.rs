//! Rust: binaries built with cargo-auditable (the `.dep-v0` section, read with the
//! `auditable-info` crate) and `Cargo.lock` files.

use osprey_model::{Location, Package, PackageType};
use serde::Deserialize;

use super::golang::{is_binary, is_program_candidate};
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct Auditable;

impl Cataloger for Auditable {
    fn name(&self) -> &'static str {
        "rust-auditable"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        is_program_candidate(file)
    }
    fn max_size(&self, limits: &InventoryLimits) -> u64 {
        limits.max_binary_bytes
    }
    fn heavy(&self) -> bool {
        true
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        if !is_binary(data) || memchr::memmem::find(data, b".dep-v0").is_none() {
            return Ok(None);
        }
        let info = match auditable_info::audit_info_from_slice(data, 8 << 20) {
            Ok(i) => i,
            Err(auditable_info::Error::NoAuditData) => return Ok(None),
            Err(e) => return Err(format!("cargo-auditable data: {e}")),
        };
        let out = info
            .packages
            .into_iter()
            .map(|p| {
                let mut pkg = Package::new(
                    PackageType::RustCrate,
                    p.name,
                    p.version.to_string(),
                    self.name(),
                );
                if p.root {
                    pkg.properties
                        .insert("rust.root-crate".into(), "true".into());
                }
                pkg.locations.push(Location::at(file.absolute()));
                pkg
            })
            .collect();
        Ok(packages(self.name(), out))
    }
}

pub(crate) struct CargoLock;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
}

impl Cataloger for CargoLock {
    fn name(&self) -> &'static str {
        "cargo-lock"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name == "Cargo.lock"
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        let lock: Lock =
            toml::from_str(text).map_err(|e| format!("invalid Cargo.lock: {}", e.message()))?;
        let out = lock
            .package
            .into_iter()
            .map(|p| {
                let mut pkg = Package::new(PackageType::RustCrate, p.name, p.version, self.name());
                if let Some(s) = p.source {
                    pkg.properties.insert("cargo.source".into(), s);
                }
                pkg.locations.push(Location::at(file.absolute()));
                pkg
            })
            .collect();
        Ok(packages(self.name(), out))
    }
}
