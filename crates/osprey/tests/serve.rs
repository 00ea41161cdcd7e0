//! `osprey serve` end to end with the real binary: first start, offline tokens, the webhook,
//! a SIGKILL under load (every batch answered 200 is there after the restart), a clean stop on
//! SIGTERM, and the attack story whose privileged pod's image (in a local registry, EICAR in a
//! layer) is scanned by trigger, with an Alertmanager receiver getting the alerts.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{http, osprey, repo_root};
use serde_json::{Value, json};

struct Server {
    child: Child,
    addr: String,
    /// What the server said on stderr (its listening line included).
    log: Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server a test left running (or that failed) is not left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Server {
    start_with(data, &[])
}

fn start_with(data: &Path, extra: &[&str]) -> Server {
    try_start_with(data, extra).unwrap_or_else(|seen| panic!("no listening line in: {seen}"))
}

/// Starts a server, or returns what it printed before it stopped without listening.
fn try_start_with(data: &Path, extra: &[&str]) -> Result<Server, String> {
    let listen: &[&str] = if extra.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("osprey"))
        .arg("serve")
        .args(listen)
        .arg("--data")
        .arg(data)
        // The tests' receivers and registries listen on this machine.
        .args(["--allow-destination", "127.0.0.1"])
        .args(extra)
        .env_remove("OSPREY_LOG")
        .env_remove("OSPREY_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut seen = String::new();
    for _ in 0..5 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(rest) = line
            .trim()
            .strip_prefix("osprey: listening on http://")
            .map(|rest| rest.replace("0.0.0.0", "127.0.0.1"))
        {
            addr = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(seen);
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let log = Arc::new(std::sync::Mutex::new(seen));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut line = String::new();
        while stderr.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    Ok(Server { child, addr, log })
}

fn call(s: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, text) = http(&s.addr, method, path, Some(token), body.as_bytes());
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Creates a cluster with `token`; returns its id and ingest token.
fn cluster(s: &Server, token: &str, name: &str) -> (String, String) {
    let (status, c) = call(
        s,
        "POST",
        "/v1/clusters",
        token,
        Some(json!({ "name": name })),
    );
    assert_eq!(status, 201, "{c}");
    (
        c["id"].as_str().unwrap().to_string(),
        c["ingest_token"].as_str().unwrap().to_string(),
    )
}

fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string()
}

/// A webhook batch of `n` events with audit ids unique to (`tag`, `i`).
fn batch(tag: &str, i: u64, n: usize) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|j| {
            json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": format!("{tag}-{i}-{j}"), "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/default/pods", "verb": "list",
                "user": {"username": "system:serviceaccount:default:app"},
                "sourceIPs": ["10.0.0.7"], "objectRef": {"resource": "pods", "namespace": "default"},
                "responseStatus": {"code": 200},
                "requestReceivedTimestamp": "2026-11-20T09:00:00.000000Z",
                "stageTimestamp": "2026-11-20T09:00:00.001000Z"
            })
        })
        .collect();
    serde_json::to_vec(
        &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
    )
    .unwrap()
}

/// `osprey serve --data DATA ARGS…` (on a free port unless ARGS say `--listen`) must refuse to
/// start: exit 2 and one line naming `needle`; returns that line.
fn refused(data: &Path, args: &[&str], needle: &str) -> String {
    let listen: &[&str] = if args.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let out = osprey()
        .arg("serve")
        .args(listen)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("OSPREY_SECRET_KEY")
        .env_remove("OSPREY_DATABASE_URL")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    err
}

/// A scratch PostgreSQL schema's URL (the server CI runs on 127.0.0.1:5432).
fn scratch_pg() -> String {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(osprey_store::testing::scratch_postgres_url())
        .expect("PostgreSQL on 127.0.0.1:5432 (database test) is part of the test setup")
}

/// A local registry holding the image the attack story's privileged pod runs here (EICAR in a
/// layer at /usr/local/bin/payload, requests 2.19.1), and that image's reference.
fn registry_with_story_image(dir: &Path) -> (osprey_testkit::registry::Registry, String) {
    use osprey_testkit::layout::LayoutBuilder;
    use osprey_testkit::registry::{Auth, Registry};
    let registry = Registry::start(Auth::Open);
    let layout = dir.join("layout");
    let spec = osprey_testkit::layout::requests_and_eicar("usr/local/bin/payload");
    let mut b = LayoutBuilder::new(&layout);
    b.add_image(Some("3.20"), &spec);
    b.finish();
    let image = format!("{}/library/alpine:3.20", registry.addr);
    osprey_testkit::tools::skopeo_copy(
        &format!("oci:{}:3.20", layout.display()),
        &format!("docker://{image}"),
        None,
        false,
    );
    (registry, image)
}

/// The attack story with its privileged pod running `image`, as webhook EventLists of 20
/// events; and how many events it holds.
fn story_batches(image: &str) -> (Vec<Vec<u8>>, usize) {
    let story = std::fs::read_to_string(repo_root().join("examples/audit/attack-story.jsonl"))
        .unwrap()
        .replace("docker.io/library/alpine:3.20", image);
    let events: Vec<Value> = story
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let batches = events
        .chunks(20)
        .map(|chunk| {
            serde_json::to_vec(
                &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": chunk}),
            )
            .unwrap()
        })
        .collect();
    (batches, events.len())
}

/// The administrator's entry for `registry` (plain HTTP) and an Alertmanager output to
/// `receiver`.
fn registry_and_alertmanager(s: &Server, admin: &str, registry: &str, receiver: &str) {
    let (status, r) = call(
        s,
        "POST",
        "/v1/registries",
        admin,
        Some(json!({"host": registry, "insecure": true})),
    );
    assert_eq!(status, 201, "{r}");
    let (status, o) = call(
        s,
        "POST",
        "/v1/outputs",
        admin,
        Some(
            json!({"name": "am", "kind": "alertmanager", "url": format!("{receiver}/api/v2/alerts")}),
        ),
    );
    assert_eq!(status, 201, "{o}");
}

/// Posts a webhook batch; it must be taken (200).
fn post_batch(s: &Server, cluster: &str, ingest: &str, body: &[u8]) {
    let (status, text) = http(
        &s.addr,
        "POST",
        &format!("/v1/clusters/{cluster}/audit"),
        Some(ingest),
        body,
    );
    assert_eq!(status, 200, "{text}");
}

/// Every Alertmanager alert `receiver` got so far.
fn alerts(receiver: &osprey_testkit::http::Server) -> Vec<Value> {
    receiver
        .requests()
        .iter()
        .filter(|r| r.path() == "/api/v2/alerts")
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap())
        .collect()
}

#[test]
fn first_start_offline_tokens_webhook_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An offline token on an empty store sets the organization up first.
    let out = osprey()
        .args([
            "token", "create", "--tenant", "admin", "--role", "viewer", "--data",
        ])
        .arg(&data)
        .assert()
        .success();
    let viewer = String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert!(viewer.starts_with("osp_"), "{viewer}");
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("admin-token"));
    let admin = admin_token(&data);
    let bad = osprey()
        .args([
            "token", "create", "--tenant", "nobody", "--role", "viewer", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim().lines().count(),
        1,
        "one line"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tenant nobody"));
    let bad = osprey()
        .args([
            "token", "create", "--tenant", "admin", "--role", "ingest", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let mut s = start(&data);
    let (cluster, ingest) = cluster(&s, &admin, "prod");
    let story =
        std::fs::read_to_string(repo_root().join("examples/audit/attack-story.jsonl")).unwrap();
    let lines: Vec<&str> = story.lines().collect();
    for chunk in lines.chunks(30) {
        let body = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{}]}}",
            chunk.join(",")
        );
        let (st, v) = http(
            &s.addr,
            "POST",
            &format!("/v1/clusters/{cluster}/audit"),
            Some(&ingest),
            body.as_bytes(),
        );
        assert_eq!(st, 200, "{v}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let (st, page) = call(
            &s,
            "GET",
            "/v1/findings?severity_min=high&limit=100",
            &viewer,
            None,
        );
        assert_eq!(st, 200, "{page}");
        let types: Vec<String> = page["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["type"].as_str().unwrap().to_string())
            .collect();
        if types
            .iter()
            .any(|t| t == "CredentialAccess:Kubernetes/SecretsDump")
            || Instant::now() > deadline
        {
            break types;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        found
            .iter()
            .any(|t| t == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|t| t == "CredentialAccess:Kubernetes/SecretsDump"),
        "{found:?}"
    );

    // SIGTERM: a clean stop.
    assert!(
        Command::new("kill")
            .args(["-TERM", &s.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // A second start keeps the organization: no new admin token, the old one works.
    let mut s = start(&data);
    assert_eq!(
        std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim(),
        admin
    );
    let (st, list) = call(&s, "GET", "/v1/clusters", &admin, None);
    assert_eq!((st, list["clusters"].as_array().unwrap().len()), (200, 1));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

#[test]
fn every_batch_answered_200_survives_a_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = start(&data);
    let admin = admin_token(&data);
    let (cluster, ingest) = cluster(&s, &admin, "load");

    let acked_batches = Arc::new(AtomicU64::new(0));
    let acked_events = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (addr, path, token) = (
            s.addr.clone(),
            format!("/v1/clusters/{cluster}/audit"),
            ingest.clone(),
        );
        let (acked_batches, acked_events, stop) =
            (acked_batches.clone(), acked_events.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = batch(&format!("w{w}"), i, 50);
                let (status, _) = http(&addr, "POST", &path, Some(&token), &body);
                if status == 200 {
                    acked_batches.fetch_add(1, Ordering::SeqCst);
                    acked_events.fetch_add(50, Ordering::SeqCst);
                }
                i += 1;
            }
        }));
    }
    // Kill once the load is well under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_batches.load(Ordering::SeqCst) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let batches = acked_batches.load(Ordering::SeqCst);
    let events = acked_events.load(Ordering::SeqCst);
    assert!(
        batches >= 200,
        "the load did not get going: {batches} batches"
    );

    let mut s = start(&data);
    let (st, c) = call(&s, "GET", &format!("/v1/clusters/{cluster}"), &admin, None);
    assert_eq!(st, 200, "{c}");
    let kept_batches = c["audit"]["batches_kept"].as_u64().unwrap();
    let kept_events = c["audit"]["events_kept"].as_u64().unwrap();
    // Answered 200 ⇒ kept; a batch being committed at the kill may be kept without an answer.
    assert!(
        kept_batches >= batches,
        "kept {kept_batches} of {batches} acknowledged batches"
    );
    assert!(
        kept_batches <= batches + 4,
        "kept {kept_batches}, acknowledged {batches}: only those in flight may be extra"
    );
    assert!(kept_events >= events);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

/// Detection remembers what it detected across a SIGKILL and a restart: the same batches
/// again add nothing, a batch holding some of the same events split differently adds only the
/// new ones, and a server remembering only a few thousand keys still detects every new event.
#[test]
fn retries_after_a_restart_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let small = ["--dedupe-events", "2048"];
    let s = start_with(&data, &small);
    let admin = admin_token(&data);
    let (cluster, ingest) = cluster(&s, &admin, "retries");
    let first: Vec<Vec<u8>> = (0..4).map(|i| batch("r", i, 50)).collect();
    for b in &first {
        post_batch(&s, &cluster, &ingest, b);
    }
    wait_detected(&s, 200);
    let before = finding_counts(&s, &admin, &cluster);
    drop(s); // SIGKILL: what detection committed is all that remains

    let s = start_with(&data, &small);
    for b in &first {
        post_batch(&s, &cluster, &ingest, b);
    }
    // Half of the events of batch 0 again, with 25 new ones, in one batch.
    let old: Value = serde_json::from_slice(&first[0]).unwrap();
    let new: Value = serde_json::from_slice(&batch("r", 9, 25)).unwrap();
    let mut items = old["items"].as_array().unwrap()[25..].to_vec();
    items.extend(new["items"].as_array().unwrap().iter().cloned());
    let mixed = serde_json::to_vec(
        &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
    )
    .unwrap();
    post_batch(&s, &cluster, &ingest, &mixed);
    wait_detected(&s, 250);
    assert_eq!(metric(&s, "osprey_audit_events_detected_total"), 25.0);
    assert_eq!(metric(&s, "osprey_audit_events_duplicate_total"), 225.0);
    assert_eq!(
        finding_counts(&s, &admin, &cluster),
        before,
        "a replay changed findings"
    );

    // Far more new events than the server remembers: each is detected once all the same.
    for i in 10..60 {
        post_batch(&s, &cluster, &ingest, &batch("r", i, 50));
    }
    wait_detected(&s, 2_750);
    assert_eq!(metric(&s, "osprey_audit_events_detected_total"), 2_525.0);
}

#[test]
fn bad_settings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--tls-cert",
                "/nonexistent/tls.crt",
                "--tls-key",
                "/nonexistent/tls.key",
            ],
            "/nonexistent/tls.crt",
        ),
        (
            &["--database", "mysql://root@127.0.0.1/test"],
            "expected a postgres:// URL",
        ),
        (
            &["--database", "postgres://nobody:secret@127.0.0.1:1/none"],
            "nobody:***@",
        ),
        (&["--listen", "not-an-address"], "--listen not-an-address"),
        (
            &["--demo", "--listen", "0.0.0.0:0"],
            "--demo: listens on 0.0.0.0:",
        ),
        (
            &["--allow-destination", "not a host!"],
            "destination \"not a host!\": expected an address, a CIDR range or a host name",
        ),
    ];
    for (args, needle) in cases {
        let err = refused(&data, args, needle);
        assert!(!err.contains("secret"), "the password is not shown: {err}");
    }
    // An unreachable bus is found before anything is created in the database.
    let pg = scratch_pg();
    refused(
        &data,
        &["--database", &pg, "--bus", "nats://127.0.0.1:1"],
        "--bus nats://127.0.0.1:1: ",
    );
    refused(
        &data,
        &["--database", &pg, "--bus", "http://127.0.0.1:4222"],
        "--bus http://127.0.0.1:4222: ",
    );
    assert!(!data.join("admin-token").exists(), "nothing was set up");
}

/// Plain HTTP on an address other machines reach is announced at start; on loopback it is not.
#[test]
fn plain_http_beyond_loopback_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let open = start_with(&dir.path().join("open"), &["--listen", "0.0.0.0:0"]);
    let (status, _) = http(&open.addr, "GET", "/readyz", None, b"");
    assert_eq!(status, 200);
    let log = open.log.lock().unwrap().clone();
    assert!(
        log.contains("osprey: warning: serving plain HTTP on 0.0.0.0:"),
        "{log}"
    );
    let local = start(&dir.path().join("local"));
    assert!(!local.log.lock().unwrap().contains("plain HTTP"));
}

/// A second server on the same store is refused (one line, exit 2) rather than running
/// detection, outputs and scans over the same data twice: SQLite's data directory and a
/// PostgreSQL database alike.
#[test]
fn a_second_server_on_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pg = scratch_pg();
    for (extra, needle) in [
        (vec![], "another osprey serve uses this data directory"),
        (
            vec!["--database", pg.as_str()],
            "another osprey serve uses this database",
        ),
    ] {
        let first = start_with(&data, &extra);
        refused(&data, &extra, needle);
        // Once the first is gone (and PostgreSQL has ended its session, which takes a
        // moment after the process is killed), a server starts again.
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let again = loop {
            match try_start_with(&data, &extra) {
                Ok(s) => break s,
                Err(seen) if seen.contains(needle) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(seen) => panic!("no listening line in: {seen}"),
            }
        };
        let (status, _) = http(&again.addr, "GET", "/readyz", None, b"");
        assert_eq!(status, 200);
    }
}

/// The issue's end-to-end story: the bundled attack story through the webhook, its privileged
/// pod running an image of a local registry with EICAR in a layer and requests 2.19.1; the
/// findings through the API; the triggered malware + vulnerability scan of that image linked to
/// the finding; and an Alertmanager receiver written here getting the alerts.
#[test]
fn attack_story_triggers_a_scan_of_the_privileged_pods_image_and_alerts() {
    use osprey_testkit::http::{Response, Server as Receiver};

    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = registry_with_story_image(dir.path());
    let db = dir.path().join("vuln.db");
    osprey()
        .args(["db", "build", "--osv"])
        .arg(repo_root().join("examples/vulndb/osv"))
        .arg("--out")
        .arg(&db)
        .assert()
        .success();
    let receiver = Receiver::start(|_| Response::new(200));

    let data = dir.path().join("data");
    let s = start_with(&data, &["--vuln-db", db.to_str().unwrap()]);
    let admin = admin_token(&data);
    let (cluster, ingest) = cluster(&s, &admin, "prod");
    registry_and_alertmanager(&s, &admin, &registry.addr, &receiver.url());

    // The story, its privileged pod's image moved to the local registry, in batches of 20.
    for body in story_batches(&image).0 {
        post_batch(&s, &cluster, &ingest, &body);
    }

    // The triggered scan ends with the image's threat and vulnerabilities.
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (_, v) = call(&s, "GET", "/v1/scans", &admin, None);
        let done: Vec<Value> = v["scans"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| !matches!(j["state"].as_str(), Some("queued" | "running")))
            .cloned()
            .collect();
        if let Some(j) = done.first() {
            assert_eq!(
                v["scans"].as_array().unwrap().len(),
                1,
                "one scan per image: {v}"
            );
            break j.clone();
        }
        assert!(Instant::now() < deadline, "no scan ended in 60 s: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["kind"], "triggered");
    assert_eq!(job["image"], image.as_str());
    assert_eq!(job["threats"], 1, "{job}");
    assert_eq!(job["vulnerabilities"], 2, "{job}");
    let trigger = job["trigger_finding_id"].as_str().unwrap();
    let (status, f) = call(&s, "GET", &format!("/v1/findings/{trigger}"), &admin, None);
    assert_eq!((status, f["source"].as_str()), (200, Some("audit")), "{f}");
    let trigger_type = f["type"].as_str().unwrap().to_string();
    // The job names the workload the finding was about when it triggered the scan.
    assert_eq!(
        job["workload"]["workload"]["name"], "node-debugger",
        "{job}"
    );
    assert_eq!(
        job["workload"]["workload"]["containers"][0]["image"],
        image.as_str(),
        "{job}"
    );

    // Findings through the API: the story's, the malware finding linked to its trigger, and
    // the image's vulnerabilities.
    let (_, page) = call(&s, "GET", "/v1/findings?limit=200", &admin, None);
    let findings = page["findings"].as_array().unwrap();
    let types: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    for t in [
        "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched",
        "Execution:Kubernetes/MaliciousFile",
        "Vulnerability:Package/CVE",
    ] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
    let malware = findings
        .iter()
        .find(|f| f["type"] == "Execution:Kubernetes/MaliciousFile")
        .unwrap();
    assert_eq!(
        malware["malware"]["trigger_finding_id"], trigger,
        "{malware}"
    );
    assert_eq!(
        malware["malware"]["threats"][0]["files"][0]["path"], "/usr/local/bin/payload",
        "{malware}"
    );

    // The receiver gets the alerts: the trigger finding's and the malware finding's.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names: std::collections::BTreeSet<String> = alerts(&receiver)
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        if names.contains("Execution:Kubernetes/MaliciousFile") && names.contains(&trigger_type) {
            break;
        }
        assert!(Instant::now() < deadline, "alerts so far: {names:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The README's first command: `osprey serve --demo` sets up a demo organization, replays the
/// attack story through its own webhook, scans the bundled image its privileged pod runs, and
/// says where the API shows the results; the printed token reads them.
#[test]
fn the_demo_replays_the_story_scans_the_bundled_image_and_says_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let examples = repo_root().join("examples");
    let s = start_with(&data, &["--demo", "--examples", examples.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = loop {
        let log = s.log.lock().unwrap().clone();
        if log.contains("/openapi.json")
            || log.contains("osprey: demo: ") && !log.contains("demo: tenant")
        {
            break log;
        }
        assert!(Instant::now() < deadline, "no demo summary in 120 s: {log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        log.contains("demo: tenant \"demo\", cluster \"demo-cluster\""),
        "{log}"
    );
    let image = format!("oci-dir:{}:v1", examples.join("images/demo").display());
    assert!(
        log.contains(&format!("demo: triggered scan of {image}: done,")),
        "{log}"
    );
    assert!(log.contains("2 vulnerabilities"), "{log}");
    let viewer = std::fs::read_to_string(data.join("demo-token"))
        .unwrap()
        .trim()
        .to_string();
    let (status, page) = call(&s, "GET", "/v1/findings?limit=200", &viewer, None);
    assert_eq!(status, 200, "{page}");
    let findings = page["findings"].as_array().unwrap();
    let printed: u64 = log
        .split("cluster \"demo-cluster\": ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no finding count in {log}"));
    assert_eq!(findings.len() as u64, printed, "{log}");
    let types: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains("PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"),
        "{types:?}"
    );
    assert!(types.contains("Vulnerability:Package/CVE"), "{types:?}");
    assert!(
        types.contains("AttackSequence:Kubernetes/CompromisedCluster"),
        "{types:?}"
    );
    // The printed investigation URLs answer: the story's group, the attacker's profile.
    for (what, needle) in [
        ("group", "/v1/finding-groups/group-"),
        ("profile", "/v1/entities/ip/203.0.113.66?start="),
    ] {
        let path = log
            .lines()
            .find_map(|l| {
                let at = l.find(needle)?;
                Some(l[at..].trim_end_matches('\'').to_string())
            })
            .unwrap_or_else(|| panic!("no {what} URL in {log}"));
        let (status, body) = call(&s, "GET", &path, &viewer, None);
        assert_eq!(status, 200, "{what} {path}: {body}");
        if what == "group" {
            assert_eq!(body["attack_sequence"], true, "{body}");
        } else {
            assert!(body["api_calls"]["total"].as_u64().unwrap() > 0, "{body}");
        }
    }
    // The printed impact URL: the privileged pod running the image (matched by the scan's
    // reference), the pods its node puts within reach, and who can exec into it — the
    // anonymous user, through the story's binding to cluster-admin (from the snapshot).
    let path = log
        .lines()
        .find_map(|l| {
            let at = l.find("/v1/entities/image/")?;
            Some(l[at..].trim_end_matches('\'').to_string())
        })
        .unwrap_or_else(|| panic!("no impact URL in {log}"));
    let (status, impact) = call(&s, "GET", &path, &viewer, None);
    assert_eq!(status, 200, "{path}: {impact}");
    let pods = common::impact_pods(&impact);
    assert_eq!(
        pods.len(),
        3,
        "node-debugger, and coredns and kube-proxy on its node: {impact}"
    );
    let debugger = impact["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .unwrap()
                .ends_with("/default/node-debugger")
        })
        .unwrap_or_else(|| panic!("{impact}"));
    assert_eq!(debugger["reaches_host"], true);
    let anonymous = debugger["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["subject"]["name"] == "system:anonymous")
        .unwrap_or_else(|| panic!("who can exec: {debugger}"));
    assert_eq!(anonymous["can"], json!(["exec", "attach", "patch"]));
    assert_eq!(
        anonymous["via"],
        json!(["ClusterRoleBinding anonymous-debug → ClusterRole cluster-admin"])
    );
    assert_eq!(impact["nodes"][0]["pods"], 3, "{impact}");
    // One of the image's vulnerabilities concerns the same pods.
    let (_, vulns) = call(
        &s,
        "GET",
        "/v1/findings?type=Vulnerability:*&limit=1",
        &viewer,
        None,
    );
    let cve = vulns["findings"][0]["vulnerability"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{vulns}"))
        .to_string();
    let (status, by_cve) = call(
        &s,
        "GET",
        &format!("/v1/entities/vulnerability/{cve}/impact"),
        &viewer,
        None,
    );
    assert_eq!(status, 200, "{by_cve}");
    assert_eq!(by_cve["pods_total"], 3, "{by_cve}");
    // The scanned image is in the graph with its vulnerability findings.
    let (_, scans) = call(&s, "GET", "/v1/scans", &viewer, None);
    let digest = scans["scans"][0]["image_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{scans}"))
        .to_string();
    let (status, image) = call(
        &s,
        "GET",
        &format!("/v1/entities/image/{digest}"),
        &viewer,
        None,
    );
    assert_eq!(status, 200, "{image}");
    assert!(
        image["findings"].as_array().unwrap().len() >= 2,
        "the image's two vulnerabilities: {image}"
    );
    // The viewer token is the demo tenant's: it cannot create anything.
    let (status, _) = call(
        &s,
        "POST",
        "/v1/clusters",
        &viewer,
        Some(json!({"name": "x"})),
    );
    assert_eq!(status, 403);
    drop(s);

    // A second start on the same data replays nothing and prints the same summary.
    let s = start_with(&data, &["--demo", "--examples", examples.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = s.log.lock().unwrap().clone();
        if log.contains("/openapi.json") {
            assert!(
                log.contains(&format!("cluster \"demo-cluster\": {printed} findings")),
                "{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no demo summary in 60 s: {log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, scans) = call(&s, "GET", "/v1/scans", &viewer, None);
    assert_eq!(scans["scans"].as_array().unwrap().len(), 1, "{scans}");
}

/// Waits until the server has detected every event it took (its lag metric reads 0 after it
/// counted `events` ingested).
fn wait_detected(s: &Server, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = http(&s.addr, "GET", "/metrics", None, b"");
        if text.contains(&format!("osprey_audit_events_ingested_total {events}\n"))
            && text.contains("osprey_detector_lag_events 0\n")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "detection did not catch up: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Findings of a cluster as (type, count), sorted; attack sequences, which correlate findings
/// across a tenant's clusters, are left out.
fn finding_counts(s: &Server, token: &str, cluster: &str) -> Vec<(String, u64)> {
    let (st, page) = call(
        s,
        "GET",
        &format!("/v1/findings?cluster={cluster}&limit=1000"),
        token,
        None,
    );
    assert_eq!(st, 200, "{page}");
    let mut out: Vec<(String, u64)> = page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] != "correlation")
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `osprey audit import`: the attack story as an EKS CloudWatch export (gzip) reaches a cluster
/// through the webhook and finds what the story finds as JSON lines sent in small batches;
/// importing it again adds nothing; a wrong token is a one-line error.
#[test]
fn offline_logs_import_through_the_webhook_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = start(&data);
    let admin = admin_token(&data);
    let (eks, eks_ingest) = cluster(&s, &admin, "eks");
    let (plain, plain_ingest) = cluster(&s, &admin, "plain");
    let story_path = repo_root().join("examples/audit/attack-story.jsonl");
    let story = std::fs::read_to_string(&story_path).unwrap();
    let records: Vec<Value> = story
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            json!({"logStreamName": "kube-apiserver-audit-0", "timestamp": 1_763_629_200_000u64 + i as u64,
                   "message": l, "eventId": i.to_string()})
        })
        .collect();
    let n = records.len() as u64;
    let export = json!({"events": records, "searchedLogStreams": []});
    let gz_path = dir.path().join("eks-export.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(serde_json::to_string_pretty(&export).unwrap().as_bytes())
        .unwrap();
    gz.finish().unwrap();

    let import = |cluster: &str, token: &str, file: &Path, extra: &[&str]| {
        osprey()
            .args(["audit", "import", "--server"])
            .arg(format!("http://{}", s.addr))
            .args(["--cluster", cluster, "--token", token])
            .args(extra)
            .arg(file)
            .output()
            .unwrap()
    };
    let out = import(&eks, &eks_ingest, &gz_path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sent {n} of {n} events read in 1 batches to cluster {eks}"
        )),
        "{stderr}"
    );
    let out = import(&plain, &plain_ingest, &story_path, &["--batch-events", "7"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let batches = n.div_ceil(7);
    assert!(
        stderr.contains(&format!("in {batches} batches")),
        "{stderr}"
    );
    wait_detected(&s, 2 * n);
    let from_export = finding_counts(&s, &admin, &eks);
    assert!(
        from_export
            .iter()
            .any(|(t, _)| t == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"),
        "{from_export:?}"
    );
    assert_eq!(from_export, finding_counts(&s, &admin, &plain));
    // The same attacker in both clusters is one incident: one attack sequence for the tenant.
    let (_, sequences) = call(
        &s,
        "GET",
        "/v1/findings?type=AttackSequence:*&since=2026-01-01T00:00:00Z",
        &admin,
        None,
    );
    assert_eq!(
        sequences["findings"].as_array().unwrap().len(),
        1,
        "{sequences}"
    );

    // Again: the server takes the events and detects nothing twice.
    let out = import(&eks, &eks_ingest, &gz_path, &[]);
    assert!(out.status.success());
    wait_detected(&s, 3 * n);
    assert_eq!(finding_counts(&s, &admin, &eks), from_export);

    // A token of another cluster, a server that is not there, a missing file.
    let out = import(&eks, &plain_ingest, &gz_path, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    let out = osprey()
        .args([
            "audit",
            "import",
            "--server",
            "ftp://x",
            "--cluster",
            &eks,
            "--token",
            "t",
        ])
        .arg(&gz_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server ftp://x: expected"));
    let out = import(&eks, &eks_ingest, &dir.path().join("absent.log"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.log: no such file"));
}

/// The NATS JetStream server the scale-out tests use (part of the test setup, like
/// PostgreSQL).
fn nats_url() -> String {
    std::env::var("OSPREY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A metric's value on one server, summed over its labels (0 when absent).
fn metric(s: &Server, name: &str) -> f64 {
    let (_, text) = http(&s.addr, "GET", "/metrics", None, b"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(key, _)| key.split('{').next() == Some(name))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Scale-out: two `osprey serve` on one PostgreSQL database sharing the work through NATS
/// JetStream. A server without the bus, or with another secret key, is refused. The 16
/// detection partitions split 8/8 while batches keep coming (none lost, none doubled);
/// six clusters' attack stories posted to either server are
/// detected once each (a replayed batch adds nothing); the one triggered scan of the shared
/// image runs once with its results; the leader alone sends the alerts. Then one server is
/// killed (SIGKILL): the other takes over its partitions once their leases lapse and detects
/// what is posted for every cluster.
#[test]
fn two_servers_share_one_database_through_the_bus() {
    use osprey_testkit::http::{Response, Server as Receiver};

    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = registry_with_story_image(dir.path());
    let receiver = Receiver::start(|_| Response::new(200));
    let pg = scratch_pg();
    let nats = nats_url();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let shared = ["--database", pg.as_str(), "--bus", nats.as_str()];
    let a = start_with(&data_a, &shared);
    let key = data_a.join("secret-key");
    let namespace = a.log.lock().unwrap().lines().find_map(|l| {
        l.split("(namespace ")
            .nth(1)?
            .split(',')
            .next()
            .map(str::to_string)
    });

    // Refused, one line each: a server without the bus, and one with a key of its own.
    for (data, extra, needle) in [
        (
            &data_b,
            vec!["--database", pg.as_str()],
            "servers sharing a database need --bus",
        ),
        (
            &data_b,
            shared.to_vec(),
            "not the key this database's secrets are sealed with",
        ),
    ] {
        refused(data, &extra, needle);
        let _ = std::fs::remove_dir_all(&data_b);
    }
    let mut with_key = shared.to_vec();
    with_key.extend(["--secret-key-file", key.to_str().unwrap()]);
    let admin = admin_token(&data_a);
    registry_and_alertmanager(&a, &admin, &registry.addr, &receiver.url());
    let clusters: Vec<(String, String)> = (0..6)
        .map(|i| cluster(&a, &admin, &format!("prod-{i}")))
        .collect();
    let b = start_with(&data_b, &with_key);
    let servers = [&a, &b];
    // Batches keep coming while B joins and A hands half the partitions over to it.
    let mut during = 0;
    let joined = Instant::now();
    while joined.elapsed() < Duration::from_secs(8) {
        let (id, ingest) = &clusters[during % clusters.len()];
        post_batch(
            servers[during % 2],
            id,
            ingest,
            &batch("during", during as u64, 20),
        );
        during += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("the partitions split 8/8", 60, || {
        servers
            .iter()
            .all(|s| metric(s, "osprey_bus_partitions_held") == 8.0)
    });
    for s in servers {
        assert_eq!(
            http(&s.addr, "GET", "/readyz", None, b""),
            (200, "ready\n".into())
        );
        assert_eq!(metric(s, "osprey_bus_servers"), 2.0);
    }

    let (batches, events) = story_batches(&image);
    for (i, (id, ingest)) in clusters.iter().enumerate() {
        for body in &batches {
            post_batch(servers[i % 2], id, ingest, body);
        }
    }
    // A retried batch, through the other server.
    post_batch(servers[1], &clusters[0].0, &clusters[0].1, &batches[0]);
    // Every event once, whichever server held its partition, before, during or after the
    // hand-over.
    let total = (events * clusters.len() + during * 20) as f64;
    let replayed = events.min(20) as f64;
    let sum = |name: &str| servers.iter().map(|s| metric(s, name)).sum::<f64>();
    wait_for("every event detected once", 60, || {
        sum("osprey_audit_events_detected_total") == total
            && sum("osprey_audit_events_duplicate_total") == replayed
    });
    // The audit findings (the scan's malware finding belongs to the cluster whose finding
    // triggered it, whichever came first).
    let audit_counts = |s: &Server, cluster: &str| {
        let mut counts = finding_counts(s, &admin, cluster);
        counts.retain(|(t, _)| t != "Execution:Kubernetes/MaliciousFile");
        counts
    };
    let reference = audit_counts(&a, &clusters[0].0);
    assert!(
        reference
            .iter()
            .any(|(t, _)| t == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"),
        "{reference:?}"
    );
    for (id, _) in &clusters {
        assert_eq!(
            audit_counts(&b, id),
            reference,
            "cluster {id}: the same story, the same findings, once"
        );
    }

    // One triggered scan of the image (one tenant, one window), run once, by either server.
    let mut job = Value::Null;
    wait_for("the triggered scan ends", 90, || {
        let (_, v) = call(&a, "GET", "/v1/scans", &admin, None);
        let jobs = v["scans"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "one scan per image: {v}");
        job = jobs[0].clone();
        !matches!(job["state"].as_str(), Some("queued" | "running"))
    });
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["threats"], 1, "{job}");
    assert_eq!(sum("osprey_scans_total"), 1.0);

    // The receiver gets the malware alert and each cluster's privileged pod alert.
    wait_for("the alerts", 30, || {
        let alerts = alerts(&receiver);
        let privileged: std::collections::BTreeSet<&str> = alerts
            .iter()
            .filter(|a| {
                a["labels"]["alertname"]
                    == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"
            })
            .filter_map(|a| a["labels"]["cluster"].as_str())
            .collect();
        privileged.len() == clusters.len()
            && alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == "Execution:Kubernetes/MaliciousFile")
    });

    // A dies without a word; B takes every partition once A's leases lapse, and detects what
    // comes next for every cluster.
    let b_before = metric(&b, "osprey_audit_events_detected_total");
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    for (i, (id, ingest)) in clusters.iter().enumerate() {
        post_batch(&b, id, ingest, &batch("after", i as u64, 50));
    }
    wait_for("B holds every partition", 60, || {
        metric(&b, "osprey_bus_partitions_held") == 16.0
    });
    wait_for("B detects the batches of A's clusters too", 60, || {
        metric(&b, "osprey_audit_events_detected_total") >= b_before + 300.0
    });
    drop(b);
    // The test's streams go; the next run has a database (and so a namespace) of its own.
    if let Some(ns) = namespace {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(osprey_server::bus::delete_namespace(&nats, &ns))
            .unwrap();
    }
}
