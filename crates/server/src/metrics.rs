//! Prometheus metrics at `/metrics`.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Counter,
    pub batches_ingested: Counter,
    /// Requests refused for an unknown or revoked token.
    pub auth_refused: Counter,
    /// By reason: `auth`, `invalid`, `overload`, `storage`.
    pub batches_rejected: Family<Labels, Counter>,
    pub ingest_commit_seconds: Histogram,
    pub detector_lag_events: Gauge<i64, AtomicI64>,
    pub events_detected: Counter,
    pub duplicate_events: Counter,
    /// Time of a detection round's steps, by phase: `read` (the batches), `detect` (decode,
    /// dedupe, rules), `write` (the round's statements), `commit`.
    pub detector_round_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// Keys of batches and events detection remembers (see `detector::seen`).
    pub detector_seen_keys: Gauge<i64, AtomicI64>,
    /// Time to compute an entity's profile.
    pub graph_profile_seconds: Histogram,
    /// New findings, by severity label.
    pub findings_created: Family<Labels, Counter>,
    pub finding_occurrences: Counter,
    /// Output deliveries attempted, by output kind and result (delivered, failed).
    pub output_deliveries: Family<Labels, Counter>,
    /// Scan jobs ended, by kind and state.
    pub scans: Family<Labels, Counter>,
    pub scan_seconds: Histogram,
    /// Scan jobs queued and running (read from the store when metrics are asked for).
    pub scan_queue: Family<Labels, Gauge<i64, AtomicI64>>,
    /// With a bus: batches (and their bytes) waiting on it, partitions detected here, live
    /// servers.
    pub bus_backlog_batches: Gauge<i64, AtomicI64>,
    pub bus_backlog_bytes: Gauge<i64, AtomicI64>,
    pub bus_partitions_held: Gauge<i64, AtomicI64>,
    pub bus_servers: Gauge<i64, AtomicI64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("osprey");
        let m = Metrics {
            events_ingested: Counter::default(),
            batches_ingested: Counter::default(),
            auth_refused: Counter::default(),
            batches_rejected: Family::default(),
            ingest_commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            detector_lag_events: Gauge::default(),
            events_detected: Counter::default(),
            duplicate_events: Counter::default(),
            detector_round_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            }),
            detector_seen_keys: Gauge::default(),
            graph_profile_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            findings_created: Family::default(),
            finding_occurrences: Counter::default(),
            output_deliveries: Family::default(),
            scans: Family::default(),
            scan_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            scan_queue: Family::default(),
            bus_backlog_batches: Gauge::default(),
            bus_backlog_bytes: Gauge::default(),
            bus_partitions_held: Gauge::default(),
            bus_servers: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "audit_events_ingested",
            "Audit events accepted by the webhook (durable)",
            m.events_ingested.clone(),
        );
        registry.register(
            "auth_refused",
            "Requests refused for an unknown or revoked token",
            m.auth_refused.clone(),
        );
        registry.register(
            "audit_batches_ingested",
            "Webhook batches accepted",
            m.batches_ingested.clone(),
        );
        registry.register(
            "audit_batches_rejected",
            "Webhook batches refused, by reason",
            m.batches_rejected.clone(),
        );
        registry.register(
            "audit_ingest_commit_seconds",
            "Time to make a group of batches durable",
            m.ingest_commit_seconds.clone(),
        );
        registry.register(
            "detector_lag_events",
            "Audit events kept but not yet through detection",
            m.detector_lag_events.clone(),
        );
        registry.register(
            "audit_events_detected",
            "Audit events run through the detection engine",
            m.events_detected.clone(),
        );
        registry.register(
            "audit_events_duplicate",
            "Audit events skipped as retries of events already detected",
            m.duplicate_events.clone(),
        );
        registry.register(
            "detector_round_seconds",
            "Time of detection rounds' steps, by phase (read, detect, write, commit)",
            m.detector_round_seconds.clone(),
        );
        registry.register(
            "detector_seen_keys",
            "Keys of batches and events detection remembers: retries of these add nothing",
            m.detector_seen_keys.clone(),
        );
        registry.register(
            "graph_profile_seconds",
            "Time to compute an entity's profile (GET /v1/entities/...)",
            m.graph_profile_seconds.clone(),
        );
        registry.register(
            "findings_created",
            "New findings, by severity",
            m.findings_created.clone(),
        );
        registry.register(
            "finding_occurrences",
            "Occurrences recorded on findings (new and repeated)",
            m.finding_occurrences.clone(),
        );
        registry.register(
            "output_deliveries",
            "Finding deliveries to outputs, by kind and result",
            m.output_deliveries.clone(),
        );
        registry.register(
            "scans",
            "Image scan jobs ended, by kind and state",
            m.scans.clone(),
        );
        registry.register(
            "scan_seconds",
            "Time to run an image scan job",
            m.scan_seconds.clone(),
        );
        registry.register(
            "scan_queue_jobs",
            "Image scan jobs waiting and running, by state",
            m.scan_queue.clone(),
        );
        registry.register(
            "bus_backlog_batches",
            "With --bus: audit batches waiting on the bus for detection",
            m.bus_backlog_batches.clone(),
        );
        registry.register(
            "bus_backlog_bytes",
            "With --bus: bytes of audit batches waiting on the bus",
            m.bus_backlog_bytes.clone(),
        );
        registry.register(
            "bus_partitions_held",
            "With --bus: detection partitions this server holds",
            m.bus_partitions_held.clone(),
        );
        registry.register(
            "bus_servers",
            "With --bus: servers sharing the database",
            m.bus_servers.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Records how long a detection round's phase took since `since`; returns now (the next
    /// phase's start).
    pub fn round_phase(&self, phase: &str, since: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.detector_round_seconds
            .get_or_create(&vec![("phase".to_string(), phase.to_string())])
            .observe((now - since).as_secs_f64());
        now
    }

    pub fn reject(&self, reason: &str) {
        self.batches_rejected
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    pub fn output_sent(&self, kind: &str, result: &str, n: usize) {
        self.output_deliveries
            .get_or_create(&vec![
                ("kind".to_string(), kind.to_string()),
                ("result".to_string(), result.to_string()),
            ])
            .inc_by(n as u64);
    }

    /// Counts the findings an upsert created, by severity (`labels`: finding id → severity).
    pub fn count_created(
        &self,
        upserted: &[osprey_store::Upserted],
        labels: &std::collections::HashMap<String, osprey_model::SeverityLabel>,
    ) {
        for u in upserted {
            self.finding_occurrences.inc_by(u.new_occurrences);
            if u.created
                && let Some(label) = labels.get(&u.id)
            {
                self.findings_created
                    .get_or_create(&vec![(
                        "severity".into(),
                        format!("{label:?}").to_lowercase(),
                    )])
                    .inc();
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
