//! Debian packages: `/var/lib/dpkg/status` (one paragraph per package) and distroless
//! `/var/lib/dpkg/status.d/<name>` files (same format, often without a Status field), plus the
//! licences of `/usr/share/doc/<package>/copyright`.

use osprey_model::{Package, PackageType};

use super::text::{field, lossy, paragraphs};
use super::{Cataloger, FileRef, packages};
use crate::analysis::Fact;
use crate::limits::InventoryLimits;

pub(crate) struct Dpkg;

impl Cataloger for Dpkg {
    fn name(&self) -> &'static str {
        "dpkg"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.path == "var/lib/dpkg/status"
            || (file.path.starts_with("var/lib/dpkg/status.d/")
                && file.parent_name() == "status.d"
                && !file.name.ends_with(".md5sums")
                && !file.name.ends_with(".conffiles")
                && !file.name.ends_with(".list"))
    }
    fn parse(
        &self,
        file: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        Ok(packages(
            self.name(),
            parse_status(&lossy(data), &file.absolute()),
        ))
    }
}

/// Installed packages of a status file. A paragraph without a Status field counts as installed
/// (distroless writes none); otherwise the third word must be `installed`.
pub(crate) fn parse_status(text: &str, location: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for p in paragraphs(text) {
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            continue;
        };
        if let Some(status) = field(&p, "Status")
            && status.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        let mut pkg = Package::new(PackageType::Deb, name, version, "dpkg");
        pkg.arch = field(&p, "Architecture").map(str::to_string);
        let (src_name, src_version) = match field(&p, "Source") {
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (
                    n.trim().to_string(),
                    v.trim_end_matches(')').trim().to_string(),
                ),
                None => (s.trim().to_string(), version.to_string()),
            },
            None => (name.to_string(), version.to_string()),
        };
        pkg.source_name = Some(src_name);
        pkg.source_version = Some(src_version);
        if let Some(m) = field(&p, "Maintainer") {
            pkg.properties.insert("maintainer".into(), m.to_string());
        }
        pkg.locations
            .push(osprey_model::Location::at(location.to_string()));
        out.push(pkg);
    }
    out
}

/// `usr/share/doc/<package>/copyright`.
pub(crate) struct Copyright;

impl Cataloger for Copyright {
    fn name(&self) -> &'static str {
        "dpkg-copyright"
    }
    fn wants(&self, file: &FileRef<'_>) -> bool {
        file.name == "copyright"
            && file
                .path
                .strip_prefix("usr/share/doc/")
                .is_some_and(|rest| rest.matches('/').count() == 1)
    }
    fn max_size(&self, _: &InventoryLimits) -> u64 {
        4 << 20
    }
    fn parse(
        &self,
        _: &FileRef<'_>,
        data: &[u8],
        _: &InventoryLimits,
    ) -> Result<Option<Fact>, String> {
        let licenses = copyright_licenses(&lossy(data));
        Ok((!licenses.is_empty()).then_some(Fact::Licenses { licenses }))
    }
}

/// Licences named by a Debian copyright file: `License:` fields (machine-readable DEP-5) and
/// references to `/usr/share/common-licenses/NAME`.
pub(crate) fn copyright_licenses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |l: &str| {
        let l = l.trim().trim_end_matches(['.', ',', ';', ')', '"', '\'']);
        if !l.is_empty() && l.len() < 100 && !out.iter().any(|x| x == l) {
            out.push(l.to_string());
        }
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("License:") {
            add(rest);
        }
        let mut rest = line;
        while let Some(i) = rest.find("/usr/share/common-licenses/") {
            rest = &rest[i + "/usr/share/common-licenses/".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | '_'))
                .collect();
            add(&name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paragraphs() {
        let text = "Package: git\nStatus: deinstall ok config-files\nVersion: 1:2.20.1-2\n\n\
                    Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\n\n\
                    Package: base-files\nVersion: 12.4\nArchitecture: amd64\n\nPackage: noversion\nStatus: install ok installed\n";
        let p = parse_status(text, "/var/lib/dpkg/status");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].source_name.as_deref(),
                p[0].source_version.as_deref()
            ),
            ("libssl3", Some("openssl"), Some("3.0.11-1~deb12u2"))
        );
        assert_eq!(
            (
                p[1].name.as_str(),
                p[1].source_name.as_deref(),
                p[1].source_version.as_deref()
            ),
            ("base-files", Some("base-files"), Some("12.4"))
        );
    }

    #[test]
    fn copyright() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n\nFiles: x\nLicense: BSD-3-Clause\n text\nLicense: GPL-2+\n";
        assert_eq!(copyright_licenses(dep5), ["GPL-2+", "BSD-3-Clause"]);
        let free = "On Debian systems, the complete text of the GNU General Public License\ncan be found in `/usr/share/common-licenses/GPL-2'.\n";
        assert_eq!(copyright_licenses(free), ["GPL-2"]);
    }
}
