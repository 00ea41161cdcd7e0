//! Sending findings out: generic webhooks (JSON, HMAC-SHA256 signed), Alertmanager API v2 and
//! CloudEvents 1.0 (HTTP binding, batched mode).
//!
//! The store's outbox says what is due; the dispatcher sends each output's due deliveries in
//! batches of up to [`BATCH`], marks them delivered on a 2xx, and otherwise retries with
//! exponential backoff until the store gives up on them (`dead`, kept and listed by the API).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use osprey_model::SeverityLabel;
use osprey_store::{Delivery, Output, OutputKind, StoreError, StoredFinding, now_ms};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

use crate::App;

/// Deliveries per request.
pub const BATCH: usize = 100;
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 300_000;

/// Runs until `stop` turns true.
pub async fn run_dispatcher(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    // Redirects are not followed: a receiver that moved is a setting to change, and a
    // redirect would be a second destination to check.
    let client = match app
        .options
        .destinations
        .client(false)
        .timeout(app.options.output_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "outputs disabled: no HTTP client");
            return;
        }
    };
    loop {
        if *stop.borrow() {
            break;
        }
        if !app.is_leader() {
            // Servers sharing a database through a bus: the leader sends for all of them.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        match dispatch_due(&app, &client).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {
                // Sleep until the next delivery is due (at most a second), or until woken.
                let wait = match app.store.next_due().await {
                    Ok(Some(due)) => (due - now_ms()).clamp(10, 1000) as u64,
                    _ => 1000,
                };
                tokio::select! {
                    _ = app.outputs_wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "output dispatch failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Sends what is due now; returns how many deliveries were attempted.
pub async fn dispatch_due(app: &App, client: &reqwest::Client) -> Result<usize, StoreError> {
    let due = app.store.due_deliveries(now_ms(), 1000).await?;
    let attempted = due.len();
    let mut by_output: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for d in due {
        by_output.entry(d.output_id.clone()).or_default().push(d);
    }
    for (output_id, deliveries) in by_output {
        let Some(output) = app.store.output(&output_id).await? else {
            continue;
        };
        let key = output_key(app, &output);
        for chunk in deliveries.chunks(BATCH) {
            let mut ids: Vec<String> = chunk.iter().map(|d| d.finding_id.clone()).collect();
            ids.sort();
            ids.dedup();
            let findings = app.store.findings_by_id(&ids).await?;
            let seqs: Vec<i64> = chunk.iter().map(|d| d.seq).collect();
            let result = match &key {
                Ok(secret) => {
                    let destinations = &app.options.destinations;
                    send(client, destinations, &output, secret, chunk, &findings).await
                }
                Err(failed) => Err(failed.clone()),
            };
            let kind = output.kind.as_str();
            match result {
                Ok(()) => {
                    app.store.mark_delivered(&seqs).await?;
                    app.metrics.output_sent(kind, "delivered", seqs.len());
                }
                Err(error) => {
                    let attempts = chunk.iter().map(|d| d.attempts).max().unwrap_or(0);
                    let backoff = app
                        .options
                        .output_backoff
                        .as_millis()
                        .saturating_mul(1 << attempts.clamp(0, 20))
                        as i64;
                    tracing::warn!(output = %output.name, output_id = %output.id, error = %error.detail, attempts = attempts + 1, "output delivery failed");
                    app.store
                        .mark_failed(&seqs, &error.reason, backoff.min(MAX_BACKOFF_MS))
                        .await?;
                    app.metrics.output_sent(kind, "failed", seqs.len());
                }
            }
        }
    }
    Ok(attempted)
}

/// An output's HMAC key in clear: sealed with the server's key, or as stored (a key stored
/// before keys were sealed, or a server without a key).
fn output_key(app: &App, output: &Output) -> Result<String, Failed> {
    match &app.options.secret_key {
        Some(key) => key.open_text(&output.secret).map_err(|e| Failed {
            reason: "the output's key does not open with this server's secret key".into(),
            detail: e.to_string(),
        }),
        None => Ok(output.secret.clone()),
    }
}

/// Why a delivery failed: what the output's tenant is told (the policy's refusal, a failed
/// connection, a timeout or the HTTP status; never a socket error, the receiver's answer or
/// the URL, which may embed a secret), and the detail for the server's log.
#[derive(Debug, Clone)]
pub struct Failed {
    pub reason: String,
    pub detail: String,
}

impl Failed {
    fn of(e: reqwest::Error) -> Failed {
        // The URL may embed a secret (chat webhooks do): the log names the output instead.
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            detail.push_str(": ");
            detail.push_str(&c.to_string());
            cause = c.source();
        }
        Failed {
            reason: osprey_egress::public_reason(&e),
            detail,
        }
    }

    fn plain(reason: impl Into<String>) -> Failed {
        let reason = reason.into();
        Failed {
            detail: reason.clone(),
            reason,
        }
    }
}

/// One request to an output.
async fn send(
    client: &reqwest::Client,
    destinations: &osprey_egress::Policy,
    output: &Output,
    secret: &str,
    deliveries: &[Delivery],
    findings: &[StoredFinding],
) -> Result<(), Failed> {
    let finding = |id: &str| findings.iter().find(|f| f.finding.id == id);
    let now = jiff::Timestamp::now();
    let (url, content_type, body) = match output.kind {
        OutputKind::Webhook => {
            let events: Vec<Value> = deliveries
                .iter()
                .filter_map(|d| {
                    finding(&d.finding_id).map(|f| {
                        json!({ "delivery": d.seq, "event": format!("finding.{}", d.event), "finding": f })
                    })
                })
                .collect();
            (
                output.url.clone(),
                "application/json",
                json!({ "source": "osprey", "sent_at": now.to_string(), "events": events }),
            )
        }
        OutputKind::Alertmanager => {
            let alerts: Vec<Value> = deliveries
                .iter()
                .filter_map(|d| finding(&d.finding_id).map(alert))
                .collect();
            let base = output.url.trim_end_matches('/');
            let url = if base.ends_with("/api/v2/alerts") {
                base.to_string()
            } else {
                format!("{base}/api/v2/alerts")
            };
            (url, "application/json", Value::Array(alerts))
        }
        OutputKind::Cloudevents => {
            let events: Vec<Value> = deliveries
                .iter()
                .filter_map(|d| {
                    finding(&d.finding_id).map(|f| {
                        json!({
                            "specversion": "1.0",
                            "id": format!("{}-{}", output.id, d.seq),
                            "source": format!("urn:osprey:tenant:{}", f.tenant_id),
                            "type": format!("dev.osprey.finding.{}", d.event),
                            "subject": f.finding.id,
                            "time": now.to_string(),
                            "datacontenttype": "application/json",
                            "data": f,
                        })
                    })
                })
                .collect();
            (
                output.url.clone(),
                "application/cloudevents-batch+json",
                Value::Array(events),
            )
        }
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| Failed::plain(format!("encoding the deliveries: {e}")))?;
    let parsed = reqwest::Url::parse(&url).map_err(|_| Failed::plain("not a URL"))?;
    if let Err(refused) = destinations.check_url(&parsed) {
        return Err(Failed {
            reason: osprey_egress::NOT_ALLOWED.into(),
            detail: refused.to_string(),
        });
    }
    let mut request = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(
            reqwest::header::USER_AGENT,
            concat!("osprey/", env!("CARGO_PKG_VERSION")),
        );
    if output.kind == OutputKind::Webhook {
        let timestamp = now.as_second().to_string();
        request = request
            .header("X-Osprey-Timestamp", &timestamp)
            .header("X-Osprey-Signature", signature(secret, &timestamp, &body));
    }
    let response = request.body(body).send().await.map_err(Failed::of)?;
    let status = response.status();
    // The receiver's answer is not read: a status says enough, and a body is the receiver's
    // to write (of any size).
    drop(response);
    if status.is_success() {
        Ok(())
    } else {
        Err(Failed::plain(format!("HTTP {}", status.as_u16())))
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` under the output's secret: a receiver
/// recomputes it, compares in constant time and rejects old timestamps (replays).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A finding as an Alertmanager alert: labels identify it (Alertmanager groups and dedupes by
/// them), annotations describe it.
fn alert(f: &StoredFinding) -> Value {
    let x = &f.finding;
    let k = x.resource.kubernetes.as_ref();
    let severity = match x.severity.label {
        SeverityLabel::Critical => "critical",
        SeverityLabel::High => "high",
        SeverityLabel::Medium => "medium",
        SeverityLabel::Low => "low",
        SeverityLabel::Info | SeverityLabel::Untriaged => "info",
    };
    let mut labels = json!({
        "alertname": x.kind,
        "severity": severity,
        "finding_id": x.id,
        "tenant": f.tenant_id,
        "source": "osprey",
    });
    if let Some(k) = k {
        if !k.cluster.is_empty() {
            labels["cluster"] = json!(k.cluster);
        }
        if !k.namespace.is_empty() {
            labels["namespace"] = json!(k.namespace);
        }
    }
    let mut a = json!({
        "labels": labels,
        "annotations": {
            "summary": x.title,
            "description": x.description,
            "count": x.count.to_string(),
            "score": x.severity.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
        },
    });
    if let Some(t) = &x.first_seen {
        a["startsAt"] = json!(t);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = signature("k", "1700000000", b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature("k", "1700000001", b"{}"));
        assert_ne!(a, signature("k", "1700000000", b"{ }"));
        assert_ne!(a, signature("other", "1700000000", b"{}"));
        // Python: hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            a,
            "sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
        );
    }
}
