//! NuGet versions: `Major.Minor.Patch[.Revision][-prerelease][+metadata]`, as NuGet's
//! `NuGetVersion` orders them: four numbers (missing ones are zero), then a release after its
//! pre-releases, pre-release labels compared like SemVer 2 but case-insensitively, metadata
//! ignored. No maintained crate implements the four-part form, so it is written here.

use std::cmp::Ordering;
use std::str::FromStr;

/// A parsed NuGet version.
#[derive(Debug, Clone)]
pub struct NuGetVersion {
    text: String,
    numbers: [u64; 4],
    prerelease: Vec<Label>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    /// Numeric labels sort before alphanumeric ones.
    Number(u64),
    Word(String),
}

/// Why a string is not a NuGet version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a NuGet version: {0:?}")]
pub struct NuGetVersionError(String);

impl FromStr for NuGetVersion {
    type Err = NuGetVersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || NuGetVersionError(text.to_string());
        let without_meta = text.split_once('+').map_or(text, |(v, _)| v);
        let (core, pre) = without_meta
            .split_once('-')
            .map_or((without_meta, None), |(c, p)| (c, Some(p)));
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return Err(err());
        }
        let mut numbers = [0u64; 4];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            *slot = part.parse().map_err(|_| err())?;
        }
        let mut prerelease = Vec::new();
        if let Some(pre) = pre {
            for label in pre.split('.') {
                if label.is_empty()
                    || !label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(err());
                }
                prerelease.push(match label.parse::<u64>() {
                    Ok(n) if label.bytes().all(|b| b.is_ascii_digit()) => Label::Number(n),
                    _ => Label::Word(label.to_ascii_lowercase()),
                });
            }
        }
        Ok(NuGetVersion {
            text: text.to_string(),
            numbers,
            prerelease,
        })
    }
}

impl Ord for NuGetVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| {
            match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.prerelease.cmp(&other.prerelease),
            }
        })
    }
}

same_text_ordering!(NuGetVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> NuGetVersion {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ordering() {
        let ordered = [
            "0.9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-BETA",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0.1",
            "1.0.1",
            "1.2",
            "1.10",
            "13.0.1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(v(w[0]).cmp(&v(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v("1.0.0-Beta"), v("1.0.0-beta"));
        assert_eq!(v("1.0.0+abc"), v("1.0.0"));
        assert_eq!(v("4.3.0").to_string(), "4.3.0");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "1.2.3.4.5",
            "a.b",
            "1..2",
            "1.0-",
            "1.0-beta..1",
            "v1.0",
        ] {
            assert!(bad.parse::<NuGetVersion>().is_err(), "{bad:?}");
        }
    }
}
