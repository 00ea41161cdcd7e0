//! .NET: `*.deps.json` files next to applications — the NuGet packages they were built with.

use osprey_model::{Location, Package, PackageType};
use serde_json::Value;

use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct DepsJson;

impl Cataloger for DepsJson {
    fn name(&self) -> &'static str {
        "dotnet-deps"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name.ends_with(".deps.json")
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
        let Some(libs) = v["libraries"].as_object() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (key, lib) in libs {
            // "project" and "reference" entries are the application's own assemblies.
            if lib["type"].as_str() != Some("package") {
                continue;
            }
            let Some((name, version)) = key.rsplit_once('/') else {
                continue;
            };
            let mut p = Package::new(PackageType::Dotnet, name, version, self.name());
            if let Some(sha) = lib["sha512"].as_str() {
                p.properties.insert("nuget.sha512".into(), sha.to_string());
            }
            p.locations.push(Location::at(file.absolute()));
            out.push(p);
        }
        Ok(packages(self.name(), out))
    }
}
