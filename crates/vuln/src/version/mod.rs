//! Version orderings, one module per ecosystem. A version string is parsed once into a
//! [`Version`] of its [`Scheme`]; two versions of the same scheme compare with that
//! ecosystem's own rules. Well-kept crates do the work where they exist (dpkg, rpm, PEP 440,
//! SemVer, npm, RubyGems); apk, Maven and NuGet are written here from their specifications.

/// `PartialOrd`, `PartialEq` and `Eq` from `Ord`, and `Display` as the original text, for the
/// orderings written here (each keeps its text in a `text` field).
macro_rules! same_text_ordering {
    ($t:ty) => {
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }

        impl Eq for $t {}

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.text)
            }
        }
    };
}

mod apk;
mod maven;
mod nuget;

use std::cmp::Ordering;
use std::str::FromStr;

pub use apk::ApkVersion;
pub use maven::MavenVersion;
pub use nuget::NuGetVersion;

/// How an ecosystem orders its versions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Scheme {
    Dpkg,
    Rpm,
    Apk,
    Pep440,
    /// SemVer 2 as crates.io applies it.
    Semver,
    /// SemVer with npm's leniency (`v` prefixes, loose spacing).
    Npm,
    /// Go module versions: SemVer with a `v` prefix, pseudo-versions, `+incompatible`.
    Go,
    Maven,
    RubyGems,
    NuGet,
    /// Anything else: dot- and dash-separated parts, numbers numerically.
    Generic,
}

/// A parsed version.
#[derive(Debug, Clone)]
pub enum Version {
    Dpkg(debversion::Version),
    Rpm {
        epoch: String,
        version: String,
        release: String,
    },
    Apk(ApkVersion),
    Pep440(pep440_rs::Version),
    Semver(semver::Version),
    Npm(nodejs_semver::Version),
    Maven(MavenVersion),
    RubyGems(gem_version::GemVersion),
    NuGet(NuGetVersion),
    Generic(Vec<GenericPart>),
}

impl Version {
    /// Parses `text` with the rules of `scheme`; `None` when it is not a version there.
    pub fn parse(scheme: Scheme, text: &str) -> Option<Version> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(match scheme {
            Scheme::Dpkg => Version::Dpkg(debversion::Version::from_str(text).ok()?),
            Scheme::Rpm => {
                let evr = rpm_version::Evr::parse(text);
                if evr.version().is_empty() {
                    return None;
                }
                Version::Rpm {
                    epoch: evr.epoch().to_string(),
                    version: evr.version().to_string(),
                    release: evr.release().to_string(),
                }
            }
            Scheme::Apk => Version::Apk(text.parse().ok()?),
            Scheme::Pep440 => Version::Pep440(pep440_rs::Version::from_str(text).ok()?),
            Scheme::Semver => Version::Semver(semver::Version::parse(text).ok()?),
            Scheme::Npm => Version::Npm(nodejs_semver::Version::parse(text).ok()?),
            Scheme::Go => {
                let bare = text.strip_prefix('v').unwrap_or(text);
                let bare = bare.strip_prefix("go").unwrap_or(bare);
                Version::Semver(
                    semver::Version::parse(bare)
                        .ok()
                        .or_else(|| go_short(bare))?,
                )
            }
            Scheme::Maven => Version::Maven(MavenVersion::parse(text)),
            Scheme::RubyGems => Version::RubyGems(gem_version::GemVersion::from_str(text).ok()?),
            Scheme::NuGet => Version::NuGet(text.parse().ok()?),
            Scheme::Generic => Version::Generic(generic_parts(text)),
        })
    }

    /// Compares two versions of the same scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        Some(match (self, other) {
            (Version::Dpkg(a), Version::Dpkg(b)) => a.cmp(b),
            (
                Version::Rpm {
                    epoch: ea,
                    version: va,
                    release: ra,
                },
                Version::Rpm {
                    epoch: eb,
                    version: vb,
                    release: rb,
                },
            ) => rpm_version::Evr::new(ea.as_str(), va.as_str(), ra.as_str()).cmp(
                &rpm_version::Evr::new(eb.as_str(), vb.as_str(), rb.as_str()),
            ),
            (Version::Apk(a), Version::Apk(b)) => a.cmp(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            (Version::Semver(a), Version::Semver(b)) => a.cmp_precedence(b),
            (Version::Npm(a), Version::Npm(b)) => a.cmp(b),
            (Version::Maven(a), Version::Maven(b)) => a.cmp(b),
            (Version::RubyGems(a), Version::RubyGems(b)) => a.cmp(b),
            (Version::NuGet(a), Version::NuGet(b)) => a.cmp(b),
            (Version::Generic(a), Version::Generic(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

/// Compares two version strings under `scheme`; `None` when either does not parse.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    Version::parse(scheme, a)?.compare(&Version::parse(scheme, b)?)
}

/// Go toolchain versions like `1.21` (no patch): `1.21.0`.
fn go_short(text: &str) -> Option<semver::Version> {
    let (core, pre) = text
        .split_once(['-', '+'])
        .map_or((text, None), |(c, p)| (c, Some(p)));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 2 {
        return None;
    }
    let mut full = format!("{}.{}.0", parts[0], parts[1]);
    if let Some(p) = pre {
        full.push('-');
        full.push_str(p);
    }
    semver::Version::parse(&full).ok()
}

/// One part of a generic version: numbers before words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GenericPart {
    Word(String),
    Number(u128),
}

fn generic_parts(text: &str) -> Vec<GenericPart> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut digits = false;
    let flush = |cur: &mut String, digits: bool, out: &mut Vec<GenericPart>| {
        if cur.is_empty() {
            return;
        }
        out.push(if digits {
            GenericPart::Number(cur.parse().unwrap_or(u128::MAX))
        } else {
            GenericPart::Word(cur.to_ascii_lowercase())
        });
        cur.clear();
    };
    for c in text.strip_prefix('v').unwrap_or(text).chars() {
        if c.is_ascii_alphanumeric() {
            let d = c.is_ascii_digit();
            if !cur.is_empty() && d != digits {
                flush(&mut cur, digits, &mut out);
            }
            digits = d;
            cur.push(c);
        } else {
            flush(&mut cur, digits, &mut out);
        }
    }
    flush(&mut cur, digits, &mut out);
    while out.last() == Some(&GenericPart::Number(0)) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(scheme: Scheme, table: &[(&str, Ordering, &str)]) {
        for (a, want, b) in table {
            assert_eq!(compare(scheme, a, b), Some(*want), "{scheme:?}: {a} vs {b}");
            assert_eq!(
                compare(scheme, b, a),
                Some(want.reverse()),
                "{scheme:?}: {b} vs {a}"
            );
        }
    }

    #[test]
    fn dpkg() {
        check(
            Scheme::Dpkg,
            &[
                ("1:1.0", Greater, "2.0"),
                ("1.0~rc1", Less, "1.0"),
                ("1.0~~", Less, "1.0~"),
                ("1.0-1", Less, "1.0-2"),
                ("1.0-1", Less, "1.0-1+b1"),
                ("1.0+deb12u1", Greater, "1.0"),
                ("2.36-9+deb12u4", Less, "2.36-9+deb12u14"),
                ("3.0.11-1~deb12u2", Less, "3.0.11-1"),
                ("1.0", Equal, "0:1.0"),
                ("1.2.3a", Greater, "1.2.3"),
            ],
        );
    }

    #[test]
    fn rpm() {
        check(
            Scheme::Rpm,
            &[
                ("1.0-1", Less, "1.0-2"),
                ("1:0.9-1", Greater, "1.0-1"),
                ("1.0~rc1-1", Less, "1.0-1"),
                ("1.0^20230101-1", Greater, "1.0-1"),
                ("2.32.1-42.el8_8", Greater, "2.32.1-42.el8"),
                ("1.0a-1", Greater, "1.0-1"),
                ("1.10-1", Greater, "1.9-1"),
                ("0:1.0-1", Equal, "1.0-1"),
            ],
        );
    }

    #[test]
    fn pep440() {
        check(
            Scheme::Pep440,
            &[
                ("2.2", Equal, "2.2.0"),
                ("1.0a1", Less, "1.0b1"),
                ("1.0rc1", Less, "1.0"),
                ("1.0", Less, "1.0.post1"),
                ("1.0.dev1", Less, "1.0a1"),
                ("1!0.1", Greater, "2.0"),
                ("2018.4.16", Less, "2018.10.15"),
                ("1.0+local", Greater, "1.0"),
            ],
        );
    }

    #[test]
    fn semver_npm_go() {
        check(
            Scheme::Semver,
            &[
                ("1.0.0-alpha", Less, "1.0.0"),
                ("1.0.0-alpha.1", Less, "1.0.0-alpha.beta"),
                ("1.0.0+build", Equal, "1.0.0"),
                ("0.9.10", Greater, "0.9.9"),
            ],
        );
        check(
            Scheme::Npm,
            &[
                ("v1.2.3", Equal, "1.2.3"),
                ("4.17.15", Less, "4.17.21"),
                ("1.0.0-rc.1", Less, "1.0.0"),
            ],
        );
        check(
            Scheme::Go,
            &[
                ("v0.0.0-20210121094942-22b2f8951d46", Less, "v0.1.0"),
                (
                    "v0.0.0-20210121094942-22b2f8951d46",
                    Greater,
                    "v0.0.0-20200804184101-5ec99f83aff1",
                ),
                ("v1.2.3-pre", Less, "v1.2.3"),
                ("v2.0.0+incompatible", Equal, "v2.0.0"),
                ("v1.19.8", Equal, "1.19.8"),
                ("1.21", Equal, "1.21.0"),
                ("go1.22.1", Greater, "1.22.0"),
            ],
        );
    }

    #[test]
    fn rubygems() {
        check(
            Scheme::RubyGems,
            &[
                ("1.0.0.pre", Less, "1.0.0"),
                ("1.0.0.a", Less, "1.0.0.b"),
                ("2.2.8.1", Greater, "2.2.8"),
                ("1.0", Equal, "1.0.0"),
            ],
        );
    }

    #[test]
    fn generic() {
        check(
            Scheme::Generic,
            &[
                ("1.10", Greater, "1.9"),
                ("v1.0.2", Equal, "1.0.2"),
                ("1.0.0", Equal, "1"),
                ("1.0-beta", Greater, "1.0"),
            ],
        );
    }

    #[test]
    fn across_schemes_is_none() {
        let a = Version::parse(Scheme::Dpkg, "1.0").unwrap();
        let b = Version::parse(Scheme::Rpm, "1.0-1").unwrap();
        assert_eq!(a.compare(&b), None);
        assert!(Version::parse(Scheme::Semver, "not a version").is_none());
        assert!(Version::parse(Scheme::Dpkg, "").is_none());
    }

    proptest::proptest! {
        #[test]
        fn orderings_are_total_and_consistent(
            a in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-r[0-9]{1,2})?",
            b in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-r[0-9]{1,2})?",
            c in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-r[0-9]{1,2})?",
        ) {
            for scheme in [Scheme::Dpkg, Scheme::Rpm, Scheme::Apk, Scheme::Pep440, Scheme::Maven, Scheme::NuGet, Scheme::Generic, Scheme::RubyGems] {
                let (Some(x), Some(y), Some(z)) = (Version::parse(scheme, &a), Version::parse(scheme, &b), Version::parse(scheme, &c)) else { continue };
                let xy = x.compare(&y).unwrap();
                proptest::prop_assert_eq!(y.compare(&x).unwrap(), xy.reverse(), "{:?} antisymmetry {} {}", scheme, a, b);
                proptest::prop_assert_eq!(x.compare(&x).unwrap(), Ordering::Equal);
                let yz = y.compare(&z).unwrap();
                if xy != Ordering::Greater && yz != Ordering::Greater {
                    proptest::prop_assert_ne!(x.compare(&z).unwrap(), Ordering::Greater, "{:?} transitivity {} {} {}", scheme, a, b, c);
                }
            }
        }
    }

    /// Antisymmetry, reflexivity and transitivity of one scheme on three versions, and the
    /// text surviving a parse.
    fn total_order(
        scheme: Scheme,
        a: &str,
        b: &str,
        c: &str,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let (Some(x), Some(y), Some(z)) = (
            Version::parse(scheme, a),
            Version::parse(scheme, b),
            Version::parse(scheme, c),
        ) else {
            return Ok(());
        };
        let xy = x.compare(&y).unwrap();
        proptest::prop_assert_eq!(
            y.compare(&x).unwrap(),
            xy.reverse(),
            "{:?} antisymmetry {} {}",
            scheme,
            a,
            b
        );
        proptest::prop_assert_eq!(x.compare(&x).unwrap(), Ordering::Equal);
        let yz = y.compare(&z).unwrap();
        let xz = x.compare(&z).unwrap();
        if xy != Ordering::Greater && yz != Ordering::Greater {
            proptest::prop_assert_ne!(
                xz,
                Ordering::Greater,
                "{:?} transitivity {} <= {} <= {}",
                scheme,
                a,
                b,
                c
            );
        }
        if xy == Ordering::Equal && yz == Ordering::Equal {
            proptest::prop_assert_eq!(
                xz,
                Ordering::Equal,
                "{:?} equality is transitive {} {} {}",
                scheme,
                a,
                b,
                c
            );
        }
        Ok(())
    }

    const APK: &str = "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}[a-c]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]{0,2}){0,2}(~[0-9a-f]{1,4})?(-r[0-9]{1,2})?";
    const MAVEN: &str = "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}([-.]?(alpha|beta|milestone|rc|cr|snapshot|ga|final|sp|a|b|m|xyz)[0-9]{0,2}){0,2}(-[0-9]{1,2})?";
    const NUGET: &str = "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-zA-Z0-9]{1,5}(\\.[a-zA-Z0-9]{1,5}){0,2})?(\\+[a-z0-9]{1,4})?";
    const SEMVER: &str = "(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})(-(alpha|beta|rc|0|[1-9][0-9]?)(\\.(0|[1-9]|[a-z][0-9a-z]{0,2})){0,2})?";
    const DPKG: &str = "([0-9]:)?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(~[a-z0-9]{1,3})?(\\+[a-z0-9]{1,4})?(-[0-9]{1,2}(\\+deb[0-9]{2}u[0-9])?)?";
    const PEP440: &str =
        "([0-9]!)?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}((a|b|rc)[0-9]{1,2})?(\\.post[0-9])?(\\.dev[0-9])?";

    proptest::proptest! {
        #[test]
        fn apk_is_a_total_order(a in APK, b in APK, c in APK) {
            total_order(Scheme::Apk, &a, &b, &c)?;
            let v: ApkVersion = a.parse().unwrap();
            proptest::prop_assert_eq!(v.to_string(), a);
        }

        #[test]
        fn maven_is_a_total_order(a in MAVEN, b in MAVEN, c in MAVEN) {
            total_order(Scheme::Maven, &a, &b, &c)?;
        }

        #[test]
        fn nuget_is_a_total_order(a in NUGET, b in NUGET, c in NUGET) {
            total_order(Scheme::NuGet, &a, &b, &c)?;
            let v: NuGetVersion = a.parse().unwrap();
            proptest::prop_assert_eq!(v.to_string(), a);
        }

        #[test]
        fn semver_npm_go_are_total_orders(a in SEMVER, b in SEMVER, c in SEMVER) {
            for scheme in [Scheme::Semver, Scheme::Npm, Scheme::Go] {
                total_order(scheme, &a, &b, &c)?;
            }
            // Go reads `v`-prefixed versions the same.
            proptest::prop_assert_eq!(compare(Scheme::Go, &format!("v{a}"), &a), Some(Ordering::Equal));
        }

        #[test]
        fn dpkg_and_rpm_are_total_orders(a in DPKG, b in DPKG, c in DPKG) {
            total_order(Scheme::Dpkg, &a, &b, &c)?;
            total_order(Scheme::Rpm, &a, &b, &c)?;
        }

        #[test]
        fn pep440_is_a_total_order(a in PEP440, b in PEP440, c in PEP440) {
            total_order(Scheme::Pep440, &a, &b, &c)?;
        }
    }
}
