//! The audit webhook: `POST /v1/clusters/{id}/audit` with what the API server's webhook backend
//! sends (an `EventList`, or any shape the audit engine reads).
//!
//! A batch is checked (it must hold audit events), compressed, and handed to one writer task
//! that commits every batch waiting at that moment in one transaction (group commit); the
//! request is answered 200 only after that commit. Detection reads the kept batches behind
//! the writer. When detection falls behind by more than the configured number of events, or
//! the writer's queue is full, the webhook answers 429 with Retry-After — the API server keeps
//! the batch and retries — so memory stays bounded under any load.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use osprey_audit::event::{DecodeError, Decoder, Event};
use osprey_store::{NewAuditBatch, Role, StoreError, now_ms};
use tokio::sync::{mpsc, oneshot};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The API server's webhook batches are at most 10 MiB.
pub const MAX_BATCH_BYTES: usize = 10 * 1024 * 1024;
/// Bytes of batches one commit takes at most.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

pub struct WriteRequest {
    batch: NewAuditBatch,
    /// The batch's sequence number once committed, or the failure every waiter of the group
    /// commit shares.
    done: oneshot::Sender<Result<i64, Arc<StoreError>>>,
}

pub type WriteQueue = mpsc::Sender<WriteRequest>;

/// A batch kept: how many events it held and its sequence number.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Kept {
    events: u64,
    /// The batch's sequence number (with a bus: its first part's stream sequence).
    seq: u64,
}

#[utoipa::path(post, path = "/v1/clusters/{id}/audit", tag = "ingest",
    params(("id" = String, Path, description = "Cluster id")),
    request_body(content = String, content_type = "application/json",
        description = "What the API server's webhook backend sends: an audit EventList (up to 10 MiB), or any audit event shape"),
    responses(
        (status = 200, description = "Kept (committed) before this answer: events and the batch's sequence number", body = Kept),
        (status = 400, description = "No audit event in the body", body = crate::api::ErrorBody),
        (status = 401, description = "No, unknown or revoked token", body = crate::api::ErrorBody),
        (status = 403, description = "Not this cluster's ingest token", body = crate::api::ErrorBody),
        (status = 413, description = "Over 10 MiB"),
        (status = 429, description = "Detection is behind or the writer is full: retry after Retry-After", body = crate::api::ErrorBody),
        (status = 503, description = "Storage failed: retry after Retry-After", body = crate::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn receive(
    State(app): State<Arc<App>>,
    Path(cluster_id): Path<String>,
    caller: Result<Caller, ApiError>,
    request: axum::extract::Request,
) -> ApiResult<Json<Kept>> {
    // Authenticated before a byte of the body is read: an outsider's 10 MiB costs nothing.
    let caller = caller.inspect_err(|_| app.metrics.reject("auth"))?;
    let p = caller
        .require(Role::Ingest)
        .inspect_err(|_| app.metrics.reject("auth"))?;
    if p.role != Role::Ingest || p.cluster_id.as_deref() != Some(cluster_id.as_str()) {
        app.metrics.reject("auth");
        return Err(ApiError::forbidden(format!(
            "audit events for cluster {cluster_id} need that cluster's ingest token"
        )));
    }
    let body: Bytes = match axum::body::to_bytes(request.into_body(), MAX_BATCH_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            app.metrics.reject("invalid");
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the batch is larger than {MAX_BATCH_BYTES} bytes, or its upload broke"),
            ));
        }
    };
    if let Some(bus) = &app.bus {
        return publish(&app, bus, cluster_id, body).await;
    }
    let lag = app.pending_events.load(Ordering::Relaxed);
    if lag > app.options.max_pending_events {
        app.metrics.reject("overload");
        return Err(ApiError::busy(
            format!("detection is {lag} events behind; retry later"),
            app.options.retry_after_secs,
        ));
    }
    let level = app.options.compression_level;
    let checked = crate::error::blocking(move || check_and_compress(&body, level)).await?;
    let (events, compressed) = checked.inspect_err(|_| app.metrics.reject("invalid"))?;
    let (done, answer) = oneshot::channel();
    let request = WriteRequest {
        batch: NewAuditBatch {
            cluster_id,
            received_ms: now_ms(),
            events: events as i64,
            body: compressed,
        },
        done,
    };
    if app.writer.try_send(request).is_err() {
        app.metrics.reject("overload");
        return Err(ApiError::busy(
            "the audit writer is at capacity; retry later",
            app.options.retry_after_secs,
        ));
    }
    match answer.await {
        Ok(Ok(seq)) => Ok(Json(Kept {
            events: events as u64,
            seq: u64::try_from(seq).unwrap_or_default(),
        })),
        Ok(Err(e)) => {
            app.metrics.reject("storage");
            Err(ApiError::unavailable(
                {
                    tracing::error!(error = %e, "storing a batch failed");
                    "storing the batch failed (the server's log has the detail)"
                },
                app.options.retry_after_secs,
            ))
        }
        Err(_) => {
            app.metrics.reject("storage");
            Err(ApiError::unavailable(
                "the server is shutting down",
                app.options.retry_after_secs,
            ))
        }
    }
}

/// With a bus: the batch goes to JetStream (in parts when larger than a bus message may be),
/// answered once every part is stored there.
async fn publish(
    app: &App,
    bus: &crate::bus::Bus,
    cluster_id: String,
    body: Bytes,
) -> ApiResult<Json<Kept>> {
    let (messages, bytes) = bus.backlog();
    if bytes >= app.options.bus_max_bytes {
        app.metrics.reject("overload");
        return Err(ApiError::busy(
            format!("detection is {messages} batches behind; retry later"),
            app.options.retry_after_secs,
        ));
    }
    let level = app.options.compression_level;
    let limit = bus.max_message;
    let checked = crate::error::blocking(move || check_and_split(&body, level, limit)).await?;
    let parts = checked.inspect_err(|e| {
        app.metrics
            .reject(if e.status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "invalid"
            })
    })?;
    let received_ms = now_ms();
    let events: i64 = parts.iter().map(|(n, _)| *n as i64).sum();
    let started = Instant::now();
    let published = futures_util::future::join_all(parts.into_iter().map(|(n, body)| {
        bus.publish_batch(NewAuditBatch {
            cluster_id: cluster_id.clone(),
            received_ms,
            events: n as i64,
            body,
        })
    }))
    .await;
    app.metrics
        .ingest_commit_seconds
        .observe(started.elapsed().as_secs_f64());
    let mut seq = None;
    for p in published {
        match p {
            Ok(s) => {
                seq.get_or_insert(s);
            }
            Err(crate::bus::PublishFailure::Full) => {
                // Parts already stored are detected; the retry's repeat of them is not.
                app.metrics.reject("overload");
                return Err(ApiError::busy(
                    "detection is behind (the bus is full); retry later",
                    app.options.retry_after_secs,
                ));
            }
            Err(crate::bus::PublishFailure::Failed(e)) => {
                app.metrics.reject("storage");
                return Err(ApiError::unavailable(
                    format!("putting the batch on the bus failed: {e}"),
                    app.options.retry_after_secs,
                ));
            }
        }
    }
    app.metrics.events_ingested.inc_by(events as u64);
    app.metrics.batches_ingested.inc();
    Ok(Json(Kept {
        events: events as u64,
        seq: seq.unwrap_or_default(),
    }))
}

/// Checks and compresses a batch as [`check_and_compress`] does; when the result is larger
/// than `limit` bytes, the events are written out again as several EventLists (in order),
/// each compressed to at most `limit`. Returns (events, compressed body) per part.
pub fn check_and_split(body: &[u8], level: i32, limit: usize) -> ApiResult<Vec<(usize, Vec<u8>)>> {
    let (events, compressed) = check_and_compress(body, level)?;
    if compressed.len() <= limit {
        return Ok(vec![(events, compressed)]);
    }
    let mut lists: Vec<Vec<serde_json::Value>> = vec![Vec::new()];
    let mut size = 0usize;
    Decoder::default().decode(body, &mut |e: Event<'_>| {
        let v = e.to_kubernetes();
        // An upper bound of the compressed size: the text itself.
        let n = v.to_string().len() + 1;
        let last = lists.last_mut().expect("never empty");
        if !last.is_empty() && size + n > limit {
            lists.push(Vec::new());
            size = 0;
        }
        size += n;
        lists.last_mut().expect("never empty").push(v);
    });
    let mut parts = Vec::with_capacity(lists.len());
    for items in lists {
        let n = items.len();
        let list = serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items});
        let text = serde_json::to_vec(&list).map_err(ApiError::internal)?;
        let part = zstd::bulk::compress(&text, level).map_err(ApiError::internal)?;
        if part.len() > limit {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "an audit event of {} bytes is larger than a message on the bus may be ({limit} bytes)",
                    text.len()
                ),
            ));
        }
        parts.push((n, part));
    }
    Ok(parts)
}

/// Counts the events of a batch (refusing one that holds none) and compresses it for keeping.
pub fn check_and_compress(body: &[u8], level: i32) -> ApiResult<(usize, Vec<u8>)> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: expected an audit EventList",
        ));
    }
    let decoded = Decoder::default().count(body);
    // A batch cut short keeps the events before the cut when decoded; it is refused whole.
    if let Some(e) = decoded
        .errors
        .iter()
        .find(|e| matches!(e, DecodeError::Syntax(_)))
    {
        return Err(ApiError::bad_request(format!(
            "body is not a whole JSON document: {e}"
        )));
    }
    if decoded.events == 0 {
        let why = decoded
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no events".into());
        return Err(ApiError::bad_request(format!(
            "body holds no audit event: {why}"
        )));
    }
    let compressed = zstd::bulk::compress(body, level).map_err(ApiError::internal)?;
    Ok((decoded.events, compressed))
}

/// The one writer: takes every request waiting, commits them together, answers each.
pub async fn run_writer(
    app: Arc<App>,
    mut queue: mpsc::Receiver<WriteRequest>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batches: Vec<NewAuditBatch> = Vec::new();
    let mut answers = Vec::new();
    loop {
        // The app holds a sender, so the queue never closes by itself: stop says when to end,
        // after taking what is still queued.
        let first = if *stop.borrow() {
            queue.try_recv().ok()
        } else {
            tokio::select! {
                biased;
                r = queue.recv() => r,
                _ = stop.changed() => queue.try_recv().ok(),
            }
        };
        let Some(first) = first else { break };
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(r) = next.take() {
            bytes += r.batch.body.len();
            batches.push(r.batch);
            answers.push(r.done);
            if bytes < MAX_GROUP_BYTES {
                next = queue.try_recv().ok();
            }
        }
        let started = Instant::now();
        let result = app.store.append_audit_batches(&batches).await;
        app.metrics
            .ingest_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(seqs) => {
                let events: i64 = batches.iter().map(|b| b.events).sum();
                app.pending_events.fetch_add(events, Ordering::Relaxed);
                app.metrics.events_ingested.inc_by(events as u64);
                app.metrics.batches_ingested.inc_by(batches.len() as u64);
                app.detector_wake.notify_one();
                for (done, seq) in answers.drain(..).zip(seqs) {
                    let _ = done.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batches = batches.len(), "keeping audit batches failed");
                let e = Arc::new(e);
                for done in answers.drain(..) {
                    let _ = done.send(Err(Arc::clone(&e)));
                }
            }
        }
        batches.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_list(n: usize) -> Vec<u8> {
        let items: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
                    "auditID": format!("id-{i}"), "stage": "ResponseComplete",
                    "requestURI": format!("/api/v1/namespaces/ns-{i}/configmaps"), "verb": "create",
                    "user": {"username": format!("user-{i}")}, "sourceIPs": ["10.0.0.7"],
                    "objectRef": {"resource": "configmaps", "namespace": format!("ns-{i}"), "name": format!("{i:x}{}", i * 7919)},
                    "responseStatus": {"code": 201},
                    "requestReceivedTimestamp": "2026-11-20T09:00:00.000000Z",
                    "stageTimestamp": "2026-11-20T09:00:00.001000Z"
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}))
            .unwrap()
    }

    fn ids(compressed: &[u8]) -> Vec<String> {
        let body = zstd::bulk::decompress(compressed, MAX_BATCH_BYTES + 1).unwrap();
        let mut out = Vec::new();
        Decoder::default().decode(&body, &mut |e: Event<'_>| out.push(e.audit_id.to_string()));
        out
    }

    #[test]
    fn a_batch_within_the_bus_limit_stays_whole() {
        let body = event_list(50);
        let parts = check_and_split(&body, 1, 1 << 20).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, 50);
        assert_eq!(zstd::bulk::decompress(&parts[0].1, 1 << 20).unwrap(), body);
    }

    #[test]
    fn a_batch_over_the_bus_limit_is_split_in_order() {
        let body = event_list(2000);
        let limit = 16 * 1024;
        let parts = check_and_split(&body, 1, limit).unwrap();
        assert!(parts.len() > 2, "{} parts", parts.len());
        assert!(parts.iter().all(|(_, p)| p.len() <= limit));
        assert_eq!(parts.iter().map(|(n, _)| n).sum::<usize>(), 2000);
        let all: Vec<String> = parts.iter().flat_map(|(_, p)| ids(p)).collect();
        let expected: Vec<String> = (0..2000).map(|i| format!("id-{i}")).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn a_batch_cut_short_is_refused_whole_and_a_whole_one_counted() {
        let body = event_list(40);
        let (events, _) = check_and_compress(&body, 1).unwrap();
        assert_eq!(events, 40);
        // Cut inside the last event: the 39 before it decode, but the batch is not whole.
        let cut = &body[..body.len() - 30];
        let err = check_and_compress(cut, 1).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            err.message
                .starts_with("body is not a whole JSON document: invalid JSON"),
            "{}",
            err.message
        );
        let junk = br#"{"kind":"EventList","items":[{"kind":"Event"},7]}"#;
        let err = check_and_compress(junk, 1).unwrap_err();
        assert!(
            err.message.starts_with("body holds no audit event: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_event_larger_than_a_bus_message_is_refused_with_its_size() {
        let err = check_and_split(&event_list(3), 1, 64).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            err.message.contains("larger than a message on the bus"),
            "{}",
            err.message
        );
    }
}
