//! Image scans as a service. Worker threads take queued jobs from the store, pull the image
//! (with the tenant's registry credentials), take its inventory, match it against the
//! vulnerability database and scan it for malware, then store the findings, the digest's SBOM
//! and the job's end in one transaction.
//!
//! The first worker also keeps the stored SBOMs current: when the vulnerability database file
//! changes (`osprey db update` replaced it), every SBOM is matched again without pulling its
//! image — vulnerabilities that appear become findings, those no longer matched are resolved —
//! and images whose last scan is older than the re-scan interval are queued again.
//!
//! Workers are plain threads (the engines are synchronous); they reach the store through the
//! runtime's handle. A scan running when the server stops is queued again at the next start.
//!
//! `job.rs` runs one job (open the image, inventory, match, malware, one transaction);
//! `rematch.rs` keeps stored SBOMs current and queues re-scans; `triggers.rs` turns findings
//! into scan requests.

mod job;
mod rematch;

pub(crate) use rematch::{scoped_records, store_foreign_findings};
mod triggers;

pub use job::registry_reference;
pub use triggers::{pod_without_images, trigger_requests};

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use osprey_image::LayerCache;
use osprey_malware::{Engine, HashIocs, Limits, RuleLoader};
use osprey_store::{ScanJob, ScanResult};
use osprey_vuln::db::Database;
use sha2::{Digest as _, Sha256};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::App;
use crate::error::{ServerError, ServerResult};

/// The actor scans write findings' history as.
pub const ACTOR: &str = "scanner";
/// How long an idle worker sleeps when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// SBOMs re-matched per transaction.
const REMATCH_BATCH: i64 = 50;
/// Most bytes of a stored inventory (decompressed).
const MAX_INVENTORY_BYTES: usize = 256 << 20;

/// A vulnerability database file, opened.
pub struct LoadedDb {
    modified: SystemTime,
    pub db: Database<File>,
    /// When it was built: SBOMs record the database they were last matched with.
    pub built_at: String,
}

/// What the workers share.
pub struct Scans {
    app: Arc<App>,
    engine: OnceLock<Result<Engine, String>>,
    db: Mutex<Option<Arc<LoadedDb>>>,
}

/// A finding id of a scan: the same vulnerability of the same digest in the same tenant is one
/// finding, however often it is scanned.
fn scoped_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Starts `workers` scan workers; they stop when `stop` turns true (after their current job).
pub fn spawn(
    app: Arc<App>,
    workers: usize,
    stop: watch::Receiver<bool>,
) -> ServerResult<Vec<std::thread::JoinHandle<()>>> {
    let scans = Arc::new(Scans {
        app,
        engine: OnceLock::new(),
        db: Mutex::new(None),
    });
    let handle = Handle::current();
    (0..workers)
        .map(|index| {
            let s = Arc::clone(&scans);
            let h = handle.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("osprey-scan-{index}"))
                .spawn(move || s.work(index, &h, stop))
                .map_err(ServerError::io("starting a scan worker"))
        })
        .collect()
}

impl Scans {
    fn work(&self, index: usize, handle: &Handle, mut stop: watch::Receiver<bool>) {
        let mut maintained: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if index == 0
                && maintained.is_none_or(|t| t.elapsed() >= self.app.options.maintenance_interval)
                && self.app.is_leader()
            {
                if let Err(e) = self.maintain(handle) {
                    tracing::error!(error = %e, "keeping stored SBOMs current");
                }
                maintained = Some(Instant::now());
            }
            if let Some(bus) = &self.app.bus {
                self.take_from_bus(bus, handle);
                continue;
            }
            match handle.block_on(
                self.app
                    .store
                    .claim_scan(self.app.options.scan_jobs_per_tenant as i64),
            ) {
                Ok(Some(job)) => {
                    self.run_guarded(handle, job);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "taking a scan job"),
            }
            let wake = &self.app.scans_wake;
            handle.block_on(async {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL.min(self.app.options.maintenance_interval)) => {}
                }
            });
        }
    }

    /// Runs a claimed job. An engine must not panic; if one does, the job fails and the
    /// worker goes on.
    fn run_guarded(&self, handle: &Handle, job: ScanJob) {
        let id = job.id.clone();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(handle, job)));
        if run.is_err() {
            let r = ScanResult::failed("internal error: the scan panicked");
            if let Err(e) = handle.block_on(self.app.store.finish_scan(&id, &r)) {
                tracing::error!(job = id, error = %e, "recording a failed scan");
            }
        }
    }

    /// With a bus: takes the next job it hands this server (waiting a second at most), runs
    /// it while confirming progress, and acknowledges it once its results are committed. A
    /// job redelivered (its worker stopped confirming) is taken over even though the store
    /// says it is running.
    fn take_from_bus(&self, bus: &crate::bus::Bus, handle: &Handle) {
        use async_nats::jetstream::AckKind;
        let message = match handle.block_on(bus.next_scan(Duration::from_secs(1))) {
            Ok(Some(m)) => Arc::new(m),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "taking a scan from the bus; retrying");
                std::thread::sleep(Duration::from_secs(1));
                return;
            }
        };
        let id = String::from_utf8_lossy(&message.payload).into_owned();
        let take_over = message.info().map(|i| i.delivered > 1).unwrap_or(false);
        match handle.block_on(self.app.store.claim_scan_id(&id, take_over)) {
            Ok(Some(job)) => {
                let m = Arc::clone(&message);
                let progress = handle.spawn(async move {
                    loop {
                        tokio::time::sleep(crate::bus::SCAN_PROGRESS_EVERY).await;
                        let _ = m.ack_with(AckKind::Progress).await;
                    }
                });
                self.run_guarded(handle, job);
                progress.abort();
            }
            // Done, gone, or being scanned elsewhere: nothing to do.
            Ok(None) => {}
            Err(e) => {
                tracing::error!(job = id, error = %e, "taking a scan job");
                let _ =
                    handle.block_on(message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))));
                return;
            }
        }
        if let Err(e) = handle.block_on(message.ack()) {
            tracing::warn!(job = id, error = %e, "acknowledging a scan on the bus failed");
        }
    }

    /// The malware engine (built-in rules), compiled by the first scan.
    fn engine(&self) -> ServerResult<&Engine> {
        self.engine
            .get_or_init(|| {
                let loader = RuleLoader::with_builtin();
                let rules = match &self.app.options.scan_cache {
                    Some(dir) => loader.compile_cached(&dir.join("rules")).map(|(r, _)| r),
                    None => loader.compile(),
                }
                .map_err(|e| format!("malware rules: {e}"))?;
                Ok(Engine {
                    rules: Some(rules),
                    hashes: HashIocs::default(),
                    limits: Limits::default(),
                })
            })
            .as_ref()
            .map_err(|e| ServerError::Engine(e.clone()))
    }

    /// The vulnerability database, opened again when its file changed; `None` when the
    /// server has none.
    pub fn vulndb(&self) -> ServerResult<Option<Arc<LoadedDb>>> {
        let Some(path) = &self.app.options.vuln_db else {
            return Ok(None);
        };
        let what = |e: &dyn std::fmt::Display| {
            ServerError::Engine(format!("vulnerability database {}: {e}", path.display()))
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| what(&e))?;
        let mut current = self.db.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = current.as_ref()
            && l.modified == modified
        {
            return Ok(Some(Arc::clone(l)));
        }
        let db = Database::open(path).map_err(|e| what(&e))?;
        let built_at = db.metadata().built_at.clone();
        tracing::info!(path = %path.display(), built_at, "vulnerability database loaded");
        let loaded = Arc::new(LoadedDb {
            modified,
            db,
            built_at,
        });
        *current = Some(Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    fn cache(&self) -> Option<LayerCache> {
        self.app.options.scan_cache.clone().map(LayerCache::new)
    }

    fn run(&self, handle: &Handle, job: ScanJob) {
        let started = Instant::now();
        let result = match self.scan(handle, &job) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "scan failed");
                let r = ScanResult::failed(tenant_reason(&e));
                if let Err(e) = handle.block_on(self.app.store.finish_scan(&job.id, &r)) {
                    tracing::error!(job = job.id, error = %e, "recording a failed scan");
                }
                r
            }
        };
        let labels = vec![
            ("kind".to_string(), job.kind.as_str().to_string()),
            ("state".to_string(), result.state.as_str().to_string()),
        ];
        self.app.metrics.scans.get_or_create(&labels).inc();
        self.app
            .metrics
            .scan_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            job = job.id,
            image = job.image,
            state = result.state.as_str(),
            detail = result.detail,
            vulnerabilities = result.vulnerabilities,
            threats = result.threats,
            seconds = started.elapsed().as_secs_f64(),
            "scan finished"
        );
    }
}

/// What a scan's tenant is told of its failure. A registry's failures say only what a
/// person needs and no more — the destination policy's refusal, the HTTP status, a failed
/// connection, failed authentication — and never a socket error or what the registry wrote,
/// which would make scans a way to probe the server's network (the server's log has it all).
pub fn tenant_reason(e: &ServerError) -> String {
    use osprey_image::ImageError;
    let refused = |reason: &str| reason.starts_with(osprey_egress::NOT_ALLOWED);
    match e {
        ServerError::Image(ImageError::Registry { registry, reason }) => {
            let said = if refused(reason) {
                osprey_egress::NOT_ALLOWED.to_string()
            } else if let Some(status) = http_status(reason) {
                format!("HTTP {status}")
            } else if reason.contains("-byte limit") || reason.contains("(deadline)") {
                reason.clone()
            } else {
                "connection failed".to_string()
            };
            format!("registry {registry}: {said}")
        }
        ServerError::Image(ImageError::Unauthorized { registry, reason }) => {
            let said = if refused(reason) {
                osprey_egress::NOT_ALLOWED.to_string()
            } else {
                match http_status(reason) {
                    Some(status) => format!("authentication failed (HTTP {status})"),
                    None => "authentication failed".to_string(),
                }
            };
            format!("registry {registry}: {said}")
        }
        ServerError::Engine(text) if text.contains("cannot reach the registry") => {
            let what = text.split(": ").next().unwrap_or("scan");
            format!("{what}: connection to the registry failed")
        }
        other => other.to_string(),
    }
}

/// The status of the first `HTTP nnn` in a message.
fn http_status(text: &str) -> Option<u16> {
    text.match_indices("HTTP ").find_map(|(i, m)| {
        let digits = text.get(i + m.len()..i + m.len() + 3)?;
        digits.parse().ok().filter(|s| (100..600).contains(s))
    })
}

/// Where the server keeps the per-layer caches of scans by default.
pub fn default_cache(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_told_no_more_than_a_reason() {
        use osprey_image::ImageError;
        let registry = |reason: &str| {
            ServerError::Image(ImageError::Registry {
                registry: "r.example".into(),
                reason: reason.into(),
            })
        };
        for (reason, said) in [
            (
                "destination not allowed: 169.254.169.254 (not a public address)",
                "registry r.example: destination not allowed",
            ),
            (
                "GET https://r.example/v2/x/manifests/1: HTTP 404 (not found): MANIFEST_UNKNOWN (secret body)",
                "registry r.example: HTTP 404",
            ),
            (
                "cannot reach the registry: error sending request: tcp connect error: Connection refused (os error 111)",
                "registry r.example: connection failed",
            ),
            (
                "manifest latest: larger than the 4194304-byte limit",
                "registry r.example: manifest latest: larger than the 4194304-byte limit",
            ),
        ] {
            assert_eq!(tenant_reason(&registry(reason)), said);
        }
        let auth = ServerError::Image(ImageError::Unauthorized {
            registry: "r.example".into(),
            reason: "token server http://10.0.0.1/token: HTTP 403 Forbidden".into(),
        });
        assert_eq!(
            tenant_reason(&auth),
            "registry r.example: authentication failed (HTTP 403)"
        );
    }

    #[test]
    fn scan_finding_ids_are_scoped_by_every_part() {
        let a = scoped_id(&["vulnerability", "t1", "sha256:x", "CVE-1"]);
        assert_eq!(a, scoped_id(&["vulnerability", "t1", "sha256:x", "CVE-1"]));
        assert_ne!(a, scoped_id(&["vulnerability", "t2", "sha256:x", "CVE-1"]));
        assert_ne!(
            scoped_id(&["ab", "c"]),
            scoped_id(&["a", "bc"]),
            "parts are separated"
        );
        assert_eq!(a.len(), 32);
    }
}
