//! Keeping stored SBOMs current: matched again whenever the vulnerability database changes
//! (new vulnerabilities become findings, vanished ones are resolved), and images due for a
//! re-scan queued again.

use std::collections::{HashMap, HashSet};

use osprey_inventory::Inventory;
use osprey_model::{Finding, ImageResource, SeverityLabel};
use osprey_store::{
    DetectionRound, FindingRecord, FindingSource, NewScan, ScanKind, StoreError, Upserted,
    Workflow, now_ms,
};
use osprey_vuln::matcher::{MatchOptions, match_packages};
use tokio::runtime::Handle;

use super::{ACTOR, LoadedDb, MAX_INVENTORY_BYTES, REMATCH_BATCH, Scans, scoped_id};
use crate::error::{ServerError, ServerResult};

impl Scans {
    /// Re-matches SBOMs against a changed database and queues due re-scans.
    pub(super) fn maintain(&self, handle: &Handle) -> ServerResult<()> {
        if let Some(bus) = &self.app.bus {
            // Not fatal: re-matching and re-scans below run whatever the bus says.
            match handle.block_on(bus.requeue_missing_scans(&self.app.store)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "queued scans the bus did not hold put on it"),
                Err(e) => tracing::warn!(error = %e, "checking queued scans against the bus"),
            }
        }
        if let Some(db) = self.vulndb()? {
            let mut total = 0usize;
            loop {
                let due = handle
                    .block_on(self.app.store.sboms_to_rematch(&db.built_at, REMATCH_BATCH))?;
                if due.is_empty() {
                    break;
                }
                for info in due {
                    if let Err(e) = self.rematch(handle, &db, &info.tenant_id, &info.image_digest) {
                        // Not retried until the next database: one bad SBOM must not hold
                        // up the others.
                        tracing::error!(digest = info.image_digest, error = %e, "re-matching a stored SBOM failed");
                        handle.block_on(self.app.store.skip_sbom_match(
                            &info.tenant_id,
                            &info.image_digest,
                            &db.built_at,
                        ))?;
                    }
                    total += 1;
                }
            }
            if total > 0 {
                tracing::info!(
                    sboms = total,
                    built_at = db.built_at,
                    "stored SBOMs matched against the new vulnerability database"
                );
                self.app.outputs_wake.notify_one();
            }
        }
        if let Some(interval) = self.app.options.rescan_interval {
            let before = now_ms() - interval.as_millis() as i64;
            let due = handle.block_on(self.app.store.images_due_for_rescan(before, 100))?;
            for (tenant_id, reference, cluster_id) in due {
                handle.block_on(async {
                    // A tenant whose queue is full is re-scanned later (its images stay due).
                    if self.app.store.queued_scans(&tenant_id).await?
                        >= self.app.options.scan_queue_per_tenant
                    {
                        return Ok(());
                    }
                    if !self.app.store.scan_pending(&tenant_id, &reference).await? {
                        self.app
                            .store
                            .enqueue_scan(&NewScan {
                                tenant_id: tenant_id.clone(),
                                cluster_id,
                                image: reference.clone(),
                                kind: ScanKind::Scheduled,
                                trigger_finding_id: None,
                                workload: None,
                            })
                            .await
                            .map(|job| self.app.scan_queued(&job.id))?;
                    }
                    self.app.store.touch_sboms(&tenant_id, &reference).await
                })?;
            }
        }
        Ok(())
    }

    /// Matches one stored SBOM again; new vulnerabilities become findings, vanished ones are
    /// resolved.
    pub fn rematch(
        &self,
        handle: &Handle,
        db: &LoadedDb,
        tenant_id: &str,
        digest: &str,
    ) -> ServerResult<()> {
        let store = &self.app.store;
        let Some(sbom) = handle.block_on(store.sbom(tenant_id, digest))? else {
            return Ok(());
        };
        let inventory: Inventory = zstd::bulk::decompress(&sbom.inventory, MAX_INVENTORY_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|j| serde_json::from_slice(&j).map_err(|e| e.to_string()))
            .map_err(|e| {
                ServerError::Store(StoreError::Corrupt {
                    what: format!("SBOM of {digest}"),
                    error: e,
                })
            })?;
        let target = ImageResource {
            reference: sbom.reference.clone(),
            digest: Some(digest.to_string()),
            os: (!sbom.os.is_empty()).then(|| sbom.os.clone()),
        };
        let vulns = vulnerability_records(
            db,
            tenant_id,
            sbom.cluster_id.as_deref(),
            &target,
            &inventory,
        )?;
        let labels = severities(vulns.iter());
        let o = &self.app.options;
        let links = match o.graph_retention {
            Some(_) => crate::detector::graph::finding_links(&vulns, o.graph_max_edges_per_hour),
            None => Vec::new(),
        };
        handle.block_on(async {
            let mut round = store.begin_write_round().await?;
            crate::detector::graph::write(&mut round, links).await?;
            let (open, upserted) =
                apply_vulnerabilities(&mut round, sbom.vuln_finding_ids, vulns, &db.built_at)
                    .await?;
            round
                .set_sbom_match(tenant_id, digest, &open, &db.built_at)
                .await?;
            round.commit().await?;
            self.app.metrics.count_created(&upserted, &labels);
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }
}

/// The vulnerability findings of an inventory, with ids scoped to the tenant and digest.
pub(super) fn vulnerability_records(
    db: &LoadedDb,
    tenant_id: &str,
    cluster_id: Option<&str>,
    target: &ImageResource,
    inventory: &Inventory,
) -> ServerResult<Vec<FindingRecord>> {
    let report = match_packages(
        &db.db,
        &inventory.packages,
        inventory.os.as_ref(),
        &MatchOptions::default(),
    )
    .map_err(|e| ServerError::Engine(format!("matching {}: {e}", target.reference)))?;
    Ok(scoped_records(
        tenant_id,
        cluster_id,
        target,
        osprey_vuln::report::findings(target, &inventory.packages, &report.matches),
    ))
}

/// Vulnerability findings of an image as records of a tenant, their ids scoped to the tenant
/// and digest.
pub(crate) fn scoped_records(
    tenant_id: &str,
    cluster_id: Option<&str>,
    target: &ImageResource,
    findings: Vec<Finding>,
) -> Vec<FindingRecord> {
    let digest = target.digest.as_deref().unwrap_or_default();
    findings
        .into_iter()
        .map(|mut f: Finding| {
            let vid = f
                .vulnerability
                .as_ref()
                .map_or_else(|| f.id.clone(), |v| v.id.clone());
            f.id = scoped_id(&[
                FindingSource::Vulnerability.as_str(),
                tenant_id,
                digest,
                &vid,
            ]);
            FindingRecord {
                finding: f,
                tenant_id: tenant_id.to_string(),
                cluster_id: cluster_id.map(str::to_string),
                source: FindingSource::Vulnerability,
                sample: false,
            }
        })
        .collect()
}

/// Stores vulnerability findings a scan made elsewhere (`osprey image scan --format json`,
/// read by `osprey graph build --scan`) as the tenant's, with their graph links, in one
/// round. Returns how many were stored.
pub(crate) async fn store_foreign_findings(
    store: &osprey_store::Store,
    records: Vec<FindingRecord>,
    max_edges_per_hour: usize,
) -> ServerResult<usize> {
    let links = crate::detector::graph::finding_links(records.iter(), max_edges_per_hour);
    let n = records.len();
    let mut round = store.begin_write_round().await?;
    crate::detector::graph::write(&mut round, links).await?;
    round.upsert_findings(records, ACTOR).await?;
    round.commit().await?;
    Ok(n)
}

/// Finding id → severity, for the metrics of what an upsert created.
pub(super) fn severities<'r>(
    records: impl Iterator<Item = &'r FindingRecord>,
) -> HashMap<String, SeverityLabel> {
    records
        .map(|r| (r.finding.id.clone(), r.finding.severity.label))
        .collect()
}

/// Stores a digest's vulnerability findings against what was open before: new ones are
/// created (or reopened), those no longer matched are resolved; findings still open are left
/// as they are, so a re-scan or re-match sends nothing for them. Returns the open ids and what
/// the upsert did.
pub(super) async fn apply_vulnerabilities(
    round: &mut DetectionRound<'_>,
    previous: Vec<String>,
    records: Vec<FindingRecord>,
    built_at: &str,
) -> Result<(Vec<String>, Vec<Upserted>), StoreError> {
    let before: HashSet<String> = previous.into_iter().collect();
    let open: Vec<String> = records.iter().map(|r| r.finding.id.clone()).collect();
    let now_open: HashSet<&String> = open.iter().collect();
    let fresh: Vec<FindingRecord> = records
        .into_iter()
        .filter(|r| !before.contains(&r.finding.id))
        .collect();
    let fresh_ids: Vec<String> = fresh.iter().map(|r| r.finding.id.clone()).collect();
    let upserted = round.upsert_findings(fresh, ACTOR).await?;
    // A vulnerability that was resolved and is matched again is open again.
    round
        .set_workflow(
            &fresh_ids,
            Workflow::New,
            ACTOR,
            &serde_json::json!({ "reason": "matched again", "database": built_at }),
        )
        .await?;
    let gone: Vec<String> = before
        .iter()
        .filter(|id| !now_open.contains(id))
        .cloned()
        .collect();
    round
        .set_workflow(
            &gone,
            Workflow::Resolved,
            ACTOR,
            &serde_json::json!({ "reason": "no longer matched", "database": built_at }),
        )
        .await?;
    Ok((open, upserted))
}
