//! Retro-hunts through the API, on both backends: a threat list added after the events were
//! detected finds the calls from its address in the window (counted here from the raw story,
//! independently of the engine), a hunt's own rules run over its window only, the findings
//! join the story's group and the attacker's profile, live findings stay as they were, and
//! what cannot run is refused in one line.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{BACKENDS, TestServer, story_batches, story_events};
use osprey_server::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ATTACKER: &str = "203.0.113.66";

fn request_ms(e: &Value) -> i64 {
    let t = e["requestReceivedTimestamp"].as_str().unwrap();
    t.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// The story's events whose request falls in [since, until), each (audit id, stage) once.
fn in_window(since: &str, until: &str) -> Vec<Value> {
    let (a, b) = (ms(since), ms(until));
    let mut seen = HashSet::new();
    story_events()
        .into_iter()
        .filter(|e| (a..b).contains(&request_ms(e)))
        .filter(|e| seen.insert((e["auditID"].to_string(), e["stage"].to_string())))
        .collect()
}

/// Waits for a hunt to end; returns it.
async fn ended(s: &TestServer, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let (st, h) = s.get(&format!("/v1/retro-hunts/{id}"), token).await;
        assert_eq!(st, StatusCode::OK, "{h}");
        if !matches!(h["state"].as_str(), Some("queued" | "running")) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retro-hunt did not end in {:?}: {h}",
            common::PATIENCE
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn findings_of(s: &TestServer, token: &str, ids: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        let (st, f) = s
            .get(&format!("/v1/findings/{}", id.as_str().unwrap()), token)
            .await;
        assert_eq!(st, StatusCode::OK, "{f}");
        out.push(f);
    }
    out
}

/// Live findings: (id, count), to check a hunt leaves them as they were.
async fn live(s: &TestServer, token: &str) -> BTreeMap<String, u64> {
    let (st, page) = s.get("/v1/findings?limit=1000", token).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] != "retro-hunt" && f["source"] != "correlation")
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_threat_list_added_after_ingest_finds_the_calls_from_its_address() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(20)).await;
        // A retried batch is kept twice: the hunt reads it once.
        s.ingest(&cluster, &ingest, story_batches(20).into_iter().take(1))
            .await;
        let before = live(&s, &admin).await;
        assert!(!before.is_empty());

        // The intelligence arrives after the attack was detected.
        let put = reqwest::Client::new()
            .put(format!("{}/v1/ip-lists/late-intel?kind=threat", s.base))
            .bearer_auth(&admin)
            .body(format!("# shared by a peer\n{ATTACKER}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);

        let (since, until) = ("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z");
        let (st, queued) = s
            .post(
                "/v1/retro-hunts",
                &admin,
                json!({"since": since, "until": until, "threat_list": "late-intel"}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["threat_list"], "late-intel");
        let id = queued["id"].as_str().unwrap();
        let h = ended(&s, &admin, id).await;
        assert_eq!(h["state"], "done", "{backend:?} {h:#}");
        let window = in_window(since, until);
        assert_eq!(
            h["events_scanned"],
            window.len(),
            "every event of the window once: {h}"
        );
        assert_eq!(h["notices"], json!([]), "{h}");

        // The oracle: the attacker's completed calls, per (verb, resource).
        let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
        for e in window
            .iter()
            .filter(|e| e["sourceIPs"][0] == ATTACKER && e["stage"] == "ResponseComplete")
        {
            let key = (
                e["verb"].as_str().unwrap().to_string(),
                e["objectRef"]["resource"].as_str().unwrap().to_string(),
            );
            *expected.entry(key).or_default() += 1;
        }
        let found = findings_of(&s, &admin, h["findings"].as_array().unwrap()).await;
        let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in &found {
            assert_eq!(f["source"], "retro-hunt", "{f}");
            let finding = f;
            assert!(
                finding["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("MaliciousIPCaller.Custom"),
                "{finding}"
            );
            let call = &finding["action"];
            assert_eq!(call["source_ips"][0], ATTACKER, "{finding}");
            let key = (
                call["verb"].as_str().unwrap().to_string(),
                call["resource"].as_str().unwrap().to_string(),
            );
            *got.entry(key).or_default() += finding["count"].as_u64().unwrap();
        }
        assert_eq!(
            got.values().sum::<u64>(),
            expected.values().sum::<u64>(),
            "{backend:?}: every completed call from {ATTACKER} once: {got:?} vs {expected:?}"
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "one finding per (verb, resource): {got:?} vs {expected:?}"
        );

        // Live findings are as they were; the hunt's join the story's group and the
        // attacker's profile.
        assert_eq!(live(&s, &admin).await, before);
        let (st, groups) = s
            .get("/v1/finding-groups?since=2026-11-01T00:00:00Z", &admin)
            .await;
        assert_eq!(st, StatusCode::OK, "{groups}");
        let groups = groups["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{groups:#?}");
        let grouped = &groups[0]["finding_ids"];
        for id in h["findings"].as_array().unwrap() {
            assert!(
                grouped.as_array().unwrap().contains(id),
                "{id} in {grouped}"
            );
        }
        let (st, profile) = s
            .get(
                &format!("/v1/entities/ip/{ATTACKER}?start={since}&end={until}"),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{profile}");
        for id in h["findings"].as_array().unwrap() {
            assert!(
                profile["findings"].as_array().unwrap().contains(id),
                "{id} in the attacker's profile: {}",
                profile["findings"]
            );
        }
        // Listed, newest first.
        let (st, list) = s.get("/v1/retro-hunts", &admin).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list["retro_hunts"][0]["id"], id);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_hunts_rules_run_over_its_window_only() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(7)).await;
        let rules = "\
rules:
  - id: hunt.secret-reads
    title: \"CredentialAccess: secrets read\"
    type: CredentialAccess:Kubernetes/SecretsRead
    severity: Low
    condition: resource = secrets and verb in (get, list)
    group_by: [cluster, user.name]
";
        let (since, until) = ("2026-11-20T09:03:30Z", "2026-11-20T09:04:00Z");
        let (st, queued) = s
            .post(
                "/v1/retro-hunts",
                &admin,
                json!({"since": since, "until": until, "rules": rules, "cluster": cluster}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{queued}");
        let h = ended(&s, &admin, queued["id"].as_str().unwrap()).await;
        assert_eq!(h["state"], "done", "{h}");
        let window = in_window(since, until);
        assert_eq!(h["events_scanned"], window.len(), "{h}");
        let reads = window
            .iter()
            .filter(|e| {
                e["stage"] == "ResponseComplete"
                    && e["objectRef"]["resource"] == "secrets"
                    && matches!(e["verb"].as_str(), Some("get" | "list"))
            })
            .count() as u64;
        assert!(reads > 0);
        let found = findings_of(&s, &admin, h["findings"].as_array().unwrap()).await;
        assert_eq!(
            found
                .iter()
                .map(|f| f["count"].as_u64().unwrap())
                .sum::<u64>(),
            reads,
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .all(|f| f["type"] == "CredentialAccess:Kubernetes/SecretsRead"
                    && f["source"] == "retro-hunt")
        );

        // A window before every event: nothing read, nothing found, still done.
        let (st, queued) = s
            .post(
                "/v1/retro-hunts",
                &admin,
                json!({"since": "2026-10-01T00:00:00Z", "until": "2026-10-02T00:00:00Z", "rules": rules}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{queued}");
        let h = ended(&s, &admin, queued["id"].as_str().unwrap()).await;
        assert_eq!(h["state"], "done", "{h}");
        assert_eq!(
            (
                h["events_scanned"].as_i64(),
                h["findings"].as_array().unwrap().len()
            ),
            (Some(0), 0)
        );
        // Ended: cancelling it is a conflict.
        let (st, v) = s
            .call(
                Method::DELETE,
                &format!("/v1/retro-hunts/{}", queued["id"].as_str().unwrap()),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        s.stop().await;
    }
}

#[tokio::test]
async fn what_cannot_run_is_refused_in_one_line() {
    let s = TestServer::start(osprey_store::Backend::Sqlite, Options::default()).await;
    let (_, admin) = s.member("team-a").await;
    let (_, other) = s.member("team-b").await;
    let (other_cluster, _) = s.cluster(&other, "theirs").await;
    let put = reqwest::Client::new()
        .put(format!("{}/v1/ip-lists/office?kind=trusted", s.base))
        .bearer_auth(&admin)
        .body("10.0.0.0/8\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let since = "2026-11-20T00:00:00Z";
    let rule =
        "rules:\n  - {id: h, title: t, type: 'A:B/C', severity: Low, condition: 'verb = get'}";
    for (body, status, says) in [
        (
            json!({"since": since}),
            StatusCode::BAD_REQUEST,
            "rules, a threat_list, or both",
        ),
        (
            json!({"since": since, "rules": "rules: ["}),
            StatusCode::BAD_REQUEST,
            "rules",
        ),
        (
            json!({"since": since, "rules": "enable: [no.such]"}),
            StatusCode::BAD_REQUEST,
            "no rule \"no.such\"",
        ),
        (
            json!({"since": since, "threat_list": "nope"}),
            StatusCode::BAD_REQUEST,
            "no such IP list",
        ),
        (
            json!({"since": since, "threat_list": "office"}),
            StatusCode::BAD_REQUEST,
            "not a threat list",
        ),
        (
            json!({"since": "yesterday", "rules": rule}),
            StatusCode::BAD_REQUEST,
            "since \"yesterday\"",
        ),
        (
            json!({"since": since, "until": "2026-11-19T00:00:00Z", "rules": rule}),
            StatusCode::BAD_REQUEST,
            "not after since",
        ),
        (
            json!({"since": "2025-01-01T00:00:00Z", "until": since, "rules": rule}),
            StatusCode::BAD_REQUEST,
            "366 days",
        ),
        (
            json!({"since": since, "until": "2099-01-01T00:00:00Z", "rules": rule}),
            StatusCode::BAD_REQUEST,
            "in the future",
        ),
        (
            json!({"since": since, "rules": rule, "extra": 1}),
            StatusCode::BAD_REQUEST,
            "extra",
        ),
        (
            json!({"since": since, "rules": rule, "cluster": other_cluster}),
            StatusCode::NOT_FOUND,
            "cluster",
        ),
    ] {
        let (st, v) = s.post("/v1/retro-hunts", &admin, body.clone()).await;
        assert_eq!(st, status, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(says) && !e.contains('\n'), "{body}: {e}");
    }
    // A viewer reads hunts but does not start or cancel them.
    let viewer = s.token("team-a", "viewer").await;
    let (st, _) = s
        .post(
            "/v1/retro-hunts",
            &viewer,
            json!({"since": since, "rules": rule}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, list) = s.get("/v1/retro-hunts", &viewer).await;
    assert_eq!(
        (st, list["retro_hunts"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    s.stop().await;
}
