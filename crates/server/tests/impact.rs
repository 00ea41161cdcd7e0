//! Impact and cluster snapshots: after the bundled attack story and a snapshot of the
//! cluster, the impact of the story's image lists its privileged pod, the pod its node puts
//! within reach, and who can exec into them (from the snapshot's RBAC); audited RBAC writes
//! after the snapshot change the answer; a snapshot marks pods it no longer lists deleted.

mod common;

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:7c1e0a1c3b1cf1a5a5b9bb6a2e45d9a7d43b9f6f7a4f9c0a1e2f3a4b5c6d7e8f";

/// What `kubectl get pods,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings
/// -A -o json` would print for the story's cluster after the attack.
fn snapshot() -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "node-debugger", "namespace": "default", "creationTimestamp": "2026-11-20T09:01:00Z"},
         "spec": {"nodeName": "node-a", "hostPID": true, "hostNetwork": true,
            "containers": [{"name": "shell", "image": "docker.io/library/alpine:3.20",
                "securityContext": {"privileged": true}}],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
         "status": {"phase": "Running", "containerStatuses": [
            {"name": "shell", "imageID": format!("docker.io/library/alpine@{DIGEST}")}]}},
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "coredns-5d78c", "namespace": "kube-system"},
         "spec": {"nodeName": "node-a", "serviceAccountName": "coredns",
            "containers": [{"image": "registry.k8s.io/coredns/coredns:v1.11.1"}]},
         "status": {"phase": "Running"}},
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "web-1", "namespace": "shop"},
         "spec": {"nodeName": "node-b", "serviceAccountName": "web",
            "containers": [{"image": "registry.example/shop/web:2",
                "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db-password", "key": "p"}}}]}]},
         "status": {"phase": "Running"}},
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "migrate-x", "namespace": "shop"},
         "spec": {"nodeName": "node-b", "containers": [{"image": "registry.example/shop/migrate:2"}]},
         "status": {"phase": "Succeeded"}},
        {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"}},
        {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
         "metadata": {"name": "cluster-admin"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
         "metadata": {"name": "anonymous-debug"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}]},
        {"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
         "metadata": {"name": "debugger", "namespace": "shop"},
         "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
                   {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-password"]}]},
        {"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
         "metadata": {"name": "oncall", "namespace": "shop"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger"},
         "subjects": [{"kind": "User", "name": "oncall@example.com"}]},
        {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm", "namespace": "shop"}}
    ]})
}

/// An audited write (RequestResponse, complete) at `ms`.
fn write_event(
    id: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
    object: Option<Value>,
    ms: i64,
) -> Value {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap().to_string();
    let mut e = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete", "verb": verb,
        "requestURI": format!("/apis/x/{resource}/{name}"),
        "user": {"username": "dev-admin", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.9"], "userAgent": "kubectl/v1.30.4",
        "objectRef": {"resource": resource, "namespace": namespace, "name": name,
            "apiGroup": if resource == "pods" { "" } else { "rbac.authorization.k8s.io" }, "apiVersion": "v1"},
        "responseStatus": {"code": if verb == "create" { 201 } else { 200 }},
        "requestReceivedTimestamp": at, "stageTimestamp": at});
    if let Some(o) = object {
        e["responseObject"] = o;
    }
    e
}

fn batch(events: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}),
    )
    .unwrap()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

/// Who has access to a pod of an impact: `kind:name` → capabilities.
fn access_of(impact: &Value, pod: &str) -> Vec<(String, Vec<String>)> {
    let p = impact["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pod)
        .unwrap_or_else(|| panic!("{pod} in {impact}"));
    p["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                format!(
                    "{}:{}",
                    a["subject"]["kind"].as_str().unwrap(),
                    a["subject"]["name"].as_str().unwrap()
                ),
                names_of(&a["can"]),
            )
        })
        .collect()
}

fn names_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impact_of_the_story_image_from_a_snapshot_and_audited_rbac() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let viewer = s.token("team-a", "viewer").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(20)).await;
        // A pod created an hour ago that the snapshot will not list: it is gone.
        let hour_ago = osprey_store::now_ms() - 3_600_000;
        let old = json!({"kind": "Pod", "metadata": {"name": "old-job", "namespace": "shop"},
            "spec": {"nodeName": "node-b", "containers": [{"image": "busybox:1.36"}]}});
        let create = write_event(
            "old-1",
            "create",
            "pods",
            "shop",
            "old-job",
            Some(old),
            hour_ago,
        );
        s.ingest(&cluster, &ingest, [batch(vec![create])]).await;

        // Before any snapshot: the audit log's binding, but not the role it binds.
        let image = format!("/v1/entities/image/{DIGEST}/impact");
        let (st, _) = s.get(&image, &viewer).await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "{backend:?}: no pod or scan has the digest yet"
        );
        let pod_impact = format!("/v1/entities/pod/{cluster}/default/node-debugger/impact");
        let (st, before) = s.get(&pod_impact, &viewer).await;
        assert_eq!(st, StatusCode::OK, "{backend:?} {before}");
        assert_eq!(before["clusters"][0]["rbac_objects"], 1, "{before}");
        assert!(before["clusters"][0].get("snapshot").is_none());
        assert_eq!(
            access_of(&before, &format!("pod/{cluster}/default/node-debugger")),
            [(
                "Group:system:masters".to_string(),
                vec!["exec".into(), "attach".into(), "patch".into()]
            )],
            "cluster-admin's rules are not known yet"
        );

        // The snapshot: an analyst may not, the cluster's ingest token may; bad bodies are
        // refused in one line.
        let put = format!("/v1/clusters/{cluster}/snapshot");
        let (st, e) = s
            .call(Method::PUT, &put, Some(&viewer), Some(snapshot()))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        for (bad, needle) in [
            (json!({"kind": "List"}), "not a JSON list of objects"),
            (json!([1, 2]), "not a JSON list of objects"),
        ] {
            let (st, e) = s.call(Method::PUT, &put, Some(&ingest), Some(bad)).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
            assert!(e["error"].as_str().unwrap().contains(needle), "{e}");
        }
        let (st, taken) = s
            .call(Method::PUT, &put, Some(&ingest), Some(snapshot()))
            .await;
        assert_eq!(st, StatusCode::OK, "{backend:?} {taken}");
        assert_eq!(
            (
                &taken["pods"],
                &taken["finished_pods"],
                &taken["deleted_pods"],
                &taken["rbac_objects"],
                &taken["service_accounts"],
                &taken["ignored"]
            ),
            (
                &json!(3),
                &json!(1),
                &json!(1),
                &json!(4),
                &json!(1),
                &json!(1)
            ),
            "{taken}"
        );
        let (_, old) = s
            .get(
                &format!("/v1/entities/pod/{cluster}/shop/old-job?start=2026-11-20T00:00:00Z"),
                &viewer,
            )
            .await;
        assert!(old["entity"]["properties"]["deleted"].is_string(), "{old}");

        // The image: its pod, and coredns, which the privileged pod's node puts within reach.
        let (st, i) = s.get(&image, &viewer).await;
        assert_eq!(st, StatusCode::OK, "{backend:?} {i}");
        assert_eq!(
            names(&i["pods"], "id"),
            [
                format!("pod/{cluster}/default/node-debugger"),
                format!("pod/{cluster}/kube-system/coredns-5d78c")
            ]
        );
        assert_eq!(i["pods_total"], 2);
        assert_eq!(i["pods"][0]["reasons"][0], format!("runs image {DIGEST}"));
        assert_eq!(i["pods"][0]["reaches_host"], true);
        assert_eq!(
            i["pods"][1]["reasons"][0],
            format!(
                "on node node-a with {cluster}/default/node-debugger, which can reach the node"
            )
        );
        assert_eq!(
            i["nodes"],
            json!([{"id": format!("node/{cluster}/node-a"), "pods": 2}])
        );
        assert_eq!(names(&i["namespaces"], "id").len(), 2);
        let all = vec!["exec".to_string(), "attach".into(), "patch".into()];
        let debugger = format!("pod/{cluster}/default/node-debugger");
        assert_eq!(
            access_of(&i, &debugger),
            [
                ("Group:system:masters".to_string(), all.clone()),
                ("User:system:anonymous".to_string(), all.clone())
            ]
        );
        let anonymous = i["pods"][0]["access"][1].clone();
        assert_eq!(
            anonymous["subject"]["id"],
            format!("subject/{cluster}/system%3Aanonymous")
        );
        assert_eq!(
            anonymous["via"],
            json!(["ClusterRoleBinding anonymous-debug → ClusterRole cluster-admin"])
        );
        assert_eq!(i["clusters"][0]["rbac_objects"], 4);
        assert!(i["clusters"][0]["snapshot"].is_string());
        assert_eq!(i["notices"], json!([]));

        // A subject: the on-call user reaches the shop's web pod and its one secret.
        let (st, oncall) = s
            .get(
                &format!("/v1/entities/subject/{cluster}/oncall%40example.com/impact"),
                &viewer,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{oncall}");
        assert_eq!(
            names(&oncall["pods"], "id"),
            [format!("pod/{cluster}/shop/web-1")]
        );
        assert_eq!(
            oncall["pods"][0]["reasons"],
            json!(["the subject can exec into it"])
        );
        assert_eq!(
            access_of(&oncall, &format!("pod/{cluster}/shop/web-1"))[1],
            (
                "User:oncall@example.com".to_string(),
                vec!["exec".to_string(), "read-secrets".into()]
            )
        );
        assert_eq!(
            oncall["secrets"],
            json!([{"namespace": "shop", "names": ["db-password"], "via": "RoleBinding shop/oncall → Role shop/debugger"}])
        );

        // Audited writes after the snapshot: the anonymous binding deleted, a role binding made.
        let later = osprey_store::now_ms() + 1_000;
        let binding = json!({"kind": "RoleBinding", "metadata": {"name": "web-debug", "namespace": "default"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}]});
        s.ingest(
            &cluster,
            &ingest,
            [batch(vec![
                write_event(
                    "rbac-1",
                    "delete",
                    "clusterrolebindings",
                    "",
                    "anonymous-debug",
                    None,
                    later,
                ),
                write_event(
                    "rbac-2",
                    "create",
                    "rolebindings",
                    "default",
                    "web-debug",
                    Some(binding),
                    later,
                ),
            ])],
        )
        .await;
        let (_, i) = s.get(&image, &viewer).await;
        assert_eq!(
            access_of(&i, &debugger),
            [
                ("Group:system:masters".to_string(), all.clone()),
                ("ServiceAccount:web".to_string(), all.clone())
            ],
            "{backend:?}"
        );
        // The service account now reaches the default namespace's pod, and runs web-1.
        let (_, web) = s
            .get(
                &format!("/v1/entities/subject/{cluster}/system:serviceaccount:shop:web/impact"),
                &viewer,
            )
            .await;
        assert_eq!(
            names(&web["pods"], "id"),
            [
                format!("pod/{cluster}/default/node-debugger"),
                format!("pod/{cluster}/kube-system/coredns-5d78c"),
                format!("pod/{cluster}/shop/web-1")
            ],
            "{web}"
        );

        // Refused in one line: a type impact is not for, a scope, an unknown image.
        for (path, status) in [
            (
                "/v1/entities/ip/203.0.113.7/impact".to_string(),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("{image}?start=2026-11-20T00:00:00Z"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/v1/entities/image/sha256:{}/impact", "0".repeat(64)),
                StatusCode::NOT_FOUND,
            ),
            (
                "/v1/entities/vulnerability/CVE-2099-0001/impact".to_string(),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let (st, e) = s.get(&path, &viewer).await;
            assert_eq!(st, status, "{path}: {e}");
            assert!(!e["error"].as_str().unwrap().contains('\n'));
        }
        s.stop().await;
    }
}
