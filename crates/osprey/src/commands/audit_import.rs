//! `osprey audit import`: offline audit logs into a server's cluster, through its webhook.
//!
//! Every shape the audit reader knows (JSON lines, EventList documents, EKS CloudWatch exports,
//! AKS and GKE records; gzip or not) becomes `audit.k8s.io/v1` events, posted as EventList
//! batches with the cluster's ingest token, exactly as an API server's webhook backend would.
//! A 429 or 503 is waited out (its Retry-After, at most 30 s) and the batch sent again; the
//! server knows events by audit id, so an import repeated or resumed adds nothing twice.

use std::path::Path;
use std::time::Duration;

use osprey_audit::event::reader::{Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};

use super::audit::{InputSummary, input_name, report_malformed};
use crate::cli::AuditImportArgs;
use crate::exit::Failure;
use crate::ui::Ui;

/// A batch stays under this many bytes (the webhook takes up to 10 MiB).
const MAX_BATCH_BYTES: usize = 8 << 20;
const MAX_BATCH_EVENTS: usize = 10_000;
/// Attempts of one batch through 429s, 503s and network failures.
const MAX_ATTEMPTS: u32 = 30;
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Events gathered into EventList documents (at most `max_events` events and
/// `MAX_BATCH_BYTES` each), handed to `send` as they fill; after a failure nothing more is
/// sent. Shared with `osprey graph build`, which keeps the batches in a local store.
pub(super) struct Batcher<F: FnMut(Vec<u8>, usize) -> Result<(), Failure>> {
    send: F,
    items: Vec<String>,
    bytes: usize,
    max_events: usize,
    pub sent_events: u64,
    pub batches: u64,
    /// The first failure; nothing more is sent after it.
    failed: Option<Failure>,
}

impl<F: FnMut(Vec<u8>, usize) -> Result<(), Failure>> Batcher<F> {
    pub fn new(max_events: usize, send: F) -> Self {
        Batcher {
            send,
            items: Vec::new(),
            bytes: 0,
            max_events,
            sent_events: 0,
            batches: 0,
            failed: None,
        }
    }

    fn add(&mut self, event: String) {
        if self.failed.is_some() {
            return;
        }
        if !self.items.is_empty()
            && (self.items.len() >= self.max_events
                || self.bytes + event.len() + 64 > MAX_BATCH_BYTES)
        {
            self.flush();
        }
        self.bytes += event.len() + 1;
        self.items.push(event);
    }

    fn flush(&mut self) {
        if self.items.is_empty() || self.failed.is_some() {
            return;
        }
        let mut body = String::with_capacity(self.bytes + 64);
        body.push_str(r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":["#);
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(item);
        }
        body.push_str("]}");
        match (self.send)(body.into_bytes(), self.items.len()) {
            Ok(()) => {
                self.sent_events += self.items.len() as u64;
                self.batches += 1;
            }
            Err(f) => self.failed = Some(f),
        }
        self.items.clear();
        self.bytes = 0;
    }

    /// Reads every file (`-`: standard input) into batches, reporting malformed input per
    /// file; returns the events read. Stops at the first failure to send.
    pub fn read_files(&mut self, files: &[std::path::PathBuf], ui: &Ui) -> Result<u64, Failure> {
        let mut read = 0u64;
        for file in files {
            let name = input_name(file);
            let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
            let mut sink = |e: Event<'_>| self.add(e.to_kubernetes().to_string());
            let result = if file == Path::new("-") {
                reader.read_all(std::io::stdin().lock(), &mut sink)
            } else {
                let f = std::fs::File::open(file)
                    .map_err(|e| Failure::Input(format!("{name}: {e}")))?;
                reader.read_all(f, &mut sink)
            };
            result.map_err(|e| Failure::Input(format!("{name}: {e}")))?;
            read += reader.stats.events;
            report_malformed(
                ui,
                &InputSummary {
                    name,
                    stats: reader.stats,
                },
            );
            if let Some(f) = self.failed.take() {
                return Err(f);
            }
        }
        self.flush();
        match self.failed.take() {
            Some(f) => Err(f),
            None => Ok(read),
        }
    }
}

/// Checks that every input names a file (or `-`).
pub(super) fn check_inputs(files: &[std::path::PathBuf]) -> Result<(), Failure> {
    for f in files {
        if f != Path::new("-") && !f.is_file() {
            return Err(Failure::Input(format!("{}: no such file", f.display())));
        }
    }
    Ok(())
}

/// Sends one batch until the server takes it; an answer that retrying cannot change fails.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let wait = match client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(MAX_WAIT),
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let reason = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or_else(|| text.trim().chars().take(200).collect());
                return Err(Failure::Input(format!("{url}: HTTP {status}: {reason}")));
            }
            Err(e) if attempt >= 5 => return Err(Failure::Input(format!("{url}: {e}"))),
            Err(_) => Duration::from_millis(500 << attempt.min(5)),
        };
        if attempt >= MAX_ATTEMPTS {
            return Err(Failure::Input(format!(
                "{url}: the server stayed busy through {MAX_ATTEMPTS} attempts"
            )));
        }
        tokio::time::sleep(wait).await;
    }
}

pub fn import(args: AuditImportArgs, ui: &Ui) -> Result<i32, Failure> {
    let base = args.server.trim_end_matches('/');
    match reqwest::Url::parse(base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            return Err(Failure::Input(format!(
                "--server {}: expected the server's http:// or https:// URL",
                args.server
            )));
        }
    }
    if args.batch_events == 0 || args.batch_events > MAX_BATCH_EVENTS {
        return Err(Failure::Input(format!(
            "--batch-events {}: expected 1 to {MAX_BATCH_EVENTS}",
            args.batch_events
        )));
    }
    if args.cluster.is_empty() || !args.cluster.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Failure::Input(format!(
            "--cluster {:?}: expected a cluster id (POST /v1/clusters answers it)",
            args.cluster
        )));
    }
    check_inputs(&args.files)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("osprey-import/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(args.insecure)
        .build()
        .map_err(|e| Failure::Internal(format!("HTTP client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the runtime: {e}")))?;
    let url = format!("{base}/v1/clusters/{}/audit", args.cluster);
    let mut sender = Batcher::new(args.batch_events, |body, _events| {
        runtime.block_on(post(&client, &url, &args.token, body))
    });
    let read = sender.read_files(&args.files, ui)?;
    ui.note(&format!(
        "sent {} of {read} events read in {} batches to cluster {}",
        sender.sent_events, sender.batches, args.cluster
    ));
    Ok(0)
}
