//! Packages found in an image or file system.

use std::collections::BTreeMap;

use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use crate::Os;

/// What kind of package this is; decides its package-URL type and its ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PackageType {
    Deb,
    Apk,
    Rpm,
    Python,
    Npm,
    JavaArchive,
    GoModule,
    RustCrate,
    Dotnet,
    PhpComposer,
    Gem,
}

impl PackageType {
    pub const ALL: [PackageType; 11] = [
        PackageType::Deb,
        PackageType::Apk,
        PackageType::Rpm,
        PackageType::Python,
        PackageType::Npm,
        PackageType::JavaArchive,
        PackageType::GoModule,
        PackageType::RustCrate,
        PackageType::Dotnet,
        PackageType::PhpComposer,
        PackageType::Gem,
    ];

    /// The package-URL type.
    pub fn purl_type(self) -> &'static str {
        match self {
            PackageType::Deb => "deb",
            PackageType::Apk => "apk",
            PackageType::Rpm => "rpm",
            PackageType::Python => "pypi",
            PackageType::Npm => "npm",
            PackageType::JavaArchive => "maven",
            PackageType::GoModule => "golang",
            PackageType::RustCrate => "cargo",
            PackageType::Dotnet => "nuget",
            PackageType::PhpComposer => "composer",
            PackageType::Gem => "gem",
        }
    }

    /// Name as used on the command line and in JSON (`deb`, `python`, `java-archive`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Deb => "deb",
            PackageType::Apk => "apk",
            PackageType::Rpm => "rpm",
            PackageType::Python => "python",
            PackageType::Npm => "npm",
            PackageType::JavaArchive => "java-archive",
            PackageType::GoModule => "go-module",
            PackageType::RustCrate => "rust-crate",
            PackageType::Dotnet => "dotnet",
            PackageType::PhpComposer => "php-composer",
            PackageType::Gem => "gem",
        }
    }

    /// Packages of the operating system (matched against the distribution's advisories).
    pub fn is_os(self) -> bool {
        matches!(self, PackageType::Deb | PackageType::Apk | PackageType::Rpm)
    }

    /// The OSV ecosystem of language packages (`PyPI`, `npm`, …); OS packages depend on the
    /// distribution and have none here.
    pub fn language_ecosystem(self) -> Option<&'static str> {
        Some(match self {
            PackageType::Python => "PyPI",
            PackageType::Npm => "npm",
            PackageType::JavaArchive => "Maven",
            PackageType::GoModule => "Go",
            PackageType::RustCrate => "crates.io",
            PackageType::Dotnet => "NuGet",
            PackageType::PhpComposer => "Packagist",
            PackageType::Gem => "RubyGems",
            PackageType::Deb | PackageType::Apk | PackageType::Rpm => return None,
        })
    }
}

impl std::fmt::Display for PackageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a package was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    /// Absolute path in the image (`/var/lib/dpkg/status`); inside archives,
    /// `outer.war!/WEB-INF/lib/inner.jar`.
    pub path: String,
    /// Index of the layer that introduced the package (0 = base), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Diff-id of that layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_diff_id: Option<String>,
}

impl Location {
    /// A location in a file system, its layer not known yet.
    pub fn at(path: impl Into<String>) -> Location {
        Location {
            path: path.into(),
            layer: None,
            layer_diff_id: None,
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Package {
    pub name: String,
    /// The version exactly as the ecosystem writes it (dpkg and rpm with `epoch:` when set).
    pub version: String,
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// Maven group, composer vendor, npm scope are part of `name` where the ecosystem says so
    /// (`@babel/parser`, `pear/log`); Maven keeps the group here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Package URL, with the distro qualifier for OS packages.
    pub purl: String,
    /// Source package (dpkg `Source:`, apk origin, rpm source RPM name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// The cataloger that found it (`dpkg`, `python-metadata`, …).
    pub cataloger: String,
    /// Ecosystem-specific facts (`vendor`, `go.toolchain`, `maven.artifact-path`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl Package {
    /// A package with its name, version and type; the rest empty.
    pub fn new(
        kind: PackageType,
        name: impl Into<String>,
        version: impl Into<String>,
        cataloger: &str,
    ) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            kind,
            group: None,
            purl: String::new(),
            source_name: None,
            source_version: None,
            arch: None,
            licenses: Vec::new(),
            locations: Vec::new(),
            cataloger: cataloger.to_string(),
            properties: BTreeMap::new(),
        }
    }

    /// Identity used to merge duplicates: type, group, name, version, arch.
    pub fn identity(&self) -> (PackageType, Option<&str>, &str, &str, Option<&str>) {
        (
            self.kind,
            self.group.as_deref(),
            &self.name,
            &self.version,
            self.arch.as_deref(),
        )
    }

    /// Computes `purl` from the other fields (and the OS for OS packages).
    pub fn set_purl(&mut self, os: Option<&Os>) {
        self.purl = self.compute_purl(os).unwrap_or_default();
    }

    fn compute_purl(&self, os: Option<&Os>) -> Option<String> {
        let (namespace, name): (Option<String>, String) = match self.kind {
            PackageType::Deb | PackageType::Apk | PackageType::Rpm => {
                let vendor = os
                    .map(|o| o.id.clone())
                    .or_else(|| self.properties.get("vendor").cloned());
                (vendor, self.name.clone())
            }
            PackageType::JavaArchive => (
                self.group.clone().or_else(|| Some(self.name.clone())),
                self.name.clone(),
            ),
            PackageType::Npm | PackageType::PhpComposer | PackageType::GoModule => {
                match self.name.rsplit_once('/') {
                    Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
                    None => (None, self.name.clone()),
                }
            }
            _ => (None, self.name.clone()),
        };
        let mut purl = PackageUrl::new(self.kind.purl_type(), name).ok()?;
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            purl.with_namespace(ns).ok()?;
        }
        // rpm keeps the epoch in a qualifier (`?epoch=1`), not in the version.
        let (version, epoch) = match (self.kind, self.version.split_once(':')) {
            (PackageType::Rpm, Some((e, v))) if e.bytes().all(|b| b.is_ascii_digit()) => {
                (v.to_string(), Some(e.to_string()))
            }
            _ => (self.version.clone(), None),
        };
        if !version.is_empty() {
            purl.with_version(version).ok()?;
        }
        if let Some(e) = epoch {
            purl.add_qualifier("epoch", e).ok()?;
        }
        if let Some(arch) = &self.arch {
            purl.add_qualifier("arch", arch.clone()).ok()?;
        }
        if self.kind.is_os() {
            if let Some(src) = &self.source_name
                && *src != self.name
            {
                purl.add_qualifier("upstream", src.clone()).ok()?;
            }
            if let Some(os) = os {
                purl.add_qualifier("distro", os.purl_distro()).ok()?;
            }
        }
        Some(purl.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Os {
        Os {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Os::default()
        }
    }

    #[test]
    fn purls_per_type() {
        let mut p = Package::new(PackageType::Deb, "libssl3", "3.0.11-1~deb12u2", "dpkg");
        p.arch = Some("amd64".into());
        p.source_name = Some("openssl".into());
        p.set_purl(Some(&debian()));
        assert_eq!(
            p.purl,
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"
        );

        let mut p = Package::new(PackageType::Npm, "@babel/parser", "7.23.6", "npm");
        p.set_purl(None);
        assert_eq!(p.purl, "pkg:npm/%40babel/parser@7.23.6");

        let mut p = Package::new(
            PackageType::JavaArchive,
            "jackson-databind",
            "2.9.10.6",
            "java",
        );
        p.group = Some("com.fasterxml.jackson.core".into());
        p.set_purl(None);
        assert_eq!(
            p.purl,
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10.6"
        );

        let mut p = Package::new(
            PackageType::GoModule,
            "golang.org/x/xerrors",
            "v0.0.0-20200804184101-5ec99f83aff1",
            "go",
        );
        p.set_purl(None);
        assert_eq!(
            p.purl,
            "pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1"
        );

        let mut p = Package::new(PackageType::Python, "PyYAML", "5.3", "python");
        p.set_purl(None);
        assert_eq!(p.purl, "pkg:pypi/pyyaml@5.3");

        let mut p = Package::new(PackageType::Rpm, "hello", "1:0.0.1-rls", "rpm");
        p.arch = Some("x86_64".into());
        p.set_purl(Some(&Os {
            id: "rhel".into(),
            version_id: Some("8.9".into()),
            ..Os::default()
        }));
        assert_eq!(
            p.purl,
            "pkg:rpm/rhel/hello@0.0.1-rls?arch=x86_64&distro=rhel-8.9&epoch=1"
        );

        let mut p = Package::new(PackageType::PhpComposer, "pear/log", "1.13.3", "php");
        p.set_purl(None);
        assert_eq!(p.purl, "pkg:composer/pear/log@1.13.3");
    }
}
