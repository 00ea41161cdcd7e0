//! Impact read from the store: the running pods of the tenants a caller sees, each cluster's
//! RBAC, and what an image, a vulnerability, a subject or a pod resolves to, handed to
//! `osprey_graph::impact`. An image's references come from the scans that saw its digest; a
//! vulnerability's images from the tenant's vulnerability findings.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use osprey_graph::impact::{self, Impact, LivePod, Target, normal_reference};
use osprey_graph::rbac::{Body, Rbac, RbacKind, RbacObject};
use osprey_graph::{EntityId, EntityType, PodProperties};
use osprey_store::{EntityRow, FindingFilter, FindingState, Store};
use serde::Serialize;

use crate::error::ServerResult;

/// Pods read at most per request.
pub const MAX_PODS: usize = 200_000;
const POD_PAGE: i64 = 5_000;
/// Vulnerability findings read at most for one vulnerability.
const MAX_VULN_FINDINGS: i64 = 5_000;

/// What the impact of an entity is about.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImpactEntity {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub id: String,
}

/// What the graph knows of a cluster's RBAC.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterRbac {
    /// `cluster/{id}`.
    pub id: String,
    /// Roles and bindings known.
    pub rbac_objects: usize,
    /// When the last snapshot was taken (none: RBAC from audited writes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// The impact of an entity.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImpactView {
    pub entity: ImpactEntity,
    /// The image digests and references it resolved to (images, vulnerabilities).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(flatten)]
    pub impact: Impact,
    /// The clusters of the pods concerned, with their RBAC.
    pub clusters: Vec<ClusterRbac>,
    /// What to know about this answer: RBAC unknown, a pod deleted, pods not read.
    pub notices: Vec<String>,
}

/// Whether impact is answered for entities of a type.
pub fn applies_to(kind: EntityType) -> bool {
    matches!(
        kind,
        EntityType::Image | EntityType::Vulnerability | EntityType::Subject | EntityType::Pod
    )
}

/// The impact of `id` as the `tenants` see it; `Ok(None)`: the entity is unknown (or of a
/// type impact is not for).
pub async fn impact(
    store: &Store,
    tenants: &[String],
    id: &EntityId,
) -> ServerResult<Option<ImpactView>> {
    let mut notices = Vec::new();
    let mut images = Vec::new();
    // Step 1: what the entity resolves to, and where its pods can be.
    let (target, cluster) = match id.kind() {
        EntityType::Image => {
            let digest = id.key().to_string();
            let mut references = Vec::new();
            let mut known = false;
            for t in tenants {
                known |= store.graph_entity(t, &id.to_string()).await?.is_some();
                if let Some(s) = store.sbom(t, &digest).await? {
                    known = true;
                    references.push(normal_reference(&s.reference));
                }
                // A scan made elsewhere (`osprey graph build --scan`) left findings, not an
                // SBOM: their image names the reference.
                let scanned = store
                    .findings(&FindingFilter {
                        tenant_id: Some(t.clone()),
                        resource: Some(digest.clone()),
                        limit: 20,
                        ..FindingFilter::default()
                    })
                    .await?;
                for f in scanned.findings {
                    if let Some(image) = f.finding.resource.image.as_ref()
                        && image.digest.as_deref() == Some(digest.as_str())
                    {
                        references.push(normal_reference(&image.reference));
                    }
                }
            }
            if !known {
                return Ok(None);
            }
            references.sort();
            references.dedup();
            images.push(digest.clone());
            images.extend(references.iter().cloned());
            (
                Target::Images {
                    digests: vec![digest],
                    references,
                },
                None,
            )
        }
        EntityType::Vulnerability => {
            let (digests, references) = vulnerable_images(store, tenants, id.key()).await?;
            if digests.is_empty() && references.is_empty() {
                return Ok(None);
            }
            images.extend(digests.iter().cloned());
            images.extend(references.iter().cloned());
            (
                Target::Images {
                    digests,
                    references,
                },
                None,
            )
        }
        EntityType::Subject => {
            let cluster = id.cluster_id().unwrap_or_default().to_string();
            (
                Target::Subject {
                    cluster: cluster.clone(),
                    username: id.name(),
                },
                Some(cluster),
            )
        }
        EntityType::Pod => {
            let Some((cluster, namespace, name)) = pod_parts(id) else {
                return Ok(None);
            };
            let mut found = None;
            for t in tenants {
                found = found.or(store.graph_entity(t, &id.to_string()).await?);
            }
            let Some(row) = found else {
                return Ok(None);
            };
            if let Some(deleted) = row
                .properties
                .as_ref()
                .and_then(|p| p.get("deleted"))
                .and_then(|d| d.as_str())
            {
                notices.push(format!(
                    "the pod was deleted at {deleted}: nothing runs it any more"
                ));
            }
            (
                Target::Pod {
                    cluster: cluster.to_string(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                },
                Some(cluster.to_string()),
            )
        }
        // Impact is for the four types above (the API refuses others before asking).
        _ => return Ok(None),
    };
    // Step 2: the running pods, and the tenant of each cluster.
    let (pods, owners, cut) = live_pods(store, tenants, cluster.as_deref()).await?;
    if cut {
        notices.push(format!(
            "more than {MAX_PODS} pods: only the first {MAX_PODS} were considered"
        ));
    }
    // Step 3: each cluster's RBAC.
    let mut rbac: HashMap<String, Rbac> = HashMap::new();
    let mut clusters = Vec::new();
    let mut cluster_ids: Vec<&String> = owners.keys().collect();
    if let Some(c) = &cluster
        && !owners.contains_key(c)
    {
        cluster_ids.push(c);
    }
    for c in cluster_ids {
        let Some(tenant) = owners.get(c).cloned().or_else(|| tenants.first().cloned()) else {
            continue;
        };
        let objects = rbac_objects(store, &tenant, c).await?;
        let entity = store
            .graph_entity(&tenant, &EntityId::cluster(c).to_string())
            .await?;
        let snapshot = entity.and_then(|e| e.properties).and_then(|p| {
            p.get("snapshot")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        });
        clusters.push(ClusterRbac {
            id: EntityId::cluster(c).to_string(),
            rbac_objects: objects.len(),
            snapshot,
        });
        rbac.insert(c.clone(), Rbac::new(objects));
    }
    let impact = impact::impact(&target, &pods, &rbac);
    // Step 4: what the answer cannot know: the clusters concerned whose RBAC is unknown.
    let mut known: Vec<(&String, &Rbac)> = rbac.iter().collect();
    known.sort_by_key(|(c, _)| *c);
    for (c, known) in known {
        let concerned = cluster.is_some()
            || impact
                .namespaces
                .iter()
                .any(|n| n.id.starts_with(&format!("namespace/{c}/")));
        if known.is_empty() && concerned {
            notices.push(format!(
                "cluster/{c}: no RBAC known, so who can reach its pods is not known; PUT /v1/clusters/{c}/snapshot"
            ));
        }
    }
    Ok(Some(ImpactView {
        entity: ImpactEntity {
            kind: id.kind(),
            id: id.to_string(),
        },
        images,
        impact,
        clusters,
        notices,
    }))
}

/// The running pods of the tenants (of one cluster when given), each cluster's tenant, and
/// whether there were more than [`MAX_PODS`].
async fn live_pods(
    store: &Store,
    tenants: &[String],
    cluster: Option<&str>,
) -> ServerResult<(Vec<LivePod>, BTreeMap<String, String>, bool)> {
    let prefix = match cluster {
        Some(c) => format!("pod/{c}/"),
        None => "pod/".to_string(),
    };
    let mut pods = Vec::new();
    let mut owners = BTreeMap::new();
    let mut cut = false;
    for t in tenants {
        each_pod(store, t, &prefix, |row| {
            if pods.len() == MAX_PODS {
                cut = true;
                return ControlFlow::Break(());
            }
            let Some(props) = row.properties.filter(|p| p.get("deleted").is_none()) else {
                return ControlFlow::Continue(());
            };
            let (Ok(id), Ok(properties)) = (
                EntityId::parse(&row.id),
                serde_json::from_value::<PodProperties>(props),
            ) else {
                return ControlFlow::Continue(());
            };
            if let Some((c, ns, name)) = pod_parts(&id) {
                owners.insert(c.to_string(), t.clone());
                pods.push(LivePod {
                    cluster: c.to_string(),
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    properties,
                });
            }
            ControlFlow::Continue(())
        })
        .await?;
        if cut {
            break;
        }
    }
    Ok((pods, owners, cut))
}

/// Every pod entity of a tenant whose id starts with `prefix` (`pod/{cluster}/`), in id
/// order, page by page, until `each` breaks.
pub async fn each_pod(
    store: &Store,
    tenant: &str,
    prefix: &str,
    mut each: impl FnMut(EntityRow) -> ControlFlow<()>,
) -> ServerResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store
            .search_graph_entities(tenant, Some("pod"), prefix, after.as_deref(), POD_PAGE)
            .await?;
        let full = page.len() == POD_PAGE as usize;
        for row in page {
            after = Some(row.id.clone());
            if each(row).is_break() {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// A pod's cluster, namespace and name.
pub fn pod_parts(id: &EntityId) -> Option<(&str, &str, &str)> {
    let mut parts = id.key().splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// A cluster's RBAC objects as stored (rows that no longer read are left out).
pub async fn rbac_objects(
    store: &Store,
    tenant: &str,
    cluster: &str,
) -> ServerResult<Vec<RbacObject>> {
    Ok(store
        .rbac(tenant, cluster)
        .await?
        .into_iter()
        .filter_map(|row| {
            Some(RbacObject {
                kind: RbacKind::of_kind(&row.kind)?,
                body: serde_json::from_str::<Body>(row.body.as_deref()?).ok()?,
                namespace: row.namespace,
                name: row.name,
            })
        })
        .collect())
}

/// The digests and references of the images the tenants' open vulnerability findings of
/// `vulnerability` (its id or an alias) are about.
async fn vulnerable_images(
    store: &Store,
    tenants: &[String],
    vulnerability: &str,
) -> ServerResult<(Vec<String>, Vec<String>)> {
    let mut digests = Vec::new();
    let mut references = Vec::new();
    for t in tenants {
        let page = store
            .findings(&FindingFilter {
                tenant_id: Some(t.clone()),
                types: vec!["Vulnerability:*".into()],
                state: Some(FindingState::Active),
                text: Some(vulnerability.to_string()),
                limit: MAX_VULN_FINDINGS,
                ..FindingFilter::default()
            })
            .await?;
        for f in page.findings {
            let Some(v) = &f.finding.vulnerability else {
                continue;
            };
            if v.id != vulnerability && !v.aliases.iter().any(|a| a == vulnerability) {
                continue;
            }
            let Some(image) = &f.finding.resource.image else {
                continue;
            };
            if let Some(d) = &image.digest {
                digests.push(d.clone());
            }
            references.push(normal_reference(&image.reference));
        }
    }
    digests.sort();
    digests.dedup();
    references.sort();
    references.dedup();
    Ok((digests, references))
}
