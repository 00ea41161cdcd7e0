//! Detection behind the webhook: reads kept batches in arrival order, skips batches and events
//! already detected (a retried batch; [`seen`]), runs the audit engine, and stores the
//! findings — the keys of what it detected, the findings and the cursor in one transaction, so
//! a crash repeats a round instead of losing or doubling it.
//!
//! The engine is CPU work, so the detector runs on its own thread and drives the store's
//! futures from there. Learned baselines live in the store per cluster (`baseline/{cluster}`),
//! saved with the cursor at most every `BASELINE_SAVE_EVERY`; short-lived state (threshold
//! windows, sequence marks) starts empty after a restart.
//!
//! With a bus ([`crate::bus`]) the batches come from the partitions this server holds instead
//! of the store, and the round also archives them, checks each partition's fence, and
//! acknowledges them on the bus after its commit (a crash in between redelivers them, and
//! the stored keys make the repeat a no-op). A partition's baselines and keys are loaded when
//! it is taken, and its baselines saved when it is handed back.

pub mod graph;
pub mod seen;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use osprey_audit::detect::ClusterBaseline;
use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, RuleSet};
use osprey_model::{Finding, SeverityLabel};
use osprey_store::{
    AuditBatch, Cluster, DetectionRound, FindingRecord, FindingSource, NewScan, ScanJob,
    StoreError, now_ms,
};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::App;
use crate::bus::{Bus, fence_key, partition_of};
use crate::error::{ServerError, ServerResult};
use crate::ingest::MAX_BATCH_BYTES;
use seen::SeenWindow;

const CURSOR_KEY: &str = "detector/cursor";
const BASELINE_PREFIX: &str = "baseline/";
const BASELINE_SAVE_EVERY: Duration = Duration::from_secs(30);
/// Batches per round: rounds are transactions, and SQLite has one writer.
const BATCHES_PER_ROUND: i64 = 64;
/// Batches per round while detection is more than [`BEHIND_EVENTS`] behind: a round's graph
/// and key writes cost about the same whatever its size (the same edges of the same hours are
/// counted up), so larger rounds spread them over more events when throughput is what counts.
const BATCHES_PER_ROUND_BEHIND: i64 = 4 * BATCHES_PER_ROUND;
/// The backlog (events) past which rounds are larger: four large rounds of full batches.
const BEHIND_EVENTS: i64 = 4 * BATCHES_PER_ROUND_BEHIND * 400;
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How often graph rows past their retention are dropped.
const GRAPH_PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long the images of a pod are remembered after its last create or update was seen.
const POD_MEMORY: Duration = Duration::from_secs(90 * 86_400);
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
    /// Keys of the batches and events detected recently.
    seen: SeenWindow,
    /// The investigation graph's recorders (`None`: no graph kept).
    graph: Option<graph::GraphFeed>,
    /// When graph rows past their retention were last dropped.
    graph_purged: Option<Instant>,
    /// Attack sequences raised: finding id → signals it listed.
    sequences_raised: HashMap<String, usize>,
    /// With a bus: the partitions being detected here and their batches.
    feed: Option<Feed>,
}

/// Batches of the partitions this server detects, as the bus delivers them.
struct Feed {
    bus: Arc<Bus>,
    /// Partition → the lease revision it was taken with (its fence token).
    active: HashMap<u32, Active>,
    tx: mpsc::Sender<(u32, jetstream::Message)>,
    rx: mpsc::Receiver<(u32, jetstream::Message)>,
}

struct Active {
    revision: u64,
    /// Stops the partition's pull task (which gives back what it holds).
    stop_pulling: watch::Sender<bool>,
}

/// Pods seen created or replaced in a round: (cluster, namespace, pod) → images.
type PodImages = HashMap<(String, String, String), Vec<String>>;

/// What the engine found in a round's batches, before anything is written.
#[derive(Default)]
struct Detected {
    /// Findings per cluster.
    per_cluster: HashMap<String, Findings>,
    /// Keys of the batches and events this round detects, per cluster.
    keys: HashMap<String, Vec<seen::Key>>,
    pods: PodImages,
    /// Events detected, and batches' and events' duplicates skipped: counted in the metrics
    /// once the round commits (a fenced or failed round counts nothing).
    events: u64,
    duplicates: u64,
}

/// How a round ends.
enum Commit<'a> {
    /// Batches from the store: the cursor moves to this sequence.
    Cursor(i64),
    /// Batches from the bus: archived under their message ids; each partition's fence must
    /// still stand at its token.
    Bus {
        bus_ids: &'a [String],
        fences: &'a BTreeMap<u32, u64>,
    },
}

impl Detector {
    /// Loads the cursor and the baselines (with a bus: nothing yet — partitions, and their
    /// clusters' baselines, come with their leases).
    pub async fn load(app: Arc<App>, rules: RuleSet) -> ServerResult<Detector> {
        let feed = app.bus.as_ref().map(|bus| {
            let (tx, rx) = mpsc::channel(2 * BATCHES_PER_ROUND as usize);
            Feed {
                bus: Arc::clone(bus),
                active: HashMap::new(),
                tx,
                rx,
            }
        });
        let seen = SeenWindow::new(
            app.options.dedupe_max_keys,
            app.options.dedupe_window.as_millis() as i64,
        );
        let graph = app
            .options
            .graph_retention
            .map(|_| graph::GraphFeed::new(app.options.graph_max_edges_per_hour));
        let mut d = Detector {
            app,
            engine: Engine::new(rules, Intel::default(), EngineOptions::default()),
            settings: HashMap::new(),
            settings_version: 0,
            asked: HashMap::new(),
            cursor: 0,
            clusters: HashMap::new(),
            baselines_saved: Instant::now(),
            seen,
            graph,
            graph_purged: None,
            sequences_raised: HashMap::new(),
            feed,
        };
        if d.feed.is_some() {
            return Ok(d);
        }
        d.cursor = match d.app.store.state(CURSOR_KEY).await? {
            Some(v) => String::from_utf8_lossy(&v)
                .parse()
                .map_err(|_| StoreError::Corrupt {
                    what: CURSOR_KEY.into(),
                    error: "not a number".into(),
                })?,
            None => 0,
        };
        d.load_baselines(|_| true).await?;
        let rows = d.seen_rows(|_| true).await?;
        d.seen.load(rows);
        d.count_seen_keys();
        let pending = d.app.store.audit_events_after(d.cursor).await?;
        d.app.pending_events.store(pending, Ordering::Relaxed);
        Ok(d)
    }

    /// Loads the stored baselines of the clusters `wanted` says; returns how many.
    async fn load_baselines(&mut self, wanted: impl Fn(&str) -> bool) -> ServerResult<usize> {
        let mut loaded = 0;
        for (key, value) in self.app.store.states(BASELINE_PREFIX).await? {
            let cluster = &key[BASELINE_PREFIX.len()..];
            if !wanted(cluster) {
                continue;
            }
            match serde_json::from_slice::<ClusterBaseline>(&value) {
                Ok(b) => {
                    self.engine
                        .state
                        .baselines
                        .clusters
                        .insert(cluster.to_string(), b);
                    loaded += 1;
                }
                Err(e) => tracing::warn!(%key, error = %e, "ignoring an unreadable baseline"),
            }
        }
        Ok(loaded)
    }

    /// The stored keys of the clusters `wanted` says, within the window.
    async fn seen_rows(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> ServerResult<Vec<osprey_store::SeenKeys>> {
        let o = &self.app.options;
        let since = now_ms() - o.dedupe_window.as_millis() as i64;
        Ok(self
            .app
            .store
            .seen_keys(since, o.dedupe_max_keys, wanted)
            .await?)
    }

    fn count_seen_keys(&self) {
        self.app
            .metrics
            .detector_seen_keys
            .set(i64::try_from(self.seen.keys_held()).unwrap_or(i64::MAX));
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
            if self.feed.is_some() {
                let result = self.bus_round(&mut stop).await;
                self.note_failure(result.as_ref().err());
                if let Err(e) = result {
                    tracing::error!(error = %e, "detection round failed; its batches come again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                continue;
            }
            let result = self.round().await;
            self.note_failure(result.as_ref().err());
            match result {
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
        if let Some(feed) = self.feed.as_ref() {
            let held: Vec<u32> = feed.active.keys().copied().collect();
            for p in held {
                self.let_go(p, true).await;
            }
            // What was delivered and not detected goes to the next holders now rather than
            // after the acknowledgement deadline.
            let feed = self.feed.as_mut().expect("bus mode");
            while let Ok((_, m)) = feed.rx.try_recv() {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
            return;
        }
        if let Err(e) = self.save_baselines().await {
            tracing::error!(error = %e, "saving baselines at shutdown failed");
        }
    }

    /// Takes up the partitions the bus gave this server and lets go of those it lost or must
    /// hand back.
    async fn follow_leases(&mut self) -> ServerResult<()> {
        let Some(feed) = self.feed.as_ref() else {
            return Ok(());
        };
        let bus = Arc::clone(&feed.bus);
        let held = bus.held();
        let gone: Vec<(u32, bool)> = feed
            .active
            .keys()
            .filter_map(|p| match held.get(p) {
                None => Some((*p, false)),
                Some(h) if h.release => Some((*p, true)),
                Some(_) => None,
            })
            .collect();
        for (p, handed_back) in gone {
            self.let_go(p, handed_back).await;
        }
        for (p, h) in held {
            let feed = self.feed.as_ref().expect("bus mode");
            if h.release || feed.active.contains_key(&p) {
                continue;
            }
            // From now on a round of the previous holder cannot commit.
            if !self.app.store.fence(&fence_key(p), h.revision).await? {
                bus.lost(p);
                continue;
            }
            let consumer = match bus.partition_consumer(p).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "the bus: retrying");
                    continue;
                }
            };
            let loaded = self.load_baselines(|c| partition_of(c) == p).await?;
            let rows = self.seen_rows(|c| partition_of(c) == p).await?;
            self.seen.adopt(rows);
            self.count_seen_keys();
            let feed = self.feed.as_mut().expect("bus mode");
            let (stop_pulling, stopped) = watch::channel(false);
            tokio::spawn(pull(consumer, p, feed.tx.clone(), stopped));
            feed.active.insert(
                p,
                Active {
                    revision: h.revision,
                    stop_pulling,
                },
            );
            tracing::info!(partition = p, baselines = loaded, "detecting a partition");
        }
        Ok(())
    }

    /// Stops detecting a partition; `handed_back`: the lease is still ours, so its baselines
    /// are saved first and the lease is given up after.
    async fn let_go(&mut self, p: u32, handed_back: bool) {
        let Some(feed) = self.feed.as_mut() else {
            return;
        };
        let Some(active) = feed.active.remove(&p) else {
            return;
        };
        let _ = active.stop_pulling.send(true);
        let bus = Arc::clone(&feed.bus);
        if handed_back {
            let saved = match self.baselines_of(|c| partition_of(c) == p) {
                Ok(docs) => {
                    let mut result = Ok(());
                    for (key, json) in docs {
                        result = result.and(self.app.store.put_state(&key, &json).await);
                    }
                    result.map_err(ServerError::from)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = saved {
                tracing::error!(partition = p, error = %e, "saving baselines failed");
            }
            bus.released(p);
        }
        self.engine
            .state
            .baselines
            .clusters
            .retain(|c, _| partition_of(c) != p);
        tracing::info!(
            partition = p,
            handed_back,
            "no longer detecting a partition"
        );
    }

    /// One round over batches from the bus: waits a moment for the first.
    async fn bus_round(&mut self, stop: &mut watch::Receiver<bool>) -> ServerResult<usize> {
        self.follow_leases().await?;
        let feed = self.feed.as_mut().expect("bus mode");
        let bus = Arc::clone(&feed.bus);
        let first = tokio::select! {
            m = feed.rx.recv() => m,
            _ = bus.leases_changed.notified() => None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => None,
            _ = stop.changed() => None,
        };
        let Some(first) = first else { return Ok(0) };
        let mut delivered = vec![first];
        while delivered.len() < BATCHES_PER_ROUND as usize
            && let Ok(m) = feed.rx.try_recv()
        {
            delivered.push(m);
        }
        let mut batches = Vec::new();
        let mut bus_ids = Vec::new();
        let mut fences = BTreeMap::new();
        let mut messages = Vec::new();
        for (p, m) in delivered {
            let Some(active) = feed.active.get(&p) else {
                // A partition let go of since: its holder gets it.
                let _ = m.ack_with(AckKind::Nak(None)).await;
                continue;
            };
            match Bus::batch(&m) {
                Ok(b) => {
                    fences.insert(p, active.revision);
                    bus_ids.push(b.bus_id);
                    batches.push(b.batch);
                    messages.push(m);
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "a message on the audit stream is not an Osprey batch; dropped");
                    let _ = m.ack_with(AckKind::Term).await;
                }
            }
        }
        if batches.is_empty() {
            return Ok(0);
        }
        let commit = Commit::Bus {
            bus_ids: &bus_ids,
            fences: &fences,
        };
        match self.detect(&batches, commit).await {
            Ok(fenced) if fenced.is_empty() => {
                for m in &messages {
                    if let Err(e) = m.ack().await {
                        // Redelivered later; the stored keys make it a no-op.
                        tracing::warn!(error = %e, "acknowledging a batch on the bus failed");
                    }
                }
                Ok(batches.len())
            }
            Ok(fenced) => {
                for m in &messages {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
                for p in fenced {
                    tracing::warn!(partition = p, "another server holds this partition now");
                    self.let_go(p, false).await;
                    bus.lost(p);
                }
                Ok(0)
            }
            Err(e) => {
                for m in &messages {
                    let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
                Err(e)
            }
        }
    }

    /// Drops raw batches past their retention (only behind the cursor) and forgets event keys
    /// past the dedupe window.
    pub async fn expire(&mut self) -> ServerResult<()> {
        let now = now_ms();
        self.seen.expire(now);
        self.count_seen_keys();
        if !self.app.is_leader() {
            return Ok(());
        }
        let o = &self.app.options;
        // Batches from the bus are kept only once detected.
        let cursor = if self.feed.is_some() {
            i64::MAX
        } else {
            self.cursor
        };
        let batches = self
            .app
            .store
            .purge_audit_batches(now - o.audit_retention.as_millis() as i64, cursor)
            .await?;
        let keys = self
            .app
            .store
            .purge_seen_keys(now - o.dedupe_window.as_millis() as i64)
            .await?;
        let pods = self
            .app
            .store
            .purge_pod_images(now - POD_MEMORY.as_millis() as i64)
            .await?;
        if batches + keys + pods > 0 {
            tracing::info!(batches, keys, pods, "expired old audit data");
        }
        if let Some(retention) = o.graph_retention
            && self
                .graph_purged
                .is_none_or(|t| t.elapsed() >= GRAPH_PURGE_EVERY)
        {
            let before_ms = now - retention.as_millis() as i64;
            let edges = self
                .app
                .store
                .purge_graph_edges(osprey_graph::Hour::of_ms(before_ms).0)
                .await?;
            let entities = self.app.store.purge_graph_entities(before_ms).await?;
            self.graph_purged = Some(Instant::now());
            if edges + entities > 0 {
                tracing::info!(edges, entities, "expired old graph counts");
            }
        }
        Ok(())
    }

    async fn cluster(&mut self, id: &str) -> ServerResult<Option<Cluster>> {
        if let Some(c) = self.clusters.get(id) {
            return Ok(c.clone());
        }
        let c = self.app.store.cluster(id).await?;
        self.clusters.insert(id.to_string(), c.clone());
        Ok(c)
    }

    /// Keeps what the last round said: its error, and how many rounds in a row failed.
    fn note_failure(&self, error: Option<&crate::error::ServerError>) {
        let mut failing = self
            .app
            .detection_failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *failing = error.map(|e| {
            let before = failing.as_ref().map_or(0, |(n, _)| *n);
            (before.saturating_add(1), e.to_string())
        });
    }

    /// One round over batches kept in the store; returns the batches it consumed.
    pub async fn round(&mut self) -> ServerResult<usize> {
        let started = Instant::now();
        let limit = if self.app.pending_events.load(Ordering::Relaxed) > BEHIND_EVENTS {
            BATCHES_PER_ROUND_BEHIND
        } else {
            BATCHES_PER_ROUND
        };
        let batches = self
            .app
            .store
            .audit_batches_after(self.cursor, limit)
            .await?;
        let Some(last) = batches.last().map(|b| b.seq) else {
            return Ok(0);
        };
        self.app.metrics.round_phase("read", started);
        self.detect(&batches, Commit::Cursor(last)).await?;
        self.cursor = last;
        self.app.pending_events.fetch_sub(
            batches.iter().map(|b| b.events).sum::<i64>(),
            Ordering::Relaxed,
        );
        Ok(batches.len())
    }

    /// Detects batches and commits what it found as `commit` says. Returns the partitions
    /// whose fence another server raised (then nothing was committed). The steps: compile
    /// changed settings, run the engine over every batch and event not seen before, open the
    /// round, check the bus fences and archive, queue triggered scans, and commit findings,
    /// keys, cursor and baselines together.
    async fn detect(
        &mut self,
        batches: &[AuditBatch],
        commit: Commit<'_>,
    ) -> ServerResult<Vec<u32>> {
        let version = self.app.settings_version.load(Ordering::Relaxed);
        if version != self.settings_version {
            self.settings = crate::settings::load(&self.app.store).await?;
            self.settings_version = version;
        }
        let now = now_ms();
        let started = Instant::now();
        let detected = self.run_engine(batches).await?;
        let (records, labels) = self.finding_records(detected.per_cluster).await?;
        let deltas = match self.graph.as_mut() {
            Some(g) => {
                g.findings(&records, now);
                g.take(now)
            }
            None => Vec::new(),
        };
        let started = self.app.metrics.round_phase("detect", started);
        // The engine's CPU work is done before the transaction: SQLite has one writer, and the
        // webhook's appends must not wait on detection.
        let mut round = self.app.store.begin_round().await?;
        let generation = self.seen.generation();
        let dropped = self.seen.dropped().to_vec();
        round.forget_seen_generations(&dropped).await?;
        for (cluster_id, keys) in &detected.keys {
            round
                .keep_seen_keys(cluster_id, generation, now, &seen::to_bytes(keys))
                .await?;
        }
        if let Commit::Bus { bus_ids, fences } = &commit {
            let fenced = self
                .fence_and_archive(&mut round, batches, bus_ids, fences)
                .await?;
            if !fenced.is_empty() {
                return Ok(fenced); // dropping the round rolls it back
            }
        }
        for ((cluster, namespace, pod), images) in &detected.pods {
            round
                .remember_pod(cluster, namespace, pod, images, now)
                .await?;
        }
        graph::write(&mut round, deltas).await?;
        let triggers = self
            .scan_requests(&mut round, &records, &detected.pods, now)
            .await?;
        let window_ms = self.app.options.trigger_window.as_millis() as i64;
        let made: HashMap<String, (String, Option<i64>)> = records
            .iter()
            .map(|r| {
                let first = r.finding.first_seen_ms();
                (r.finding.id.clone(), (r.tenant_id.clone(), first))
            })
            .collect();
        let upserted = round.upsert_findings(records, "detector").await?;
        let (triggered, full) = round
            .trigger_scans(
                &triggers,
                now,
                window_ms,
                self.app.options.scan_queue_per_tenant,
            )
            .await?;
        if full > 0 {
            tracing::warn!(
                scans = full,
                "triggered scans dropped: their tenants' scan queues are full"
            );
        }
        if let Commit::Cursor(last) = commit {
            round
                .put_state(CURSOR_KEY, last.to_string().as_bytes())
                .await?;
        }
        let save_baselines = self.baselines_saved.elapsed() >= BASELINE_SAVE_EVERY;
        if save_baselines {
            for (key, json) in self.baseline_documents()? {
                round.put_state(&key, &json).await?;
            }
        }
        let started = self.app.metrics.round_phase("write", started);
        round.commit().await?;
        self.app.metrics.round_phase("commit", started);
        self.app
            .metrics
            .duplicate_events
            .inc_by(detected.duplicates);
        self.app.metrics.events_detected.inc_by(detected.events);
        self.seen
            .commit(detected.keys.into_values().flatten(), dropped.len(), now);
        self.count_seen_keys();
        if save_baselines {
            self.baselines_saved = Instant::now();
        }
        if !upserted.is_empty() {
            self.app.outputs_wake.notify_one();
        }
        // New findings may complete an attack sequence.
        let mut created: BTreeMap<String, i64> = BTreeMap::new();
        for u in upserted.iter().filter(|u| u.created) {
            if let Some((tenant, first)) = made.get(&u.id) {
                let since = first.unwrap_or(now);
                let slot = created.entry(tenant.clone()).or_insert(since);
                *slot = (*slot).min(since);
            }
        }
        for (tenant, first) in created {
            self.raise_sequences(&tenant, first - crate::sequences::WINDOW_MS)
                .await;
        }
        self.remember_asked(&triggers, &triggered, now, window_ms);
        for job in &triggered {
            tracing::info!(job = job.id, image = job.image, finding = ?job.trigger_finding_id, "scan triggered");
            self.app.scan_queued(&job.id);
        }
        self.app.metrics.count_created(&upserted, &labels);
        Ok(Vec::new())
    }

    /// The engine over every batch and event that was not detected before (a batch and its
    /// replay in one round count once), decoding each batch once.
    async fn run_engine(&mut self, batches: &[AuditBatch]) -> ServerResult<Detected> {
        let mut out = Detected::default();
        let decoder = Decoder::default();
        // Keys taken in this round (clusters are part of the keys).
        let mut taken = seen::KeySet::default();
        for b in batches {
            let Some(cluster) = self.cluster(&b.cluster_id).await? else {
                continue;
            };
            let Some(body) = batch_body(b) else {
                continue;
            };
            let batch_key = seen::batch_key(&cluster.id, &body);
            if self.seen.contains(batch_key) || !taken.insert(batch_key) {
                out.duplicates += u64::try_from(b.events).unwrap_or_default();
                continue;
            }
            if !self.settings.contains_key(&cluster.tenant_id) {
                // A tenant made since the settings were compiled: the administrator's apply
                // to it too.
                self.settings = crate::settings::load(&self.app.store).await?;
            }
            let keys = out.keys.entry(cluster.id.clone()).or_default();
            keys.push(batch_key);
            let findings = out.per_cluster.entry(cluster.id.clone()).or_default();
            let pods = &mut out.pods;
            let engine = &mut self.engine;
            let window = &self.seen;
            let mut recorder = self.graph.as_mut().map(|g| g.recorder(&cluster.tenant_id));
            // The cluster's tenant's lists and suppression rules, for this batch.
            let settings = self.settings.entry(cluster.tenant_id.clone()).or_default();
            let mut duplicates = 0u64;
            let mut detected = 0u64;
            decoder.decode(&body, &mut |e: Event<'_>| {
                if !e.audit_id.is_empty() {
                    let key = seen::event_key(&cluster.id, &e.audit_id, e.stage().as_str());
                    if window.contains(key) || !taken.insert(key) {
                        duplicates += 1;
                        return;
                    }
                    keys.push(key);
                }
                if let Some(p) = osprey_audit::findings::pod_images(&e) {
                    pods.insert((cluster.id.clone(), p.namespace, p.name), p.images);
                }
                if let Some(r) = recorder.as_deref_mut() {
                    graph::observe(r, &cluster.id, &e);
                }
                engine.process_for(&in_cluster(e, &cluster.id), findings, settings);
                detected += 1;
            });
            out.duplicates += duplicates;
            out.events += detected;
        }
        Ok(out)
    }

    /// The findings of every cluster as store records, and their severities for the metrics.
    async fn finding_records(
        &mut self,
        per_cluster: HashMap<String, Findings>,
    ) -> ServerResult<(Vec<FindingRecord>, HashMap<String, SeverityLabel>)> {
        let mut records = Vec::new();
        let mut labels = HashMap::new();
        for (cluster_id, findings) in per_cluster {
            let Some(cluster) = self.cluster(&cluster_id).await? else {
                continue;
            };
            for f in findings.into_list() {
                let r = record(f, &cluster, FindingSource::Audit);
                labels.insert(r.finding.id.clone(), r.finding.severity.label);
                records.push(r);
            }
        }
        Ok((records, labels))
    }

    /// With a bus: checks every partition's fence (the rows stay locked by this round until
    /// it commits: a new holder raising the fence waits for it, and a round after the raise
    /// finds itself fenced out), then archives the batches under their message ids. Returns
    /// the fenced partitions; when there are any, nothing was archived.
    async fn fence_and_archive(
        &mut self,
        round: &mut DetectionRound<'static>,
        batches: &[AuditBatch],
        bus_ids: &[String],
        fences: &BTreeMap<u32, u64>,
    ) -> ServerResult<Vec<u32>> {
        let mut fenced = Vec::new();
        for (p, token) in fences.iter() {
            if !round.fence(&fence_key(*p), *token).await? {
                fenced.push(*p);
            }
        }
        if !fenced.is_empty() {
            return Ok(fenced);
        }
        for (b, id) in batches.iter().zip(bus_ids.iter()) {
            // A batch of a cluster the store does not know was skipped by the engine.
            if self.cluster(&b.cluster_id).await?.is_some() {
                round.archive_batch(b, id).await?;
            }
        }
        Ok(fenced)
    }

    /// Stores the attack sequences of a tenant's groups (findings last seen since `since_ms`)
    /// that are new or grew.
    async fn raise_sequences(&mut self, tenant: &str, since_ms: i64) {
        crate::sequences::raise(
            &self.app,
            tenant,
            since_ms,
            &mut self.sequences_raised,
            self.graph.as_mut(),
        )
        .await;
    }

    /// Findings naming a workload's images ask for scans of them (queued at most once per
    /// image per window, in the round's transaction). Images this detector asked about
    /// recently are not asked about again: one it queued, for the window; one the store held
    /// back, for a while (the store decides for the others, and after a restart).
    async fn scan_requests(
        &mut self,
        round: &mut DetectionRound<'static>,
        records: &[FindingRecord],
        pods: &PodImages,
        now: i64,
    ) -> ServerResult<Vec<NewScan>> {
        self.asked.retain(|_, until| *until > now);
        let mut triggers = Vec::new();
        if self.app.options.scan_workers == 0 {
            return Ok(triggers);
        }
        // A finding archived by a suppression rule asks for nothing.
        for r in records.iter().filter(|r| r.finding.suppression.is_none()) {
            let Some(cluster) = r.cluster_id.as_deref() else {
                continue;
            };
            // A finding that names only a pod: the images it was created with.
            let images = match crate::scanner::pod_without_images(&r.finding) {
                Some((ns, pod)) => {
                    match pods.get(&(cluster.to_string(), ns.to_string(), pod.to_string())) {
                        Some(images) => Some(images.clone()),
                        None => round.pod_images(cluster, ns, pod).await?,
                    }
                }
                None => None,
            };
            triggers.extend(
                crate::scanner::trigger_requests(
                    &r.finding,
                    &r.tenant_id,
                    cluster,
                    images.as_deref(),
                )
                .into_iter()
                .filter(|s| {
                    !self
                        .asked
                        .contains_key(&(s.tenant_id.clone(), s.image.clone()))
                }),
            );
        }
        Ok(triggers)
    }

    /// Remembers what this round asked for: a queued image for the window, one the store
    /// held back for a shorter while.
    fn remember_asked(
        &mut self,
        triggers: &[NewScan],
        triggered: &[ScanJob],
        now: i64,
        window_ms: i64,
    ) {
        let queued: HashSet<(&str, &str)> = triggered
            .iter()
            .map(|j| (j.tenant_id.as_str(), j.image.as_str()))
            .collect();
        for t in triggers {
            let until = if queued.contains(&(t.tenant_id.as_str(), t.image.as_str())) {
                now + window_ms
            } else {
                now + HELD_BACK_RECHECK_MS.min(window_ms)
            };
            self.asked
                .insert((t.tenant_id.clone(), t.image.clone()), until);
        }
    }

    /// The baselines this server keeps: every cluster's, or with a bus those of the
    /// partitions it detects.
    fn baseline_documents(&self) -> ServerResult<Vec<(String, Vec<u8>)>> {
        self.baselines_of(|cluster| {
            self.feed
                .as_ref()
                .is_none_or(|feed| feed.active.contains_key(&partition_of(cluster)))
        })
    }

    /// The baselines of the clusters `wanted` says, as stored.
    fn baselines_of(&self, wanted: impl Fn(&str) -> bool) -> ServerResult<Vec<(String, Vec<u8>)>> {
        let mut docs = Vec::new();
        for (cluster, b) in &self.engine.state.baselines.clusters {
            if !wanted(cluster) {
                continue;
            }
            let json = serde_json::to_vec(b)
                .map_err(|e| ServerError::Engine(format!("baselines of cluster {cluster}: {e}")))?;
            docs.push((format!("{BASELINE_PREFIX}{cluster}"), json));
        }
        Ok(docs)
    }

    async fn save_baselines(&mut self) -> ServerResult<()> {
        for (key, json) in self.baseline_documents()? {
            self.app.store.put_state(&key, &json).await?;
        }
        self.baselines_saved = Instant::now();
        Ok(())
    }
}

/// Hands a partition's batches to the detector until `stop`; a batch fetched but not handed
/// over then is given back to the bus at once (the partition's next holder gets it without
/// waiting for the acknowledgement deadline).
async fn pull(
    consumer: jetstream::consumer::PullConsumer,
    p: u32,
    tx: mpsc::Sender<(u32, jetstream::Message)>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let fetched = consumer
            .fetch()
            .max_messages(BATCHES_PER_ROUND as usize)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "reading the audit stream");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        while let Some(m) = fetched.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "reading the audit stream");
                    break;
                }
            };
            if *stop.borrow() {
                let _ = m.ack_with(AckKind::Nak(None)).await;
                continue;
            }
            tokio::select! {
                permit = tx.reserve() => match permit {
                    Ok(permit) => permit.send((p, m)),
                    Err(_) => return,
                },
                _ = stop.changed() => {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
            }
        }
    }
}

/// A kept batch's EventList as received; `None` (logged) when it does not decompress.
pub(crate) fn batch_body(b: &AuditBatch) -> Option<Vec<u8>> {
    match zstd::bulk::decompress(&b.body, MAX_BATCH_BYTES + 1) {
        Ok(body) => Some(body),
        Err(e) => {
            tracing::error!(seq = b.seq, error = %e, "a kept batch does not decompress; skipped");
            None
        }
    }
}

/// The event as coming from `cluster`, whatever it says: the ingest token names the cluster
/// (the event is shortened to the name's lifetime; events are covariant).
pub(crate) fn in_cluster<'s>(mut e: Event<'s>, cluster: &'s str) -> Event<'s> {
    e.cluster = Cow::Borrowed(cluster);
    e
}

/// An engine finding as stored: scoped id, the cluster's name, the cluster's tenant.
pub(crate) fn record(mut f: Finding, cluster: &Cluster, source: FindingSource) -> FindingRecord {
    f.id = scoped_id(&cluster.id, &f.id);
    if let Some(k) = f.resource.kubernetes.as_mut() {
        k.cluster = cluster.name.clone();
    }
    FindingRecord {
        finding: f,
        tenant_id: cluster.tenant_id.clone(),
        cluster_id: Some(cluster.id.clone()),
        source,
        sample: false,
    }
}
