//! Outputs end to end on both backends: receivers written here (a generic webhook checking the
//! HMAC signature, an Alertmanager v2 endpoint, a CloudEvents receiver, one that always fails)
//! get the findings of the attack story; severity filters and tenancy hold; failures end as
//! dead letters.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::post;
use common::{BACKENDS, TestServer, story_batches, wait_for};
use hmac::{Hmac, Mac};
use osprey_server::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Default)]
struct Received {
    /// (path, content type, signature, timestamp, body)
    requests: Vec<(String, String, String, String, Value)>,
}

type Shared = Arc<Mutex<Received>>;

async fn record(path: &'static str, state: Shared, headers: HeaderMap, body: Bytes) -> AxStatus {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let raw = String::from_utf8(body.to_vec()).unwrap();
    let value: Value = serde_json::from_str(&raw).unwrap();
    // The signature is checked against the raw bytes, as a receiver must.
    let sig = h("x-osprey-signature");
    let ts = h("x-osprey-timestamp");
    if !sig.is_empty() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef-secret").unwrap();
        mac.update(format!("{ts}.{raw}").as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        if path == "/hook" {
            assert_eq!(sig, expected, "webhook signature");
        }
    }
    state
        .lock()
        .unwrap()
        .requests
        .push((path.to_string(), h("content-type"), sig, ts, value));
    if path == "/fail" {
        AxStatus::INTERNAL_SERVER_ERROR
    } else {
        AxStatus::OK
    }
}

async fn receiver() -> (String, Shared) {
    receiver_on("127.0.0.1").await
}

/// A receiver listening on `ip`.
async fn receiver_on(ip: &str) -> (String, Shared) {
    let shared: Shared = Arc::default();
    macro_rules! route {
        ($p:literal) => {
            post(|State(s): State<Shared>, h: HeaderMap, b: Bytes| record($p, s, h, b))
        };
    }
    let app = Router::new()
        .route("/hook", route!("/hook"))
        .route("/hook-high", route!("/hook-high"))
        .route("/hook-b", route!("/hook-b"))
        .route("/hook-admin", route!("/hook-admin"))
        .route("/am/api/v2/alerts", route!("/am/api/v2/alerts"))
        .route("/ce", route!("/ce"))
        .route("/fail", route!("/fail"))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

/// A listener on `ip` that redirects every request to `target` (307, keeping the method).
async fn redirector(ip: &str, target: String) -> String {
    let app = Router::new().fallback(move || {
        let target = target.clone();
        async move { (AxStatus::TEMPORARY_REDIRECT, [("location", target)]) }
    });
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn findings_in(received: &Shared, path: &str) -> Vec<Value> {
    let r = received.lock().unwrap();
    let mut out = Vec::new();
    for (p, _, _, _, body) in r.requests.iter().filter(|r| r.0 == path) {
        match p.as_str() {
            "/am/api/v2/alerts" | "/ce" => out.extend(body.as_array().unwrap().iter().cloned()),
            _ => out.extend(body["events"].as_array().unwrap().iter().cloned()),
        }
    }
    out
}

/// Outputs reach only what the destination policy allows: this server allows 127.0.0.2 and
/// nothing else that is not public. Literal addresses that are not allowed are refused when
/// the output is created; a name resolving to one, and a redirect to one, when delivering,
/// with a reason that says no more than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_reach_only_destinations_the_policy_allows() {
    let (loopback, refused_received) = receiver_on("127.0.0.1").await;
    let (allowed, received) = receiver_on("127.0.0.2").await;
    let moved = redirector("127.0.0.2", format!("{loopback}/hook")).await;
    let options = Options {
        output_backoff: Duration::from_millis(5),
        destinations: osprey_egress::Policy::restricted(vec!["127.0.0.2".parse().unwrap()]),
        ..Options::default()
    };
    let s = TestServer::start_strict(osprey_store::Backend::Sqlite, options).await;
    let (_, admin) = s.member("team-a").await;
    for url in [
        format!("{loopback}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/hook".to_string(),
        "https://[::1]/hook".to_string(),
        "http://[::ffff:127.0.0.1]/hook".to_string(),
    ] {
        let (st, e) = s
            .post(
                "/v1/outputs",
                &admin,
                json!({"name": "x", "kind": "webhook", "url": url}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("destination not allowed"),
            "{e}"
        );
    }
    let port = loopback.rsplit(':').next().unwrap();
    let mut outputs = Vec::new();
    for (name, url) in [
        ("by-name", format!("http://localhost:{port}/hook")),
        ("moved", format!("{moved}/hook")),
        ("allowed", format!("{allowed}/hook")),
    ] {
        let (st, o) = s
            .post(
                "/v1/outputs",
                &admin,
                json!({"name": name, "kind": "webhook", "url": url, "secret": "0123456789abcdef-secret"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{o}");
        outputs.push((name, o["id"].as_str().unwrap().to_string()));
    }
    let (st, v) = s.post("/v1/findings/samples", &admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    wait_for("the allowed receiver has the samples", || async {
        !findings_in(&received, "/hook").is_empty()
    })
    .await;
    let failures = |id: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            s.get(&format!("/v1/outputs/{id}/deliveries"), &admin)
                .await
                .1["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["last_error"].as_str().filter(|e| !e.is_empty()))
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };
    for (name, id) in &outputs[..2] {
        wait_for(&format!("{name} fails"), || async {
            !failures(id.clone()).await.is_empty()
        })
        .await;
        let errors = failures(id.clone()).await;
        let expected = if *name == "moved" {
            "HTTP 307"
        } else {
            "destination not allowed"
        };
        assert!(errors.iter().all(|e| e == expected), "{name}: {errors:?}");
    }
    assert!(
        refused_received.lock().unwrap().requests.is_empty(),
        "nothing reached this machine's 127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_reach_webhooks_alertmanager_and_cloudevents() {
    for backend in BACKENDS {
        let (rx, received) = receiver().await;
        let options = Options {
            output_backoff: Duration::from_millis(5),
            ..Options::default()
        };
        let s = TestServer::start(backend, options).await;
        let (_, a_admin) = s.member("team-a").await;
        let (_, b_admin) = s.member("team-b").await;
        let out = |token: &str, body: Value| {
            let (s, token) = (&s, token.to_string());
            async move {
                let (st, v) = s.post("/v1/outputs", &token, body).await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                v
            }
        };
        let hook = out(&a_admin, json!({"name": "siem", "kind": "webhook", "url": format!("{rx}/hook"), "secret": "0123456789abcdef-secret"})).await;
        assert!(hook.get("secret").is_none(), "a given secret is not echoed");
        if backend == osprey_store::Backend::Sqlite {
            // Stored sealed with the server's key, as registry passwords are.
            let store = osprey_store::Store::open_sqlite(s.data.path())
                .await
                .unwrap();
            let stored = store.outputs(None).await.unwrap();
            assert!(
                stored[0].secret.starts_with("sealed:")
                    && !stored[0].secret.contains("0123456789abcdef-secret"),
                "{}",
                stored[0].secret
            );
        }
        out(&a_admin, json!({"name": "pager", "kind": "webhook", "url": format!("{rx}/hook-high"), "severity_min": "high"})).await;
        out(
            &a_admin,
            json!({"name": "am", "kind": "alertmanager", "url": format!("{rx}/am")}),
        )
        .await;
        out(
            &a_admin,
            json!({"name": "bus", "kind": "cloudevents", "url": format!("{rx}/ce")}),
        )
        .await;
        let broken = out(
            &a_admin,
            json!({"name": "broken", "kind": "cloudevents", "url": format!("{rx}/fail")}),
        )
        .await;
        out(
            &b_admin,
            json!({"name": "b-siem", "kind": "webhook", "url": format!("{rx}/hook-b")}),
        )
        .await;
        let generated = out(
            &s.admin,
            json!({"name": "org-siem", "kind": "webhook", "url": format!("{rx}/hook-admin")}),
        )
        .await;
        assert!(
            generated["secret"].as_str().unwrap().starts_with("osp_"),
            "a generated secret is shown once"
        );
        for (bad, why) in [
            (
                json!({"name": "x", "kind": "email", "url": "http://h/"}),
                "kind",
            ),
            (
                json!({"name": "x", "kind": "webhook", "url": "ftp://h/"}),
                "url",
            ),
            (
                json!({"name": "x", "kind": "webhook", "url": "http://h/", "secret": "short"}),
                "secret",
            ),
            (
                json!({"name": "x", "kind": "webhook", "url": "http://h/", "severity_min": "huge"}),
                "severity_min",
            ),
        ] {
            let (st, e) = s.post("/v1/outputs", &a_admin, bad).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
            assert!(e["error"].as_str().unwrap().starts_with(why), "{e}");
        }
        let viewer = s.token("team-a", "viewer").await;
        let (st, _) = s
            .post(
                "/v1/outputs",
                &viewer,
                json!({"name": "x", "kind": "webhook", "url": "http://h/"}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        let (cluster, ingest) = s.cluster(&a_admin, "prod").await;
        for b in story_batches(20) {
            assert_eq!(
                s.post_raw(&format!("/v1/clusters/{cluster}/audit"), &ingest, b)
                    .await
                    .0,
                StatusCode::OK
            );
        }
        s.wait_detected().await;
        let (_, all) = s.get("/v1/findings?limit=1000", &a_admin).await;
        let all = all["findings"].as_array().unwrap().clone();
        let high = all
            .iter()
            .filter(|f| f["severity"]["score"].as_f64().unwrap() >= 7.0)
            .count();
        assert!(high > 0 && high < all.len());

        // Every finding goes out, to every output whose filter it passes.
        wait_for("every output has its findings", || async {
            findings_in(&received, "/hook").len() >= all.len()
                && findings_in(&received, "/ce").len() >= all.len()
                && findings_in(&received, "/am/api/v2/alerts").len() >= all.len()
                && findings_in(&received, "/hook-admin").len() >= all.len()
                && findings_in(&received, "/hook-high").len() >= high
        })
        .await;
        let hooks = findings_in(&received, "/hook");
        assert_eq!(hooks.len(), all.len(), "{backend:?}: each new finding once");
        assert!(
            hooks
                .iter()
                .all(|e| e["event"] == "finding.created" && e["finding"]["tenant_id"].is_string())
        );
        let mut sent: Vec<&str> = hooks
            .iter()
            .map(|e| e["finding"]["id"].as_str().unwrap())
            .collect();
        let mut stored: Vec<&str> = all.iter().map(|f| f["id"].as_str().unwrap()).collect();
        sent.sort();
        stored.sort();
        assert_eq!(sent, stored);
        {
            let r = received.lock().unwrap();
            let hook_req = r.requests.iter().find(|r| r.0 == "/hook").unwrap();
            assert_eq!(hook_req.1, "application/json");
            assert!(
                hook_req.3.parse::<i64>().unwrap() > 1_700_000_000,
                "timestamp header"
            );
            let ce = r.requests.iter().find(|r| r.0 == "/ce").unwrap();
            assert_eq!(ce.1, "application/cloudevents-batch+json");
        }
        let alerts = findings_in(&received, "/am/api/v2/alerts");
        assert!(alerts.iter().all(|a| a["labels"]["cluster"] == "prod"
            && a["labels"]["source"] == "osprey"
            && a["labels"]["alertname"].as_str().unwrap().contains(':')
            && a["annotations"]["summary"].is_string()));
        let events = findings_in(&received, "/ce");
        assert!(events.iter().all(|e| e["specversion"] == "1.0"
            && e["type"] == "dev.osprey.finding.created"
            && e["data"]["id"] == e["subject"]));
        let paged = findings_in(&received, "/hook-high");
        assert_eq!(paged.len(), high, "severity filter");
        assert!(
            findings_in(&received, "/hook-b").is_empty(),
            "another member's output gets nothing"
        );
        assert_eq!(
            findings_in(&received, "/hook-admin").len(),
            all.len(),
            "the administrator's output sees members"
        );

        // The failing output ends as dead letters, listed for its owner only.
        let broken_id = broken["id"].as_str().unwrap();
        let dead_letters = || async {
            s.get(
                &format!("/v1/outputs/{broken_id}/deliveries?state=dead"),
                &a_admin,
            )
            .await
            .1["deliveries"]
                .as_array()
                .unwrap()
                .clone()
        };
        wait_for("every delivery to the failing output is dead", || async {
            dead_letters().await.len() == all.len()
        })
        .await;
        let dead = dead_letters().await;
        assert!(
            dead.iter()
                .all(|d| d["attempts"] == 8
                    && d["last_error"].as_str().unwrap().contains("HTTP 500"))
        );
        let (st, _) = s
            .get(&format!("/v1/outputs/{broken_id}/deliveries"), &b_admin)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/v1/outputs/{broken_id}"),
                Some(&b_admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, mine) = s.get("/v1/outputs", &a_admin).await;
        assert_eq!(mine["outputs"].as_array().unwrap().len(), 5);
        assert!(
            mine["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o.get("secret").is_none())
        );
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/v1/outputs/{broken_id}"),
                Some(&a_admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (_, m) = s.call(Method::GET, "/metrics", None, None).await;
        let m = m.as_str().unwrap();
        assert!(
            m.contains("osprey_output_deliveries_total{kind=\"webhook\",result=\"delivered\"}"),
            "{m}"
        );
        assert!(
            m.contains("osprey_output_deliveries_total{kind=\"cloudevents\",result=\"failed\"}"),
            "{m}"
        );

        // Samples go out too: that is what they are for.
        let before = findings_in(&received, "/hook").len();
        let (st, v) = s.post("/v1/findings/samples", &a_admin, json!({})).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        wait_for("the samples are sent", || async {
            findings_in(&received, "/hook").len() > before
        })
        .await;
        let hooks = findings_in(&received, "/hook");
        assert!(
            hooks[before..]
                .iter()
                .all(|e| e["finding"]["sample"] == true)
        );
        assert!(hooks.len() > before);
        s.stop().await;
    }
}
