//! `osprey audit analyze` end to end: the bundled attack story, the Falco captures, malformed
//! input, other shapes (gzip, EventList, CloudWatch), threat lists, suppression and output
//! formats.

mod common;

use std::io::Write;

use common::{osprey, repo_root};
use osprey_testkit::tools::testdata;
use serde_json::Value;

fn analyze_json(args: &[&str]) -> Value {
    let out = osprey()
        .args(["audit", "analyze", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn first_seen(doc: &Value, kind: &str) -> String {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == kind)
        .map(|f| f["first_seen"].as_str().unwrap().to_string())
        .min()
        .unwrap_or_else(|| panic!("no {kind} finding"))
}

#[test]
fn the_attack_story_produces_its_findings_in_order() {
    let story = repo_root().join("examples/audit/attack-story.jsonl");
    let doc = analyze_json(&[story.to_str().unwrap()]);
    assert_eq!(doc["summary"]["events"], 111);
    assert_eq!(doc["summary"]["malformed"], 0);
    let steps = [
        "Policy:Kubernetes/AnonymousAccessGranted",
        "Persistence:Kubernetes/SuccessfulAnonymousAccess",
        "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched",
        "PrivilegeEscalation:Kubernetes/SensitiveHostPathMounted",
        "Execution:Kubernetes/ExecInPod",
        "Execution:Kubernetes/SuspiciousExecCommand",
        "CredentialAccess:Kubernetes/SecretsListed",
        "CredentialAccess:Kubernetes/SecretsDump",
    ];
    let times: Vec<String> = steps.iter().map(|k| first_seen(&doc, k)).collect();
    for w in times.windows(2).zip(steps.windows(2)) {
        assert!(w.0[0] <= w.0[1], "{} after {}", w.1[0], w.1[1]);
    }
    // The exec seen at two stages is one occurrence.
    let exec = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "Execution:Kubernetes/ExecInPod")
        .unwrap();
    assert_eq!(exec["count"], 1);
    assert_eq!(
        exec["resource"]["kubernetes"]["workload"]["name"],
        "node-debugger"
    );
    // The benign background (leases, leader election) raised nothing.
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["resource"]["kubernetes"]["user"]["username"] != "system:node:node-a")
    );
}

#[test]
fn table_output_summarises() {
    let story = repo_root().join("examples/audit/attack-story.jsonl");
    let out = osprey()
        .args(["audit", "analyze", "--format", "table"])
        .arg(&story)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("111 events read, 0 malformed;") && first.contains("HIGH"),
        "{first}"
    );
    assert!(text.contains("Policy:Kubernetes/AnonymousAccessGranted"));
    assert!(text.contains("osprey.admin-binding [C33]"));
}

#[test]
fn malformed_input_is_a_clean_error() {
    let out = osprey()
        .args(["audit", "analyze"])
        .arg(testdata("k8s-audit/falco-trace-files/fal_01_003.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("fal_01_003.json: no audit events: line 1: not a Kubernetes audit event"),
        "{err}"
    );
    let out = osprey()
        .args(["audit", "analyze", "/nonexistent/audit.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shapes_gzip_stdin_and_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let exec =
        std::fs::read_to_string(testdata("k8s-audit/falco-trace-files/exec_pod.json")).unwrap();
    let exec = exec.trim();
    // A CloudWatch export line, an EventList batch, a broken line: gzip-compressed.
    let message = serde_json::to_string(exec).unwrap();
    let text = format!(
        "{{\"logStreamName\":\"kube-apiserver-audit-1\",\"timestamp\":1,\"message\":{message}}}\n{{\"kind\":\"EventList\",\"items\":[{exec}]}}\nnot json\n"
    );
    let path = dir.path().join("audit.log.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    let out = osprey()
        .args(["audit", "analyze", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["events"], 2);
    assert_eq!(doc["summary"]["malformed"], 1);
    assert_eq!(
        doc["summary"]["inputs"][0]["malformed_examples"][0]["line"],
        3
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("audit.log.gz: line 3: skipped: invalid JSON"),
        "{err}"
    );
    // Same audit id twice: one occurrence.
    assert_eq!(doc["findings"][0]["count"], 1);

    let out = osprey()
        .args(["audit", "analyze", "--format", "json", "-"])
        .write_stdin(format!("{exec}\n"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"][0]["type"], "Execution:Kubernetes/ExecInPod");
}

#[test]
fn threat_lists_suppressions_and_gates() {
    let dir = tempfile::tempdir().unwrap();
    let story = repo_root().join("examples/audit/attack-story.jsonl");
    // The administrator's subnet is on our threat list; then their address is trusted.
    std::fs::write(dir.path().join("bad-ips.txt"), "# ours\n198.51.100.0/24\n").unwrap();
    std::fs::write(dir.path().join("trusted.txt"), "198.51.100.23\n").unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("site.yaml"),
        "suppressions:\n  - name: debug-pods\n    type: 'PrivilegeEscalation:Kubernetes/*'\n    condition: any(pod.containers, it.image startswith docker.io/library/alpine)\n    reason: node debugging is done with alpine\n",
    )
    .unwrap();
    let custom = |d: &Value| -> Vec<Value> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("MaliciousIPCaller.Custom")
            })
            .cloned()
            .collect()
    };
    let list = dir.path().join("bad-ips.txt");
    let doc = analyze_json(&[
        story.to_str().unwrap(),
        "--threat-list",
        list.to_str().unwrap(),
    ]);
    let hits = custom(&doc);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        hits[0]["type"],
        "Persistence:Kubernetes/MaliciousIPCaller.Custom"
    );
    assert_eq!(hits[0]["evidence"]["threat_list"], "bad-ips");
    let doc = analyze_json(&[
        story.to_str().unwrap(),
        "--threat-list",
        list.to_str().unwrap(),
        "--trusted-list",
        dir.path().join("trusted.txt").to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--show-suppressed",
    ]);
    assert!(custom(&doc).is_empty());
    let suppressed = doc["suppressed"].as_array().unwrap();
    assert!(suppressed.iter().any(|f| f["type"]
        == "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched"
        && f["suppression"]["source"] == "debug-pods"));
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["type"] != "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched")
    );

    let out = osprey()
        .args(["audit", "analyze", "--format", "json", "--exit-code", "4"])
        .arg(&story)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let out = osprey()
        .args([
            "audit",
            "analyze",
            "--format",
            "json",
            "--exit-code",
            "4",
            "--fail-on",
            "CRITICAL",
        ])
        .arg(&story)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // A bad rule file names itself, the rule and the place.
    std::fs::write(
        rules.join("broken.yaml"),
        "rules:\n  - {id: mine, title: t, type: 'A:B/C', severity: High, condition: 'verb in (get'}\n",
    )
    .unwrap();
    let out = osprey()
        .args(["audit", "analyze", "--rules"])
        .arg(&rules)
        .arg(&story)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("broken.yaml: rule mine: condition: at offset"),
        "{err}"
    );
}

#[test]
fn ocsf_detection_findings() {
    let story = repo_root().join("examples/audit/attack-story.jsonl");
    let out = osprey()
        .args(["audit", "analyze", "--format", "ocsf-json"])
        .arg(&story)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events.len(), 19);
    for e in &events {
        osprey_testkit::schemas::assert_ocsf(e, "audit analyze --format ocsf-json");
        assert_eq!(e["class_uid"], 2004);
        assert!(e["severity_id"].as_u64().unwrap() >= 2);
        assert!(e["finding_info"]["uid"].is_string());
        assert!(
            e["finding_info"]["analytic"]["uid"]
                .as_str()
                .unwrap()
                .starts_with("osprey.")
        );
    }
}

#[test]
fn baselines_survive_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let story = repo_root().join("examples/audit/attack-story.jsonl");
    let args = [
        story.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--learning-period",
        "0s",
    ];
    let first = analyze_json(&args);
    let anomalies = |d: &Value| {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"].as_str().unwrap().contains("AnomalousBehavior"))
            .count()
    };
    assert!(anomalies(&first) > 0);
    let saved: Value = serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
    assert!(saved["clusters"].as_object().unwrap().contains_key(""));
    // The same traffic again is nothing new.
    let second = analyze_json(&args);
    assert_eq!(anomalies(&second), 0);
}

fn post(addr: &str, path: &str, token: &str, body: &[u8]) -> u16 {
    common::http(addr, "POST", path, Some(token), body).0
}

#[test]
fn webhook_batches_are_analysed_as_they_arrive() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("osprey"))
        .args([
            "audit",
            "analyze",
            "--listen",
            "127.0.0.1:0",
            "--format",
            "json",
        ])
        .args(["--cluster", "prod-1", "--baseline"])
        .arg(&baseline)
        .env("OSPREY_INGEST_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("osprey: listening on http://")
        .and_then(|r| r.strip_suffix("/k8s-audit"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();

    let story =
        std::fs::read_to_string(repo_root().join("examples/audit/attack-story.jsonl")).unwrap();
    let events: Vec<&str> = story.lines().collect();
    assert_eq!(post(&addr, "/k8s-audit", "wrong", b"{}"), 401);
    for batch in events.chunks(40) {
        let body = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
            batch.join(",")
        );
        assert_eq!(post(&addr, "/k8s-audit", "s3cret", body.as_bytes()), 200);
    }
    assert_eq!(post(&addr, "/k8s-audit", "s3cret", b"{\"kind\": 0}"), 400);

    // Ctrl-C stops it cleanly and saves the baselines.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let findings: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(findings.len() >= 15, "{}", findings.len());
    assert!(
        findings
            .iter()
            .any(|f| f["type"] == "Policy:Kubernetes/AnonymousAccessGranted")
    );
    assert!(
        findings
            .iter()
            .all(|f| f["resource"]["kubernetes"]["cluster"] == "prod-1")
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        rest.contains("received 111 events (2 batches rejected)"),
        "{rest}"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
    assert!(saved["clusters"]["prod-1"].is_object());
}
