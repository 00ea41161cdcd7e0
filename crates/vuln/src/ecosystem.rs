//! Ecosystems as OSV names them (`PyPI`, `Go`, `Debian:12`, `Alpine:v3.18`), the version
//! ordering each uses, how each normalizes package names, and which ecosystem an installed
//! package belongs to.

use osprey_model::{Os, Package, PackageType};

use crate::version::Scheme;

/// The canonical form of an OSV ecosystem string: Ubuntu's `:LTS` marker dropped
/// (`Ubuntu:22.04:LTS` → `Ubuntu:22.04`), `Alpine:3.18` spelled `Alpine:v3.18`, surrounding
/// space trimmed. Everything else is kept as OSV writes it.
pub fn canonical(ecosystem: &str) -> String {
    let e = ecosystem.trim();
    if let Some(rest) = e.strip_prefix("Ubuntu:") {
        return format!("Ubuntu:{}", rest.strip_suffix(":LTS").unwrap_or(rest));
    }
    if let Some(rest) = e.strip_prefix("Alpine:")
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return format!("Alpine:v{rest}");
    }
    e.to_string()
}

/// The ecosystem's family: the part before the first `:` (`Debian` of `Debian:12`).
pub fn family(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// How an ecosystem orders versions (for `ECOSYSTEM` ranges and version lists).
pub fn scheme(ecosystem: &str) -> Scheme {
    match family(ecosystem) {
        "Debian" | "Ubuntu" => Scheme::Dpkg,
        "Alpine" | "Wolfi" | "Chainguard" | "Alpaquita" | "BellSoft Hardened Containers" => {
            Scheme::Apk
        }
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "openSUSE" | "SUSE" | "Mageia" | "openEuler"
        | "Azure Linux" => Scheme::Rpm,
        "PyPI" => Scheme::Pep440,
        "npm" => Scheme::Npm,
        "Go" => Scheme::Go,
        "crates.io" | "Hex" | "Pub" => Scheme::Semver,
        "Maven" => Scheme::Maven,
        "RubyGems" => Scheme::RubyGems,
        "NuGet" => Scheme::NuGet,
        _ => Scheme::Generic,
    }
}

/// The ordering of `SEMVER` ranges in an ecosystem: SemVer 2, with Go's and npm's spellings
/// where those ecosystems use them.
pub fn semver_scheme(ecosystem: &str) -> Scheme {
    match scheme(ecosystem) {
        s @ (Scheme::Go | Scheme::Npm) => s,
        _ => Scheme::Semver,
    }
}

/// A package name as the ecosystem compares names: PEP 503 for PyPI (lowercase, runs of
/// `-_.` as one `-`), lowercase where the registry is case-insensitive (crates.io, NuGet,
/// Packagist, npm), as written elsewhere (Go module paths and Maven coordinates are
/// case-sensitive; distro package names are lowercase already).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let name = name.trim();
    match family(ecosystem) {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                    continue;
                }
                if sep && !out.is_empty() {
                    out.push('-');
                }
                sep = false;
                out.push(c.to_ascii_lowercase());
            }
            out
        }
        "crates.io" => name.to_ascii_lowercase().replace('_', "-"),
        "NuGet" | "Packagist" | "npm" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// The OSV ecosystem of an operating system's packages (`Debian:12`, `Alpine:v3.18`,
/// `Ubuntu:22.04`, `AlmaLinux:9`); `None` for releases no feed covers by number (Debian
/// testing, Alpine edge).
pub fn os_ecosystem(os: &Os) -> Option<String> {
    let version = os.version_id.as_deref().or(os.version.as_deref())?;
    let major = version.split('.').next()?;
    let major_minor = || version.split('.').take(2).collect::<Vec<_>>().join(".");
    Some(match os.id.as_str() {
        "debian" => format!("Debian:{major}"),
        "ubuntu" => format!("Ubuntu:{}", major_minor()),
        "alpine" => format!("Alpine:v{}", major_minor()),
        "almalinux" => format!("AlmaLinux:{major}"),
        "rocky" => format!("Rocky Linux:{major}"),
        "rhel" => format!("Red Hat:{major}"),
        "wolfi" => "Wolfi".to_string(),
        "chainguard" => "Chainguard".to_string(),
        "opensuse-leap" => format!("openSUSE:Leap {}", major_minor()),
        "mageia" => format!("Mageia:{major}"),
        "openeuler" => format!("openEuler:{version}"),
        _ => return None,
    })
}

/// Where to look a package up: its ecosystem and its name there. OS packages are looked up by
/// source package in their distribution release; language packages by ecosystem and name
/// (Maven as `group:artifact`). `None` when the package belongs to no known ecosystem (an OS
/// package of an unidentified distribution).
pub fn lookup_key(package: &Package, os: Option<&Os>) -> Option<(String, String)> {
    let ecosystem = match package.kind {
        k if k.is_os() => os_ecosystem(os?)?,
        k => k.language_ecosystem()?.to_string(),
    };
    let name = match package.kind {
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => package
            .source_name
            .as_deref()
            .unwrap_or(&package.name)
            .to_string(),
        PackageType::JavaArchive => match &package.group {
            Some(g) => format!("{g}:{}", package.name),
            None => return None,
        },
        _ => package.name.clone(),
    };
    let name = normalize_name(&ecosystem, &name);
    Some((ecosystem, name))
}

/// The version of `package` that advisories for its lookup key speak of: the source version
/// for Debian and Ubuntu packages (a binary rebuilt with `+b1` still carries its source's
/// version), else the package's own.
pub fn comparable_version(package: &Package) -> &str {
    match package.kind {
        PackageType::Deb => package
            .source_version
            .as_deref()
            .unwrap_or(&package.version),
        _ => &package.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(canonical("Ubuntu:Pro:18.04:LTS"), "Ubuntu:Pro:18.04");
        assert_eq!(canonical("Alpine:3.18"), "Alpine:v3.18");
        assert_eq!(canonical(" Alpine:v3.18 "), "Alpine:v3.18");
        assert_eq!(canonical("Debian:12"), "Debian:12");
    }

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("PyPI", "Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "FRIENDLY-BARD"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "friendly.bard"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "friendly_bard"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "friendly--bard"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "FrIeNdLy-._.-bArD"), "friendly-bard");
        assert_eq!(normalize_name("PyPI", "zope.interface"), "zope-interface");
        assert_eq!(normalize_name("crates.io", "Serde_JSON"), "serde-json");
        assert_eq!(
            normalize_name("Go", "github.com/BurntSushi/toml"),
            "github.com/BurntSushi/toml"
        );
        assert_eq!(
            normalize_name("NuGet", "Newtonsoft.Json"),
            "newtonsoft.json"
        );
    }

    fn os(id: &str, version_id: Option<&str>, version: Option<&str>) -> Os {
        Os {
            id: id.into(),
            version_id: version_id.map(Into::into),
            version: version.map(Into::into),
            ..Os::default()
        }
    }

    #[test]
    fn os_ecosystems() {
        assert_eq!(
            os_ecosystem(&os("debian", Some("12"), Some("12.4"))).as_deref(),
            Some("Debian:12")
        );
        assert_eq!(
            os_ecosystem(&os("alpine", Some("3.18.4"), None)).as_deref(),
            Some("Alpine:v3.18")
        );
        assert_eq!(
            os_ecosystem(&os("alpine", None, Some("3.10.9"))).as_deref(),
            Some("Alpine:v3.10")
        );
        assert_eq!(
            os_ecosystem(&os("ubuntu", Some("22.04"), None)).as_deref(),
            Some("Ubuntu:22.04")
        );
        assert_eq!(
            os_ecosystem(&os("rocky", Some("9.3"), None)).as_deref(),
            Some("Rocky Linux:9")
        );
        assert_eq!(
            os_ecosystem(&os("debian", None, None)),
            None,
            "testing/sid has no number"
        );
        assert_eq!(os_ecosystem(&os("plan9", Some("4"), None)), None);
    }

    #[test]
    fn lookup_keys() {
        let debian = os("debian", Some("12"), None);
        let mut p = Package::new(PackageType::Deb, "libssl3", "3.0.11-1~deb12u2", "dpkg");
        p.source_name = Some("openssl".into());
        assert_eq!(
            lookup_key(&p, Some(&debian)),
            Some(("Debian:12".into(), "openssl".into()))
        );
        assert_eq!(lookup_key(&p, None), None);
        let p = Package::new(PackageType::Python, "PyYAML", "5.3", "python");
        assert_eq!(lookup_key(&p, None), Some(("PyPI".into(), "pyyaml".into())));
        let mut p = Package::new(PackageType::JavaArchive, "log4j-core", "2.14.1", "java");
        assert_eq!(
            lookup_key(&p, None),
            None,
            "a jar without a group cannot be named in Maven"
        );
        p.group = Some("org.apache.logging.log4j".into());
        assert_eq!(
            lookup_key(&p, None),
            Some(("Maven".into(), "org.apache.logging.log4j:log4j-core".into()))
        );
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("Debian:12"), Scheme::Dpkg);
        assert_eq!(scheme("Alpine:v3.18"), Scheme::Apk);
        assert_eq!(scheme("Rocky Linux:9"), Scheme::Rpm);
        assert_eq!(scheme("crates.io"), Scheme::Semver);
        assert_eq!(semver_scheme("Go"), Scheme::Go);
        assert_eq!(semver_scheme("PyPI"), Scheme::Semver);
        assert_eq!(scheme("Packagist"), Scheme::Generic);
    }
}
