//! Retro-hunts: rules and threat lists run over the raw audit events the server keeps, as
//! jobs. The API queues a hunt (`api::hunts`); the hunter — one thread per server, like the
//! detector, since the engine is CPU work — claims it (`osprey_store` holds it by a lease the
//! hunter renews with its progress), reads the tenant's kept batches in arrival order, runs a
//! fresh engine over every event of the window it was not given before (a retried batch and an
//! event logged twice count once), and stores the findings with the hunt's end in one
//! transaction, linked into the graph. Its findings say `source: retro-hunt`, have their own
//! ids (a hunt never adds to a live finding's count), join finding groups like any other, and
//! may raise attack sequences.

pub mod plan;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel};
use osprey_model::SeverityLabel;
use osprey_store::{Cluster, FindingRecord, FindingSource, HuntResult, ListKind, RetroHunt};
use tokio::sync::watch;

use crate::App;
use crate::detector::seen::{self, Key};
use crate::error::{ServerError, ServerResult};

/// How long a claim holds a hunt without a renewal.
const LEASE_MS: i64 = 60_000;
/// How often a running hunt renews its lease and records its progress.
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// Batches read per query.
const BATCHES_PER_READ: i64 = 16;
/// How long before a hunt's window a batch may have been received and still hold events of it
/// (clocks of the API server and of this server apart).
const CLOCK_SLACK_MS: i64 = 3_600_000;
/// Findings a hunt keeps at most; beyond, new ones are counted and a notice says so.
pub const MAX_HUNT_FINDINGS: usize = 10_000;
/// Event keys remembered per generation (two generations) to skip an event logged twice.
const EVENT_KEYS_PER_GENERATION: usize = 500_000;
/// Hunts queued or running per tenant at most.
pub const MAX_ACTIVE_PER_TENANT: i64 = 10;

/// Starts the hunter's thread.
pub fn spawn(
    app: Arc<App>,
    stop: watch::Receiver<bool>,
) -> ServerResult<std::thread::JoinHandle<()>> {
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("osprey-hunter".into())
        .spawn(move || handle.block_on(run(app, stop)))
        .map_err(ServerError::io("starting the retro-hunt thread"))
}

async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match app.store.claim_hunt(LEASE_MS).await {
            Ok(Some(h)) => hunt(&app, h, &stop).await,
            Ok(None) => {
                tokio::select! {
                    _ = app.hunts_wake.notified() => {}
                    // Another server may queue one (or stop holding one).
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming a retro-hunt failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// How reading a hunt's events ended.
enum Read {
    Done(HuntResult, Vec<FindingRecord>),
    /// Cancelled or taken over: nothing to store.
    Lost,
    /// The server is stopping: the hunt goes back to the queue.
    Stopping,
}

/// A hunt that cannot run: the reason the caller sees.
struct Refusal(String);

async fn hunt(app: &App, h: RetroHunt, stop: &watch::Receiver<bool>) {
    tracing::info!(
        hunt = h.id,
        tenant = h.tenant_id,
        attempt = h.attempts,
        "retro-hunt started"
    );
    let started = Instant::now();
    let outcome = match prepare(app, &h).await {
        Ok(Ok(prepared)) => read(app, &h, prepared, stop).await,
        Ok(Err(Refusal(reason))) => {
            end_failed(app, &h, &reason).await;
            return;
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Read::Done(result, records)) => match store(app, &h, result, records).await {
            Ok(true) => {
                tracing::info!(
                    hunt = h.id,
                    seconds = started.elapsed().as_secs_f64(),
                    "retro-hunt done"
                );
            }
            Ok(false) => tracing::info!(hunt = h.id, "retro-hunt cancelled; nothing stored"),
            Err(e) => {
                tracing::error!(hunt = h.id, error = %e, "storing a retro-hunt's findings failed");
                end_failed(app, &h, "storing its findings failed; see the server's log").await;
            }
        },
        Ok(Read::Lost) => tracing::info!(hunt = h.id, "retro-hunt cancelled or taken over"),
        Ok(Read::Stopping) => {
            if let Err(e) = app.store.release_hunt(&h.id, h.attempts).await {
                tracing::warn!(hunt = h.id, error = %e, "queueing a retro-hunt again failed; it is taken again when its lease runs out");
            }
        }
        Err(e) => {
            tracing::error!(hunt = h.id, error = %e, "a retro-hunt failed");
            end_failed(
                app,
                &h,
                "reading the kept audit events failed; see the server's log",
            )
            .await;
        }
    }
}

async fn end_failed(app: &App, h: &RetroHunt, reason: &str) {
    if let Err(e) = app.store.fail_hunt(&h.id, h.attempts, reason).await {
        tracing::warn!(hunt = h.id, error = %e, "recording a retro-hunt's failure failed");
    }
}

/// What a hunt reads and runs.
struct Prepared {
    plan: plan::Plan,
    clusters: HashMap<String, Cluster>,
    notices: Vec<String>,
}

/// The threat list a hunt names: the tenant's own by that name, else the administrator
/// tenant's (whose lists apply to every member).
pub async fn threat_list(
    app: &App,
    tenant_id: &str,
    name: &str,
) -> ServerResult<Result<osprey_audit::IpList, String>> {
    let mut found = app
        .store
        .ip_lists(Some(tenant_id))
        .await?
        .into_iter()
        .find(|l| l.name == name);
    if found.is_none()
        && let Some(admin) = app.store.administrator().await?
    {
        found = app
            .store
            .ip_lists(Some(&admin.id))
            .await?
            .into_iter()
            .find(|l| l.name == name);
    }
    let Some(list) = found else {
        return Ok(Err(format!("threat_list {name:?}: no such IP list")));
    };
    if list.kind != ListKind::Threat {
        return Ok(Err(format!(
            "threat_list {name:?}: a {} list, not a threat list",
            list.kind.as_str()
        )));
    }
    Ok(
        crate::settings::parse_list(&list.name, list.kind, list.body.as_bytes())
            .map_err(|e| e.to_string()),
    )
}

/// Compiles the hunt with the tenant's settings of now and finds the clusters it reads.
async fn prepare(app: &App, h: &RetroHunt) -> ServerResult<Result<Prepared, Refusal>> {
    let list = match &h.threat_list {
        Some(name) => match threat_list(app, &h.tenant_id, name).await? {
            Ok(l) => Some(l),
            Err(reason) => return Ok(Err(Refusal(reason))),
        },
        None => None,
    };
    let mut settings = crate::settings::load(&app.store).await?;
    let settings = settings.remove(&h.tenant_id).unwrap_or_default();
    let plan = match plan::compile(h.rules.as_deref(), list, &settings) {
        Ok(p) => p,
        Err(reason) => return Ok(Err(Refusal(reason))),
    };
    let clusters: HashMap<String, Cluster> = app
        .store
        .clusters(Some(&h.tenant_id))
        .await?
        .into_iter()
        .filter(|c| h.cluster_id.as_ref().is_none_or(|id| *id == c.id))
        .map(|c| (c.id.clone(), c))
        .collect();
    if clusters.is_empty() {
        let what = match &h.cluster_id {
            Some(id) => format!("cluster {id} no longer exists"),
            None => "the tenant has no cluster".to_string(),
        };
        return Ok(Err(Refusal(what)));
    }
    // Batches are dropped once older than the retention: events of the window received
    // before then are gone if a cluster was sending already.
    let mut notices = Vec::new();
    let retention = app.options.audit_retention.as_millis() as i64;
    let horizon = osprey_store::now_ms() - retention;
    if h.since_ms < horizon && clusters.values().any(|c| c.created_ms < horizon) {
        notices.push(format!(
            "audit events received before {} are no longer kept (the server keeps them {} days): the hunt read those received since",
            osprey_graph::record::rfc3339(horizon),
            retention / 86_400_000,
        ));
    }
    Ok(Ok(Prepared {
        plan,
        clusters,
        notices,
    }))
}

/// Keys of what a hunt has read: every batch, and events in two generations (an event
/// logged twice is usually retried soon after).
#[derive(Default)]
struct ReadKeys {
    batches: HashSet<Key>,
    events: HashSet<Key>,
    older: HashSet<Key>,
}

impl ReadKeys {
    /// Whether the event is new (and remembers it).
    fn first_event(&mut self, key: Key) -> bool {
        if self.events.contains(&key) || self.older.contains(&key) {
            return false;
        }
        if self.events.len() >= EVENT_KEYS_PER_GENERATION {
            self.older = std::mem::take(&mut self.events);
        }
        self.events.insert(key);
        true
    }
}

/// Runs the hunt's engine over the events of its window, page by page, renewing its lease.
async fn read(
    app: &App,
    h: &RetroHunt,
    prepared: Prepared,
    stop: &watch::Receiver<bool>,
) -> ServerResult<Read> {
    let Prepared {
        plan,
        clusters,
        mut notices,
    } = prepared;
    let ids: Vec<String> = clusters.keys().cloned().collect();
    let mut engine = Engine::new(plan.rules, Intel::default(), EngineOptions::default());
    let overlay = plan.overlay;
    let decoder = Decoder::default();
    let (since_us, until_us) = (h.since_ms * 1000, h.until_ms * 1000);
    let mut per_cluster: HashMap<String, Findings> = HashMap::new();
    let mut seen = ReadKeys::default();
    let (mut events, mut batches) = (0i64, 0i64);
    let mut after = 0;
    let mut renewed = Instant::now();
    loop {
        let page = app
            .store
            .hunt_batches(&ids, h.since_ms - CLOCK_SLACK_MS, after, BATCHES_PER_READ)
            .await?;
        let Some(last) = page.last().map(|b| b.seq) else {
            break;
        };
        after = last;
        for b in &page {
            let Some(cluster) = clusters.get(&b.cluster_id) else {
                continue;
            };
            let Some(body) = crate::detector::batch_body(b) else {
                continue;
            };
            if !seen.batches.insert(seen::batch_key(&cluster.id, &body)) {
                continue;
            }
            batches += 1;
            let findings = per_cluster.entry(cluster.id.clone()).or_insert_with(|| {
                let mut f = Findings::default();
                f.max_findings = MAX_HUNT_FINDINGS;
                f
            });
            decoder.decode(&body, &mut |e: Event<'_>| {
                let Some(t) = e.request_us.or(e.time_us) else {
                    return;
                };
                if t < since_us || t >= until_us {
                    return;
                }
                if !e.audit_id.is_empty()
                    && !seen.first_event(seen::event_key(
                        &cluster.id,
                        &e.audit_id,
                        e.stage().as_str(),
                    ))
                {
                    return;
                }
                events += 1;
                engine.process_for(
                    &crate::detector::in_cluster(e, &cluster.id),
                    findings,
                    &overlay,
                );
            });
        }
        if *stop.borrow() {
            return Ok(Read::Stopping);
        }
        if renewed.elapsed() >= RENEW_EVERY {
            renewed = Instant::now();
            if !app
                .store
                .renew_hunt(&h.id, h.attempts, LEASE_MS, events, batches)
                .await?
            {
                return Ok(Read::Lost);
            }
        }
    }
    let mut records = Vec::new();
    let mut dropped = 0;
    for (cluster_id, findings) in per_cluster {
        dropped += findings.dropped;
        let cluster = &clusters[&cluster_id];
        for mut f in findings.into_list() {
            // The hunt's own finding: never merged into a live one or another hunt's.
            f.id = format!("retro-hunt/{}\0{}", h.id, f.id);
            records.push(crate::detector::record(
                f,
                cluster,
                FindingSource::RetroHunt,
            ));
        }
    }
    if dropped > 0 {
        notices.push(format!(
            "more than {MAX_HUNT_FINDINGS} findings: {dropped} occurrences of further findings were not kept; narrow the window or the rules"
        ));
    }
    records.sort_by(|a, b| a.finding.id.cmp(&b.finding.id));
    let result = HuntResult {
        events_scanned: events,
        batches_scanned: batches,
        finding_ids: records.iter().map(|r| r.finding.id.clone()).collect(),
        notices,
    };
    Ok(Read::Done(result, records))
}

/// Stores a hunt's findings (linked into the graph) and its end together; then raises the
/// attack sequences they complete. `false`: the hunt was cancelled meanwhile, nothing stored.
async fn store(
    app: &App,
    h: &RetroHunt,
    result: HuntResult,
    records: Vec<FindingRecord>,
) -> ServerResult<bool> {
    let o = &app.options;
    let links = match o.graph_retention {
        Some(_) => crate::detector::graph::finding_links(&records, o.graph_max_edges_per_hour),
        None => Vec::new(),
    };
    let labels: HashMap<String, SeverityLabel> = records
        .iter()
        .map(|r| (r.finding.id.clone(), r.finding.severity.label))
        .collect();
    let earliest = records
        .iter()
        .filter_map(|r| r.finding.first_seen_ms())
        .min();
    let mut round = app.store.begin_write_round().await?;
    crate::detector::graph::write(&mut round, links).await?;
    let upserted = round
        .upsert_findings(records, &format!("retro-hunt {}", h.id))
        .await?;
    if !round.finish_hunt(&h.id, h.attempts, &result).await? {
        return Ok(false); // dropping the round rolls it back
    }
    round.commit().await?;
    app.metrics.count_created(&upserted, &labels);
    if !upserted.is_empty() {
        app.outputs_wake.notify_one();
    }
    if let Some(first) = earliest {
        let mut graph = o
            .graph_retention
            .map(|_| crate::detector::graph::GraphFeed::new(o.graph_max_edges_per_hour));
        crate::sequences::raise(
            app,
            &h.tenant_id,
            first - crate::sequences::WINDOW_MS,
            &mut HashMap::new(),
            graph.as_mut(),
        )
        .await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_read_twice_counts_once_within_two_generations() {
        let mut seen = ReadKeys::default();
        assert!(seen.first_event(1));
        assert!(!seen.first_event(1));
        for k in 2..(EVENT_KEYS_PER_GENERATION as u128 + 2) {
            seen.first_event(k);
        }
        // Key 1 moved to the older generation, still remembered.
        assert!(!seen.first_event(1));
        assert!(seen.first_event(u128::MAX));
    }
}
