//! One scan job, from the image to the transaction that stores what it found.

use osprey_image::{Credentials, Image, OpenOptions, Reference, RegistryOptions, Source};
use osprey_inventory::Inventory;
use osprey_malware::report::{ScanType, Subject, Target, finding};
use osprey_model::{Finding, ImageResource, KubernetesResource};
use osprey_store::{
    FindingRecord, FindingSource, Sbom, ScanJob, ScanKind, ScanResult, ScanState, StoreError,
    now_ms,
};
use tokio::runtime::Handle;

use super::rematch::{apply_vulnerabilities, severities, vulnerability_records};
use super::{ACTOR, Scans, scoped_id};
use crate::error::{ServerError, ServerResult};

impl Scans {
    /// Opens the job's image: a registry reference, through the tenant's registry settings
    /// (other sources only for an on-demand scan on a server that allows local images, and the
    /// demo's own image).
    fn open(&self, handle: &Handle, job: &ScanJob) -> ServerResult<Image> {
        // Without local sources, what a job names is a registry reference whatever else it
        // could be read as (a pod's image `app` is not the file `./app`, nor `dir:/etc`):
        // a triggered or scheduled job's image comes from an audit event.
        let options = &self.app.options;
        let local = (options.allow_local_images && job.kind == ScanKind::OnDemand)
            || options.trusted_local_image.as_deref() == Some(job.image.as_str());
        let (source, reference) = if local {
            let source = Source::parse(&job.image)?;
            let reference = match &source {
                Source::Registry(text) => Some(
                    text.parse::<Reference>()
                        .map_err(|e| ServerError::Invalid(format!("image {text:?}: {e}")))?,
                ),
                _ => None,
            };
            (source, reference)
        } else {
            let (bare, reference) = registry_reference(&job.image).map_err(|e| {
                ServerError::Invalid(format!(
                    "image {:?}: not a registry reference: {e}",
                    job.image
                ))
            })?;
            (Source::Registry(bare.to_string()), Some(reference))
        };
        let entry = match reference {
            Some(reference) => handle.block_on(
                self.app
                    .store
                    .registry_for(&job.tenant_id, &reference.registry),
            )?,
            None => None,
        };
        let options = OpenOptions {
            registry: self.registry_options(entry.as_ref())?,
            ..OpenOptions::default()
        };
        Ok(Image::open(&source, &options)?)
    }

    /// How a job reaches registries: the server's destination policy, the job's deadline and
    /// download cap, never docker's config; and the tenant's entry for the registry (its
    /// credentials, whether it is insecure) when it has one.
    fn registry_options(
        &self,
        entry: Option<&osprey_store::Registry>,
    ) -> ServerResult<RegistryOptions> {
        let options = RegistryOptions {
            docker_config: false,
            destinations: self.app.options.destinations.clone(),
            deadline: Some(std::time::Instant::now() + self.app.options.scan_timeout),
            max_download_bytes: Some(self.app.options.scan_max_download_bytes),
            ..RegistryOptions::default()
        };
        let Some(r) = entry else {
            return Ok(options);
        };
        let credentials = if r.username.is_empty() {
            None
        } else {
            let key = self.app.options.secret_key.as_ref().ok_or_else(|| {
                ServerError::Secret(format!(
                    "registry {}: its password is sealed and this server has no secret key",
                    r.host
                ))
            })?;
            let password = key
                .open(&r.sealed_password)
                .map_err(|e| ServerError::Secret(format!("registry {}: {e}", r.host)))?;
            Some(Credentials::Basic {
                username: r.username.clone(),
                password: String::from_utf8(password).map_err(|_| {
                    ServerError::Secret(format!(
                        "registry {}: the stored password is not text",
                        r.host
                    ))
                })?,
            })
        };
        Ok(RegistryOptions {
            insecure: r.insecure,
            credentials,
            ..options
        })
    }

    /// Runs one job to its end (stored); an error is a failure to record. The steps: open the
    /// image, skip it when a trigger finds it scanned within the window, take its inventory,
    /// scan it for malware, match its packages, and store it all in one transaction.
    pub(super) fn scan(&self, handle: &Handle, job: &ScanJob) -> ServerResult<ScanResult> {
        let image = self.open(handle, job)?;
        let digest = image
            .manifest_digest
            .as_ref()
            .or(image.config_digest.as_ref())
            .map(|d| d.to_string())
            .unwrap_or_else(|| format!("source:{}", image.source));
        if let Some(skipped) = self.skip_recent(handle, job, &digest)? {
            return Ok(skipped);
        }
        let cache = self.cache();
        let inventory = osprey_inventory::inventory(
            &image,
            &osprey_inventory::Options {
                cache: cache.clone(),
                ..Default::default()
            },
        )
        .map_err(|e| ServerError::Engine(format!("inventory of {}: {e}", job.image)))?;
        let image_resource = ImageResource {
            reference: job.image.clone(),
            digest: Some(digest.clone()),
            os: inventory.os.as_ref().map(|o| o.display_name()),
        };
        let malware = self.malware_finding(job, &image, &image_resource, cache.as_ref())?;
        let db = self.vulndb()?;
        let vulns = match &db {
            Some(db) => vulnerability_records(
                db,
                &job.tenant_id,
                job.cluster_id.as_deref(),
                &image_resource,
                &inventory,
            )?,
            None => Vec::new(),
        };
        let matched_db = db.as_ref().map(|d| d.built_at.clone()).unwrap_or_default();
        let result = self.store_results(
            handle,
            job,
            Found {
                digest,
                image: image_resource,
                inventory,
                malware,
                vulns,
                matched_db,
            },
        )?;
        self.app.outputs_wake.notify_one();
        Ok(result)
    }

    /// A triggered job whose digest was scanned within the trigger window ends `skipped`,
    /// naming the scan it reuses.
    fn skip_recent(
        &self,
        handle: &Handle,
        job: &ScanJob,
        digest: &str,
    ) -> ServerResult<Option<ScanResult>> {
        if job.kind != ScanKind::Triggered {
            return Ok(None);
        }
        let store = &self.app.store;
        let since = now_ms() - self.app.options.trigger_window.as_millis() as i64;
        let Some(prev) =
            handle.block_on(store.recent_scan_of_digest(&job.tenant_id, digest, since))?
        else {
            return Ok(None);
        };
        let r = ScanResult {
            state: ScanState::Skipped,
            detail: format!(
                "image digest {digest} was scanned by job {} within the trigger window",
                prev.id
            ),
            image_digest: Some(digest.to_string()),
            reused_from: Some(prev.id.clone()),
            packages: prev.packages,
            vulnerabilities: prev.vulnerabilities,
            threats: prev.threats,
            finding_ids: prev.finding_ids,
        };
        handle.block_on(store.finish_scan(&job.id, &r))?;
        Ok(Some(r))
    }

    /// The malware scan of the image, layer by layer: the finding names the workload when the
    /// job has one (a triggered scan), else the image as a container. `None` when clean.
    fn malware_finding(
        &self,
        job: &ScanJob,
        image: &Image,
        image_resource: &ImageResource,
        cache: Option<&osprey_image::LayerCache>,
    ) -> ServerResult<Option<Finding>> {
        let engine = self.engine()?;
        let failed = |e: osprey_image::ImageError| {
            ServerError::Engine(format!("malware scan of {}: {e}", job.image))
        };
        let workload: Option<KubernetesResource> = job
            .workload
            .clone()
            .and_then(|w| serde_json::from_value(w).ok());
        if let Some(w) = &workload {
            return Ok(osprey_malware::trigger::scan_workload_image(
                engine,
                image,
                w,
                job.trigger_finding_id.as_deref(),
                &job.id,
                cache,
            )
            .map_err(failed)?
            .finding);
        }
        let s = osprey_malware::image::scan_image(engine, image, cache).map_err(failed)?;
        let target = Target {
            source: job.image.clone(),
            subject: Subject::Container,
            image: Some(image_resource.clone()),
            kubernetes: None,
            volumes: Vec::new(),
        };
        let scan_type = match job.kind {
            ScanKind::Scheduled => ScanType::Scheduled,
            _ => ScanType::OnDemand,
        };
        Ok(finding(&s.outcome, &target, &scan_type, &job.id))
    }

    /// One transaction: the vulnerability findings against those open before, the malware
    /// finding, the digest's SBOM and the job's end.
    fn store_results(
        &self,
        handle: &Handle,
        job: &ScanJob,
        found: Found,
    ) -> ServerResult<ScanResult> {
        let store = &self.app.store;
        let Found {
            digest,
            image,
            inventory,
            malware,
            vulns,
            matched_db,
        } = found;
        let threats = malware
            .as_ref()
            .and_then(|f| f.malware.as_ref())
            .map_or(0, |m| m.threats.len() as i64);
        let malware_record = malware.map(|mut f| {
            f.id = scoped_id(&[FindingSource::Malware.as_str(), &job.tenant_id, &digest]);
            FindingRecord {
                finding: f,
                tenant_id: job.tenant_id.clone(),
                cluster_id: job.cluster_id.clone(),
                source: FindingSource::Malware,
                sample: false,
            }
        });
        let inventory_json = serde_json::to_vec(&inventory)
            .map_err(|e| ServerError::Engine(format!("inventory: {e}")))?;
        let compressed = zstd::bulk::compress(&inventory_json, 3)
            .map_err(|e| ServerError::Engine(format!("inventory: {e}")))?;
        let mut result = ScanResult {
            state: ScanState::Done,
            detail: String::new(),
            image_digest: Some(digest.clone()),
            reused_from: None,
            packages: inventory.packages.len() as i64,
            vulnerabilities: vulns.len() as i64,
            threats,
            finding_ids: Vec::new(),
        };
        let labels = severities(vulns.iter().chain(malware_record.as_ref()));
        let o = &self.app.options;
        // The scan in the graph: its findings linked to the image (and the cluster), the
        // image linked to its packages.
        let links = match o.graph_retention {
            Some(_) => crate::detector::graph::scan_links(
                vulns.iter().chain(malware_record.as_ref()),
                &job.tenant_id,
                &digest,
                &inventory.packages,
                now_ms(),
                o.graph_max_edges_per_hour,
            ),
            None => Vec::new(),
        };
        handle.block_on(async {
            let previous = store.sbom(&job.tenant_id, &digest).await?;
            let mut round = store.begin_write_round().await?;
            crate::detector::graph::write(&mut round, links).await?;
            let (open, mut upserted) = apply_vulnerabilities(
                &mut round,
                previous.map(|s| s.vuln_finding_ids).unwrap_or_default(),
                vulns,
                &matched_db,
            )
            .await?;
            let mut ids = open.clone();
            if let Some(m) = malware_record {
                ids.push(m.finding.id.clone());
                upserted.extend(round.upsert_findings(vec![m], ACTOR).await?);
            }
            round
                .put_sbom(&Sbom {
                    tenant_id: job.tenant_id.clone(),
                    image_digest: digest.clone(),
                    reference: job.image.clone(),
                    cluster_id: job.cluster_id.clone(),
                    os: image.os.clone().unwrap_or_default(),
                    packages: inventory.packages.len() as i64,
                    inventory: compressed,
                    vuln_finding_ids: open,
                    matched_db: matched_db.clone(),
                    scanned_ms: now_ms(),
                    matched_ms: now_ms(),
                })
                .await?;
            result.finding_ids = ids;
            round.finish_scan(&job.id, &result).await?;
            round.commit().await?;
            self.app.metrics.count_created(&upserted, &labels);
            Ok::<_, StoreError>(())
        })?;
        Ok(result)
    }
}

/// What a scan found, on its way to the store.
struct Found {
    digest: String,
    image: ImageResource,
    inventory: Inventory,
    malware: Option<Finding>,
    vulns: Vec<FindingRecord>,
    matched_db: String,
}

/// An image named as a registry reference (`registry:` prefix optional): the reference as
/// text without the prefix, and parsed.
pub fn registry_reference(text: &str) -> ServerResult<(&str, Reference)> {
    let bare = text.strip_prefix("registry:").unwrap_or(text);
    // The reference parser says what is wrong in a line of its own; callers add the image.
    let reference = bare.parse::<Reference>().map_err(ServerError::Invalid)?;
    Ok((bare, reference))
}
