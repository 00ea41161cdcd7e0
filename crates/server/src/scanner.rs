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

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use osprey_image::{
    Credentials, Image, LayerCache, OpenOptions, Reference, RegistryOptions, Source,
};
use osprey_inventory::Inventory;
use osprey_malware::report::{ScanType, Subject, Target, finding};
use osprey_malware::{Engine, HashIocs, Limits, RuleLoader};
use osprey_model::{Finding, ImageResource, KubernetesResource, SeverityLabel};
use osprey_store::{
    DetectionRound, FindingRecord, NewScan, Sbom, ScanJob, ScanKind, ScanResult, ScanState,
    StoreError, Upserted, Workflow, now_ms,
};
use osprey_vuln::db::Database;
use osprey_vuln::matcher::{MatchOptions, match_packages};
use sha2::{Digest as _, Sha256};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::App;

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
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
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
                .map_err(|e| format!("starting a scan worker: {e}"))
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
            match handle.block_on(self.app.store.claim_scan()) {
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
    fn engine(&self) -> Result<&Engine, String> {
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
            .map_err(Clone::clone)
    }

    /// The vulnerability database, opened again when its file changed; `None` when the
    /// server has none.
    pub fn vulndb(&self) -> Result<Option<Arc<LoadedDb>>, String> {
        let Some(path) = &self.app.options.vuln_db else {
            return Ok(None);
        };
        let what =
            |e: &dyn std::fmt::Display| format!("vulnerability database {}: {e}", path.display());
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
                let r = ScanResult::failed(e);
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

    /// Opens the job's image: a registry reference, through the tenant's registry settings
    /// (other sources only when the server allows local images).
    fn open(&self, handle: &Handle, job: &ScanJob) -> Result<Image, String> {
        // Without local sources, what a job names is a registry reference whatever else it
        // could be read as (a pod's image `app` is not the file `./app`).
        let (source, reference) = if self.app.options.allow_local_images {
            let source = Source::parse(&job.image).map_err(|e| e.to_string())?;
            let reference = match &source {
                Source::Registry(text) => Some(text.parse::<Reference>()?),
                _ => None,
            };
            (source, reference)
        } else {
            let (bare, reference) = registry_reference(&job.image)
                .map_err(|e| format!("image {:?}: not a registry reference: {e}", job.image))?;
            (Source::Registry(bare.to_string()), Some(reference))
        };
        let mut options = OpenOptions::default();
        options.registry.docker_config = false;
        if let Some(reference) = reference {
            let registry = handle
                .block_on(
                    self.app
                        .store
                        .registry_for(&job.tenant_id, &reference.registry),
                )
                .map_err(|e| e.to_string())?;
            if let Some(r) = registry {
                options.registry = self.registry_options(&r)?;
            }
        }
        Image::open(&source, &options).map_err(|e| e.to_string())
    }

    fn registry_options(&self, r: &osprey_store::Registry) -> Result<RegistryOptions, String> {
        let credentials = if r.username.is_empty() {
            None
        } else {
            let key = self.app.options.secret_key.as_ref().ok_or_else(|| {
                format!(
                    "registry {}: its password is sealed and this server has no secret key",
                    r.host
                )
            })?;
            let password = key
                .open(&r.sealed_password)
                .map_err(|e| format!("registry {}: {e}", r.host))?;
            Some(Credentials::Basic {
                username: r.username.clone(),
                password: String::from_utf8(password)
                    .map_err(|_| format!("registry {}: the stored password is not text", r.host))?,
            })
        };
        Ok(RegistryOptions {
            insecure: r.insecure,
            credentials,
            docker_config: false,
            ..RegistryOptions::default()
        })
    }

    /// Runs one job to its end (stored); an error is a failure to record.
    fn scan(&self, handle: &Handle, job: &ScanJob) -> Result<ScanResult, String> {
        let store = &self.app.store;
        let image = self.open(handle, job)?;
        let digest = image
            .manifest_digest
            .as_ref()
            .or(image.config_digest.as_ref())
            .map(|d| d.to_string())
            .unwrap_or_else(|| format!("source:{}", image.source));
        if job.kind == ScanKind::Triggered {
            let since = now_ms() - self.app.options.trigger_window.as_millis() as i64;
            let recent = handle
                .block_on(store.recent_scan_of_digest(&job.tenant_id, &digest, since))
                .map_err(|e| e.to_string())?;
            if let Some(prev) = recent {
                let r = ScanResult {
                    state: ScanState::Skipped,
                    detail: format!(
                        "image digest {digest} was scanned by job {} within the trigger window",
                        prev.id
                    ),
                    image_digest: Some(digest),
                    reused_from: Some(prev.id.clone()),
                    packages: prev.packages,
                    vulnerabilities: prev.vulnerabilities,
                    threats: prev.threats,
                    finding_ids: prev.finding_ids,
                };
                handle
                    .block_on(store.finish_scan(&job.id, &r))
                    .map_err(|e| e.to_string())?;
                return Ok(r);
            }
        }
        let cache = self.cache();
        let inventory = osprey_inventory::inventory(
            &image,
            &osprey_inventory::Options {
                cache: cache.clone(),
                ..Default::default()
            },
        )
        .map_err(|e| format!("inventory of {}: {e}", job.image))?;
        let engine = self.engine()?;
        let workload: Option<KubernetesResource> = job
            .workload
            .clone()
            .and_then(|w| serde_json::from_value(w).ok());
        let image_resource = ImageResource {
            reference: job.image.clone(),
            digest: Some(digest.clone()),
            os: inventory.os.as_ref().map(|o| o.display_name()),
        };
        let malware = match &workload {
            Some(w) => {
                osprey_malware::trigger::scan_workload_image(
                    engine,
                    &image,
                    w,
                    job.trigger_finding_id.as_deref(),
                    &job.id,
                    cache.as_ref(),
                )
                .map_err(|e| format!("malware scan of {}: {e}", job.image))?
                .finding
            }
            None => {
                let s = osprey_malware::image::scan_image(engine, &image, cache.as_ref())
                    .map_err(|e| format!("malware scan of {}: {e}", job.image))?;
                let target = Target {
                    source: job.image.clone(),
                    subject: Subject::Container,
                    image: Some(image_resource.clone()),
                    kubernetes: None,
                    volumes: Vec::new(),
                };
                let scan_type = match job.kind {
                    ScanKind::Scheduled => ScanType::Scheduled,
                    _ => ScanType::OnDemand,
                };
                finding(&s.outcome, &target, &scan_type, &job.id)
            }
        };
        let db = self.vulndb()?;
        let vulns = match &db {
            Some(db) => vulnerability_records(
                db,
                &job.tenant_id,
                job.cluster_id.as_deref(),
                &image_resource,
                &inventory,
            )?,
            None => Vec::new(),
        };
        let threats = malware
            .as_ref()
            .and_then(|f| f.malware.as_ref())
            .map_or(0, |m| m.threats.len() as i64);
        let malware_record = malware.map(|mut f| {
            f.id = scoped_id(&["malware", &job.tenant_id, &digest]);
            FindingRecord {
                finding: f,
                tenant_id: job.tenant_id.clone(),
                cluster_id: job.cluster_id.clone(),
                source: "malware".into(),
                sample: false,
            }
        });
        let inventory_json =
            serde_json::to_vec(&inventory).map_err(|e| format!("inventory: {e}"))?;
        let compressed =
            zstd::bulk::compress(&inventory_json, 3).map_err(|e| format!("inventory: {e}"))?;
        let mut result = ScanResult {
            state: ScanState::Done,
            detail: String::new(),
            image_digest: Some(digest.clone()),
            reused_from: None,
            packages: inventory.packages.len() as i64,
            vulnerabilities: vulns.len() as i64,
            threats,
            finding_ids: Vec::new(),
        };
        let matched_db = db.as_ref().map(|d| d.built_at.clone()).unwrap_or_default();
        let labels = severities(vulns.iter().chain(malware_record.as_ref()));
        handle
            .block_on(async {
                let previous = store.sbom(&job.tenant_id, &digest).await?;
                let mut round = store.begin_write_round().await?;
                let (open, mut upserted) = apply_vulnerabilities(
                    &mut round,
                    previous.map(|s| s.vuln_finding_ids).unwrap_or_default(),
                    vulns,
                    &matched_db,
                )
                .await?;
                let mut ids = open.clone();
                if let Some(m) = malware_record {
                    ids.push(m.finding.id.clone());
                    upserted.extend(round.upsert_findings(vec![m], ACTOR).await?);
                }
                round
                    .put_sbom(&Sbom {
                        tenant_id: job.tenant_id.clone(),
                        image_digest: digest.clone(),
                        reference: job.image.clone(),
                        cluster_id: job.cluster_id.clone(),
                        os: image_resource.os.clone().unwrap_or_default(),
                        packages: inventory.packages.len() as i64,
                        inventory: compressed,
                        vuln_finding_ids: open,
                        matched_db: matched_db.clone(),
                        scanned_ms: now_ms(),
                        matched_ms: now_ms(),
                    })
                    .await?;
                result.finding_ids = ids;
                round.finish_scan(&job.id, &result).await?;
                round.commit().await?;
                self.app.metrics.count_created(&upserted, &labels);
                Ok::<_, StoreError>(())
            })
            .map_err(|e| e.to_string())?;
        self.app.outputs_wake.notify_one();
        Ok(result)
    }

    /// Re-matches SBOMs against a changed database and queues due re-scans.
    fn maintain(&self, handle: &Handle) -> Result<(), String> {
        if let Some(bus) = &self.app.bus {
            // Not fatal: re-matching and re-scans below run whatever the bus says.
            match handle.block_on(bus.requeue_missing_scans(&self.app.store)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "queued scans the bus did not hold put on it"),
                Err(e) => tracing::warn!(error = %e, "checking queued scans against the bus"),
            }
        }
        if let Some(db) = self.vulndb()? {
            let mut total = 0usize;
            loop {
                let due = handle
                    .block_on(self.app.store.sboms_to_rematch(&db.built_at, REMATCH_BATCH))
                    .map_err(|e| e.to_string())?;
                if due.is_empty() {
                    break;
                }
                for info in due {
                    if let Err(e) = self.rematch(handle, &db, &info.tenant_id, &info.image_digest) {
                        // Not retried until the next database: one bad SBOM must not hold
                        // up the others.
                        tracing::error!(digest = info.image_digest, error = %e, "re-matching a stored SBOM failed");
                        handle
                            .block_on(self.app.store.skip_sbom_match(
                                &info.tenant_id,
                                &info.image_digest,
                                &db.built_at,
                            ))
                            .map_err(|e| e.to_string())?;
                    }
                    total += 1;
                }
            }
            if total > 0 {
                tracing::info!(
                    sboms = total,
                    built_at = db.built_at,
                    "stored SBOMs matched against the new vulnerability database"
                );
                self.app.outputs_wake.notify_one();
            }
        }
        if let Some(interval) = self.app.options.rescan_interval {
            let before = now_ms() - interval.as_millis() as i64;
            let due = handle
                .block_on(self.app.store.images_due_for_rescan(before, 100))
                .map_err(|e| e.to_string())?;
            for (tenant_id, reference, cluster_id) in due {
                handle
                    .block_on(async {
                        if !self.app.store.scan_pending(&tenant_id, &reference).await? {
                            self.app
                                .store
                                .enqueue_scan(&NewScan {
                                    tenant_id: tenant_id.clone(),
                                    cluster_id,
                                    image: reference.clone(),
                                    kind: ScanKind::Scheduled,
                                    trigger_finding_id: None,
                                    workload: None,
                                })
                                .await
                                .map(|job| self.app.scan_queued(&job.id))?;
                        }
                        self.app.store.touch_sboms(&tenant_id, &reference).await
                    })
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Matches one stored SBOM again; new vulnerabilities become findings, vanished ones are
    /// resolved.
    pub fn rematch(
        &self,
        handle: &Handle,
        db: &LoadedDb,
        tenant_id: &str,
        digest: &str,
    ) -> Result<(), String> {
        let store = &self.app.store;
        let Some(sbom) = handle
            .block_on(store.sbom(tenant_id, digest))
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let inventory: Inventory = zstd::bulk::decompress(&sbom.inventory, MAX_INVENTORY_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|j| serde_json::from_slice(&j).map_err(|e| e.to_string()))
            .map_err(|e| format!("stored SBOM of {digest}: {e}"))?;
        let target = ImageResource {
            reference: sbom.reference.clone(),
            digest: Some(digest.to_string()),
            os: (!sbom.os.is_empty()).then(|| sbom.os.clone()),
        };
        let vulns = vulnerability_records(
            db,
            tenant_id,
            sbom.cluster_id.as_deref(),
            &target,
            &inventory,
        )?;
        let labels = severities(vulns.iter());
        handle
            .block_on(async {
                let mut round = store.begin_write_round().await?;
                let (open, upserted) =
                    apply_vulnerabilities(&mut round, sbom.vuln_finding_ids, vulns, &db.built_at)
                        .await?;
                round
                    .set_sbom_match(tenant_id, digest, &open, &db.built_at)
                    .await?;
                round.commit().await?;
                self.app.metrics.count_created(&upserted, &labels);
                Ok::<_, StoreError>(())
            })
            .map_err(|e| e.to_string())
    }
}

/// The vulnerability findings of an inventory, with ids scoped to the tenant and digest.
fn vulnerability_records(
    db: &LoadedDb,
    tenant_id: &str,
    cluster_id: Option<&str>,
    target: &ImageResource,
    inventory: &Inventory,
) -> Result<Vec<FindingRecord>, String> {
    let report = match_packages(
        &db.db,
        &inventory.packages,
        inventory.os.as_ref(),
        &MatchOptions::default(),
    )
    .map_err(|e| format!("matching {}: {e}", target.reference))?;
    let digest = target.digest.as_deref().unwrap_or_default();
    Ok(
        osprey_vuln::report::findings(target, &inventory.packages, &report.matches)
            .into_iter()
            .map(|mut f: Finding| {
                let vid = f
                    .vulnerability
                    .as_ref()
                    .map_or_else(|| f.id.clone(), |v| v.id.clone());
                f.id = scoped_id(&["vulnerability", tenant_id, digest, &vid]);
                FindingRecord {
                    finding: f,
                    tenant_id: tenant_id.to_string(),
                    cluster_id: cluster_id.map(str::to_string),
                    source: "vulnerability".into(),
                    sample: false,
                }
            })
            .collect(),
    )
}

/// Finding id → severity, for the metrics of what an upsert created.
fn severities<'r>(
    records: impl Iterator<Item = &'r FindingRecord>,
) -> HashMap<String, SeverityLabel> {
    records
        .map(|r| (r.finding.id.clone(), r.finding.severity.label))
        .collect()
}

/// Stores a digest's vulnerability findings against what was open before: new ones are
/// created (or reopened), those no longer matched are resolved; findings still open are left
/// as they are, so a re-scan or re-match sends nothing for them. Returns the open ids and what
/// the upsert did.
async fn apply_vulnerabilities(
    round: &mut DetectionRound<'_>,
    previous: Vec<String>,
    records: Vec<FindingRecord>,
    built_at: &str,
) -> Result<(Vec<String>, Vec<Upserted>), StoreError> {
    let before: HashSet<String> = previous.into_iter().collect();
    let open: Vec<String> = records.iter().map(|r| r.finding.id.clone()).collect();
    let now_open: HashSet<&String> = open.iter().collect();
    let fresh: Vec<FindingRecord> = records
        .into_iter()
        .filter(|r| !before.contains(&r.finding.id))
        .collect();
    let fresh_ids: Vec<String> = fresh.iter().map(|r| r.finding.id.clone()).collect();
    let upserted = round.upsert_findings(fresh, ACTOR).await?;
    // A vulnerability that was resolved and is matched again is open again.
    round
        .set_workflow(
            &fresh_ids,
            Workflow::New,
            ACTOR,
            &serde_json::json!({ "reason": "matched again", "database": built_at }),
        )
        .await?;
    let gone: Vec<String> = before
        .iter()
        .filter(|id| !now_open.contains(id))
        .cloned()
        .collect();
    round
        .set_workflow(
            &gone,
            Workflow::Resolved,
            ACTOR,
            &serde_json::json!({ "reason": "no longer matched", "database": built_at }),
        )
        .await?;
    Ok((open, upserted))
}

/// An image named as a registry reference (`registry:` prefix optional): the reference as
/// text without the prefix, and parsed.
pub fn registry_reference(text: &str) -> Result<(&str, Reference), String> {
    let bare = text.strip_prefix("registry:").unwrap_or(text);
    Ok((bare, bare.parse::<Reference>()?))
}

/// The images a finding names, as triggered scan requests (one per distinct image).
pub fn trigger_requests(
    finding: &Finding,
    tenant_id: &str,
    cluster_id: &str,
    pod_images: Option<&[String]>,
) -> Vec<NewScan> {
    let Some(k) = finding.resource.kubernetes.as_ref() else {
        return Vec::new();
    };
    if k.workload.is_none() {
        return Vec::new();
    }
    // A finding that names only a pod: the images it was seen created with.
    let mut k = k.clone();
    if let (Some(images), Some(w)) = (pod_images, k.workload.as_mut())
        && w.containers.is_empty()
    {
        w.containers = images
            .iter()
            .map(|image| osprey_model::Container {
                image_prefix: osprey_audit::findings::image_prefix(image).to_string(),
                image: image.clone(),
                ..Default::default()
            })
            .collect();
    }
    let workload = serde_json::to_value(&k).ok();
    let mut seen = HashSet::new();
    k.workload
        .iter()
        .flat_map(|w| &w.containers)
        .filter(|c| !c.image.is_empty() && seen.insert(c.image.clone()))
        .map(|c| NewScan {
            tenant_id: tenant_id.to_string(),
            cluster_id: Some(cluster_id.to_string()),
            image: c.image.clone(),
            kind: ScanKind::Triggered,
            trigger_finding_id: Some(finding.id.clone()),
            workload: workload.clone(),
        })
        .collect()
}

/// The pod a finding names without its containers (an exec into it, a port-forward):
/// (namespace, pod), whose images the store may know from the pod's creation.
pub fn pod_without_images(finding: &Finding) -> Option<(&str, &str)> {
    let k = finding.resource.kubernetes.as_ref()?;
    let w = k.workload.as_ref()?;
    (w.kind == "pods" && w.containers.is_empty() && !w.name.is_empty())
        .then_some((k.namespace.as_str(), w.name.as_str()))
}

/// Where the server keeps the per-layer caches of scans by default.
pub fn default_cache(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("cache")
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::{Container, Resource, Workload};

    #[test]
    fn a_finding_naming_a_workload_asks_for_one_scan_per_image() {
        let f = Finding {
            id: "f1".into(),
            resource: Resource {
                kubernetes: Some(KubernetesResource {
                    cluster: "prod".into(),
                    namespace: "shop".into(),
                    workload: Some(Workload {
                        kind: "pods".into(),
                        name: "web".into(),
                        containers: vec![
                            Container {
                                name: "a".into(),
                                image: "reg.example/app:1".into(),
                                ..Default::default()
                            },
                            Container {
                                name: "b".into(),
                                image: "reg.example/app:1".into(),
                                ..Default::default()
                            },
                            Container {
                                name: "c".into(),
                                image: "reg.example/sidecar:2".into(),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Finding::default()
        };
        let scans = trigger_requests(&f, "t", "c", None);
        let images: Vec<&str> = scans.iter().map(|s| s.image.as_str()).collect();
        assert_eq!(images, ["reg.example/app:1", "reg.example/sidecar:2"]);
        assert!(scans.iter().all(|s| {
            s.kind == ScanKind::Triggered
                && s.trigger_finding_id.as_deref() == Some("f1")
                && s.cluster_id.as_deref() == Some("c")
                && s.workload
                    .as_ref()
                    .is_some_and(|w| w["namespace"] == "shop")
        }));
        assert!(trigger_requests(&Finding::default(), "t", "c", None).is_empty());
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
