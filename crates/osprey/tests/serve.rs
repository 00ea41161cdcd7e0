//! `osprey serve` end to end with the real binary: first start, offline tokens, the webhook,
//! a SIGKILL under load (every batch answered 200 is there after the restart), and a clean
//! stop on SIGTERM.

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
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("osprey"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
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
        if let Some(rest) = line.trim().strip_prefix("osprey: listening on http://") {
            addr = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no listening line in: {seen}"));
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    Server { child, addr }
}

fn call(s: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, text) = http(&s.addr, method, path, Some(token), body.as_bytes());
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
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
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(viewer.starts_with("osp_"), "{viewer}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin-token"));
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
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
    let (st, c) = call(
        &s,
        "POST",
        "/v1/clusters",
        &admin,
        Some(json!({"name": "prod"})),
    );
    assert_eq!(st, 201, "{c}");
    let cluster = c["id"].as_str().unwrap().to_string();
    let ingest = c["ingest_token"].as_str().unwrap().to_string();
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
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let (st, c) = call(
        &s,
        "POST",
        "/v1/clusters",
        &admin,
        Some(json!({"name": "load"})),
    );
    assert_eq!(st, 201, "{c}");
    let cluster = c["id"].as_str().unwrap().to_string();
    let ingest = c["ingest_token"].as_str().unwrap().to_string();

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

#[test]
fn bad_settings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: [(&[&str], &str); 4] = [
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
    ];
    for (args, needle) in cases {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let out = osprey()
            .arg("serve")
            .args(listen)
            .arg("--data")
            .arg(&data)
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("secret"), "the password is not shown: {err}");
    }
}
