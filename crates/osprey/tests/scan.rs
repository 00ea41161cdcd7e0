//! `osprey db build|info`, `osprey image scan` and `osprey sbom scan` end to end: the real
//! binary on real advisory data (testdata/vulndb) and real images and binaries
//! (testdata/pkgdb, the bench app image of scripts/build-bench-images.sh), checked against the answers of the
//! independent oracle in crates/vuln/tests/oracle; every output format, the CI gate,
//! ignore files, VEX, and bad input.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{osprey, repo_root};
use osprey_testkit::schemas::{self, assert_valid};
use osprey_testkit::tools::{bench_images, testdata, vuln_expectations};
use serde_json::Value;

/// The database of the whole vulndb corpus, built by `osprey db build` once per process.
fn corpus_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scan-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("corpus.db");
        let v = testdata("vulndb");
        let out = osprey()
            .args(["db", "build", "--out"])
            .arg(&path)
            .arg("--osv")
            .args([
                v.join("golang-vulndb/osv"),
                v.join("rustsec/osv"),
                v.join("pypa/osv"),
            ])
            .arg("--alpine-secdb")
            .arg(v.join("alpine-secdb"))
            .arg("--debian-tracker")
            .arg(v.join("debian-security-tracker"))
            .arg("--rubysec")
            .arg(v.join("rubysec"))
            .assert()
            .success();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains("advisories for") && stderr.contains("malformed records skipped"),
            "{stderr}"
        );
        path
    })
}

fn scan_json(source: &str, extra: &[&str]) -> Value {
    let out = osprey()
        .args(["image", "scan", source, "--format", "json", "--db"])
        .arg(corpus_db())
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// (package, version, advisory) for every vulnerable package of every finding.
fn triples(doc: &Value, key: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for f in doc[key].as_array().unwrap() {
        for p in f["vulnerability"]["packages"].as_array().unwrap() {
            for a in p["advisories"].as_array().unwrap() {
                out.insert((
                    p["name"].as_str().unwrap().into(),
                    p["version"].as_str().unwrap().into(),
                    a.as_str().unwrap().into(),
                ));
            }
        }
    }
    out
}

/// The oracle's answer as triples (name, version, advisory).
fn oracle(file: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (_, name, version, ids) in vuln_expectations(file) {
        for id in ids {
            out.insert((name.clone(), version.clone(), id));
        }
    }
    out
}

#[test]
fn db_info_describes_the_corpus_database() {
    let out = osprey()
        .args(["db", "info", "--format", "json", "--db"])
        .arg(corpus_db())
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let m = &v["metadata"];
    assert_eq!(m["format"], 1);
    assert_eq!(m["sources"].as_array().unwrap().len(), 6);
    for eco in [
        "Go",
        "PyPI",
        "crates.io",
        "RubyGems",
        "Alpine:v3.10",
        "Debian:11",
    ] {
        assert!(
            m["ecosystems"][eco]["advisories"].as_u64().unwrap() > 0,
            "{eco}"
        );
    }
    let table = osprey()
        .args(["db", "info", "--db"])
        .arg(corpus_db())
        .assert()
        .success();
    let text = String::from_utf8(table.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("ECOSYSTEM") && text.contains("Alpine:v3.11") && text.contains("rubysec"),
        "{text}"
    );
}

#[test]
fn go_binaries_match_golang_vulndb_like_the_oracle() {
    let doc = scan_json(
        &format!("dir:{}", testdata("pkgdb/gobinary").display()),
        &[],
    );
    let want: BTreeSet<_> = oracle("go-binaries.tsv");
    assert_eq!(want.len(), 262);
    assert_eq!(triples(&doc, "findings"), want);
    // One finding per vulnerability (GO- id, CVE and GHSA grouped), named by its CVE.
    let f = doc["findings"].as_array().unwrap();
    assert!(f.len() < 262, "aliases are grouped: {} findings", f.len());
    let go = f
        .iter()
        .find(|f| f["vulnerability"]["id"] == "CVE-2023-45288")
        .expect("the HTTP/2 CONTINUATION flood");
    let aliases: Vec<&str> = go["vulnerability"]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(aliases.iter().any(|a| a.starts_with("GO-")), "{aliases:?}");
    assert_eq!(go["type"], "Vulnerability:Package/CVE");
    let pkg = &go["vulnerability"]["packages"][0];
    assert_eq!(
        pkg["purl"].as_str().unwrap().split('@').next().unwrap(),
        "pkg:golang/stdlib"
    );
    assert!(pkg["path"].as_str().unwrap().starts_with('/'));
    assert_eq!(go["vulnerability"]["fix_available"], "YES");
}

#[test]
fn rust_binaries_have_no_rustsec_advisories() {
    let doc = scan_json(
        &format!("dir:{}", testdata("pkgdb/rust-auditable").display()),
        &[],
    );
    assert_eq!(doc["target"]["packages"], 14);
    assert!(oracle("crates-binaries.tsv").is_empty());
    assert_eq!(doc["summary"]["findings"], 0);
}

#[test]
fn alpine_images_against_their_secdb_release() {
    for (image, os) in [
        ("trivy-alpine-310.tar.gz", "Alpine Linux v3.10"),
        ("trivy-alpine-311.tar.gz", "Alpine Linux v3.11"),
    ] {
        let out = osprey()
            .args(["image", "scan", "--format", "json", "--db"])
            .arg(corpus_db())
            .arg(format!(
                "docker-archive:{}",
                testdata("pkgdb/images").join(image).display()
            ))
            .assert()
            .success();
        let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(doc["target"]["os"], os);
        assert_eq!(doc["target"]["packages"], 14);
        // Every installed version is at or past the secdb's last fix for its origin.
        assert_eq!(doc["summary"]["findings"], 0, "{image}");
        let stderr = String::from_utf8_lossy(&out.get_output().stderr);
        assert!(
            !stderr.contains("not checked"),
            "the release is covered: {stderr}"
        );
    }
}

/// A root file system holding the Alpine 3.4-era apk database of the corpus.
fn old_alpine_rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::copy(
        testdata("pkgdb/apk/trivy-apk/lib/apk/db/installed"),
        dir.path().join("lib/apk/db/installed"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn an_older_alpine_release_matches_the_oracle_and_renders_every_format() {
    let rootfs = old_alpine_rootfs();
    let source = format!("dir:{}", rootfs.path().display());
    let doc = scan_json(&source, &[]);
    // The oracle names origins (source packages); findings name binary packages.
    let origins: BTreeSet<(String, String)> = oracle("alpine-trivy-apk.tsv")
        .into_iter()
        .map(|(_, _, id)| (String::new(), id))
        .collect();
    let found: BTreeSet<(String, String)> = triples(&doc, "findings")
        .into_iter()
        .map(|(_, _, id)| (String::new(), id))
        .collect();
    assert_eq!(found, origins);
    let openssl = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["vulnerability"]["packages"][0]["source_name"] == "openssl")
        .expect("an openssl finding");
    let names: BTreeSet<&str> = openssl["vulnerability"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["libcrypto1.0", "libssl1.0"]),
        "both binary packages of the source"
    );

    let table = osprey()
        .args(["image", "scan", &source, "--format", "table", "--db"])
        .arg(corpus_db())
        .assert()
        .success();
    let text = String::from_utf8(table.get_output().stdout.clone())
        .unwrap()
        .replace(&rootfs.path().display().to_string(), "ROOTFS");
    insta::assert_snapshot!("scan_old_alpine_table", text);

    // SARIF, valid against the OASIS schema, one result per vulnerable package.
    let sarif = run_format(&source, "sarif", &[]);
    assert_valid(schemas::sarif(), &sarif, "SARIF");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let packages: usize = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["vulnerability"]["packages"].as_array().unwrap().len())
        .sum();
    assert_eq!(results.len(), packages);
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "lib/apk/db/installed"
    );

    // CycloneDX with vulnerabilities, valid against the 1.6 schema.
    let cdx = run_format(&source, "cyclonedx-json", &[]);
    assert_valid(schemas::cyclonedx(), &cdx, "CycloneDX");
    let vulns = cdx["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), doc["findings"].as_array().unwrap().len());
    let refs: BTreeSet<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    for v in vulns {
        for a in v["affects"].as_array().unwrap() {
            assert!(
                refs.contains(a["ref"].as_str().unwrap()),
                "affects points at a component"
            );
        }
    }

    // OCSF Vulnerability Finding events.
    let ocsf = run_format(&source, "ocsf-json", &[]);
    let events = ocsf.as_array().unwrap();
    assert_eq!(events.len(), doc["findings"].as_array().unwrap().len());
    for e in events {
        osprey_testkit::schemas::assert_ocsf(e, "image scan --format ocsf-json");
        assert_eq!(e["class_uid"], 2002);
        assert_eq!(e["type_uid"], 200201);
        assert!(
            e["finding_info"]["uid"].is_string()
                && e["vulnerabilities"][0]["affected_packages"][0]["name"].is_string()
        );
        assert!((0..=5).contains(&e["severity_id"].as_u64().unwrap()));
    }
}

fn run_format(source: &str, format: &str, extra: &[&str]) -> Value {
    let out = osprey()
        .args(["image", "scan", source, "--format", format, "--db"])
        .arg(corpus_db())
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn the_gate_filters_ignores_and_vex() {
    let rootfs = old_alpine_rootfs();
    let source = format!("dir:{}", rootfs.path().display());
    let all = scan_json(&source, &[]);
    let total = all["summary"]["findings"].as_u64().unwrap();
    assert!(total > 10);
    // Findings and --exit-code: the code is returned; none at the gated severities: success.
    let gate = |extra: &[&str]| {
        let out = osprey()
            .args([
                "image",
                "scan",
                &source,
                "-q",
                "--format",
                "json",
                "--exit-code",
                "7",
            ])
            .args(extra)
            .arg("--db")
            .arg(corpus_db())
            .output()
            .unwrap();
        out.status.code()
    };
    assert_eq!(gate(&[]), Some(7));
    assert_eq!(gate(&["--severity", "CRITICAL"]), Some(0));
    // --ignore-unfixed keeps only packages with a fixed version (every secdb entry has one).
    let fixed = scan_json(&source, &["--ignore-unfixed"]);
    assert_eq!(fixed["summary"]["findings"], total);

    // An ignore file: one id everywhere, one id for one package, one expired rule.
    let ids: Vec<String> = all["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["vulnerability"]["id"].as_str().unwrap().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join("ignore.yaml");
    std::fs::write(
        &ignore,
        format!(
            "ignore:\n  - id: {}\n    reason: accepted risk\n  - id: {}\n    package: libssl1.0\n  - id: {}\n    expires: 2020-01-01\n",
            ids[0], ids[1], ids[2]
        ),
    )
    .unwrap();
    let out = osprey()
        .args([
            "image",
            "scan",
            &source,
            "--format",
            "json",
            "--show-suppressed",
            "--ignore-file",
        ])
        .arg(&ignore)
        .arg("--db")
        .arg(corpus_db())
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains(&format!("the rule for {} expired on 2020-01-01", ids[2])),
        "{stderr}"
    );
    let remaining: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["vulnerability"]["id"].as_str().unwrap())
        .collect();
    assert!(!remaining.contains(&ids[0].as_str()));
    assert!(
        remaining.contains(&ids[2].as_str()),
        "expired rules do not apply"
    );
    let suppressed = doc["suppressed"].as_array().unwrap();
    assert!(
        suppressed
            .iter()
            .any(|f| f["vulnerability"]["id"] == ids[0].as_str()
                && f["suppression"]["reason"] == "accepted risk")
    );
    if let Some(partial) = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["vulnerability"]["id"] == ids[1].as_str())
    {
        let names: Vec<&str> = partial["vulnerability"]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            !names.contains(&"libssl1.0"),
            "only libssl1.0 is ignored for {}: {names:?}",
            ids[1]
        );
    }

    // OpenVEX: a not_affected statement for one vulnerability and one package purl.
    let first = &all["findings"][0];
    let purl = first["vulnerability"]["packages"][0]["purl"]
        .as_str()
        .unwrap();
    let vex = dir.path().join("app.openvex.json");
    std::fs::write(
        &vex,
        serde_json::to_vec(&serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/1",
            "author": "test",
            "timestamp": "2026-01-01T00:00:00Z",
            "version": 1,
            "statements": [{
                "vulnerability": {"name": first["vulnerability"]["id"]},
                "products": [{"@id": purl}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
                "impact_statement": "the vulnerable function is never called"
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    let doc = scan_json(
        &source,
        &["--vex", vex.to_str().unwrap(), "--show-suppressed"],
    );
    let s = doc["suppressed"].as_array().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["suppression"]["by"], "vex");
    assert_eq!(
        s[0]["suppression"]["justification"],
        "vulnerable_code_not_in_execute_path"
    );
    assert_eq!(doc["summary"]["suppressed"], 1);
    // Without --show-suppressed the suppressed findings stay out of the output.
    let doc = scan_json(&source, &["--vex", vex.to_str().unwrap()]);
    assert!(doc.get("suppressed").is_none());
    // The suppressed finding carries a VEX analysis in CycloneDX.
    let cdx = run_format(
        &source,
        "cyclonedx-json",
        &["--vex", vex.to_str().unwrap(), "--show-suppressed"],
    );
    let analysed: Vec<&Value> = cdx["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get("analysis").is_some())
        .collect();
    assert_eq!(analysed.len(), 1);
    assert_eq!(analysed[0]["analysis"]["state"], "not_affected");
    assert_eq!(
        analysed[0]["analysis"]["justification"],
        "code_not_reachable"
    );
    assert_valid(schemas::cyclonedx(), &cdx, "CycloneDX with VEX");
}

#[test]
fn sbom_scan_reads_cyclonedx_and_spdx() {
    let rootfs = old_alpine_rootfs();
    let source = format!("dir:{}", rootfs.path().display());
    let direct = triples(&scan_json(&source, &[]), "findings");
    let dir = tempfile::tempdir().unwrap();
    for format in ["cyclonedx-json", "spdx-json"] {
        let sbom = dir.path().join(format!("sbom.{format}"));
        osprey()
            .args(["sbom", &source, "--format", format, "-o"])
            .arg(&sbom)
            .assert()
            .success();
        let out = osprey()
            .args(["sbom", "scan"])
            .arg(&sbom)
            .args(["--format", "json", "--db"])
            .arg(corpus_db())
            .assert()
            .success();
        let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(doc["target"]["kind"], "sbom");
        assert_eq!(triples(&doc, "findings"), direct, "{format}");
    }
}

#[test]
fn the_bench_app_images_pip_packages_match_pypa() {
    let Some(bench) = bench_images() else { return };
    let doc = scan_json(&format!("oci-dir:{}:v1", bench.join("app").display()), &[]);
    // Django is "2.2.0" on the pip command line and "2.2" in its metadata: compare by name.
    let want: BTreeSet<(String, String)> = oracle("pypi-app.tsv")
        .into_iter()
        .map(|(n, _, id)| (n.to_ascii_lowercase(), id))
        .collect();
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    for f in doc["findings"].as_array().unwrap() {
        for p in f["vulnerability"]["packages"].as_array().unwrap() {
            if p["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/usr/local/lib/python3.11/dist-packages/")
            {
                for a in p["advisories"].as_array().unwrap() {
                    got.insert((
                        p["name"].as_str().unwrap().to_ascii_lowercase(),
                        a.as_str().unwrap().to_string(),
                    ));
                }
                assert_eq!(p["layer"], 2, "the pip packages came in the app layer");
            }
        }
    }
    assert_eq!(got, want);
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let out = osprey()
        .args(["image", "scan", "dir:/nonexistent", "--db"])
        .arg(&missing)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        err.contains("no vulnerability database here")
            && err.contains("osprey db update")
            && err.lines().count() == 1,
        "{err}"
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all, no").unwrap();
    let out = osprey()
        .args(["db", "info", "--db"])
        .arg(&garbage)
        .assert()
        .code(2);
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr)
            .contains("not an Osprey vulnerability database")
    );

    let bad_ignore = dir.path().join("i.yaml");
    std::fs::write(&bad_ignore, "ignore:\n  - idd: CVE-1\n").unwrap();
    let out = osprey()
        .args(["image", "scan", "dir:/nonexistent", "--ignore-file"])
        .arg(&bad_ignore)
        .arg("--db")
        .arg(corpus_db())
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("i.yaml"));

    let bad_vex = dir.path().join("v.json");
    std::fs::write(&bad_vex, "{}").unwrap();
    let out = osprey()
        .args([
            "image",
            "scan",
            &format!("dir:{}", testdata("pkgdb/gobinary").display()),
            "--vex",
        ])
        .arg(&bad_vex)
        .arg("--db")
        .arg(corpus_db())
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not an OpenVEX document"));

    osprey()
        .args(["image", "scan", "dir:/x", "--severity", "SEVERE"])
        .assert()
        .code(2);
    let out = osprey()
        .args(["db", "build", "--out"])
        .arg(dir.path().join("x.db"))
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("no feeds given"));
    osprey()
        .args(["db", "build", "--osv", "/nonexistent/osv", "--out"])
        .arg(dir.path().join("x.db"))
        .assert()
        .code(2);

    // Malformed records are skipped with their file and reason; --strict refuses them.
    let feed = dir.path().join("osv");
    std::fs::create_dir_all(&feed).unwrap();
    std::fs::write(feed.join("good.json"), r#"{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "versions": ["1.0"]}]}"#).unwrap();
    std::fs::write(feed.join("bad.json"), r#"{"id": 5}"#).unwrap();
    let db = dir.path().join("small.db");
    let out = osprey()
        .args(["db", "build", "--osv"])
        .arg(&feed)
        .arg("--out")
        .arg(&db)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(err.contains("bad.json: not an OSV record"), "{err}");
    osprey()
        .args(["db", "build", "--strict", "--osv"])
        .arg(&feed)
        .arg("--out")
        .arg(dir.path().join("strict.db"))
        .assert()
        .code(2);
    assert!(!dir.path().join("strict.db").exists());
}

#[test]
fn an_old_database_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("r.json");
    std::fs::write(&feed, r#"{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "versions": ["1.0"]}]}"#).unwrap();
    let db = dir.path().join("old.db");
    osprey()
        .args(["db", "build", "--osv"])
        .arg(&feed)
        .arg("--out")
        .arg(&db)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .assert()
        .success();
    let out = osprey()
        .args([
            "image",
            "scan",
            &format!("dir:{}", testdata("pkgdb/gobinary").display()),
            "--format",
            "json",
            "--db",
        ])
        .arg(&db)
        .env("SOURCE_DATE_EPOCH", "1768435200")
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        err.contains("built 14 days ago") && err.contains("osprey db update"),
        "{err}"
    );
    assert!(
        err.contains("no advisories for Go"),
        "coverage gaps are named: {err}"
    );
}

#[test]
fn the_readme_demo_scan() {
    // The README's first command, run from the repository root.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo-vuln.db");
    osprey()
        .current_dir(repo_root())
        .args(["db", "build", "--osv", "examples/vulndb/osv", "--out"])
        .arg(&db)
        .assert()
        .success();
    let out = osprey()
        .current_dir(repo_root())
        .args([
            "image",
            "scan",
            "oci-dir:examples/images/demo:v1",
            "--format",
            "table",
            "--db",
        ])
        .arg(&db)
        .assert()
        .success();
    let table = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    insta::assert_snapshot!("scan_demo_table", table);
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        err.contains("no advisories for Debian:12; 88 packages of it were not checked"),
        "{err}"
    );
}
