//! `osprey graph build` and `osprey graph show` through the real binary: the bundled attack
//! story built into a local store, the attacker's profile counted against the raw log
//! (independently of the engine), building again adding nothing, a cluster named instead of
//! its id, and bad input refused in one line with exit 2.

mod common;

use std::collections::{HashMap, HashSet};

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

/// `graph build --snapshot --scan` then `graph show --impact`: the story's pods and RBAC from
/// the bundled snapshot, the demo image's scan from `osprey image scan --format json`, and the
/// impact of the image and of its vulnerability through the real binary.
#[test]
fn a_snapshot_and_a_scan_complete_the_graph_for_impact() {
    let dir = tempfile::tempdir().unwrap();
    let examples = repo_root().join("examples");
    let image = format!("oci-dir:{}:v1", examples.join("images/demo").display());
    // The bundled snapshot, its privileged pod running the demo image.
    let snapshot = dir.path().join("snapshot.json");
    let text = std::fs::read_to_string(examples.join("audit/attack-story-snapshot.json"))
        .unwrap()
        .replace("docker.io/library/alpine:3.20", &image);
    std::fs::write(&snapshot, text).unwrap();
    // The demo image's scan.
    let vulndb = dir.path().join("vuln.db");
    let built = osprey()
        .args(["db", "build", "--osv"])
        .arg(examples.join("vulndb/osv"))
        .arg("--out")
        .arg(&vulndb)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let scanned = osprey()
        .args(["image", "scan", &image, "--format", "json", "--db"])
        .arg(&vulndb)
        .output()
        .unwrap();
    let scan = dir.path().join("scan.json");
    std::fs::write(&scan, &scanned.stdout).unwrap();
    let doc: Value = serde_json::from_slice(&scanned.stdout).unwrap();
    let digest = doc["target"]["digest"].as_str().unwrap().to_string();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 2, "{doc:#}");

    // Its SBOM, as CycloneDX.
    let sbom = dir.path().join("sbom.json");
    let written = osprey()
        .args(["sbom", &image, "--format", "cyclonedx-json", "-o"])
        .arg(&sbom)
        .output()
        .unwrap();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let bom: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let purls: HashSet<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(!purls.is_empty(), "{bom:#}");

    let db = dir.path().join("graph");
    let out = osprey()
        .args(["graph", "build", "--cluster", "prod", "--db"])
        .arg(&db)
        .arg(story())
        .arg("--snapshot")
        .arg(&snapshot)
        .arg("--scan")
        .arg(&scan)
        .arg("--sbom")
        .arg(&sbom)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("snapshot: 5 running pods"), "{stderr}");
    assert!(
        stderr.contains(&format!("scan of {digest}: 2 vulnerability findings")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("SBOM of {digest}: {} packages", purls.len())),
        "{stderr}"
    );

    // The image's profile lists every package of its SBOM; a vulnerable package names
    // the image and the finding about it.
    let profile = show(&db, &format!("image/{digest}"), &["--related", "1000"]);
    let listed: HashSet<String> = profile["related"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relation"] == "package")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // Each listed package's profile, by the package URL it names.
    let profiles: HashMap<String, Value> = listed
        .iter()
        .map(|id| {
            let p = show(&db, id, &[]);
            (p["entity"]["name"].as_str().unwrap().to_string(), p)
        })
        .collect();
    assert_eq!(
        profiles.keys().map(String::as_str).collect::<HashSet<_>>(),
        purls
    );
    let vulnerable = doc["findings"][0]["vulnerability"]["packages"][0]["purl"]
        .as_str()
        .unwrap();
    let package = profiles
        .get(vulnerable)
        .unwrap_or_else(|| panic!("{vulnerable} in {listed:?}"));
    let relations: HashSet<(&str, &str)> = package["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["relation"].as_str().unwrap(), r["type"].as_str().unwrap()))
        .collect();
    assert!(relations.contains(&("package", "image")), "{package:#}");
    let about: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["vulnerability"]["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["purl"] == vulnerable)
        })
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        package["findings"].as_array().unwrap().len(),
        about.len(),
        "the vulnerability findings about the package: {package:#}"
    );

    // The image: its pod (matched by the scan's reference) and the two others on its node,
    // and who can exec into it.
    let impact = show(&db, &format!("image/{digest}"), &["--impact"]);
    let pods = common::impact_pods(&impact);
    assert_eq!(pods.len(), 3, "{impact:#}");
    assert!(
        pods.iter().any(|p| p.ends_with("/default/node-debugger")),
        "{pods:?}"
    );
    assert!(
        pods.iter().all(|p| !p.contains("/shop/")),
        "node-b's pods are not reached: {pods:?}"
    );
    let who: Vec<&str> = impact["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subject"]["name"].as_str().unwrap())
        .collect();
    for name in ["system:masters", "system:anonymous", "dev-admin"] {
        assert!(who.contains(&name), "{name} in {who:?}");
    }
    assert!(!who.contains(&"oncall@example.com"), "{who:?}");
    // A vulnerability of the image concerns the same pods.
    let cve = doc["findings"][0]["vulnerability"]["id"].as_str().unwrap();
    let by_cve = show(&db, &format!("vulnerability/{cve}"), &["--impact"]);
    assert_eq!(by_cve["pods_total"], 3, "{by_cve:#}");
    // The on-call user reaches the shop's web pod and one secret; the table says so.
    let table = osprey()
        .args(["graph", "show", "--format", "table", "--impact", "--db"])
        .arg(&db)
        .arg("subject/prod/oncall%40example.com")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(text.contains("impact: 1 running pods"), "{text}");
    assert!(text.contains("/shop/web-7f9c6d5b8-2jxkq"), "{text}");
    assert!(text.contains("db-credentials"), "{text}");
}

#[test]
fn bad_input_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("graph");
    build(&db);
    let empty = dir.path().join("empty");
    let story_path = story().display().to_string();
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
            vec![
                "graph",
                "build",
                "--db",
                db.to_str().unwrap(),
                "--snapshot",
                "/no/such.json",
                story_path.as_str(),
            ],
            "/no/such.json: No such file",
        ),
        (
            vec![
                "graph",
                "build",
                "--db",
                db.to_str().unwrap(),
                "--scan",
                story_path.as_str(),
                story_path.as_str(),
            ],
            "not an Osprey scan document",
        ),
        (
            vec![
                "graph",
                "show",
                "--db",
                db.to_str().unwrap(),
                "--impact",
                "ip/203.0.113.66",
            ],
            "impact is for images, vulnerabilities, subjects and pods",
        ),
        (
            vec![
                "graph",
                "build",
                "--db",
                db.to_str().unwrap(),
                "--sbom",
                story_path.as_str(),
                story_path.as_str(),
            ],
            "not a JSON SBOM",
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
