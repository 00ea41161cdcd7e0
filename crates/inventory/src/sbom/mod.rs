//! SBOM documents: CycloneDX 1.6 and SPDX 2.3 JSON, written with Osprey's own serde types
//! (the published Rust types stop at CycloneDX 1.5) and validated against the published JSON
//! schemas in this crate's tests.

pub mod cyclonedx;
pub mod decode;
mod license;
pub mod spdx;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osprey_image::Image;
use packageurl::PackageUrl;
use sha2::{Digest, Sha256};

use crate::Inventory;

/// What an SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Image reference or tag, else the source as given.
    pub name: String,
    /// Manifest digest (or image ID) of an image.
    pub version: Option<String>,
    pub is_image: bool,
    pub purl: Option<String>,
    /// Extra facts (`osprey:image:config-digest`, platform, layers).
    pub properties: Vec<(String, String)>,
}

impl Subject {
    pub fn of_image(image: &Image) -> Subject {
        let is_image = image.kind != "dir";
        let name = image
            .reference
            .clone()
            .unwrap_or_else(|| image.source.clone());
        let version = image
            .manifest_digest
            .as_ref()
            .or(image.config_digest.as_ref())
            .map(ToString::to_string);
        let purl = match (image.kind, &image.reference, &image.manifest_digest) {
            ("registry", Some(r), Some(d)) => oci_purl(r, &d.to_string()),
            _ => None,
        };
        let mut properties = Vec::new();
        if let Some(c) = &image.config_digest {
            properties.push(("osprey:image:id".to_string(), c.to_string()));
        }
        if let Some(p) = &image.platform {
            properties.push(("osprey:image:platform".to_string(), p.to_string()));
        }
        for (i, l) in image.layers.iter().enumerate() {
            if let Some(d) = &l.diff_id {
                properties.push((format!("osprey:image:layer:{i}:diff-id"), d.to_string()));
            }
        }
        Subject {
            name,
            version,
            is_image,
            purl,
            properties,
        }
    }
}

/// `pkg:oci/app@sha256:…?repository_url=registry%2Fns%2Fapp&tag=v1`.
fn oci_purl(reference: &str, digest: &str) -> Option<String> {
    let (without_digest, _) = reference.split_once('@').unwrap_or((reference, ""));
    let (repo, tag) = match without_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (without_digest, None),
    };
    let name = repo.rsplit('/').next()?.to_ascii_lowercase();
    let mut p = PackageUrl::new("oci", name).ok()?;
    p.with_version(digest.to_string()).ok()?;
    p.add_qualifier("repository_url", repo.to_string()).ok()?;
    if let Some(t) = tag {
        p.add_qualifier("tag", t.to_string()).ok()?;
    }
    Some(p.to_string())
}

/// Everything an encoder needs.
pub struct Document<'a> {
    pub subject: &'a Subject,
    pub inventory: &'a Inventory,
    /// RFC 3339 creation time.
    pub created: String,
    pub tool_version: &'a str,
    /// Vulnerability findings about the packages (CycloneDX `vulnerabilities`).
    pub findings: &'a [osprey_model::Finding],
}

impl<'a> Document<'a> {
    pub fn new(
        subject: &'a Subject,
        inventory: &'a Inventory,
        tool_version: &'a str,
    ) -> Document<'a> {
        Document {
            subject,
            inventory,
            created: creation_time(),
            tool_version,
            findings: &[],
        }
    }

    /// The same document with vulnerability findings about its packages.
    pub fn with_findings(mut self, findings: &'a [osprey_model::Finding]) -> Document<'a> {
        self.findings = findings;
        self
    }

    /// A UUID derived from the content (same inventory, same UUID), shaped as RFC 4122 v5.
    pub(crate) fn uuid(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.subject.name.as_bytes());
        h.update(self.subject.version.as_deref().unwrap_or("").as_bytes());
        for p in &self.inventory.packages {
            h.update(p.purl.as_bytes());
            h.update([0]);
        }
        let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let x = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &x[0..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..32]
        )
    }
}

/// Now, or `SOURCE_DATE_EPOCH` when set (reproducible documents), as RFC 3339 UTC.
pub fn creation_time() -> String {
    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(when).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_purls() {
        let d = "sha256:28530658b28ac94b83e337e22c91260371bdd673d83fae9044fd63ec2b31a450";
        assert_eq!(
            oci_purl("127.0.0.1:5000/bench/app:v1", d).unwrap(),
            format!("pkg:oci/app@{d}?repository_url=127.0.0.1:5000%2Fbench%2Fapp&tag=v1")
        );
    }
}
