//! A cluster snapshot: what `kubectl get pods,serviceaccounts,roles,rolebindings,clusterroles,
//! clusterrolebindings -A -o json` prints (a `List` of objects), read into the pods running,
//! the service accounts and the RBAC objects, so a cluster onboarded today has a full
//! picture at once. Items are read one at a time, so memory stays near the body's size.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::pod::PodProperties;
use crate::rbac::RbacObject;

/// Items read at most.
pub const MAX_ITEMS: usize = 500_000;

/// A pod the snapshot lists as running (or about to).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPod {
    pub namespace: String,
    pub name: String,
    pub properties: PodProperties,
    /// `metadata.creationTimestamp`.
    pub created_ms: Option<i64>,
}

/// What a snapshot holds.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pods: Vec<ListedPod>,
    /// Pods that ran to completion or failed (`status.phase`): not running, not kept.
    pub finished_pods: usize,
    /// `(namespace, name)`.
    pub service_accounts: Vec<(String, String)>,
    pub rbac: Vec<RbacObject>,
    /// Items of other kinds, or that could not be read as their kind.
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error(
        "not a JSON list of objects ({0}); expected the output of kubectl get pods,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings -A -o json"
    )]
    NotAList(String),
    #[error("more than {} items", MAX_ITEMS)]
    TooManyItems,
    #[error("item {index}: {error}")]
    Item { index: usize, error: String },
}

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

/// Reads a snapshot.
pub fn read(body: &[u8]) -> Result<Snapshot, SnapshotError> {
    let list: List<'_> =
        serde_json::from_slice(body).map_err(|e| SnapshotError::NotAList(e.to_string()))?;
    if list.items.len() > MAX_ITEMS {
        return Err(SnapshotError::TooManyItems);
    }
    let mut out = Snapshot::default();
    for (index, raw) in list.items.into_iter().enumerate() {
        let item: Value = serde_json::from_str(raw.get()).map_err(|e| SnapshotError::Item {
            index,
            error: e.to_string(),
        })?;
        let text = |pointer: &str| {
            item.pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        match item.get("kind").and_then(Value::as_str) {
            Some("Pod") => {
                let (Some(namespace), Some(name), Some(properties)) = (
                    text("/metadata/namespace"),
                    text("/metadata/name"),
                    PodProperties::of(&item),
                ) else {
                    out.ignored += 1;
                    continue;
                };
                if matches!(
                    text("/status/phase").as_deref(),
                    Some("Succeeded" | "Failed")
                ) {
                    out.finished_pods += 1;
                    continue;
                }
                let created_ms = text("/metadata/creationTimestamp")
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .map(|t| t.as_millisecond());
                out.pods.push(ListedPod {
                    namespace,
                    name,
                    properties,
                    created_ms,
                });
            }
            Some("ServiceAccount") => match (text("/metadata/namespace"), text("/metadata/name")) {
                (Some(ns), Some(name)) => out.service_accounts.push((ns, name)),
                _ => out.ignored += 1,
            },
            _ => match RbacObject::of(None, &item) {
                Some(o) => out.rbac.push(o),
                None => out.ignored += 1,
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::RbacKind;
    use serde_json::json;

    #[test]
    fn a_kubectl_list_gives_running_pods_accounts_and_rbac() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop",
                "creationTimestamp": "2026-12-01T10:00:00Z"},
             "spec": {"nodeName": "n1", "containers": [{"image": "web:1"}]},
             "status": {"phase": "Running"}},
            {"kind": "Pod", "metadata": {"name": "job-x", "namespace": "shop"},
             "spec": {"containers": [{"image": "job:1"}]}, "status": {"phase": "Succeeded"}},
            {"kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}},
            {"kind": "ClusterRole", "metadata": {"name": "view"}, "rules": []},
            {"kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "shop"}},
            {"kind": "Pod", "metadata": {"name": "no-spec", "namespace": "shop"}}
        ]});
        let s = read(list.to_string().as_bytes()).unwrap();
        assert_eq!(s.pods.len(), 1);
        assert_eq!(s.pods[0].name, "web");
        assert_eq!(s.pods[0].created_ms, Some(1_796_119_200_000));
        assert_eq!(s.pods[0].properties.node.as_deref(), Some("n1"));
        assert_eq!(s.finished_pods, 1);
        assert_eq!(
            s.service_accounts,
            [("shop".to_string(), "default".to_string())]
        );
        assert_eq!(s.rbac.len(), 1);
        assert_eq!(s.rbac[0].kind, RbacKind::ClusterRole);
        assert_eq!(s.ignored, 2);
    }

    #[test]
    fn what_is_not_a_list_is_refused_in_one_line() {
        for bad in [&b"not json"[..], b"{}", b"[1,2]", b"{\"items\": 3}"] {
            let e = read(bad).unwrap_err();
            assert!(matches!(e, SnapshotError::NotAList(_)), "{e}");
            assert!(!e.to_string().contains('\n'));
        }
        assert_eq!(read(b"{\"items\": []}").unwrap().pods.len(), 0);
    }
}
