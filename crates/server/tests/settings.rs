//! Detection settings through the API on both backends: threat and trusted IP lists and
//! suppression rules reach detection before its next round; a member's apply to its own
//! clusters only, the administrator tenant's to every member; bad input is a one-line 400.

mod common;

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The attack story's authenticated caller from outside (the IP rules skip anonymous calls).
const CALLER: &str = "198.51.100.23";

async fn put_list(
    s: &TestServer,
    token: &str,
    name: &str,
    query: &str,
    body: &str,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/ip-lists/{name}?{query}", s.base))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_story(s: &TestServer, cluster: &str, ingest: &str) {
    for b in story_batches(20) {
        let (st, v, _) = s
            .post_raw(&format!("/v1/clusters/{cluster}/audit"), ingest, b)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}

/// Every finding of a tenant (archived ones too).
async fn findings(s: &TestServer, token: &str) -> Vec<Value> {
    let (st, v) = s.get("/v1/findings?limit=1000", token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["findings"].as_array().unwrap().clone()
}

fn custom_threat_lists(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| {
            f["type"]
                .as_str()
                .unwrap()
                .ends_with("MaliciousIPCaller.Custom")
        })
        .map(|f| {
            f["evidence"]["threat_list"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_lists_and_suppression_rules_apply_per_tenant() {
    for backend in BACKENDS {
        let options = Options {
            scan_workers: 0,
            ..Options::default()
        };
        let s = TestServer::start(backend, options).await;
        let (_, a) = s.member("team-a").await;
        let (_, b) = s.member("team-b").await;
        let (_, c) = s.member("team-c").await;
        let (ca, ia) = s.cluster(&a, "a").await;
        let (cb, ib) = s.cluster(&b, "b").await;
        let (cc, ic) = s.cluster(&c, "c").await;

        // Uploads: checked, counted, replaced in place.
        let (st, e) = put_list(&s, &a, "bad", "kind=threat", "10.1.2.3\nnot-an-address\n").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(e["error"].as_str().unwrap().contains("line 2"), "{e}");
        let (st, e) = put_list(&s, &a, "bad", "kind=evil", CALLER).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        let (st, e) = put_list(&s, &a, "bad", "kind=threat", "# nothing\n").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        let viewer = s.token("team-a", "viewer").await;
        let (st, _) = put_list(&s, &viewer, "bad", "kind=threat", CALLER).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, l) = put_list(&s, &a, "team-a-bad", "kind=threat", "192.0.2.0/24\n").await;
        assert_eq!(st, StatusCode::CREATED, "{l}");
        let (st, l2) = put_list(
            &s,
            &a,
            "team-a-bad",
            "kind=threat",
            &format!("# our blocklist\n192.0.2.0/24\n{CALLER}\n"),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{l2}");
        assert_eq!(
            (l2["id"].clone(), l2["entries"].clone()),
            (l["id"].clone(), json!(2))
        );
        assert!(l2.get("body").is_none(), "{l2}");
        // The organization's threat list reaches every member; C trusts the address itself.
        let (st, _) = put_list(&s, &s.admin, "org-bad", "kind=threat", CALLER).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _) = put_list(&s, &c, "partners", "kind=trusted", &format!("{CALLER}/32")).await;
        assert_eq!(st, StatusCode::CREATED);

        // A suppression rule of A archives A's privileged-container finding as it is made.
        let (st, e) = s
            .post(
                "/v1/suppression-rules",
                &a,
                json!({"name": "broken", "condition": "user.name ==="}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .starts_with("suppression rule broken: "),
            "{e}"
        );
        let (st, r) = s
            .post(
                "/v1/suppression-rules",
                &a,
                json!({"name": "node-debugging", "type": "PrivilegeEscalation:Kubernetes/*",
                       "condition": "user.name == \"system:anonymous\"", "reason": "the platform team's debug pods"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        let (st, _) = s
            .post(
                "/v1/suppression-rules",
                &a,
                json!({"name": "node-debugging", "condition": "true"}),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT);

        post_story(&s, &ca, &ia).await;
        post_story(&s, &cb, &ib).await;
        post_story(&s, &cc, &ic).await;
        s.wait_detected().await;

        let fa = findings(&s, &a).await;
        let mut lists = custom_threat_lists(&fa);
        lists.sort();
        lists.dedup();
        assert!(!lists.is_empty(), "A's caller is on its lists: {fa:?}");
        assert!(
            lists.iter().all(|l| l == "team-a-bad" || l == "org-bad"),
            "{lists:?}"
        );
        let fb = findings(&s, &b).await;
        let lb = custom_threat_lists(&fb);
        assert!(
            !lb.is_empty() && lb.iter().all(|l| l == "org-bad"),
            "B sees the org list only: {lb:?}"
        );
        let fc = findings(&s, &c).await;
        assert!(custom_threat_lists(&fc).is_empty(), "C trusts the address");
        // A member created after detection compiled the settings gets the organization's too.
        let (_, d) = s.member("team-d").await;
        let (cd, id) = s.cluster(&d, "d").await;
        post_story(&s, &cd, &id).await;
        s.wait_detected().await;
        let ld = custom_threat_lists(&findings(&s, &d).await);
        assert!(
            !ld.is_empty() && ld.iter().all(|l| l == "org-bad"),
            "{ld:?}"
        );

        let privileged = |fs: &[Value]| {
            fs.iter()
                .find(|f| f["type"] == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched")
                .cloned()
                .unwrap()
        };
        let pa = privileged(&fa);
        assert_eq!(pa["state"], "archived", "{pa}");
        assert_eq!(
            pa["suppression"]["reason"], "the platform team's debug pods",
            "{pa}"
        );
        assert_eq!(privileged(&fb)["state"], "active", "A's rule is A's only");

        // Listings are per tenant; another member cannot delete A's things.
        let (_, la) = s.get("/v1/ip-lists", &a).await;
        assert_eq!(la["ip_lists"].as_array().unwrap().len(), 1, "{la}");
        let (_, all) = s.get("/v1/ip-lists", &s.admin).await;
        assert_eq!(all["ip_lists"].as_array().unwrap().len(), 3, "{all}");
        let (_, ra) = s.get("/v1/suppression-rules", &viewer).await;
        assert_eq!(ra["suppression_rules"][0]["name"], "node-debugging", "{ra}");
        let (_, rb) = s.get("/v1/suppression-rules", &b).await;
        assert!(
            rb["suppression_rules"].as_array().unwrap().is_empty(),
            "{rb}"
        );
        let rule_id = r["id"].as_str().unwrap();
        for path in [
            "/v1/ip-lists/team-a-bad".to_string(),
            format!("/v1/suppression-rules/{rule_id}"),
        ] {
            let (st, _) = s.call(Method::DELETE, &path, Some(&b), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
            let (st, _) = s.call(Method::DELETE, &path, Some(&a), None).await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{path}");
        }
        let (_, la) = s.get("/v1/ip-lists", &a).await;
        assert!(la["ip_lists"].as_array().unwrap().is_empty());
        let (_, log) = s.get("/v1/admin-log", &a).await;
        let actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "ip-list.create",
            "ip-list.replace",
            "ip-list.delete",
            "suppression-rule.create",
            "suppression-rule.delete",
        ] {
            assert!(actions.contains(&a), "{a} not in {actions:?}");
        }
        s.stop().await;
    }
}
