//! `osprey db update`: download the OSV archive of each ecosystem (`<mirror>/<ecosystem>/all.zip`),
//! verify it, and rebuild the database from the archives. Archives are kept under `feeds/`
//! beside the database with their ETag, so an unchanged archive is not downloaded again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::db::{FeedJob, build_database, db_path};
use crate::cli::{DEFAULT_ECOSYSTEMS, DbUpdateArgs};
use crate::exit::Failure;
use crate::ui::Ui;

/// Largest archive accepted (the biggest OSV archives are a few hundred MiB).
const MAX_ARCHIVE_BYTES: u64 = 8 << 30;
/// Attempts per download (network errors and 5xx answers are retried).
const ATTEMPTS: u32 = 4;
/// Downloads at once.
const PARALLEL: usize = 4;

pub fn update(args: DbUpdateArgs, ui: &Ui) -> Result<i32, Failure> {
    let db = db_path(&args.db)?;
    let mirror = args.mirror.trim_end_matches('/').to_string();
    let url = reqwest::Url::parse(&mirror)
        .map_err(|e| Failure::Input(format!("--mirror {mirror:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::Input(format!(
            "--mirror {mirror:?}: only http and https mirrors are supported"
        )));
    }
    let ecosystems: Vec<String> = if args.ecosystem.is_empty() {
        DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect()
    } else {
        args.ecosystem
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for e in &ecosystems {
        if e.contains(['/', '\\']) || e == ".." {
            return Err(Failure::Input(format!(
                "--ecosystem {e:?}: not an OSV ecosystem name"
            )));
        }
    }
    let feeds_dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("feeds");
    std::fs::create_dir_all(&feeds_dir)
        .map_err(|e| Failure::Input(format!("{}: {e}", feeds_dir.display())))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the download runtime: {e}")))?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("osprey/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Failure::Internal(format!("HTTP client: {e}")))?;
    let bar = ui.progress(ecosystems.len() as u64, "downloading advisories");
    let results = runtime.block_on(async {
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut set = tokio::task::JoinSet::new();
        for (i, eco) in ecosystems.iter().enumerate() {
            let (client, semaphore) = (client.clone(), semaphore.clone());
            let url = format!("{mirror}/{}/all.zip", encode_segment(eco));
            let dir = feeds_dir.join(eco);
            set.spawn(async move {
                let _permit = semaphore
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open");
                (i, url.clone(), fetch(&client, &url, &dir).await)
            });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            bar.inc(1);
            out.push(done.expect("download task panicked"));
        }
        out.sort_by_key(|(i, _, _)| *i);
        out
    });
    bar.finish_and_clear();
    let mut jobs = Vec::new();
    for (_, url, result) in results {
        match result {
            Ok(fetched) => {
                let how = match fetched.state {
                    State::Unchanged => "unchanged",
                    State::Verified(how) => how,
                };
                tracing::info!("{url}: {how}");
                if let State::Verified("no checksum offered") = fetched.state {
                    ui.warn(&format!(
                        "{url}: the mirror offers no checksum; relying on the archive's own CRCs"
                    ));
                }
                jobs.push(FeedJob {
                    kind: "osv",
                    path: fetched.path,
                    location: url,
                    import: osprey_vuln::feeds::osv::import,
                });
            }
            Err(e) => {
                return Err(Failure::Input(format!(
                    "{url}: {e} (the database was not changed)"
                )));
            }
        }
    }
    build_database(&jobs, &db, args.strict, true, ui)?;
    Ok(0)
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

struct Fetched {
    path: PathBuf,
    state: State,
}

enum State {
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
                    path,
                    state: State::Unchanged,
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
                    path,
                    state: State::Verified(how),
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
}
