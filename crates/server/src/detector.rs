//! Detection behind the webhook: reads kept batches in arrival order, skips events already
//! detected (a retried batch), runs the audit engine, and stores the findings — the claims,
//! the findings and the cursor in one transaction, so a crash repeats a round instead of
//! losing or doubling it.
//!
//! The engine is CPU work, so the detector runs on its own thread and drives the store's
//! futures from there. Learned baselines live in the store per cluster (`baseline/{cluster}`),
//! saved with the cursor at most every `BASELINE_SAVE_EVERY`; short-lived state (threshold
//! windows, sequence marks) starts empty after a restart.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use osprey_audit::detect::ClusterBaseline;
use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, RuleSet};
use osprey_model::Finding;
use osprey_store::{Backend, Cluster, FindingRecord, StoreError, now_ms};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::App;
use crate::ingest::MAX_BATCH_BYTES;

const CURSOR_KEY: &str = "detector/cursor";
const BASELINE_PREFIX: &str = "baseline/";
const BASELINE_SAVE_EVERY: Duration = Duration::from_secs(30);
/// Batches per round: rounds are transactions, and SQLite has one writer.
const BATCHES_PER_ROUND: i64 = 16;
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How long an image the store held back (scanned by trigger within the window) is not asked
/// about again.
const HELD_BACK_RECHECK_MS: i64 = 10 * 60 * 1000;

/// Finding ids are the engine's id scoped by cluster: the same rule and group in two clusters
/// are two findings.
pub fn scoped_id(cluster_id: &str, engine_id: &str) -> String {
    hex::encode(&Sha256::digest(format!("{cluster_id}\0{engine_id}").as_bytes())[..16])
}

pub struct Detector {
    app: Arc<App>,
    engine: Engine,
    /// IP lists and suppression rules per tenant, swapped into the engine for each batch.
    settings: HashMap<String, crate::settings::TenantSettings>,
    settings_version: u64,
    /// (tenant, image) → until when a triggered scan of it is not asked for again.
    asked: HashMap<(String, String), i64>,
    cursor: i64,
    clusters: HashMap<String, Option<Cluster>>,
    baselines_saved: Instant,
}

impl Detector {
    /// Loads the cursor and the baselines.
    pub async fn load(app: Arc<App>, rules: RuleSet) -> Result<Detector, StoreError> {
        let cursor = match app.store.state(CURSOR_KEY).await? {
            Some(v) => String::from_utf8_lossy(&v)
                .parse()
                .map_err(|_| StoreError::Corrupt {
                    what: CURSOR_KEY.into(),
                    error: "not a number".into(),
                })?,
            None => 0,
        };
        let mut engine = Engine::new(rules, Intel::default(), EngineOptions::default());
        for (key, value) in app.store.states(BASELINE_PREFIX).await? {
            let cluster = key[BASELINE_PREFIX.len()..].to_string();
            match serde_json::from_slice::<ClusterBaseline>(&value) {
                Ok(b) => {
                    engine.state.baselines.clusters.insert(cluster, b);
                }
                Err(e) => tracing::warn!(%key, error = %e, "ignoring an unreadable baseline"),
            }
        }
        let pending = app.store.audit_events_after(cursor).await?;
        app.pending_events.store(pending, Ordering::Relaxed);
        Ok(Detector {
            app,
            engine,
            settings: HashMap::new(),
            settings_version: 0,
            asked: HashMap::new(),
            cursor,
            clusters: HashMap::new(),
            baselines_saved: Instant::now(),
        })
    }

    /// Runs until `stop` turns true, then finishes the round in hand and saves the baselines.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut maintained = Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            if maintained.elapsed() >= MAINTENANCE_EVERY {
                maintained = Instant::now();
                if let Err(e) = self.expire().await {
                    tracing::warn!(error = %e, "expiring old audit data failed");
                }
            }
            match self.round().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.app.detector_wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, cursor = self.cursor, "detection round failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        if let Err(e) = self.save_baselines().await {
            tracing::error!(error = %e, "saving baselines at shutdown failed");
        }
    }

    /// Drops raw batches past their retention (only behind the cursor) and forgets event keys
    /// past the dedupe window.
    pub async fn expire(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let o = &self.app.options;
        let batches = self
            .app
            .store
            .purge_audit_batches(now - o.audit_retention.as_millis() as i64, self.cursor)
            .await?;
        let keys = self
            .app
            .store
            .purge_seen_events(now - o.dedupe_window.as_millis() as i64)
            .await?;
        if batches + keys > 0 {
            tracing::info!(batches, keys, "expired old audit data");
        }
        Ok(())
    }

    async fn cluster(&mut self, id: &str) -> Result<Option<Cluster>, StoreError> {
        if let Some(c) = self.clusters.get(id) {
            return Ok(c.clone());
        }
        let c = self.app.store.cluster(id).await?;
        self.clusters.insert(id.to_string(), c.clone());
        Ok(c)
    }

    /// One round; returns the batches it consumed.
    pub async fn round(&mut self) -> Result<usize, StoreError> {
        let batches = self
            .app
            .store
            .audit_batches_after(self.cursor, BATCHES_PER_ROUND)
            .await?;
        let Some(last) = batches.last().map(|b| b.seq) else {
            return Ok(0);
        };
        let version = self.app.settings_version.load(Ordering::Relaxed);
        if version != self.settings_version {
            self.settings = crate::settings::load(&self.app.store)
                .await
                .map_err(StoreError::Invalid)?;
            self.settings_version = version;
        }
        // The CPU work (decoding, every rule) happens before the write transaction, so the
        // webhook's writer is never kept waiting on detection (SQLite has one writer).
        let mut per_cluster: HashMap<String, Findings> = HashMap::new();
        // Events this round detects, per cluster: a batch and its replay in the same round
        // count once.
        let mut claimed: HashMap<String, HashSet<String>> = HashMap::new();
        // On PostgreSQL a round claims its events first, inside its transaction: claims take
        // row locks only, which the webhook's appends never wait for, and the unique index
        // answers them (a lookup query's plan goes stale on a fast-growing table). On SQLite
        // any write takes the one write lock, so there a round reads what was seen, detects,
        // and writes its claims at the end.
        let mut early = match self.app.store.backend() {
            Backend::Postgres => Some(self.app.store.begin_round().await?),
            Backend::Sqlite => None,
        };
        let decoder = Decoder::default();
        let mut events = 0i64;
        let now = now_ms();
        for b in &batches {
            events += b.events;
            let Some(cluster) = self.cluster(&b.cluster_id).await? else {
                continue;
            };
            let body = match zstd::bulk::decompress(&b.body, MAX_BATCH_BYTES + 1) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(seq = b.seq, error = %e, "a kept batch does not decompress; skipped");
                    continue;
                }
            };
            let mut keys = Vec::new();
            decoder.decode(&body, &mut |e: Event<'_>| {
                if !e.audit_id.is_empty() {
                    keys.push(event_key(&e));
                }
            });
            let seen: HashSet<String> = match early.as_mut() {
                Some(round) => {
                    let fresh = round.claim_events(&cluster.id, &keys, now).await?;
                    keys.into_iter().filter(|k| !fresh.contains(k)).collect()
                }
                None => self.app.store.seen_events(&cluster.id, &keys).await?,
            };
            let taken = claimed.entry(cluster.id.clone()).or_default();
            let findings = per_cluster.entry(cluster.id.clone()).or_default();
            if !self.settings.contains_key(&cluster.tenant_id) {
                // A tenant made since the settings were compiled: the administrator's apply
                // to it too.
                self.settings = crate::settings::load(&self.app.store)
                    .await
                    .map_err(StoreError::Invalid)?;
            }
            let engine = &mut self.engine;
            // The cluster's tenant's lists and suppression rules, for this batch.
            let settings = self.settings.entry(cluster.tenant_id.clone()).or_default();
            std::mem::swap(&mut engine.intel, &mut settings.intel);
            std::mem::swap(&mut engine.rules.suppressions, &mut settings.suppressions);
            let mut duplicates = 0u64;
            let mut detected = 0u64;
            decoder.decode(&body, &mut |e: Event<'_>| {
                if !e.audit_id.is_empty() {
                    let key = event_key(&e);
                    if seen.contains(&key) || !taken.insert(key) {
                        duplicates += 1;
                        return;
                    }
                }
                engine.process(&in_cluster(e, &cluster.id), findings);
                detected += 1;
            });
            std::mem::swap(&mut engine.intel, &mut settings.intel);
            std::mem::swap(&mut engine.rules.suppressions, &mut settings.suppressions);
            self.app.metrics.duplicate_events.inc_by(duplicates);
            self.app.metrics.events_detected.inc_by(detected);
        }
        let mut records = Vec::new();
        let mut labels = HashMap::new();
        for (cluster_id, findings) in per_cluster {
            let Some(cluster) = self.cluster(&cluster_id).await? else {
                continue;
            };
            for f in findings.into_list() {
                let r = record(f, &cluster);
                labels.insert(r.finding.id.clone(), r.finding.severity.label);
                records.push(r);
            }
        }
        let mut round = match early {
            Some(round) => round,
            None => {
                let mut round = self.app.store.begin_round().await?;
                for (cluster_id, keys) in claimed {
                    let keys: Vec<String> = keys.into_iter().collect();
                    round.claim_events(&cluster_id, &keys, now).await?;
                }
                round
            }
        };

        // Findings naming a workload's images queue scans of them, at most once per image per
        // window, in the same transaction.
        // Images this detector has asked about recently are not asked about again: one it
        // queued, for the window; one the store held back, for a while (the store decides for
        // the others, and after a restart).
        let window_ms = self.app.options.trigger_window.as_millis() as i64;
        self.asked.retain(|_, until| *until > now);
        let triggers: Vec<_> = if self.app.options.scan_workers > 0 {
            records
                .iter()
                // A finding archived by a suppression rule asks for nothing.
                .filter(|r| r.finding.suppression.is_none())
                .filter_map(|r| {
                    let cluster = r.cluster_id.as_deref()?;
                    Some(crate::scanner::trigger_requests(
                        &r.finding,
                        &r.tenant_id,
                        cluster,
                    ))
                })
                .flatten()
                .filter(|s| {
                    !self
                        .asked
                        .contains_key(&(s.tenant_id.clone(), s.image.clone()))
                })
                .collect()
        } else {
            Vec::new()
        };
        let upserted = round.upsert_findings(records, "detector").await?;
        let triggered = round.trigger_scans(&triggers, now, window_ms).await?;

        round
            .put_state(CURSOR_KEY, last.to_string().as_bytes())
            .await?;
        let save_baselines = self.baselines_saved.elapsed() >= BASELINE_SAVE_EVERY;
        if save_baselines {
            for (key, json) in self.baseline_documents()? {
                round.put_state(&key, &json).await?;
            }
        }
        round.commit().await?;
        if save_baselines {
            self.baselines_saved = Instant::now();
        }
        self.cursor = last;
        if !upserted.is_empty() {
            self.app.outputs_wake.notify_one();
        }
        let queued: HashSet<(&str, &str)> = triggered
            .iter()
            .map(|j| (j.tenant_id.as_str(), j.image.as_str()))
            .collect();
        for t in &triggers {
            let until = if queued.contains(&(t.tenant_id.as_str(), t.image.as_str())) {
                now + window_ms
            } else {
                now + HELD_BACK_RECHECK_MS.min(window_ms)
            };
            self.asked
                .insert((t.tenant_id.clone(), t.image.clone()), until);
        }
        for job in &triggered {
            tracing::info!(job = job.id, image = job.image, finding = ?job.trigger_finding_id, "scan triggered");
            self.app.scans_wake.notify_one();
        }

        self.app.pending_events.fetch_sub(events, Ordering::Relaxed);
        self.app.metrics.count_created(&upserted, &labels);
        Ok(batches.len())
    }

    fn baseline_documents(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut docs = Vec::new();
        for (cluster, b) in &self.engine.state.baselines.clusters {
            let json = serde_json::to_vec(b).map_err(|e| StoreError::Invalid(e.to_string()))?;
            docs.push((format!("{BASELINE_PREFIX}{cluster}"), json));
        }
        Ok(docs)
    }

    async fn save_baselines(&mut self) -> Result<(), StoreError> {
        for (key, json) in self.baseline_documents()? {
            self.app.store.put_state(&key, &json).await?;
        }
        self.baselines_saved = Instant::now();
        Ok(())
    }
}

/// The event as coming from `cluster`, whatever it says: the ingest token names the cluster
/// (the event is shortened to the name's lifetime; events are covariant).
fn in_cluster<'s>(mut e: Event<'s>, cluster: &'s str) -> Event<'s> {
    e.cluster = Cow::Borrowed(cluster);
    e
}

/// What makes an event itself: its audit id and stage (an exec is logged at two stages).
fn event_key(e: &Event<'_>) -> String {
    format!("{}/{}", e.audit_id, e.stage().as_str())
}

/// An engine finding as stored: scoped id, the cluster's name, the cluster's tenant.
fn record(mut f: Finding, cluster: &Cluster) -> FindingRecord {
    f.id = scoped_id(&cluster.id, &f.id);
    if let Some(k) = f.resource.kubernetes.as_mut() {
        k.cluster = cluster.name.clone();
    }
    FindingRecord {
        finding: f,
        tenant_id: cluster.tenant_id.clone(),
        cluster_id: Some(cluster.id.clone()),
        source: "audit".into(),
        sample: false,
    }
}
