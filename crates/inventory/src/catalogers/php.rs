//! PHP: composer's `vendor/composer/installed.json` (both the v1 array and the v2
//! `{"packages": […]}` layouts) and `composer.lock` (runtime packages, not `packages-dev`).

use osprey_model::{Location, Package, PackageType};
use serde_json::Value;

use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct Composer;

impl Cataloger for Composer {
    fn name(&self) -> &'static str {
        "php-composer"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        (file.name == "installed.json" && file.parent_name() == "composer")
            || (file.name == "composer.lock" && !file.path.contains("vendor/"))
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
        let list = match &v {
            Value::Array(a) => a,
            Value::Object(o) => match o.get("packages") {
                Some(Value::Array(a)) => a,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let mut out = Vec::new();
        for entry in list {
            let (Some(name), Some(version)) = (entry["name"].as_str(), entry["version"].as_str())
            else {
                continue;
            };
            let mut p = Package::new(PackageType::PhpComposer, name, version, self.name());
            p.licenses = match &entry["license"] {
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            p.locations.push(Location::at(file.absolute()));
            out.push(p);
        }
        Ok(packages(self.name(), out))
    }
}
