//! Alpine packages: `/lib/apk/db/installed`, one stanza of `X:value` lines per package.

use osprey_model::{Location, Package, PackageType};

use super::text::lossy;
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct Apk;

impl Cataloger for Apk {
    fn name(&self) -> &'static str {
        "apk"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.path == "lib/apk/db/installed"
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        Ok(packages(
            self.name(),
            parse_installed(&lossy(data), &file.absolute()),
        ))
    }
}

/// Packages of an apk database. Stanzas without a name or version are dropped (apk itself
/// cannot have installed them).
pub(crate) fn parse_installed(text: &str, location: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let get = |key: char| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (Some(name), Some(version)) = (get('P'), get('V')) else {
            continue;
        };
        let mut p = Package::new(PackageType::Apk, name.clone(), version.clone(), "apk");
        p.arch = get('A');
        p.source_name = Some(get('o').unwrap_or(name));
        p.source_version = Some(version);
        if let Some(l) = get('L') {
            p.licenses = l
                .split_whitespace()
                .filter(|t| !matches!(*t, "AND" | "OR" | "WITH"))
                .map(|t| t.trim_matches(['(', ')']).to_string())
                .collect();
        }
        if let Some(m) = get('m') {
            p.properties.insert("maintainer".into(), m);
        }
        p.locations.push(Location::at(location.to_string()));
        out.push(p);
    }
    out
}
