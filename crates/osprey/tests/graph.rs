//! `osprey graph build` and `osprey graph show` through the real binary: the bundled attack
//! story built into a local store, the attacker's profile counted against the raw log
//! (independently of the engine), building again adding nothing, a cluster named instead of
//! its id, and bad input refused in one line with exit 2.

mod common;

use std::collections::HashSet;

use common::{osprey, repo_root};
use serde_json::Value;

const ATTACKER: &str = "203.0.113.66";

fn story() -> std::path::PathBuf {
    repo_root().join("examples/audit/attack-story.jsonl")
}

/// The attacker's calls in the raw story: one per audit id, whatever its stages.
fn attacker_calls() -> usize {
    let text = std::fs::read_to_string(story()).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["sourceIPs"][0] == ATTACKER)
        .map(|e| e["auditID"].as_str().unwrap().to_string())
        .collect::<HashSet<_>>()
        .len()
}

fn show(db: &std::path::Path, entity: &str, extra: &[&str]) -> Value {
    let out = osprey()
        .args(["graph", "show", "--db"])
        .arg(db)
        .arg(entity)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Builds the story as cluster `prod` into `db`; returns the summary printed.
fn build(db: &std::path::Path) -> String {
    let out = osprey()
        .args(["graph", "build", "--cluster", "prod", "--db"])
        .arg(db)
        .arg(story())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_story_builds_into_a_graph_whose_profiles_count_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("graph");
    let out = osprey()
        .args(["graph", "build", "--cluster", "prod", "--db"])
        .arg(&db)
        .arg(story())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("cluster prod (") && summary.contains("1 attack sequences"),
        "{summary}"
    );

    let ip = show(&db, &format!("ip/{ATTACKER}"), &[]);
    assert_eq!(ip["api_calls"]["total"], attacker_calls(), "{ip:#}");
    assert_eq!(
        ip["scope"]["start"], "2026-11-20T09:00:00Z",
        "the entity's life by default"
    );
    assert!(!ip["findings"].as_array().unwrap().is_empty(), "{ip:#}");
    // The cluster by name, a pod of it, and an explicit scope.
    let pod = show(
        &db,
        "pod/prod/default/node-debugger",
        &[
            "--start",
            "2026-11-20T00:00:00Z",
            "--end",
            "2026-11-21T00:00:00Z",
        ],
    );
    assert_eq!(pod["entity"]["properties"]["privileged"], true, "{pod:#}");
    assert_eq!(pod["scope"]["end"], "2026-11-21T00:00:00Z");

    // Building the same log again adds nothing.
    assert_eq!(build(&db), summary);
    assert_eq!(show(&db, &format!("ip/{ATTACKER}"), &[]), ip);

    // The table says the same.
    let table = osprey()
        .args(["graph", "show", "--format", "table", "--db"])
        .arg(&db)
        .arg(format!("ip/{ATTACKER}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&format!("API calls  {}", attacker_calls())),
        "{text}"
    );
    assert!(text.contains("system:anonymous"), "{text}");
}

#[test]
fn bad_input_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("graph");
    build(&db);
    let empty = dir.path().join("empty");
    for (args, says) in [
        (
            vec![
                "graph",
                "build",
                "--db",
                db.to_str().unwrap(),
                "/no/such.log",
            ],
            "/no/such.log: no such file",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                empty.to_str().unwrap(),
                "ip/10.0.0.1",
            ],
            "no Osprey store here",
        ),
        (
            vec!["graph", "show", "--db", db.to_str().unwrap(), "ip"],
            "expected TYPE/ID",
        ),
        (
            vec!["graph", "show", "--db", db.to_str().unwrap(), "box/1"],
            "type \"box\"",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                db.to_str().unwrap(),
                "ip/not-an-address",
            ],
            "ip/not-an-address",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                db.to_str().unwrap(),
                "ip/192.0.2.200",
            ],
            "not in the store",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                db.to_str().unwrap(),
                "pod/nope/default/x",
            ],
            "no cluster named",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                db.to_str().unwrap(),
                "ip/203.0.113.66",
                "--start",
                "2026-11-20T09:30:00Z",
            ],
            "on an hour",
        ),
    ] {
        let out = osprey().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
