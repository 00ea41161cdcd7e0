//! Every API route on both backends (SQLite and the PostgreSQL CI runs), the webhook path from
//! batch to finding, replay without duplicates, and tenancy across every route.

mod common;

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn types(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_story_through_the_webhook_on_both_backends() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.data_dir().join("admin-token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{backend:?}");
        }
        let (_, a_admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&a_admin, "prod").await;
        let batches = story_batches(20);
        let mut events = 0;
        for b in &batches {
            let (st, v, _) = s
                .post_raw(&format!("/v1/clusters/{cluster}/audit"), &ingest, b.clone())
                .await;
            assert_eq!(st, StatusCode::OK, "{backend:?} {v}");
            events += v["events"].as_u64().unwrap();
        }
        assert_eq!(events, 111);
        s.wait_detected().await;

        let viewer = s.token("team-a", "viewer").await;
        let (st, page) = s.get("/v1/findings?limit=100", &viewer).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let found = types(&page);
        for kind in [
            "Policy:Kubernetes/AnonymousAccessGranted",
            "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched",
            "Execution:Kubernetes/ExecInPod",
            "CredentialAccess:Kubernetes/SecretsDump",
        ] {
            assert!(
                found.iter().any(|t| t == kind),
                "{backend:?}: no {kind} in {found:?}"
            );
        }
        let exec = page["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["type"] == "Execution:Kubernetes/ExecInPod")
            .unwrap();
        assert_eq!(
            exec["count"], 1,
            "the exec logged at two stages is one occurrence"
        );
        assert_eq!(exec["resource"]["kubernetes"]["cluster"], "prod");
        assert_eq!(exec["cluster_id"], cluster.as_str());
        assert_eq!(exec["state"], "active");
        assert_eq!(exec["workflow"], "new");

        // A replay of every batch (the API server retrying) adds nothing.
        let before: Vec<(String, u64)> = page["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["count"].as_u64().unwrap(),
                )
            })
            .collect();
        for b in &batches {
            let (st, v, _) = s
                .post_raw(&format!("/v1/clusters/{cluster}/audit"), &ingest, b.clone())
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        s.wait_detected().await;
        let (_, again) = s.get("/v1/findings?limit=100", &viewer).await;
        let mut after: Vec<(String, u64)> = again["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["count"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut before_sorted = before.clone();
        before_sorted.sort();
        after.sort();
        assert_eq!(
            before_sorted, after,
            "{backend:?}: a replayed batch changed findings"
        );
        let (_, m) = s.call(Method::GET, "/metrics", None, None).await;
        let m = m.as_str().unwrap().to_string();
        assert!(m.contains("osprey_audit_events_ingested_total 222"), "{m}");
        assert!(m.contains("osprey_audit_events_duplicate_total 111"), "{m}");
        // 111 events and 6 batches remembered; the replayed batches were skipped whole.
        assert!(m.contains("osprey_detector_seen_keys 117"), "{m}");

        // Filters, sorting, pagination.
        let (_, high) = s
            .get("/v1/findings?severity_min=high&limit=100", &viewer)
            .await;
        assert!(
            high["findings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["severity"]["score"].as_f64().unwrap() >= 7.0)
        );
        assert!(!high["findings"].as_array().unwrap().is_empty());
        let (_, only) = s.get("/v1/findings?type=Execution:*", &viewer).await;
        assert!(
            types(&only).iter().all(|t| t.starts_with("Execution:")) && !types(&only).is_empty()
        );
        let (_, by_cluster) = s
            .get(
                &format!("/v1/findings?cluster={cluster}&limit=100"),
                &viewer,
            )
            .await;
        assert_eq!(types(&by_cluster).len(), found.len());
        let mut paged = Vec::new();
        let mut url = "/v1/findings?limit=2&sort=severity".to_string();
        loop {
            let (st, p) = s.get(&url, &viewer).await;
            assert_eq!(st, StatusCode::OK, "{p}");
            paged.extend(
                p["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["id"].as_str().unwrap().to_string()),
            );
            match p["next_page_token"].as_str() {
                Some(t) => url = format!("/v1/findings?limit=2&sort=severity&page_token={t}"),
                None => break,
            }
        }
        let mut all_ids: Vec<String> = before.iter().map(|b| b.0.clone()).collect();
        all_ids.sort();
        paged.sort();
        assert_eq!(paged, all_ids, "pages cover every finding once");
        for bad in [
            "severity_min=extreme",
            "state=gone",
            "limit=0",
            "sort=color",
            "since=yesterday",
            "bogus=1",
            "page_token=xyz",
        ] {
            let (st, e) = s.get(&format!("/v1/findings?{bad}"), &viewer).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {e}");
            assert!(
                e["error"].as_str().is_some_and(|m| !m.contains('\n')),
                "{bad}: {e}"
            );
        }

        // Get, work, history.
        let id = exec["id"].as_str().unwrap();
        let (st, one) = s.get(&format!("/v1/findings/{id}"), &viewer).await;
        assert_eq!(
            (st, one["type"].as_str()),
            (StatusCode::OK, Some("Execution:Kubernetes/ExecInPod"))
        );
        let (st, _) = s
            .call(
                Method::PATCH,
                &format!("/v1/findings/{id}"),
                Some(&viewer),
                Some(json!({"state": "archived"})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a viewer cannot change findings");
        let analyst = s.token("team-a", "analyst").await;
        let (st, changed) = s
            .call(Method::PATCH, &format!("/v1/findings/{id}"), Some(&analyst), Some(json!({"state": "archived", "workflow": "acknowledged", "note": "debug pod of the on-call"})))
            .await;
        assert_eq!(st, StatusCode::OK, "{changed}");
        assert_eq!(
            (changed["state"].as_str(), changed["workflow"].as_str()),
            (Some("archived"), Some("acknowledged"))
        );
        let (_, archived) = s.get("/v1/findings?state=archived", &viewer).await;
        assert_eq!(types(&archived), ["Execution:Kubernetes/ExecInPod"]);
        let (_, hist) = s.get(&format!("/v1/findings/{id}/history"), &viewer).await;
        let changes: Vec<&str> = hist["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["change"].as_str().unwrap())
            .collect();
        assert_eq!(changes, ["created", "archived", "workflow", "note"]);
        let (st, _) = s
            .call(
                Method::PATCH,
                &format!("/v1/findings/{id}"),
                Some(&analyst),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = s.get("/v1/findings/0000", &viewer).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_tokens_clusters_and_the_admin_log() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (a_id, a_admin) = s.member("team-a").await;
        let (st, e) = s
            .post("/v1/tenants", &s.admin, json!({ "name": "team-a" }))
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{e}");
        let (st, e) = s
            .post("/v1/tenants", &a_admin, json!({ "name": "team-z" }))
            .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "a member cannot create tenants: {e}"
        );
        let (st, e) = s.post("/v1/tenants", &s.admin, json!({ "nom": "x" })).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(e["error"].as_str().unwrap().contains("nom"), "{e}");
        let (st, e) = s
            .call(Method::POST, "/v1/tenants", Some(&s.admin), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");

        let (_, all) = s.get("/v1/tenants", &s.admin).await;
        assert_eq!(all["tenants"].as_array().unwrap().len(), 2);
        let (_, own) = s.get("/v1/tenants", &a_admin).await;
        assert_eq!(own["tenants"].as_array().unwrap().len(), 1);
        assert_eq!(own["tenants"][0]["id"], a_id.as_str());

        // Tokens: a member admin mints for its own tenant only.
        let (st, t) = s
            .post(
                "/v1/tokens",
                &a_admin,
                json!({ "role": "viewer", "name": "dash" }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let dash = t["token"].as_str().unwrap().to_string();
        let (st, _) = s
            .post(
                "/v1/tokens",
                &a_admin,
                json!({ "tenant": "admin", "role": "admin", "name": "x" }),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "a member cannot mint for the administrator"
        );
        let (st, _) = s
            .post(
                "/v1/tokens",
                &a_admin,
                json!({ "role": "ingest", "name": "x" }),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = s
            .post(
                "/v1/tokens",
                &a_admin,
                json!({ "role": "root", "name": "x" }),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = s
            .post(
                "/v1/tokens",
                &dash,
                json!({ "role": "viewer", "name": "x" }),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a viewer cannot mint tokens");
        let (_, listed) = s.get("/v1/tokens", &a_admin).await;
        assert!(
            listed["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["tenant_id"] == a_id.as_str() && t.get("hash").is_none())
        );
        let (st, _) = s.get("/v1/tenants", &dash).await;
        assert_eq!(st, StatusCode::OK);
        let dash_id = t["id"].as_str().unwrap();
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/v1/tokens/{dash_id}"),
                Some(&a_admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, e) = s.get("/v1/tenants", &dash).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "revoked: {e}");
        let (st, _) = s.call(Method::GET, "/v1/tenants", None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _) = s.get("/v1/tenants", "osp_not-a-token").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);

        // Clusters; the administrator may create one for a member.
        let (cluster, ingest) = s.cluster(&a_admin, "prod").await;
        let (st, _) = s
            .post("/v1/clusters", &a_admin, json!({ "name": "prod" }))
            .await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, c) = s
            .post(
                "/v1/clusters",
                &s.admin,
                json!({ "name": "staging", "tenant": "team-a" }),
            )
            .await;
        assert_eq!(
            (st, c["tenant"].as_str()),
            (StatusCode::CREATED, Some(a_id.as_str()))
        );
        let (_, list) = s.get("/v1/clusters", &a_admin).await;
        assert_eq!(list["clusters"].as_array().unwrap().len(), 2);
        let (st, one) = s.get(&format!("/v1/clusters/{cluster}"), &a_admin).await;
        assert_eq!(
            (st, one["audit"]["events_kept"].as_i64()),
            (StatusCode::OK, Some(0))
        );

        // Ingest: only the cluster's own ingest token, only audit events.
        let batch = story_batches(5).remove(0);
        let url = format!("/v1/clusters/{cluster}/audit");
        let (st, _, _) = s.post_raw(&url, &a_admin, batch.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "an admin token does not ingest");
        let (_, other_ingest) = s.cluster(&a_admin, "dev").await;
        let (st, _, _) = s.post_raw(&url, &other_ingest, batch.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "another cluster's ingest token");
        let (st, e, _) = s
            .post_raw(
                &url,
                &ingest,
                b"{\"kind\":\"EventList\",\"items\":[{\"hello\":1}]}".to_vec(),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"].as_str().unwrap().contains("no audit event"),
            "{e}"
        );
        let (st, _, _) = s.post_raw(&url, &ingest, b"not json".to_vec()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        // One byte over 10 MiB: the server reads the whole body before it answers 413, so
        // the request is sent in full (on a connection of its own, which the server closes).
        let st = reqwest::Client::new()
            .post(format!("{}{url}", s.base))
            .bearer_auth(&ingest)
            .body(vec![b' '; 10 * 1024 * 1024 + 1])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
        // Without the cluster's token, the answer comes before the body is read: a request
        // announcing 10 MiB and sending none of it is answered 401 at once.
        let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let early = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            reqwest::Client::new()
                .post(format!("{}{url}", s.base))
                .bearer_auth("osp_not-a-token")
                .header(reqwest::header::CONTENT_LENGTH, 10 * 1024 * 1024)
                .body(reqwest::Body::wrap_stream(never))
                .send(),
        )
        .await
        .expect("answered without waiting for the body")
        .unwrap();
        assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
        let (st, _) = s.get("/v1/findings", &ingest).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "an ingest token reads nothing");
        let (st, v, _) = s.post_raw(&url, &ingest, batch).await;
        assert_eq!((st, v["events"].as_u64()), (StatusCode::OK, Some(5)));

        // Health and metrics need no token; everything else does.
        let (st, _) = s.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = s.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK);
        // So do the console's embedded libraries, exactly as console/vendor/ holds them.
        let (st, js) = s
            .call(Method::GET, "/console/assets/htmx.min.js", None, None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let vendored = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../console/vendor/htmx.min.js"),
        )
        .unwrap();
        assert!(js.as_str() == Some(vendored.as_str()), "the vendored htmx");
        let (st, _) = s
            .call(Method::GET, "/console/assets/..%2FCargo.toml", None, None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, m) = s.call(Method::GET, "/metrics", None, None).await;
        let m = m.as_str().unwrap();
        assert!(m.contains("osprey_audit_events_ingested_total 5"), "{m}");
        assert!(
            m.contains("osprey_audit_batches_rejected_total{reason=\"auth\"} 3"),
            "{m}"
        );
        assert!(
            m.contains("osprey_audit_batches_rejected_total{reason=\"invalid\"} 3"),
            "{m}"
        );
        assert!(
            m.lines()
                .any(|l| l.starts_with("osprey_auth_refused_total ")
                    && l != "osprey_auth_refused_total 0"),
            "refused tokens are counted: {m}"
        );
        let (st, _) = s.get("/v1/nothing-here", &s.admin).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Every administrative action is in the log; a member sees its own part.
        let (st, log) = s.get("/v1/admin-log", &s.admin).await;
        assert_eq!(st, StatusCode::OK);
        let actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "organization.create",
            "tenant.create",
            "token.create",
            "token.revoke",
            "cluster.create",
        ] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
        // A time window narrows it; a bad time is named.
        let (_, later) = s
            .get("/v1/admin-log?since=2999-01-01T00:00:00Z", &s.admin)
            .await;
        assert_eq!(later["entries"].as_array().unwrap().len(), 0);
        let (_, before) = s
            .get("/v1/admin-log?until=2999-01-01T00:00:00Z", &s.admin)
            .await;
        assert_eq!(before["entries"], log["entries"]);
        let (st, bad) = s.get("/v1/admin-log?until=yesterday", &s.admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            bad["error"]
                .as_str()
                .unwrap()
                .starts_with("until \"yesterday\""),
            "{bad}"
        );
        let (_, mine) = s.get("/v1/admin-log", &a_admin).await;
        assert!(
            mine["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["tenant_id"] == a_id.as_str())
        );
        assert!(!mine["entries"].as_array().unwrap().is_empty());
        // The administrator minted the member's first admin token: the member sees that, and
        // by which token.
        let (_, admin_log) = s.get("/v1/admin-log", &s.admin).await;
        let admin_token = admin_log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "organization.create")
            .map(|e| e["detail"]["admin_token"].clone())
            .unwrap();
        assert!(
            mine["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "token.create" && e["actor"] == admin_token),
            "{mine}"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_429_with_retry_after() {
    for backend in BACKENDS {
        // Any backlog at all is too much: every batch is refused before it is read.
        let options = Options {
            max_pending_events: -1,
            retry_after_secs: 7,
            ..Options::default()
        };
        let s = TestServer::start(backend, options).await;
        let (_, a_admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&a_admin, "prod").await;
        let (st, e, retry) = s
            .post_raw(
                &format!("/v1/clusters/{cluster}/audit"),
                &ingest,
                story_batches(10).remove(0),
            )
            .await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{e}");
        assert_eq!(retry.as_deref(), Some("7"));
        let (_, one) = s.get(&format!("/v1/clusters/{cluster}"), &a_admin).await;
        assert_eq!(
            one["audit"]["events_kept"], 0,
            "nothing kept for a refused batch"
        );
        s.stop().await;
    }
}

/// Member B, with every role, against member A's things through every route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reaches_nothing_of_another_member() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, a_admin) = s.member("team-a").await;
        let (_, b_admin) = s.member("team-b").await;
        let (a_cluster, a_ingest) = s.cluster(&a_admin, "prod-a").await;
        let (b_cluster, b_ingest) = s.cluster(&b_admin, "prod-b").await;
        for b in story_batches(20) {
            assert_eq!(
                s.post_raw(&format!("/v1/clusters/{a_cluster}/audit"), &a_ingest, b)
                    .await
                    .0,
                StatusCode::OK
            );
        }
        s.wait_detected().await;
        let (_, a_page) = s.get("/v1/findings?limit=1", &a_admin).await;
        let a_finding = a_page["findings"][0]["id"]
            .as_str()
            .expect("A has findings")
            .to_string();
        let (_, a_groups) = s
            .get("/v1/finding-groups?since=2026-01-01T00:00:00Z", &a_admin)
            .await;
        let a_group = a_groups["groups"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the story makes a group: {a_groups}"))
            .to_string();
        let hunt_rules =
            "rules:\n  - {id: h, title: t, type: 'A:B/C', severity: Low, condition: 'verb = get'}";
        let (st, a_hunt) = s
            .post(
                "/v1/retro-hunts",
                &a_admin,
                json!({"since": "2026-11-20T00:00:00Z", "rules": hunt_rules}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{a_hunt}");
        let a_hunt = a_hunt["id"].as_str().unwrap().to_string();
        let (_, a_tokens) = s.get("/v1/tokens", &a_admin).await;
        let a_token = a_tokens["tokens"][0]["id"].as_str().unwrap().to_string();
        let (_, a_log) = s.get("/v1/admin-log", &a_admin).await;
        assert!(!a_log["entries"].as_array().unwrap().is_empty());
        // The story's privileged pod queued a scan of its image (it cannot be pulled here,
        // which does not matter: the job is A's); A also has a registry.
        let (_, a_scans) = s.get("/v1/scans", &a_admin).await;
        let a_scan = a_scans["scans"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the story triggered a scan: {a_scans}"))
            .to_string();
        let (st, a_registry) = s
            .post(
                "/v1/registries",
                &a_admin,
                json!({"host": "a-registry.example"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{a_registry}");
        let a_registry = a_registry["id"].as_str().unwrap().to_string();
        let (st, a_rule) = s
            .post(
                "/v1/suppression-rules",
                &a_admin,
                json!({"name": "a-rule-name", "condition": "user.name == \"nobody\""}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{a_rule}");
        let a_rule = a_rule["id"].as_str().unwrap().to_string();
        let a_list: Value = reqwest::Client::new()
            .put(format!("{}/v1/ip-lists/a-list-name?kind=threat", s.base))
            .bearer_auth(&a_admin)
            .body("192.0.2.1\n")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(a_list["entries"], 1, "{a_list}");

        let b_tokens = [
            ("admin", b_admin.clone()),
            ("analyst", s.token("team-b", "analyst").await),
            ("viewer", s.token("team-b", "viewer").await),
            ("ingest", b_ingest.clone()),
        ];
        let batch = story_batches(5).remove(0);
        // (method, path, body): each must neither show nor change A's data.
        let routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/v1/findings/{a_finding}"), None),
            (
                Method::GET,
                format!("/v1/findings/{a_finding}/history"),
                None,
            ),
            (
                Method::PATCH,
                format!("/v1/findings/{a_finding}"),
                Some(json!({"state": "archived", "note": "x"})),
            ),
            (Method::GET, format!("/v1/clusters/{a_cluster}"), None),
            (Method::DELETE, format!("/v1/tokens/{a_token}"), None),
            (
                Method::POST,
                "/v1/tokens".into(),
                Some(json!({"tenant": "team-a", "role": "admin", "name": "x"})),
            ),
            (
                Method::POST,
                "/v1/clusters".into(),
                Some(json!({"tenant": "team-a", "name": "x"})),
            ),
            (
                Method::POST,
                "/v1/findings/samples".into(),
                Some(json!({ "cluster": a_cluster })),
            ),
            (Method::GET, format!("/v1/scans/{a_scan}"), None),
            (
                Method::POST,
                "/v1/images/scan".into(),
                Some(json!({"image": "reg.example/app:1", "cluster": a_cluster})),
            ),
            (
                Method::POST,
                "/v1/images/scan".into(),
                Some(json!({"image": "reg.example/app:1", "tenant": "team-a"})),
            ),
            (
                Method::POST,
                "/v1/registries".into(),
                Some(json!({"host": "reg.example", "tenant": "team-a"})),
            ),
            (Method::DELETE, format!("/v1/registries/{a_registry}"), None),
            (
                Method::PUT,
                "/v1/ip-lists/x?kind=threat&tenant=team-a".into(),
                Some(json!("192.0.2.9")),
            ),
            (Method::DELETE, "/v1/ip-lists/a-list-name".into(), None),
            (
                Method::DELETE,
                "/v1/ip-lists/a-list-name?tenant=team-a".into(),
                None,
            ),
            (
                Method::POST,
                "/v1/suppression-rules".into(),
                Some(json!({"name": "x", "condition": "true", "tenant": "team-a"})),
            ),
            (
                Method::DELETE,
                format!("/v1/suppression-rules/{a_rule}"),
                None,
            ),
            (
                Method::GET,
                format!("/v1/entities/cluster/{a_cluster}"),
                None,
            ),
            (
                Method::GET,
                format!("/v1/entities/subject/{a_cluster}/system%3Aanonymous"),
                None,
            ),
            (
                Method::GET,
                format!("/v1/entities/pod/{a_cluster}/default/node-debugger"),
                None,
            ),
            (Method::GET, "/v1/entities/ip/203.0.113.66".into(), None),
            (
                Method::GET,
                "/v1/entities/ip/203.0.113.66?tenant=team-a".into(),
                None,
            ),
            (
                Method::GET,
                format!("/v1/entities/pod/{a_cluster}/default/node-debugger/impact"),
                None,
            ),
            (
                Method::GET,
                format!("/v1/entities/subject/{a_cluster}/system%3Aanonymous/impact"),
                None,
            ),
            (
                Method::PUT,
                format!("/v1/clusters/{a_cluster}/snapshot"),
                Some(json!({"kind": "List", "items": []})),
            ),
            (
                Method::GET,
                format!("/v1/entities/finding/{a_finding}"),
                None,
            ),
            (
                Method::GET,
                "/v1/entities?type=ip&tenant=team-a".into(),
                None,
            ),
            (
                Method::GET,
                format!("/v1/finding-groups?cluster={a_cluster}"),
                None,
            ),
            (Method::GET, format!("/v1/finding-groups/{a_group}"), None),
            (Method::GET, format!("/v1/retro-hunts/{a_hunt}"), None),
            (Method::DELETE, format!("/v1/retro-hunts/{a_hunt}"), None),
            (
                Method::POST,
                "/v1/retro-hunts".into(),
                Some(
                    json!({"since": "2026-11-20T00:00:00Z", "rules": hunt_rules, "cluster": a_cluster}),
                ),
            ),
            (
                Method::POST,
                "/v1/retro-hunts".into(),
                Some(
                    json!({"since": "2026-11-20T00:00:00Z", "rules": hunt_rules, "tenant": "team-a"}),
                ),
            ),
        ];
        for (role, token) in &b_tokens {
            for (method, path, body) in &routes {
                let (st, v) = s
                    .call(method.clone(), path, Some(token), body.clone())
                    .await;
                assert!(
                    st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN,
                    "{backend:?} B {role} {method} {path}: {st} {v}"
                );
            }
            // Ingest into A's cluster.
            let (st, _, _) = s
                .post_raw(
                    &format!("/v1/clusters/{a_cluster}/audit"),
                    token,
                    batch.clone(),
                )
                .await;
            assert!(
                st == StatusCode::FORBIDDEN,
                "{backend:?} B {role} ingest into A: {st}"
            );
            // Listings show none of A's data.
            for path in [
                "/v1/findings?limit=1000",
                &format!("/v1/findings?cluster={a_cluster}"),
                "/v1/findings/statistics?group_by=cluster",
                "/v1/findings/export",
                "/v1/findings/export?format=csv",
                "/v1/clusters",
                "/v1/tenants",
                "/v1/tokens",
                "/v1/admin-log",
                "/v1/scans",
                "/v1/sboms",
                "/v1/registries",
                "/v1/ip-lists",
                "/v1/suppression-rules",
                "/v1/entities?type=cluster",
                "/v1/entities?type=subject",
                "/v1/entities?type=ip",
                "/v1/entities?type=pod",
                "/v1/entities?type=finding",
                "/v1/finding-groups?since=2026-01-01T00:00:00Z",
                "/v1/retro-hunts",
            ] {
                let (st, v) = s.get(path, token).await;
                if st == StatusCode::OK {
                    let text = v.to_string();
                    assert!(
                        !text.contains(&a_cluster)
                            && !text.contains(&a_finding)
                            && !text.contains("team-a")
                            && !text.contains(&a_token)
                            && !text.contains(&a_scan)
                            && !text.contains(&a_hunt)
                            && !text.contains("a-registry.example")
                            && !text.contains("a-list-name")
                            && !text.contains("a-rule-name")
                            && !text.contains("203.0.113.66"),
                        "{backend:?} B {role} {path} shows A's data: {text}"
                    );
                } else {
                    assert!(
                        st == StatusCode::FORBIDDEN,
                        "{backend:?} B {role} {path}: {st}"
                    );
                }
            }
        }
        // The graph routes B was refused answer A.
        for path in [
            format!("/v1/entities/cluster/{a_cluster}"),
            format!("/v1/entities/pod/{a_cluster}/default/node-debugger"),
            format!("/v1/entities/pod/{a_cluster}/default/node-debugger/impact"),
            "/v1/entities/ip/203.0.113.66".into(),
            format!("/v1/entities/finding/{a_finding}"),
            format!("/v1/finding-groups/{a_group}"),
            format!("/v1/finding-groups?cluster={a_cluster}&since=2026-01-01T00:00:00Z"),
            format!("/v1/retro-hunts/{a_hunt}"),
        ] {
            let (st, v) = s.get(&path, &a_admin).await;
            assert_eq!(st, StatusCode::OK, "{backend:?} A {path}: {v}");
        }
        // A's data is unchanged, and B's ingest token still works for B.
        let (_, f) = s.get(&format!("/v1/findings/{a_finding}"), &a_admin).await;
        assert_eq!(f["state"], "active");
        let (_, hist) = s
            .get(&format!("/v1/findings/{a_finding}/history"), &a_admin)
            .await;
        assert!(
            hist["history"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["actor"] == "detector"),
            "only detection touched A's finding: {hist}"
        );
        let (_, toks) = s.get("/v1/tokens", &a_admin).await;
        assert!(
            toks["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t.get("revoked_ms").is_none())
        );
        assert_eq!(
            s.post_raw(&format!("/v1/clusters/{b_cluster}/audit"), &b_ingest, batch)
                .await
                .0,
            StatusCode::OK
        );
        // The organization's administrator sees both.
        s.wait_detected().await;
        let (_, all) = s.get("/v1/clusters", &s.admin).await;
        assert_eq!(all["clusters"].as_array().unwrap().len(), 2);
        let (st, _) = s.get(&format!("/v1/findings/{a_finding}"), &s.admin).await;
        assert_eq!(st, StatusCode::OK);
        s.stop().await;
    }
}

/// With a metrics token, /metrics answers only a request presenting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    let s = TestServer::start(
        osprey_store::Backend::Sqlite,
        Options {
            metrics_token: Some("metrics-token-0123456789".into()),
            ..Options::default()
        },
    )
    .await;
    let (st, e) = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");
    let (st, _) = s.call(Method::GET, "/metrics", Some("wrong"), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, m) = s
        .call(
            Method::GET,
            "/metrics",
            Some("metrics-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        m.as_str().unwrap().contains("osprey_auth_refused_total 2"),
        "{m}"
    );
    s.stop().await;
}

/// A cluster's ingest token rotates, with an overlap during which both tokens ingest; tokens
/// expire and remember their last use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_rotate_and_tokens_expire() {
    let s = TestServer::start(osprey_store::Backend::Sqlite, Options::default()).await;
    let (_, admin) = s.member("team-a").await;
    let (_, b_admin) = s.member("team-b").await;
    let viewer = s.token("team-a", "viewer").await;
    let (cluster, first) = s.cluster(&admin, "prod").await;
    let url = format!("/v1/clusters/{cluster}/audit");
    let rotate = format!("/v1/clusters/{cluster}/ingest-token");
    let mut batches = story_batches(10).into_iter();
    let mut ingest = |token: String| {
        let batch = batches.next().unwrap();
        let (s, url) = (&s, url.clone());
        async move { s.post_raw(&url, &token, batch).await.0 }
    };
    let (st, r) = s
        .post(&rotate, &admin, json!({ "overlap_minutes": 5 }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let second = r["ingest_token"].as_str().unwrap().to_string();
    let stop = r["old_tokens_stop_ms"].as_i64().unwrap();
    assert!(stop > osprey_store::now_ms() + 4 * 60_000, "{r}");
    assert_eq!(
        ingest(first.clone()).await,
        StatusCode::OK,
        "the old one, within the overlap"
    );
    assert_eq!(ingest(second.clone()).await, StatusCode::OK);
    let (st, r) = s.post(&rotate, &admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let third = r["ingest_token"].as_str().unwrap().to_string();
    assert_eq!(ingest(first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(ingest(second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(ingest(third).await, StatusCode::OK);
    for (token, body, status) in [
        (
            &admin,
            json!({ "overlap_minutes": 20_000 }),
            StatusCode::BAD_REQUEST,
        ),
        (&viewer, json!({}), StatusCode::FORBIDDEN),
        (&b_admin, json!({}), StatusCode::NOT_FOUND),
    ] {
        let (st, e) = s.post(&rotate, token, body).await;
        assert_eq!(st, status, "{e}");
    }

    // A token that expires says when; the list says when each was last used.
    let (st, t) = s
        .post(
            "/v1/tokens",
            &admin,
            json!({ "name": "ci", "role": "viewer", "expires_in_days": 1 }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let expires = t["expires_ms"].as_i64().unwrap();
    assert!(
        (expires - osprey_store::now_ms() - 86_400_000).abs() < 60_000,
        "{t}"
    );
    let (st, e) = s
        .post(
            "/v1/tokens",
            &admin,
            json!({ "name": "x", "role": "viewer", "expires_in_days": 0 }),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (_, list) = s.get("/v1/tokens", &admin).await;
    let tokens = list["tokens"].as_array().unwrap();
    let ci = tokens.iter().find(|t| t["name"] == "ci").unwrap();
    assert_eq!(ci["expires_ms"], expires);
    assert!(ci.get("last_used_ms").is_none(), "never used: {ci}");
    assert!(
        tokens
            .iter()
            .any(|t| t["role"] == "admin" && t["last_used_ms"].as_i64().is_some()),
        "{list}"
    );
    s.stop().await;
}
