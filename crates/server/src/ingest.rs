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
use osprey_audit::event::{Decoder, Event};
use osprey_store::{NewAuditBatch, Role, now_ms};
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
    done: oneshot::Sender<Result<i64, String>>,
}

pub type WriteQueue = mpsc::Sender<WriteRequest>;

#[utoipa::path(post, path = "/v1/clusters/{id}/audit", tag = "ingest",
    params(("id" = String, Path, description = "Cluster id")),
    request_body(content = String, content_type = "application/json",
        description = "What the API server's webhook backend sends: an audit EventList (up to 10 MiB), or any audit event shape"),
    responses(
        (status = 200, description = "Kept (committed) before this answer: events and the batch's sequence number", body = serde_json::Value),
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
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
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
    let lag = app.pending_events.load(Ordering::Relaxed);
    if lag > app.options.max_pending_events {
        app.metrics.reject("overload");
        return Err(ApiError::busy(
            format!("detection is {lag} events behind; retry later"),
            app.options.retry_after_secs,
        ));
    }
    let level = app.options.compression_level;
    let checked = tokio::task::spawn_blocking(move || check_and_compress(&body, level))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
        Ok(Ok(seq)) => Ok(Json(serde_json::json!({ "events": events, "seq": seq }))),
        Ok(Err(e)) => {
            app.metrics.reject("storage");
            Err(ApiError::unavailable(
                format!("storing the batch failed: {e}"),
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

/// Counts the events of a batch (refusing one that holds none) and compresses it for keeping.
pub fn check_and_compress(body: &[u8], level: i32) -> ApiResult<(usize, Vec<u8>)> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: expected an audit EventList",
        ));
    }
    let decoded = Decoder::default().decode(body, &mut |_: Event<'_>| {});
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
    let compressed = zstd::bulk::compress(body, level)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
                for done in answers.drain(..) {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
        batches.clear();
    }
}
