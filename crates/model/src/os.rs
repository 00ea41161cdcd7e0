//! The operating system of an image, as its release files state it.

use serde::{Deserialize, Serialize};

/// An operating system identified from release files (`/etc/os-release` and kin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Os {
    /// `ID` of os-release, lowercase (`debian`, `alpine`, `ubuntu`, `rhel`, `sles`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.18.4`, `22.04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The most precise version known (Debian point release from `/etc/debian_version`, Alpine
    /// from `/etc/alpine-release`), else `VERSION_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// The files the identification came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

impl Os {
    /// The `distro` qualifier of package URLs: `debian-12`, `alpine-3.18.4`.
    pub fn purl_distro(&self) -> String {
        match self.version_id.as_deref().or(self.version.as_deref()) {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        }
    }

    /// A one-line name for people: `Debian GNU/Linux 12 (bookworm)`, else `debian 12`.
    pub fn display_name(&self) -> String {
        if let Some(p) = &self.pretty_name {
            return p.clone();
        }
        match &self.version {
            Some(v) => format!("{} {v}", self.id),
            None => self.id.clone(),
        }
    }
}
