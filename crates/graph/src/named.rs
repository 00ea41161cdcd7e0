//! The entities a finding names: its cluster, namespace, subject, pod, source addresses,
//! client, image, vulnerability and vulnerable packages, the subjects a role binding binds,
//! the findings an attack sequence was made of. The graph links the finding to each (`finding → names → entity`), so a
//! profile lists the findings about an entity and findings sharing entities group together.

use osprey_model::Finding;

/// The evidence key under which the audit engine lists the subjects a role binding binds
/// (`User:name`, `ServiceAccount:namespace/name`, `Group:name`, comma-separated).
pub const BOUND_SUBJECTS: &str = "bound_subjects";

use crate::bucket::clip;
use crate::entity::{EntityId, EntityType, is_name};

/// What `finding` (of `cluster_id`, when it came from one) names.
pub fn named_by(finding: &Finding, cluster_id: Option<&str>) -> Vec<EntityId> {
    let mut out = Vec::new();
    let cluster = cluster_id.filter(|c| is_name(c));
    if let Some(c) = cluster {
        out.push(EntityId::cluster(c));
        if let Some(k) = &finding.resource.kubernetes {
            if is_name(&k.namespace) {
                out.push(EntityId::namespace(c, &k.namespace));
                if let Some(w) = k
                    .workload
                    .as_ref()
                    .filter(|w| w.kind == "pods" && is_name(&w.name))
                {
                    out.push(EntityId::pod(c, &k.namespace, &w.name));
                }
            }
            if let Some(u) = k.user.as_ref().filter(|u| !u.username.is_empty()) {
                out.push(EntityId::subject(c, clip(&u.username)));
            }
        }
        // A role binding names whom it granted access (users and service accounts).
        let bound = finding
            .evidence
            .as_ref()
            .and_then(|e| e.additional_info.get(BOUND_SUBJECTS));
        for subject in bound.into_iter().flat_map(|b| b.split(',')) {
            let username = match subject.split_once(':') {
                Some(("User", name)) if !name.is_empty() => name.to_string(),
                Some(("ServiceAccount", sa)) => match sa.split_once('/') {
                    Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                        format!("system:serviceaccount:{ns}:{name}")
                    }
                    _ => continue,
                },
                _ => continue,
            };
            out.push(EntityId::subject(c, clip(&username)));
        }
    }
    if let Some(a) = &finding.action {
        for ip in a.source_ips.iter().filter_map(|s| s.parse().ok()) {
            out.push(EntityId::ip(ip));
        }
        if !a.user_agent.is_empty() {
            out.push(EntityId::user_agent(clip(&a.user_agent)));
        }
    }
    // An attack sequence names the findings it was made of.
    for signal in finding.evidence.iter().flat_map(|e| e.signals.iter()) {
        if let Ok(id) = EntityId::parse_key(EntityType::Finding, signal) {
            out.push(id);
        }
    }
    if let Some(digest) = finding
        .resource
        .image
        .as_ref()
        .and_then(|i| i.digest.as_deref())
        && let Ok(id) = EntityId::parse_key(EntityType::Image, digest)
    {
        out.push(id);
    }
    // A vulnerability finding names its vulnerability (the profile of `vulnerability/{id}`
    // lists the findings, and through them the images).
    if let Some(v) = &finding.vulnerability {
        if let Ok(id) = EntityId::parse_key(EntityType::Vulnerability, &v.id) {
            out.push(id);
        }
        // And the vulnerable packages (the image's `package` edges lead to the same ids).
        out.extend(v.packages.iter().filter_map(|p| EntityId::package(&p.purl)));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::{Action, ImageResource, KubernetesResource, KubernetesUser, Workload};

    #[test]
    fn a_finding_names_its_subject_pod_address_client_and_image() {
        let mut f = Finding::default();
        f.resource.kubernetes = Some(KubernetesResource {
            cluster: "prod".into(),
            namespace: "web".into(),
            user: Some(KubernetesUser {
                username: "system:serviceaccount:web:builder".into(),
                ..Default::default()
            }),
            workload: Some(Workload {
                kind: "pods".into(),
                name: "miner".into(),
                ..Default::default()
            }),
        });
        f.action = Some(Action {
            source_ips: vec!["203.0.113.9".into(), "not an ip".into()],
            user_agent: "curl/8".into(),
            ..Default::default()
        });
        f.resource.image = Some(ImageResource {
            reference: "x".into(),
            digest: Some(format!("sha256:{}", "c".repeat(64))),
            os: None,
        });
        let named: Vec<String> = named_by(&f, Some("c1"))
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            named,
            [
                "cluster/c1".to_string(),
                "namespace/c1/web".into(),
                "pod/c1/web/miner".into(),
                "subject/c1/system%3Aserviceaccount%3Aweb%3Abuilder".into(),
                "ip/203.0.113.9".into(),
                "user-agent/curl%2F8".into(),
                format!("image/sha256:{}", "c".repeat(64)),
            ]
        );
        // Without a cluster, only what belongs to none.
        assert_eq!(named_by(&f, None).len(), 3);
        // A vulnerability finding names its vulnerability and its packages.
        f.vulnerability = Some(
            serde_json::from_value(serde_json::json!({
                "id": "CVE-2024-3094", "fix_available": "YES", "packages": [
                    {"name": "xz-utils", "version": "5.6.0-0.1", "type": "deb",
                     "purl": "pkg:deb/debian/xz-utils@5.6.0-0.1", "advisories": [], "ecosystem": "Debian:12"},
                    {"name": "nameless", "version": "1", "type": "deb", "purl": "", "advisories": [], "ecosystem": "Debian:12"}
                ]
            }))
            .unwrap(),
        );
        let named: Vec<String> = named_by(&f, None).iter().map(|i| i.to_string()).collect();
        assert!(named.contains(&"vulnerability/CVE-2024-3094".to_string()));
        assert!(named.contains(&"package/pkg%3Adeb%2Fdebian%2Fxz-utils%405.6.0-0.1".to_string()));
        assert_eq!(named.len(), 5, "{named:?}");
        // A binding names whom it binds.
        let binding = Finding {
            evidence: Some(osprey_model::Evidence {
                additional_info: [(
                    BOUND_SUBJECTS.to_string(),
                    "User:system:anonymous,ServiceAccount:ci/deployer,Group:devs".to_string(),
                )]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let named: Vec<String> = named_by(&binding, Some("c1"))
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            named,
            [
                "cluster/c1",
                "subject/c1/system%3Aanonymous",
                "subject/c1/system%3Aserviceaccount%3Aci%3Adeployer"
            ]
        );
    }
}
