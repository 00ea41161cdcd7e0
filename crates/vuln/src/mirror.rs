//! The OSV mirror: each ecosystem's advisories as one archive, `<mirror>/<ecosystem>/all.zip`
//! (the layout of OSV's public bucket, which any static web server can copy). [`Mirror::fetch`]
//! keeps the archive in a directory with its ETag, so an unchanged archive is not downloaded
//! again, and verifies every checksum the mirror offers: Google Cloud Storage's
//! `x-goog-hash: md5=…` and a `<archive>.sha256` beside the archive. Network errors and 5xx
//! answers are retried; a checksum that does not match is never accepted.
//!
//! Behind the `mirror` feature: the matching engine itself never touches the network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Largest archive accepted (the biggest OSV archives are a few hundred MiB).
pub const MAX_ARCHIVE_BYTES: u64 = 8 << 30;
/// Attempts per download (network errors and 5xx answers are retried).
const ATTEMPTS: u32 = 4;

/// Why a mirror, an ecosystem or a download is refused.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{base:?}: {reason}")]
    Base { base: String, reason: String },
    #[error("{0:?}: not an OSV ecosystem name")]
    Ecosystem(String),
    #[error("building the HTTP client: {0}")]
    Client(String),
    #[error("{url}: {reason}")]
    Download { url: String, reason: String },
}

/// An OSV mirror (`https://osv-vulnerabilities.storage.googleapis.com` or a copy of it).
#[derive(Debug, Clone)]
pub struct Mirror {
    base: String,
    client: reqwest::Client,
}

impl Mirror {
    /// A mirror at `base`, an http:// or https:// URL.
    pub fn new(base: &str) -> Result<Mirror, MirrorError> {
        let base = base.trim_end_matches('/').to_string();
        let refuse = |reason: String| MirrorError::Base {
            base: base.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&base).map_err(|e| refuse(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("only http and https mirrors are supported".into()));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("osprey/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| MirrorError::Client(e.to_string()))?;
        Ok(Mirror { base, client })
    }

    /// The archive of one ecosystem (`Rocky Linux` → `<mirror>/Rocky%20Linux/all.zip`).
    pub fn archive_url(&self, ecosystem: &str) -> Result<String, MirrorError> {
        check_ecosystem(ecosystem)?;
        Ok(format!(
            "{}/{}/all.zip",
            self.base,
            encode_segment(ecosystem)
        ))
    }

    /// Makes `dir/all.zip` the mirror's current archive of `ecosystem`: unchanged when the
    /// mirror says so (304 to the kept ETag), else downloaded and verified.
    pub async fn fetch(&self, ecosystem: &str, dir: &Path) -> Result<Fetched, MirrorError> {
        let url = self.archive_url(ecosystem)?;
        fetch(&self.client, &url, dir)
            .await
            .map_err(|reason| MirrorError::Download { url, reason })
    }
}

/// Refuses what cannot be one path segment of the mirror: an ecosystem name has no slashes.
pub fn check_ecosystem(ecosystem: &str) -> Result<(), MirrorError> {
    if ecosystem.is_empty() || ecosystem.contains(['/', '\\']) || ecosystem == ".." {
        return Err(MirrorError::Ecosystem(ecosystem.to_string()));
    }
    Ok(())
}

/// An ecosystem name as one URL path segment (`Rocky Linux` → `Rocky%20Linux`).
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An archive on disk, current with the mirror.
#[derive(Debug)]
pub struct Fetched {
    /// What was asked for.
    pub url: String,
    /// `dir/all.zip`.
    pub path: PathBuf,
    pub state: FetchState,
}

/// How the kept archive came to be current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchState {
    /// The server answered 304 Not Modified: the kept archive is current.
    Unchanged,
    /// Downloaded and checked this way.
    Verified(&'static str),
}

/// Downloads `url` to `dir/all.zip` unless the kept copy is current; retries transient errors.
async fn fetch(client: &reqwest::Client, url: &str, dir: &Path) -> Result<Fetched, String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let url_owned = url.to_string();
    let path = dir.join("all.zip");
    let etag_path = dir.join("all.zip.etag");
    let etag = match (
        tokio::fs::metadata(&path).await,
        tokio::fs::read_to_string(&etag_path).await,
    ) {
        (Ok(_), Ok(tag)) if !tag.trim().is_empty() => Some(tag.trim().to_string()),
        _ => None,
    };
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        match download(client, url, &path, etag.as_deref()).await {
            Ok(Outcome::NotModified) => {
                return Ok(Fetched {
                    url: url_owned,
                    path,
                    state: FetchState::Unchanged,
                });
            }
            Ok(Outcome::Downloaded { how, etag }) => {
                // The ETag lets the next update ask "has it changed?"; without one, it downloads.
                let saved = match etag {
                    Some(tag) => tokio::fs::write(&etag_path, tag).await,
                    None => tokio::fs::remove_file(&etag_path).await.or(Ok(())),
                };
                saved.map_err(|e| format!("{}: {e}", etag_path.display()))?;
                return Ok(Fetched {
                    url: url_owned,
                    path,
                    state: FetchState::Verified(how),
                });
            }
            Err(Attempt::Retry(e)) => last = e,
            Err(Attempt::Fatal(e)) => return Err(e),
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
}

enum Outcome {
    /// 304: the kept archive is current.
    NotModified,
    Downloaded {
        how: &'static str,
        etag: Option<String>,
    },
}

enum Attempt {
    Retry(String),
    Fatal(String),
}

/// One attempt at a download, verified against every checksum the server offers.
async fn download(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    etag: Option<&str>,
) -> Result<Outcome, Attempt> {
    let mut request = client.get(url);
    if let Some(tag) = etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Attempt::Retry(e.to_string()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Outcome::NotModified);
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Attempt::Retry(format!("HTTP {status}")));
    }
    if !status.is_success() {
        return Err(Attempt::Fatal(format!("HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ARCHIVE_BYTES)
    {
        return Err(Attempt::Fatal(format!(
            "the archive is over the {MAX_ARCHIVE_BYTES}-byte limit"
        )));
    }
    let new_etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let google_md5 = response
        .headers()
        .get_all("x-goog-hash")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| part.trim().strip_prefix("md5=").map(str::to_string));
    let partial = path.with_extension("zip.partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| Attempt::Fatal(format!("{}: {e}", partial.display())))?;
    let (mut md5, mut sha256, mut size) = (Md5::new(), Sha256::new(), 0u64);
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Attempt::Retry(e.to_string()))?
    {
        size += chunk.len() as u64;
        if size > MAX_ARCHIVE_BYTES {
            return Err(Attempt::Fatal(format!(
                "the archive is over the {MAX_ARCHIVE_BYTES}-byte limit"
            )));
        }
        md5.update(&chunk);
        sha256.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| Attempt::Fatal(format!("{}: {e}", partial.display())))?;
    }
    file.sync_all()
        .await
        .map_err(|e| Attempt::Fatal(format!("{}: {e}", partial.display())))?;
    drop(file);
    let (md5, sha256) = (md5.finalize(), hex::encode(sha256.finalize()));
    let mut how = "no checksum offered";
    if let Some(expected) = google_md5 {
        let got = base64::engine::general_purpose::STANDARD.encode(md5);
        if got != expected {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Attempt::Retry(format!(
                "MD5 mismatch: the server says {expected}, the download is {got}"
            )));
        }
        how = "MD5 (x-goog-hash) verified";
    }
    // A mirror may publish `<archive>.sha256` (`sha256sum` output or the bare digest).
    match client.get(format!("{url}.sha256")).send().await {
        Ok(r) if r.status().is_success() => {
            let text = r.text().await.map_err(|e| Attempt::Retry(e.to_string()))?;
            let expected = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if expected != sha256 {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(Attempt::Fatal(format!(
                    "SHA-256 mismatch: {url}.sha256 says {expected:?}, the download is {sha256}"
                )));
            }
            how = if how == "no checksum offered" {
                "SHA-256 verified"
            } else {
                "MD5 and SHA-256 verified"
            };
        }
        Ok(r)
            if r.status() == reqwest::StatusCode::NOT_FOUND
                || r.status() == reqwest::StatusCode::FORBIDDEN => {}
        Ok(r) => return Err(Attempt::Retry(format!("{url}.sha256: HTTP {}", r.status()))),
        Err(e) => return Err(Attempt::Retry(e.to_string())),
    }
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|e| Attempt::Fatal(format!("{}: {e}", path.display())))?;
    Ok(Outcome::Downloaded {
        how,
        etag: new_etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystem_segments() {
        assert_eq!(encode_segment("Rocky Linux"), "Rocky%20Linux");
        assert_eq!(encode_segment("crates.io"), "crates.io");
        assert_eq!(encode_segment("Debian:12"), "Debian:12");
    }

    #[test]
    fn mirrors_and_ecosystems_are_checked() {
        let m = Mirror::new("https://mirror.example/osv/").unwrap();
        assert_eq!(
            m.archive_url("Rocky Linux").unwrap(),
            "https://mirror.example/osv/Rocky%20Linux/all.zip"
        );
        for bad in ["../x", "a/b", "..", ""] {
            assert!(m.archive_url(bad).is_err(), "{bad:?}");
        }
        let err = Mirror::new("ftp://mirror.example").unwrap_err();
        assert!(err.to_string().contains("only http and https"), "{err}");
        assert!(Mirror::new("not a url").is_err());
    }
}
