//! The investigation graph built offline (`osprey graph build`): audit logs are kept in a
//! local SQLite store as webhook batches of one cluster, then detected by the same detector as
//! a server's — findings, graph, finding groups and attack sequences — without an HTTP
//! listener; then a cluster snapshot and image scans made elsewhere complete it. The
//! directory is a server's data directory: `osprey serve --data DIR` serves
//! what was built, and building again into it adds only what it has not seen (events are
//! known by audit id and stage).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use osprey_model::{Finding, ImageResource, Package};
use osprey_store::{Cluster, FindingFilter, NewAuditBatch, Store, now_ms};
use serde::Deserialize;

use osprey_graph::snapshot::Snapshot;

use crate::cluster_snapshot::SnapshotTaken;
use crate::error::{ServerError, ServerResult};
use crate::{Options, launch};

/// Offline data is old by nature: nothing is dropped for its age.
const KEEP: Duration = Duration::from_secs(100 * 365 * 86_400);
/// Detection rounds that fail in a row before a build gives up (a round is retried every 2 s).
const GIVE_UP_AFTER: u32 = 5;

/// A local store taking one cluster's batches.
pub struct Offline {
    pub store: Store,
    pub cluster: Cluster,
}

/// What a build left in the store.
#[derive(Debug, Clone)]
pub struct Built {
    pub cluster: Cluster,
    /// Findings of the cluster in the store, attack sequences among them.
    pub findings: i64,
    pub sequences: i64,
}

impl Offline {
    /// Opens (creating) the store in `dir` and the cluster named `cluster` of its
    /// organization's administrator tenant.
    pub async fn open(dir: &Path, cluster: &str) -> ServerResult<Offline> {
        let store = Store::open_sqlite(dir).await?;
        launch::bootstrap(&store, dir).await?;
        let admin = store
            .administrator()
            .await?
            .ok_or_else(|| ServerError::Invalid("the store has no organization".into()))?;
        let existing = store
            .clusters(Some(&admin.id))
            .await?
            .into_iter()
            .find(|c| c.name == cluster);
        let cluster = match existing {
            Some(c) => c,
            None => store.create_cluster(&admin.id, cluster).await?.0,
        };
        Ok(Offline { store, cluster })
    }

    /// Keeps one EventList document of `events` events, as the webhook would.
    pub async fn keep(&self, body: &[u8], events: usize) -> ServerResult<()> {
        let level = Options::default().compression_level;
        let compressed = zstd::bulk::compress(body, level)
            .map_err(ServerError::io("compressing an audit batch"))?;
        self.store
            .append_audit_batches(&[NewAuditBatch {
                cluster_id: self.cluster.id.clone(),
                received_ms: now_ms(),
                events: i64::try_from(events).unwrap_or(i64::MAX),
                body: compressed,
            }])
            .await?;
        Ok(())
    }

    /// Detects everything kept and not yet detected, then stops.
    pub async fn detect(&self) -> ServerResult<Built> {
        let options = Options {
            scan_workers: 0,
            audit_retention: KEEP,
            graph_retention: Some(KEEP),
            ..Options::default()
        };
        let running = crate::start(self.store.clone(), options).await?;
        // The detector counted what waits when it loaded; a round's findings (and the attack
        // sequences they complete) are stored before it counts the round done.
        // Rounds that keep failing (a store that refuses the writes) end the build.
        while running.app.pending_events.load(Ordering::Relaxed) > 0 {
            let failing = running
                .app
                .detection_failing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some((rounds, error)) = failing.filter(|(n, _)| *n >= GIVE_UP_AFTER) {
                running.stop().await;
                return Err(ServerError::Engine(format!(
                    "detection failed {rounds} times in a row: {error}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running.stop().await;
        let filter = |types: Vec<String>| FindingFilter {
            cluster_id: Some(self.cluster.id.clone()),
            types,
            ..FindingFilter::default()
        };
        let findings = self.store.count_findings(&filter(Vec::new())).await?;
        let sequences = self
            .store
            .count_findings(&filter(vec![crate::sequences::SEQUENCE_KIND.to_string()]))
            .await?;
        Ok(Built {
            cluster: self.cluster.clone(),
            findings,
            sequences,
        })
    }

    /// Takes a cluster snapshot (`kubectl get pods,serviceaccounts,roles,… -A -o json`, read by
    /// `osprey_graph::snapshot::read`) of the build's cluster, as
    /// `PUT /v1/clusters/{id}/snapshot` does.
    pub async fn snapshot(&self, snapshot: Snapshot) -> ServerResult<SnapshotTaken> {
        crate::cluster_snapshot::apply(
            &self.store,
            osprey_graph::DEFAULT_MAX_EDGES_PER_HOUR,
            &self.cluster,
            snapshot,
            now_ms(),
        )
        .await
    }

    /// Stores the vulnerability findings of an image scan ([`read_scan`]) as the build's
    /// cluster's, linked to the image in the graph. Returns the image's digest and how many
    /// findings it had.
    pub async fn scan(&self, scan: ScanInput) -> ServerResult<(String, usize)> {
        let digest = scan.target.digest.clone().unwrap_or_default();
        let records = crate::scanner::scoped_records(
            &self.cluster.tenant_id,
            Some(&self.cluster.id),
            &scan.target,
            scan.findings,
        );
        let n = crate::scanner::store_foreign_findings(
            &self.store,
            records,
            osprey_graph::DEFAULT_MAX_EDGES_PER_HOUR,
        )
        .await?;
        Ok((digest, n))
    }

    /// Links the image `digest` to the packages of its SBOM in the graph, now (the image's
    /// profile lists them as `package` relations). Returns how many packages it linked.
    pub async fn sbom(&self, digest: &str, packages: &[Package]) -> ServerResult<usize> {
        if osprey_graph::EntityId::parse_key(osprey_graph::EntityType::Image, digest).is_err() {
            return Err(ServerError::Invalid(format!(
                "{digest:?} is not an image digest (sha256:…)"
            )));
        }
        let links = crate::detector::graph::scan_links(
            std::iter::empty(),
            &self.cluster.tenant_id,
            digest,
            packages,
            now_ms(),
            osprey_graph::DEFAULT_MAX_EDGES_PER_HOUR,
        );
        let linked = links
            .iter()
            .flat_map(|(_, d)| d.edges.iter())
            .filter(|(k, _)| k.relation == osprey_graph::Relation::Package)
            .count();
        let mut round = self.store.begin_write_round().await?;
        crate::detector::graph::write(&mut round, links).await?;
        round.commit().await?;
        Ok(linked)
    }
}

/// An image scan made elsewhere, read.
pub struct ScanInput {
    target: ImageResource,
    findings: Vec<Finding>,
}

/// Reads what `osprey image scan --format json` wrote about an image (one with a digest).
pub fn read_scan(body: &[u8]) -> ServerResult<ScanInput> {
    let doc: ScanDocument = serde_json::from_slice(body)
        .map_err(|e| ServerError::Invalid(format!("not an Osprey scan document: {e}")))?;
    if doc.schema != SCAN_SCHEMA {
        return Err(ServerError::Invalid(format!(
            "schema {:?}: expected {SCAN_SCHEMA} (osprey image scan --format json)",
            doc.schema
        )));
    }
    let digest = doc
        .target
        .digest
        .filter(|d| osprey_graph::EntityId::parse_key(osprey_graph::EntityType::Image, d).is_ok())
        .ok_or_else(|| {
            ServerError::Invalid(
                "the scan names no image digest (scan an image, not an SBOM)".into(),
            )
        })?;
    Ok(ScanInput {
        target: ImageResource {
            reference: doc.target.reference,
            digest: Some(digest),
            os: doc.target.os,
        },
        findings: doc.findings,
    })
}

/// What `osprey image scan --format json` writes (the part a build reads).
#[derive(Deserialize)]
struct ScanDocument {
    schema: String,
    target: ScanTarget,
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct ScanTarget {
    reference: String,
    digest: Option<String>,
    os: Option<String>,
}

const SCAN_SCHEMA: &str = "osprey-scan/1";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_build_whose_rounds_keep_failing_ends_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let offline = Offline::open(dir.path(), "prod").await.unwrap();
        let body = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/default/pods","user":{"username":"jane"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-20T09:00:00Z","stageTimestamp":"2026-11-20T09:00:00Z"}"#;
        offline.keep(body, 1).await.unwrap();
        osprey_store::testing::execute(
            &offline.store,
            "CREATE TRIGGER refuse BEFORE INSERT ON graph_edges BEGIN SELECT RAISE(ABORT, 'the disk said no'); END",
        )
        .await
        .unwrap();
        let e = offline.detect().await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "detection failed {GIVE_UP_AFTER} times in a row: "
            )),
            "{e}"
        );
        assert!(e.contains("the disk said no"), "{e}");
    }
}
