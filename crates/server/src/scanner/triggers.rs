//! Triggered scans: the images a finding names become scan requests.

use std::collections::HashSet;

use osprey_model::Finding;
use osprey_store::{NewScan, ScanKind};

/// The images a finding names, as triggered scan requests (one per distinct image).
pub fn trigger_requests(
    finding: &Finding,
    tenant_id: &str,
    cluster_id: &str,
    pod_images: Option<&[String]>,
) -> Vec<NewScan> {
    let Some(k) = finding.resource.kubernetes.as_ref() else {
        return Vec::new();
    };
    if k.workload.is_none() {
        return Vec::new();
    }
    // A finding that names only a pod: the images it was seen created with.
    let mut k = k.clone();
    if let (Some(images), Some(w)) = (pod_images, k.workload.as_mut())
        && w.containers.is_empty()
    {
        w.containers = images
            .iter()
            .map(|image| osprey_model::Container {
                image_prefix: osprey_audit::findings::image_prefix(image).to_string(),
                image: image.clone(),
                ..Default::default()
            })
            .collect();
    }
    let workload = serde_json::to_value(&k).ok();
    let mut seen = HashSet::new();
    k.workload
        .iter()
        .flat_map(|w| &w.containers)
        .filter(|c| !c.image.is_empty() && seen.insert(c.image.clone()))
        .map(|c| NewScan {
            tenant_id: tenant_id.to_string(),
            cluster_id: Some(cluster_id.to_string()),
            image: c.image.clone(),
            kind: ScanKind::Triggered,
            trigger_finding_id: Some(finding.id.clone()),
            workload: workload.clone(),
        })
        .collect()
}

/// The pod a finding names without its containers (an exec into it, a port-forward):
/// (namespace, pod), whose images the store may know from the pod's creation.
pub fn pod_without_images(finding: &Finding) -> Option<(&str, &str)> {
    let k = finding.resource.kubernetes.as_ref()?;
    let w = k.workload.as_ref()?;
    (w.kind == "pods" && w.containers.is_empty() && !w.name.is_empty())
        .then_some((k.namespace.as_str(), w.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::{Container, KubernetesResource, Resource, Workload};

    #[test]
    fn a_finding_naming_a_workload_asks_for_one_scan_per_image() {
        let f = Finding {
            id: "f1".into(),
            resource: Resource {
                kubernetes: Some(KubernetesResource {
                    cluster: "prod".into(),
                    namespace: "shop".into(),
                    workload: Some(Workload {
                        kind: "pods".into(),
                        name: "web".into(),
                        containers: vec![
                            Container {
                                name: "a".into(),
                                image: "reg.example/app:1".into(),
                                ..Default::default()
                            },
                            Container {
                                name: "b".into(),
                                image: "reg.example/app:1".into(),
                                ..Default::default()
                            },
                            Container {
                                name: "c".into(),
                                image: "reg.example/sidecar:2".into(),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Finding::default()
        };
        let scans = trigger_requests(&f, "t", "c", None);
        let images: Vec<&str> = scans.iter().map(|s| s.image.as_str()).collect();
        assert_eq!(images, ["reg.example/app:1", "reg.example/sidecar:2"]);
        assert!(scans.iter().all(|s| {
            s.kind == ScanKind::Triggered
                && s.trigger_finding_id.as_deref() == Some("f1")
                && s.cluster_id.as_deref() == Some("c")
                && s.workload
                    .as_ref()
                    .is_some_and(|w| w["namespace"] == "shop")
        }));
        assert!(trigger_requests(&Finding::default(), "t", "c", None).is_empty());
    }
}
