//! Scale-out over NATS JetStream (`--bus nats://…`, with `--database postgres://…`): several
//! `osprey serve` processes share one database and split the work between them. The bus does
//! the distributing — delivery, redelivery, who holds what — so nothing here is home-made
//! consensus:
//!
//! - **The event stream.** The webhook publishes each accepted batch (zstd, as kept) to the
//!   stream `OSPREY_<ns>_AUDIT` (work-queue retention, file storage, bounded in bytes) and
//!   answers 200 once JetStream has stored it. The subject carries the batch's partition:
//!   `hash(cluster) mod PARTITIONS`, so one cluster's batches stay in order in one partition.
//! - **Detection, partitioned by cluster.** Each partition has one durable pull consumer. A
//!   server detects a partition while it holds the partition's lease: a key in the key-value
//!   bucket `osprey_<ns>_leases`, renewed every few seconds and gone [`LEASE_TTL`] after its
//!   holder stops renewing it. Every server heartbeats a key of its own there too, and takes
//!   its fair share, `ceil(PARTITIONS / live servers)`: a new server gets partitions handed
//!   over, a dead one's are taken after the TTL. The lease's revision is also a fence in the
//!   database: a round commits only while the fence stands at its lease (a server that lost
//!   a lease without noticing cannot write after the new holder started).
//! - **Scans, partitioned by job.** Queued jobs are messages on `OSPREY_<ns>_SCANS` (one
//!   subject per job), taken by whichever server's worker is free; a worker confirms progress
//!   while it scans, and a job whose worker died is redelivered to another.
//! - **One leader** (a lease too) runs what must run once: outputs, re-matching and
//!   scheduled re-scans, expiry of old audit data, re-publishing jobs the bus missed.
//!
//! `<ns>` is the database's own bus namespace (made by the first server, kept in the store), so
//! every server of one database finds the same streams, and two databases on one NATS never
//! mix.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{ServerError, ServerResult};
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{HeaderMap, header};
use futures_util::StreamExt;
use osprey_store::{Store, new_id};
use tokio::sync::{Notify, watch};

/// Detection partitions. Fixed: a batch's subject, and so its consumer, depends on it.
pub const PARTITIONS: u32 = 16;
/// A lease not renewed for this long is free.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often leases are renewed (and shares recomputed).
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A batch not acknowledged this long after delivery goes to the partition's holder again.
const AUDIT_ACK_WAIT: Duration = Duration::from_secs(30);
/// Batches of one partition handed out and not yet acknowledged.
const AUDIT_MAX_ACK_PENDING: i64 = 64;
/// A scan whose worker sent no progress this long goes to another worker.
const SCAN_ACK_WAIT: Duration = Duration::from_secs(60);
/// How often a worker confirms progress on its scan.
pub const SCAN_PROGRESS_EVERY: Duration = Duration::from_secs(15);
/// Room left in a message for headers.
const HEADER_ROOM: usize = 4096;

const CLUSTER_HEADER: &str = "Osprey-Cluster";
const EVENTS_HEADER: &str = "Osprey-Events";
const RECEIVED_HEADER: &str = "Osprey-Received";

/// The partition of a cluster's batches: FNV-1a of the cluster id. Written out rather than
/// taken from std's hasher, whose output may change between releases: every server, of any
/// version, must agree.
pub fn partition_of(cluster_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in cluster_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % PARTITIONS
}

/// A partition this server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The lease's revision: also the partition's fence token in the database.
    pub revision: u64,
    /// The server has more than its share: the detector hands this one back.
    pub release: bool,
}

#[derive(Default)]
struct Leases {
    partitions: BTreeMap<u32, Held>,
    /// Partitions the detector has let go of; their keys are deleted at the next renewal.
    released: Vec<u32>,
    leader: Option<u64>,
    servers: usize,
}

/// Why a batch was not published.
#[derive(Debug)]
pub enum PublishFailure {
    /// The stream holds as much as it may (detection is behind): answer 429.
    Full,
    Failed(String),
}

/// A batch delivered by the bus: its message id and the batch (its sequence number the
/// stream's).
#[derive(Debug)]
pub struct BusBatch {
    pub bus_id: String,
    pub batch: osprey_store::AuditBatch,
}

/// The connection to the bus and this server's leases.
pub struct Bus {
    pub namespace: String,
    pub server_id: String,
    client: async_nats::Client,
    js: jetstream::Context,
    audit: stream::Stream,
    scans_stream: stream::Stream,
    scans: consumer::PullConsumer,
    kv: kv::Store,
    /// The largest batch message the server takes (its `max_payload`, less header room).
    pub max_message: usize,
    leases: Mutex<Leases>,
    /// Signalled when this server's partitions change.
    pub leases_changed: Notify,
    backlog_messages: AtomicU64,
    backlog_bytes: AtomicU64,
}

impl Bus {
    /// Connects to the NATS server (first, before a server creates anything: a wrong or
    /// unreachable URL is found at once).
    pub async fn reach(url: &str) -> ServerResult<async_nats::Client> {
        tokio::time::timeout(
            Duration::from_secs(10),
            async_nats::ConnectOptions::new()
                .name("osprey serve")
                .connect(url),
        )
        .await
        .map_err(|_| ServerError::Bus("no answer within 10 s".into()))?
        .map_err(ServerError::bus)
    }

    /// Makes (or finds) the database's streams, consumers and lease bucket on a connection.
    /// `max_bytes` bounds the audit stream: beyond it the webhook answers 429.
    pub async fn open(
        client: async_nats::Client,
        store: &Store,
        max_bytes: i64,
    ) -> ServerResult<Bus> {
        let max_payload = client.server_info().max_payload;
        let namespace = String::from_utf8_lossy(
            &store
                .state_or_insert("bus/namespace", &new_id().as_bytes()[..12])
                .await
                .map_err(|e| ServerError::Bus(format!("the database: {e}")))?,
        )
        .into_owned();
        let js = jetstream::new(client.clone());
        let jetstream_error = |what: &str, e: &dyn std::fmt::Display| {
            ServerError::Bus(format!("{what}: {e} (is JetStream enabled on the server?)"))
        };
        let audit = js
            .get_or_create_stream(stream::Config {
                name: format!("OSPREY_{namespace}_AUDIT"),
                description: Some("Osprey: audit batches waiting for detection".into()),
                subjects: vec![format!("osprey.{namespace}.audit.*")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_bytes,
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_error("the audit stream", &e))?;
        let scans_stream = js
            .get_or_create_stream(stream::Config {
                name: format!("OSPREY_{namespace}_SCANS"),
                description: Some("Osprey: queued image scans".into()),
                subjects: vec![format!("osprey.{namespace}.scans.*")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_error("the scan stream", &e))?;
        let scans = scans_stream
            .get_or_create_consumer(
                "workers",
                consumer::pull::Config {
                    durable_name: Some("workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: SCAN_ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| jetstream_error("the scan consumer", &e))?;
        // The bucket's stream is made here with the key-value conventions (`KV_<bucket>`,
        // subjects `$KV.<bucket>.>`, one message per key, roll-ups, direct get) rather than by
        // the client's create_key_value, which first reads the account's JetStream info in a
        // shape NATS 2.9 does not send (it fails there).
        let bucket = format!("osprey_{namespace}_leases");
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("Osprey: servers and the work they hold".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: LEASE_TTL,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| jetstream_error("the lease bucket", &e))?;
        let kv = js
            .get_key_value(&bucket)
            .await
            .map_err(|e| jetstream_error("the lease bucket", &e))?;
        Ok(Bus {
            namespace,
            server_id: new_id()[..12].to_string(),
            client,
            js,
            audit,
            scans_stream,
            scans,
            kv,
            max_message: max_payload.saturating_sub(HEADER_ROOM).max(1024),
            leases: Mutex::new(Leases::default()),
            leases_changed: Notify::new(),
            backlog_messages: AtomicU64::new(0),
            backlog_bytes: AtomicU64::new(0),
        })
    }

    fn audit_subject(&self, partition: u32) -> String {
        format!("osprey.{}.audit.{partition}", self.namespace)
    }

    fn scan_subject(&self, job_id: &str) -> String {
        format!("osprey.{}.scans.{job_id}", self.namespace)
    }

    /// Publishes one batch (already compressed, at most [`Bus::max_message`]) and waits until
    /// JetStream has stored it. Returns its stream sequence.
    pub async fn publish_batch(
        &self,
        batch: osprey_store::NewAuditBatch,
    ) -> Result<u64, PublishFailure> {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, new_id().as_str());
        headers.insert(CLUSTER_HEADER, batch.cluster_id.as_str());
        headers.insert(EVENTS_HEADER, batch.events.to_string().as_str());
        headers.insert(RECEIVED_HEADER, batch.received_ms.to_string().as_str());
        let subject = self.audit_subject(partition_of(&batch.cluster_id));
        let failed = |e: &dyn std::fmt::Display| {
            let text = e.to_string();
            // The stream's byte bound (discard new) answers "maximum bytes exceeded".
            if text.contains("maximum") {
                PublishFailure::Full
            } else {
                PublishFailure::Failed(text)
            }
        };
        let ack = self
            .js
            .publish_with_headers(subject, headers, batch.body.into())
            .await
            .map_err(|e| failed(&e))?
            .await
            .map_err(|e| failed(&e))?;
        Ok(ack.sequence)
    }

    /// Reads a delivered batch back; `Err` names what is wrong with a message that is not one.
    pub fn batch(m: &jetstream::Message) -> ServerResult<BusBatch> {
        let headers = m
            .headers
            .as_ref()
            .ok_or_else(|| ServerError::Bus("no headers".into()))?;
        let get = |name: &str| {
            headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .ok_or_else(|| ServerError::Bus(format!("no {name} header")))
        };
        let number = |name: &str| -> ServerResult<i64> {
            get(name)?
                .parse()
                .map_err(|_| ServerError::Bus(format!("{name}: not a number")))
        };
        let info = m.info().map_err(ServerError::bus)?;
        Ok(BusBatch {
            bus_id: get(header::NATS_MESSAGE_ID.as_ref())?,
            batch: osprey_store::AuditBatch {
                seq: info.stream_sequence as i64,
                cluster_id: get(CLUSTER_HEADER)?,
                received_ms: number(RECEIVED_HEADER)?,
                events: number(EVENTS_HEADER)?,
                body: m.payload.to_vec(),
            },
        })
    }

    /// The consumer of one partition's batches.
    pub async fn partition_consumer(&self, partition: u32) -> ServerResult<consumer::PullConsumer> {
        let name = format!("detect-{partition}");
        self.audit
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.audit_subject(partition),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: AUDIT_ACK_WAIT,
                    max_ack_pending: AUDIT_MAX_ACK_PENDING,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ServerError::Bus(format!("consumer {name}: {e}")))
    }

    /// Puts a queued job on the bus, on a subject of its own (so the leader can tell whether
    /// the bus holds it). No message id: JetStream would drop the re-publication of a job
    /// whose earlier message was consumed as a duplicate; a job that lands twice is harmless
    /// (the second worker's claim finds it taken).
    pub async fn queue_scan(&self, job_id: &str) -> ServerResult<()> {
        self.js
            .publish(self.scan_subject(job_id), job_id.to_string().into())
            .await
            .map_err(ServerError::bus)?
            .await
            .map_err(ServerError::bus)?;
        Ok(())
    }

    /// Whether a job's message is on the bus (waiting or being worked on).
    async fn scan_on_bus(&self, job_id: &str) -> ServerResult<bool> {
        use jetstream::stream::LastRawMessageErrorKind;
        match self
            .scans_stream
            .get_last_raw_message_by_subject(&self.scan_subject(job_id))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(ServerError::bus(e)),
        }
    }

    /// Publishes queued jobs the bus does not hold (queued by a server that stopped before it
    /// published them). Returns how many.
    pub async fn requeue_missing_scans(&self, store: &Store) -> ServerResult<usize> {
        let before = osprey_store::now_ms() - 30_000;
        let ids = store
            .queued_scans_before(before, 500)
            .await
            .map_err(ServerError::bus)?;
        let mut n = 0;
        for id in ids {
            if !self.scan_on_bus(&id).await? {
                self.queue_scan(&id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The next scan job handed to this server, waiting at most `wait`.
    pub async fn next_scan(&self, wait: Duration) -> ServerResult<Option<jetstream::Message>> {
        let mut batch = self
            .scans
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(ServerError::bus)?;
        match batch.next().await {
            Some(Ok(m)) => Ok(Some(m)),
            Some(Err(e)) => Err(ServerError::bus(e)),
            None => Ok(None),
        }
    }

    /// The partitions this server holds now.
    pub fn held(&self) -> BTreeMap<u32, Held> {
        self.lock().partitions.clone()
    }

    /// The detector has let go of a partition (after saving what it learned).
    pub fn released(&self, partition: u32) {
        let mut l = self.lock();
        if l.partitions.remove(&partition).is_some() {
            l.released.push(partition);
        }
    }

    /// The detector found a partition's fence raised by another server: it is not ours.
    pub fn lost(&self, partition: u32) {
        self.lock().partitions.remove(&partition);
    }

    /// Whether the connection to the NATS server is up (it reconnects by itself).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether this server runs the once-only work now.
    pub fn is_leader(&self) -> bool {
        self.lock().leader.is_some()
    }

    /// Live servers sharing the bus (this one included), as of the last renewal.
    pub fn servers(&self) -> usize {
        self.lock().servers.max(1)
    }

    /// Batches waiting on the bus, and their bytes, as of the last renewal.
    pub fn backlog(&self) -> (u64, u64) {
        (
            self.backlog_messages.load(Ordering::Relaxed),
            self.backlog_bytes.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the leases until `stop` (then [`Bus::release`] gives them back).
    pub async fn run_leases(&self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.renew().await {
                tracing::warn!(error = %e, "renewing bus leases failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// One renewal: heartbeat, keep what is held, take or hand back partitions towards the
    /// fair share, keep or take the leader's lease, read the backlog.
    pub async fn renew(&self) -> ServerResult<()> {
        let me = self.server_id.as_str();
        self.kv
            .put(format!("server.{me}"), me.to_string().into())
            .await
            .map_err(ServerError::bus)?;
        let mut keys = self.kv.keys().await.map_err(ServerError::bus)?;
        let mut servers = 0usize;
        while let Some(k) = keys.next().await {
            if k.map_err(ServerError::bus)?.starts_with("server.") {
                servers += 1;
            }
        }
        let (held, released, leader) = {
            let mut l = self.lock();
            l.servers = servers.max(1);
            (
                l.partitions.clone(),
                std::mem::take(&mut l.released),
                l.leader,
            )
        };
        let mut changed = false;
        for p in released {
            self.delete_if_mine(&partition_key(p)).await;
        }
        let mut now_held = BTreeMap::new();
        for (p, h) in &held {
            match self.keep(&partition_key(*p), h.revision).await {
                Ok(revision) => {
                    now_held.insert(*p, Held { revision, ..*h });
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "lost a detection partition's lease");
                    changed = true;
                }
            }
        }
        let share = (PARTITIONS as usize).div_ceil(servers.max(1));
        if now_held.len() < share {
            // Start looking at an offset of this server's own, so servers starting together
            // do not all race for partition 0.
            let start = partition_of(me);
            for i in 0..PARTITIONS {
                if now_held.len() >= share {
                    break;
                }
                let p = (start + i) % PARTITIONS;
                if now_held.contains_key(&p) {
                    continue;
                }
                if let Ok(revision) = self
                    .kv
                    .create(partition_key(p), me.to_string().into())
                    .await
                {
                    tracing::info!(partition = p, "took a detection partition");
                    now_held.insert(
                        p,
                        Held {
                            revision,
                            release: false,
                        },
                    );
                    changed = true;
                }
            }
        }
        let mut excess = now_held.len().saturating_sub(share);
        for h in now_held.values_mut().rev() {
            if excess == 0 {
                break;
            }
            if !h.release {
                changed = true;
            }
            h.release = true;
            excess -= 1;
        }
        let leader = match leader {
            Some(revision) => self.keep("leader", revision).await.ok(),
            None => self.kv.create("leader", me.to_string().into()).await.ok(),
        };
        let info = self.audit.get_info().await.map_err(ServerError::bus)?;
        self.backlog_messages
            .store(info.state.messages, Ordering::Relaxed);
        self.backlog_bytes
            .store(info.state.bytes, Ordering::Relaxed);
        {
            let mut l = self.lock();
            // Partitions the detector gave up meanwhile stay given up.
            now_held.retain(|p, _| !l.released.contains(p));
            l.partitions = now_held;
            l.leader = leader;
        }
        if changed {
            self.leases_changed.notify_one();
        }
        Ok(())
    }

    /// Renews a lease held at `revision`; returns its new revision. A renewal that failed
    /// while the lease is still this server's (a passing error) keeps it at the revision it
    /// has, to be renewed next time, rather than leaving it to lapse with nobody able to take
    /// it meanwhile.
    async fn keep(&self, key: &str, revision: u64) -> ServerResult<u64> {
        let me = self.server_id.as_str();
        match self.kv.update(key, me.to_string().into(), revision).await {
            Ok(revision) => Ok(revision),
            Err(e) => match self.kv.entry(key).await {
                Ok(Some(entry))
                    if entry.operation == kv::Operation::Put
                        && entry.revision == revision
                        && entry.value.as_ref() == me.as_bytes() =>
                {
                    Ok(revision)
                }
                _ => Err(ServerError::bus(e)),
            },
        }
    }

    /// Deletes a key if this server holds it (by the revision it holds: never another
    /// holder's).
    async fn delete_if_mine(&self, key: &str) {
        if let Ok(Some(e)) = self.kv.entry(key).await
            && e.operation == kv::Operation::Put
            && e.value.as_ref() == self.server_id.as_bytes()
        {
            let _ = self.kv.delete_expect_revision(key, Some(e.revision)).await;
        }
    }

    /// Gives back the partitions' leases (after the detector stopped), so the other servers
    /// take them at once rather than after [`LEASE_TTL`]; `everything`: the leader's lease and
    /// the heartbeat too (once nothing runs any more).
    pub async fn release(&self, everything: bool) {
        let keys: Vec<String> = {
            let mut l = self.lock();
            let mut keys: Vec<String> = l.partitions.keys().map(|p| partition_key(*p)).collect();
            keys.extend(l.released.drain(..).map(partition_key));
            l.partitions.clear();
            if everything && l.leader.take().is_some() {
                keys.push("leader".into());
            }
            keys
        };
        for key in keys {
            self.delete_if_mine(&key).await;
        }
        if everything {
            let _ = self.kv.delete(format!("server.{}", self.server_id)).await;
        }
    }
}

/// Deletes a namespace's streams and lease bucket (for tests and for decommissioning a
/// database: servers using it must be stopped).
pub async fn delete_namespace(url: &str, namespace: &str) -> ServerResult<()> {
    let client = async_nats::connect(url).await.map_err(ServerError::bus)?;
    let js = jetstream::new(client);
    for stream in [
        format!("OSPREY_{namespace}_AUDIT"),
        format!("OSPREY_{namespace}_SCANS"),
    ] {
        js.delete_stream(&stream)
            .await
            .map_err(|e| ServerError::Bus(format!("{stream}: {e}")))?;
    }
    js.delete_key_value(format!("osprey_{namespace}_leases"))
        .await
        .map_err(|e| ServerError::Bus(format!("the lease bucket: {e}")))?;
    Ok(())
}

fn partition_key(p: u32) -> String {
    format!("partition.{p}")
}

/// The fence of a partition in the database.
pub fn fence_key(partition: u32) -> String {
    format!("bus/fence/{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Pinned values: servers of different versions must agree on them.
        assert_eq!(partition_of(""), 0x811c_9dc5 % PARTITIONS);
        assert_eq!(partition_of("a"), 0xe40c_292c % PARTITIONS);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let p = partition_of(&format!("cluster-{i}"));
            assert!(p < PARTITIONS);
            seen.insert(p);
        }
        assert_eq!(
            seen.len(),
            PARTITIONS as usize,
            "200 clusters use every partition"
        );
    }
}
