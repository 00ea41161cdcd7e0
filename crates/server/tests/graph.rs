//! The investigation graph behind the webhook: profiles count what the audit log says (checked
//! against counts made here from the raw events, independently of the engine), newly
//! observed values against the 45 days before the scope, pods' properties, findings linked
//! to what they name, replays adding nothing, and search.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{BACKENDS, TestServer, story_batches};
use osprey_server::Options;
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR_MS: i64 = 3_600_000;
/// 2026-11-07T00:00:00Z: the oracle's events start here.
const BASE_MS: i64 = 1_794_009_600_000;

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// A small deterministic generator (xorshift), so the log is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[(self.next() % of.len() as u64) as usize]
    }
}

const USERS: [&str; 3] = [
    "jane",
    "system:serviceaccount:ci:deployer",
    "bob@example.com",
];
const IPS: [&str; 4] = ["10.0.0.5", "203.0.113.9", "198.51.100.7", "2001:db8::7"];
const NAMESPACES: [&str; 2] = ["prod", "dev"];
const PODS: [&str; 3] = ["web-1", "web-2", "db-0"];
const CODES: [u16; 8] = [200, 201, 101, 401, 403, 404, 409, 500];

/// One audit event as the API server writes it.
#[allow(clippy::too_many_arguments)]
fn event(
    id: &str,
    stage: &str,
    user: &str,
    ip: &str,
    verb: &str,
    ns: &str,
    resource: &str,
    sub: &str,
    name: &str,
    code: u16,
    request_ms: i64,
    stage_ms: i64,
) -> Value {
    let mut object =
        json!({"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1"});
    if !sub.is_empty() {
        object["subresource"] = json!(sub);
    }
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": stage,
        "requestURI": format!("/api/v1/namespaces/{ns}/{resource}/{name}"),
        "verb": verb, "user": {"username": user}, "sourceIPs": [ip],
        "userAgent": "kubectl/v1.30", "objectRef": object,
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": rfc3339(request_ms),
        "stageTimestamp": rfc3339(stage_ms),
    })
}

/// Six hours of calls by three subjects from four addresses on pods and secrets of two
/// namespaces. One call in eight is logged at two stages, with a different code at each, and
/// its request starts a little before an hour ends while its response comes after: the call
/// counts once, with the final code, in its request's hour.
fn log() -> Vec<Value> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for i in 0..1500 {
        let request_ms = BASE_MS + (r.next() % (6 * HOUR_MS as u64)) as i64;
        let user = r.pick(&USERS);
        let ip = r.pick(&IPS);
        let ns = r.pick(&NAMESPACES);
        let (verb, resource, sub, name) = match r.next() % 4 {
            0 => ("get", "secrets", "", "db-password"),
            1 => ("create", "pods", "exec", r.pick(&PODS)),
            2 => ("get", "pods", "", r.pick(&PODS)),
            _ => ("delete", "pods", "", r.pick(&PODS)),
        };
        let code = CODES[(r.next() % CODES.len() as u64) as usize];
        let id = format!("call-{i}");
        // The call at one stage: its code, its request time, its stage's time.
        let at = |stage: &str, code: u16, request_ms: i64, stage_ms: i64| {
            event(
                &id, stage, user, ip, verb, ns, resource, sub, name, code, request_ms, stage_ms,
            )
        };
        if i % 8 == 0 {
            let request_ms = (request_ms / HOUR_MS + 1) * HOUR_MS - 50;
            out.push(at("ResponseStarted", 200, request_ms, request_ms + 10));
            out.push(at("ResponseComplete", code, request_ms, request_ms + 5_000));
        } else {
            out.push(at("ResponseComplete", code, request_ms, request_ms + 20));
        }
    }
    out
}

/// Which raw events a profile covers.
type Selector = Box<dyn Fn(&Value) -> bool>;

/// Counts per hour and result class of the calls `matches` selects, made from the raw events:
/// a call is its audit id; its final stage's code decides; its request time the hour.
fn oracle(events: &[Value], matches: impl Fn(&Value) -> bool) -> BTreeMap<String, [u64; 4]> {
    let mut calls: HashMap<&str, &Value> = HashMap::new();
    for e in events {
        let id = e["auditID"].as_str().unwrap();
        if e["stage"] == "ResponseComplete" || !calls.contains_key(id) {
            calls.insert(id, e);
        }
    }
    let mut out: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for e in calls.values().filter(|e| matches(e)) {
        let t: jiff::Timestamp = e["requestReceivedTimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let hour = rfc3339(t.as_millisecond() / HOUR_MS * HOUR_MS);
        let class = match e["responseStatus"]["code"].as_u64().unwrap() {
            101 | 200..=299 => 0,
            401 => 2,
            403 => 3,
            _ => 1,
        };
        out.entry(hour).or_default()[class] += 1;
    }
    out
}

/// The profile's hourly counts as the oracle writes them.
fn hourly(profile: &Value) -> BTreeMap<String, [u64; 4]> {
    profile["api_calls"]["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let n = |k: &str| h[k].as_u64().unwrap();
            (
                h["hour"].as_str().unwrap().to_string(),
                [n("success"), n("failed"), n("unauthorized"), n("forbidden")],
            )
        })
        .collect()
}

fn batches(events: &[Value], per_batch: usize) -> Vec<Vec<u8>> {
    events
        .chunks(per_batch)
        .map(|c| {
            serde_json::to_vec(
                &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": c}),
            )
            .unwrap()
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_count_what_the_audit_log_says() {
    let events = log();
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        let sent = batches(&events, 100);
        // The first three batches twice: a retry adds nothing.
        let again = sent[..3].to_vec();
        s.ingest(&cluster, &ingest, sent.into_iter().chain(again))
            .await;
        let scope = format!(
            "start={}&end={}",
            rfc3339(BASE_MS),
            rfc3339(BASE_MS + 7 * HOUR_MS)
        );
        let pod_call = |e: &Value, ns: &str, pod: &str| {
            e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["namespace"] == ns
                && e["objectRef"]["name"] == pod
        };
        let cases: Vec<(String, Selector)> = vec![
            (
                format!("subject/{cluster}/{}", encode(USERS[1])),
                Box::new(|e: &Value| e["user"]["username"] == USERS[1]),
            ),
            (
                format!("ip/{}", IPS[3]),
                Box::new(|e: &Value| e["sourceIPs"][0] == IPS[3]),
            ),
            (
                format!("pod/{cluster}/prod/web-1"),
                Box::new(move |e: &Value| pod_call(e, "prod", "web-1")),
            ),
            (
                format!("namespace/{cluster}/dev"),
                Box::new(|e: &Value| e["objectRef"]["namespace"] == "dev"),
            ),
            // A user agent's slash travels encoded and stays part of the value.
            (
                "user-agent/kubectl%2Fv1.30".to_string(),
                Box::new(|e: &Value| e["userAgent"] == "kubectl/v1.30"),
            ),
        ];
        for (id, matches) in &cases {
            let (st, p) = s.get(&format!("/v1/entities/{id}?{scope}"), &admin).await;
            assert_eq!(st, StatusCode::OK, "{backend:?} {id}: {p}");
            let expected = oracle(&events, matches);
            assert_eq!(hourly(&p), expected, "{backend:?} {id}");
            let total: u64 = expected.values().flatten().sum();
            assert_eq!(p["api_calls"]["total"], total, "{backend:?} {id}");
            let by_result = &p["api_calls"]["by_result"];
            let sum = |i: usize| expected.values().map(|c| c[i]).sum::<u64>();
            assert_eq!(
                [
                    &by_result["success"],
                    &by_result["failed"],
                    &by_result["unauthorized"],
                    &by_result["forbidden"]
                ],
                [
                    &json!(sum(0)),
                    &json!(sum(1)),
                    &json!(sum(2)),
                    &json!(sum(3))
                ],
                "{backend:?} {id}"
            );
            let by_call: u64 = p["api_calls"]["by_verb_resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    ["success", "failed", "unauthorized", "forbidden"]
                        .iter()
                        .map(|k| v[*k].as_u64().unwrap())
                        .sum::<u64>()
                })
                .sum();
            assert_eq!(
                by_call, total,
                "{backend:?} {id}: verbs and resources add up"
            );
            assert_eq!(p["entity"]["id"], id.as_str());
        }
        // An address's colons may arrive encoded too.
        let (st, p) = s
            .get(
                &format!("/v1/entities/ip/2001%3Adb8%3A%3A7?{scope}"),
                &admin,
            )
            .await;
        assert_eq!(
            (st, &p["entity"]["id"]),
            (StatusCode::OK, &json!("ip/2001:db8::7"))
        );
        // Who exec'd into a pod, from the pod's side.
        let (_, pod) = s
            .get(
                &format!("/v1/entities/pod/{cluster}/prod/web-1?{scope}"),
                &admin,
            )
            .await;
        let execs: Vec<&str> = pod["related"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relation"] == "exec")
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(
            !execs.is_empty() && execs.iter().all(|r| r.starts_with("subject/")),
            "{pod}"
        );
        // The scope is checked.
        for bad in [
            "start=2026-11-02T00:30:00Z",
            "start=yesterday",
            "start=2026-11-02T00:00:00Z&end=2026-11-02T00:00:00Z",
        ] {
            let (st, v) = s
                .get(&format!("/v1/entities/cluster/{cluster}?{bad}"), &admin)
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
            assert!(
                v["error"].as_str().unwrap().contains("start")
                    || v["error"].as_str().unwrap().contains("scope"),
                "{v}"
            );
        }
        let (st, v) = s.get("/v1/entities/pod/only-two/parts", &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let (st, _) = s
            .get(
                &format!("/v1/entities/pod/{cluster}/prod/never-seen"),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newly_observed_is_what_the_45_days_before_did_not_see() {
    let s = TestServer::start(common::BACKENDS[0], Options::default()).await;
    let (_, admin) = s.member("team-a").await;
    let (cluster, ingest) = s.cluster(&admin, "prod").await;
    let day = 24 * HOUR_MS;
    let call = |id: &str, ip: &str, ms: i64| {
        event(
            id,
            "ResponseComplete",
            "jane",
            ip,
            "get",
            "prod",
            "secrets",
            "",
            "db",
            200,
            ms,
            ms + 5,
        )
    };
    let scope_ms = BASE_MS;
    let events = vec![
        call("old-50", "192.0.2.50", scope_ms - 50 * day),
        call("old-30", "192.0.2.30", scope_ms - 30 * day),
        call("now-50", "192.0.2.50", scope_ms + HOUR_MS),
        call("now-30", "192.0.2.30", scope_ms + HOUR_MS),
        call("now-new", "192.0.2.1", scope_ms + 2 * HOUR_MS),
    ];
    s.ingest(&cluster, &ingest, batches(&events, 10)).await;
    let path = format!(
        "/v1/entities/subject/{cluster}/jane?start={}&end={}",
        rfc3339(scope_ms),
        rfc3339(scope_ms + day)
    );
    let (st, p) = s.get(&path, &admin).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let new_ips: Vec<&str> = p["newly_observed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "ip")
        .map(|n| n["value"].as_str().unwrap())
        .collect();
    assert_eq!(new_ips, ["192.0.2.50", "192.0.2.1"], "{p}");
    let api_calls: Vec<&Value> = p["newly_observed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "api_call")
        .collect();
    assert!(
        api_calls.is_empty(),
        "get secrets was seen 30 days before: {p}"
    );
    // 50 days of data: past training.
    assert!(
        p["notices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "training"),
        "{p}"
    );
    // The IP's side: who called from it.
    let (_, ip) = s
        .get(
            &format!(
                "/v1/entities/ip/192.0.2.1?start={}&end={}",
                rfc3339(scope_ms),
                rfc3339(scope_ms + day)
            ),
            &admin,
        )
        .await;
    let subjects: Vec<&Value> = ip["newly_observed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "subject")
        .collect();
    assert_eq!(subjects.len(), 1, "{ip}");
    assert_eq!(subjects[0]["value"], "jane");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_gives_pods_findings_and_a_searchable_graph() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(20)).await;
        let scope = "start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z";
        let (st, pod) = s
            .get(
                &format!("/v1/entities/pod/{cluster}/default/node-debugger?{scope}"),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{backend:?} {pod}");
        let props = &pod["entity"]["properties"];
        assert_eq!(props["privileged"], true, "{props}");
        assert!(
            props["created"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-20T09:01"),
            "{props}"
        );
        assert!(
            !pod["findings"].as_array().unwrap().is_empty(),
            "the story's findings name the pod: {pod}"
        );
        // The attacker's address: its calls, the subject it used, the findings about it.
        let (st, ip) = s
            .get(&format!("/v1/entities/ip/203.0.113.66?{scope}"), &admin)
            .await;
        assert_eq!(st, StatusCode::OK, "{ip}");
        assert_eq!(
            ip["api_calls"]["total"], 19,
            "20 events, the exec at two stages: {ip}"
        );
        assert!(
            ip["related"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == format!("subject/{cluster}/system%3Aanonymous")),
            "{ip}"
        );
        let findings = ip["findings"].as_array().unwrap();
        assert!(!findings.is_empty(), "{ip}");
        let (st, _) = s
            .get(
                &format!("/v1/findings/{}", findings[0].as_str().unwrap()),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "profile findings are finding ids");
        // Search by type and prefix, paged.
        let (st, list) = s
            .get(
                &format!("/v1/entities?type=subject&q={cluster}/system"),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{list}");
        let names: Vec<&str> = list["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // The nodes, the controller manager, the anonymous attacker, and the service account
        // the attacker's pod runs as.
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("system:")), "{names:?}");
        let (_, by_name) = s.get("/v1/entities?type=subject&q=dev-", &admin).await;
        assert_eq!(by_name["entities"][0]["name"], "dev-admin", "{by_name}");
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match &token {
                Some(t) => format!("/v1/entities?type=ip&limit=2&page_token={}", encode(t)),
                None => "/v1/entities?type=ip&limit=2".into(),
            };
            let (_, p) = s.get(&page, &admin).await;
            seen.extend(
                p["entities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string()),
            );
            match p["next_page_token"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        let (st, _) = s.get("/v1/entities?type=host", &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        // The organization's administrator sees the member's addresses too.
        let (_, all) = s.get("/v1/entities?type=ip&q=203.", &s.admin).await;
        assert_eq!(all["entities"][0]["id"], "ip/203.0.113.66", "{all}");
        s.stop().await;
    }
}

fn grouped_first(g: &Value) -> &str {
    g["finding_ids"][0].as_str().unwrap()
}

/// The story again as another, unrelated attack: another attacker, addresses, admin and pod,
/// its own audit ids.
fn second_attack() -> Vec<Vec<u8>> {
    let text =
        std::fs::read_to_string(common::repo_root().join("examples/audit/attack-story.jsonl"))
            .unwrap();
    let text = text
        .replace("system:anonymous", "intruder@example.net")
        .replace("203.0.113.66", "192.0.2.66")
        .replace("198.51.100.23", "192.0.2.23")
        .replace("dev-admin", "ops-admin")
        .replace("node-debugger", "node-helper")
        .replace("\"auditID\":\"", "\"auditID\":\"second-");
    let events: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    batches(&events, 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_is_one_group_and_an_unrelated_attack_another() {
    for backend in BACKENDS {
        let s = TestServer::start(backend, Options::default()).await;
        let (_, admin) = s.member("team-a").await;
        let (cluster, ingest) = s.cluster(&admin, "prod").await;
        s.ingest(&cluster, &ingest, story_batches(20)).await;
        let since = "since=2026-11-01T00:00:00Z";
        let (st, one) = s.get(&format!("/v1/finding-groups?{since}"), &admin).await;
        assert_eq!(st, StatusCode::OK, "{one}");
        let groups = one["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{backend:?} {one:#}");
        let g = &groups[0];
        // Every finding of the story: the root cause (dev-admin binding system:anonymous to
        // cluster-admin, from 198.51.100.23) with what the anonymous attacker did with it.
        let (_, all) = s
            .get(&format!("/v1/findings?{since}&limit=1000"), &admin)
            .await;
        let sequences: Vec<&Value> = all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == "AttackSequence:Kubernetes/CompromisedCluster")
            .collect();
        assert_eq!(sequences.len(), 1, "{all:#}");
        let mut every: Vec<&str> = all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"] != "AttackSequence:Kubernetes/CompromisedCluster")
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        let mut grouped: Vec<&str> = g["finding_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        every.sort();
        grouped.sort();
        assert_eq!(grouped, every, "{g:#}");
        assert_eq!(
            g["tactics"],
            json!([
                "Initial Access",
                "Execution",
                "Persistence",
                "Privilege Escalation",
                "Credential Access",
                "Discovery"
            ]),
            "{g:#}"
        );
        assert_eq!(
            g["title"],
            "CredentialAccess (5), PrivilegeEscalation (5), Persistence (4), Execution (3), Policy (2), Discovery (1), InitialAccess (1)"
        );
        assert_eq!(g["attack_sequence"], true);
        assert_eq!(g["severity"]["label"], "HIGH");
        let entities: Vec<&str> = g["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        for e in [
            "ip/203.0.113.66",
            "ip/198.51.100.23",
            &format!("subject/{cluster}/dev-admin"),
            &format!("pod/{cluster}/default/node-debugger"),
        ] {
            assert!(entities.contains(&e), "{e} in {entities:?}");
        }
        // The group raised one attack sequence: Critical, its findings as signals.
        let sequence = sequences[0];
        assert_eq!(sequence["severity"]["label"], "CRITICAL", "{sequence:#}");
        assert_eq!(sequence["source"], "correlation");
        assert_eq!(
            sequence["evidence"]["signals"], g["finding_ids"],
            "{sequence:#}"
        );
        assert_eq!(g["attack_sequence_finding"], sequence["id"]);
        assert!(
            sequence["title"]
                .as_str()
                .unwrap()
                .starts_with("Attack sequence: Initial Access → Execution"),
            "{sequence}"
        );
        // Its profile in the graph relates it to its signals.
        let (st, profile) = s
            .get(
                &format!(
                    "/v1/entities/finding/{}?start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z",
                    sequence["id"].as_str().unwrap()
                ),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{profile}");
        let signals = profile["related"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relation"] == "names" && r["type"] == "finding")
            .count();
        assert_eq!(
            signals,
            g["finding_ids"].as_array().unwrap().len(),
            "{profile:#}"
        );
        // The earliest finding is the root cause's, and names the group.
        assert_eq!(g["first_seen"], "2026-11-20T09:00:30.004Z");
        assert_eq!(g["id"], format!("group-{}", grouped_first(g)));
        // The same group by its id.
        let (st, again) = s
            .get(
                &format!("/v1/finding-groups/{}", g["id"].as_str().unwrap()),
                &admin,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(again["finding_ids"], g["finding_ids"]);

        s.ingest(&cluster, &ingest, second_attack()).await;
        let (_, two) = s
            .get(
                &format!("/v1/finding-groups?{since}&cluster={cluster}"),
                &admin,
            )
            .await;
        let groups = two["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{backend:?} {two:#}");
        let firsts: Vec<&Value> = groups.iter().map(|g| &g["finding_ids"]).collect();
        assert_ne!(firsts[0], firsts[1]);
        assert_eq!(
            groups[0]["tactics"], groups[1]["tactics"],
            "the same attack twice: {two:#}"
        );
        assert!(
            groups
                .iter()
                .any(|g| g["finding_ids"] == one["groups"][0]["finding_ids"]),
            "the first group is unchanged"
        );
        // Replaying the second attack changes nothing.
        let (_, before) = s
            .get(
                &format!("/v1/findings?{since}&type=AttackSequence:*"),
                &admin,
            )
            .await;
        s.ingest(&cluster, &ingest, second_attack()).await;
        let (_, replayed) = s
            .get(
                &format!("/v1/finding-groups?{since}&cluster={cluster}"),
                &admin,
            )
            .await;
        assert_eq!(replayed, two);
        let (_, raised) = s
            .get(
                &format!("/v1/findings?{since}&type=AttackSequence:*"),
                &admin,
            )
            .await;
        assert_eq!(
            raised["findings"].as_array().unwrap().len(),
            2,
            "one attack sequence per attack: {raised:#}"
        );
        assert_eq!(raised, before, "a replay raises nothing again");
        let (st, _) = s.get("/v1/finding-groups/group-nothing", &admin).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s.get("/v1/finding-groups?since=yesterday", &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        s.stop().await;
    }
}
