//! Platforms (`os/arch[/variant]`) and picking one image out of a multi-platform index.

use std::fmt;
use std::str::FromStr;

/// An image platform in Go's naming (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform of the machine Osprey runs on, in Go's architecture names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if arch == "arm64" { Some("v8") } else { None };
        Platform::new("linux", arch, variant)
    }

    /// Whether an index entry for `candidate` satisfies this wanted platform. A wanted platform
    /// without a variant accepts any variant; `arm64` treats a missing variant as `v8`, as
    /// containerd does.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let normalize = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        match (&self.variant, normalize(candidate)) {
            (None, _) => true,
            (Some(_), None) => {
                self.architecture == "arm64" && self.variant.as_deref() == Some("v8")
            }
            (Some(want), Some(have)) => *want == have,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(format!(
                "platform {s:?}: expected os/arch or os/arch/variant, e.g. linux/arm64"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let want: Platform = "linux/arm64".parse().unwrap();
        assert!(want.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(want.matches(&Platform::new("linux", "arm64", None)));
        assert!(!want.matches(&Platform::new("linux", "amd64", None)));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(v7.matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(!v7.matches(&Platform::new("linux", "arm", Some("v6"))));
        assert!(!v7.matches(&Platform::new("linux", "arm", None)));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches(&Platform::new("linux", "arm64", None)));
        assert!("linux".parse::<Platform>().is_err());
        assert!("Linux/AMD64".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
        assert_eq!(v7.to_string(), "linux/arm/v7");
    }
}
