//! Posts webhook batches to `osprey serve` from several connections at once, the way API
//! servers do, and reports what was accepted per second and how long answers took.
//!
//! Input is a JSON-lines audit log (`osprey audit simulate` makes one); every event is sent
//! once, in batches of `--batch` events, so no two batches repeat an audit id. A 429 is counted
//! and the batch is retried after Retry-After, as the API server's webhook backend does.
//! With `--repeat`, a run that has sent every event before its time is up sends them again,
//! each audit id prefixed with the pass (`r1-…`), so that they are new events to the server
//! and a run lasts its `--seconds` whatever the size of the input.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Base URL of the server (http://127.0.0.1:8080).
    #[arg(long)]
    url: String,
    /// Cluster id to post to.
    #[arg(long)]
    cluster: String,
    /// The cluster's ingest token.
    #[arg(long, env = "OSPREY_INGEST_TOKEN")]
    token: String,
    /// JSON-lines audit events.
    #[arg(long)]
    events: std::path::PathBuf,
    /// Events per batch (the API server's default webhook batch is 400).
    #[arg(long, default_value_t = 400)]
    batch: usize,
    /// Connections posting at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds even if events are left.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Send the input again (with new audit ids) until the time is up.
    #[arg(long)]
    repeat: bool,
}

struct Outcome {
    latencies: Vec<Duration>,
    events: usize,
    busy: usize,
    failed: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.events)
        .with_context(|| format!("{}", args.events.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() || args.batch == 0 || args.concurrency == 0 {
        bail!("need events, --batch ≥ 1 and --concurrency ≥ 1");
    }
    let batches: Arc<Vec<(usize, Vec<u8>)>> = Arc::new(
        lines
            .chunks(args.batch)
            .map(|c| {
                let body = format!(
                    "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{}]}}",
                    c.join(",")
                );
                (c.len(), body.into_bytes())
            })
            .collect(),
    );
    drop(text);
    let url = format!(
        "{}/v1/clusters/{}/audit",
        args.url.trim_end_matches('/'),
        args.cluster
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, token, batches, next) = (
            client.clone(),
            url.clone(),
            args.token.clone(),
            batches.clone(),
            next.clone(),
        );
        let repeat = args.repeat;
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome {
                latencies: Vec::new(),
                events: 0,
                busy: 0,
                failed: 0,
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let pass = i / batches.len();
                if (pass > 0 && !repeat) || Instant::now() >= deadline {
                    break;
                }
                let (n, body) = &batches[i % batches.len()];
                let body = if pass == 0 {
                    body.clone()
                } else {
                    renamed(body, pass)
                };
                loop {
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(resp) if resp.status().as_u16() == 200 => {
                            let _ = resp.bytes().await;
                            o.latencies.push(t.elapsed());
                            o.events += n;
                            break;
                        }
                        Ok(resp) if resp.status().as_u16() == 429 => {
                            o.busy += 1;
                            let wait = resp
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            if Instant::now() + Duration::from_secs(wait) >= deadline {
                                break;
                            }
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                        _ => {
                            o.failed += 1;
                            break;
                        }
                    }
                }
            }
            o
        }));
    }
    let mut latencies = Vec::new();
    let (mut events, mut busy, mut failed) = (0, 0, 0);
    for t in tasks {
        let o = t.await?;
        latencies.extend(o.latencies);
        events += o.events;
        busy += o.busy;
        failed += o.failed;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{{\"events\":{events},\"batches\":{},\"seconds\":{secs:.2},\"events_per_second\":{:.0},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"busy_429\":{busy},\"failed\":{failed}}}",
        latencies.len(),
        events as f64 / secs,
        pct(0.50),
        pct(0.99),
        latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
    );
    Ok(())
}

/// A batch whose audit ids are prefixed with the pass, so the server takes it as new events.
fn renamed(body: &[u8], pass: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    text.replace("\"auditID\":\"", &format!("\"auditID\":\"r{pass}-"))
        .into_bytes()
}
