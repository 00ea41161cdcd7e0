//! rpm databases in all three containers rpm has used — Berkeley DB hash (`Packages`), SQLite
//! (`rpmdb.sqlite`) and ndb (`Packages.db`) — told apart by content, each yielding the same
//! header blobs.

mod bdb;
mod header;
mod ndb;
mod sqlite;

use osprey_model::{Location, Package, PackageType};

use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

const DIRS: &[&str] = &["var/lib/rpm/", "usr/lib/sysimage/rpm/", "usr/share/rpm/"];
const NAMES: &[&str] = &["Packages", "rpmdb.sqlite", "Packages.db"];

pub(crate) struct Rpm;

impl Cataloger for Rpm {
    fn name(&self) -> &'static str {
        "rpm"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        NAMES.contains(&file.name)
            && DIRS
                .iter()
                .any(|d| file.path.strip_prefix(d) == Some(file.name))
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        limits: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let max = usize::try_from(limits.max_metadata_bytes).unwrap_or(usize::MAX);
        let blobs = if sqlite::is_sqlite(data) {
            sqlite::table_column(data, "Packages", 1, max)?
        } else if ndb::is_ndb(data) {
            ndb::blobs(data, max)?
        } else if bdb::is_bdb_hash(data) {
            bdb::values(data, max)?
        } else {
            return Err("not an rpm database (neither SQLite, ndb nor Berkeley DB hash)".into());
        };
        let mut out = Vec::new();
        for blob in blobs {
            let h = header::parse(&blob)?;
            if let Some(p) = package(&h, &file.absolute()) {
                out.push(p);
            }
        }
        Ok(packages(self.name(), out))
    }
}

/// `util-linux-2.32.1-42.el8_8.src.rpm` → (`util-linux`, `2.32.1-42.el8_8`).
fn split_source_rpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

fn package(h: &header::Header, location: &str) -> Option<Package> {
    let name = h.string(header::NAME)?;
    if name == "gpg-pubkey" {
        return None; // imported signing keys, not software
    }
    let version = h.string(header::VERSION)?;
    let evr = |v: &str| {
        let release = h
            .string(header::RELEASE)
            .map(|r| format!("-{r}"))
            .unwrap_or_default();
        match h.int(header::EPOCH).filter(|e| *e > 0) {
            Some(e) => format!("{e}:{v}{release}"),
            None => format!("{v}{release}"),
        }
    };
    let mut p = Package::new(PackageType::Rpm, name, evr(version), "rpm");
    p.arch = h.string(header::ARCH).map(str::to_string);
    if let Some((src_name, src_version)) = h.string(header::SOURCERPM).and_then(split_source_rpm) {
        let epoch = h
            .int(header::EPOCH)
            .filter(|e| *e > 0)
            .map(|e| format!("{e}:"))
            .unwrap_or_default();
        p.source_name = Some(src_name);
        p.source_version = Some(format!("{epoch}{src_version}"));
    }
    if let Some(l) = h.string(header::LICENSE) {
        p.licenses = vec![l.to_string()];
    }
    if let Some(v) = h.string(header::VENDOR) {
        p.properties.insert("vendor".into(), v.to_string());
    }
    if let Some(m) = h.string(header::MODULARITYLABEL) {
        p.properties
            .insert("rpm.modularity-label".into(), m.to_string());
    }
    p.locations.push(Location::at(location.to_string()));
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_source_rpm("util-linux-2.32.1-42.el8_8.src.rpm"),
            Some(("util-linux".into(), "2.32.1-42.el8_8".into()))
        );
        assert_eq!(
            split_source_rpm("curl-7.76.0-6.cm2.src.rpm"),
            Some(("curl".into(), "7.76.0-6.cm2".into()))
        );
        assert_eq!(split_source_rpm("(none)"), None);
    }

    #[test]
    fn packages_from_headers() {
        use header::tests::{blob, s};
        let b = blob(&[
            (header::NAME, 6, s("hello")),
            (header::VERSION, 6, s("0.0.1")),
            (header::RELEASE, 6, s("rls")),
            (header::EPOCH, 4, 1i32.to_be_bytes().to_vec()),
            (header::SOURCERPM, 6, s("hello-0.0.1-rls.src.rpm")),
        ]);
        let p = package(&header::parse(&b).unwrap(), "/var/lib/rpm/Packages").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("hello", "1:0.0.1-rls")
        );
        assert_eq!(
            (p.source_name.as_deref(), p.source_version.as_deref()),
            (Some("hello"), Some("1:0.0.1-rls"))
        );
        let key = blob(&[
            (header::NAME, 6, s("gpg-pubkey")),
            (header::VERSION, 6, s("1")),
        ]);
        assert!(package(&header::parse(&key).unwrap(), "/x").is_none());
    }
}
