//! `osprey sbom` end to end: the bundled demo image (snapshots of every format) and the bench
//! app image of scripts/build-bench-images.sh against what went into it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command as Process;

use common::{osprey, repo_root};
use osprey_testkit::tools::{bench_images, require_tool};

fn sbom_json(source: &str) -> serde_json::Value {
    let out = osprey()
        .current_dir(repo_root())
        .args(["sbom", source, "--format", "json"])
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn demo_image_formats() {
    let table = osprey()
        .current_dir(repo_root())
        .args([
            "sbom",
            "oci-dir:examples/images/demo:v1",
            "--format",
            "table",
        ])
        .assert()
        .success();
    insta::assert_snapshot!(
        "sbom_demo_table",
        String::from_utf8(table.get_output().stdout.clone()).unwrap()
    );
    let json = sbom_json("oci-dir:examples/images/demo:v1");
    insta::assert_json_snapshot!("sbom_demo_json", json);
    for (format, name) in [
        ("cyclonedx-json", "sbom_demo_cyclonedx"),
        ("spdx-json", "sbom_demo_spdx"),
    ] {
        let out = osprey()
            .current_dir(repo_root())
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .args([
                "sbom",
                "oci-dir:examples/images/demo:v1",
                "--format",
                format,
            ])
            .assert()
            .success();
        let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        insta::assert_json_snapshot!(name, doc);
    }
    // Without --format, a file gets JSON.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo.sbom.json");
    osprey()
        .current_dir(repo_root())
        .args(["sbom", "oci-dir:examples/images/demo:v1", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written, json);
}

#[test]
fn bad_sources_and_outputs_are_input_errors() {
    osprey().args(["sbom", "./missing.tar"]).assert().code(2).stderr(
        "osprey: error: source \"./missing.tar\": no such file or directory, and not an image reference\n",
    );
    osprey()
        .current_dir(repo_root())
        .args([
            "sbom",
            "oci-dir:examples/images/demo:v1",
            "-o",
            "/nonexistent-dir/x.json",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with(
            "osprey: error: /nonexistent-dir: cannot write here:",
        ));
}

/// PEP 440 release equality for the pip pins (`Django==2.2.0` is installed as 2.2).
fn pep440_release(v: &str) -> String {
    let mut parts: Vec<&str> = v.split('.').collect();
    while parts.len() > 1 && parts.last() == Some(&"0") {
        parts.pop();
    }
    parts.join(".")
}

fn packages(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The Debian packages installed in an OCI layout, as dpkg itself reads them.
fn dpkg_query(layout: &Path) -> BTreeSet<(String, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b");
    let status = Process::new(require_tool("umoci", "umoci"))
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let out = Process::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            bundle.join("rootfs/var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("ii"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn bench_app_image_recall() {
    let Some(bench) = bench_images() else { return };
    let archive = sbom_json(&format!(
        "docker-archive:{}",
        bench.join("app.tar").display()
    ));
    let layout = sbom_json(&format!("oci-dir:{}:v1", bench.join("app").display()));
    assert_eq!(
        packages(&archive),
        packages(&layout),
        "both forms of the image give the same inventory"
    );
    assert_eq!(archive["os"]["id"], "debian");
    assert_eq!(archive["os"]["version_id"], "12");

    let found = packages(&archive);
    let by_type: BTreeMap<&str, BTreeSet<(&str, &str)>> =
        found.iter().fold(BTreeMap::new(), |mut m, (t, n, v)| {
            m.entry(t.as_str())
                .or_default()
                .insert((n.as_str(), v.as_str()));
            m
        });
    let listed = std::fs::read_to_string(bench.join("app.packages.txt")).unwrap();
    let mut section = "";
    for line in listed.lines() {
        if let Some(s) = line.strip_prefix("# ") {
            section = s.split_whitespace().next().unwrap();
            continue;
        }
        match section {
            "pip" => {
                let (name, version) = line.split_once("==").unwrap();
                let ok = by_type["python"].iter().any(|(n, v)| {
                    n.eq_ignore_ascii_case(name) && pep440_release(v) == pep440_release(version)
                });
                assert!(ok, "pip {name}=={version} not found");
            }
            "npm" => {
                let (name, version) = line.split_once(':').unwrap();
                let (name, version) = (name.trim_matches('"'), version.trim_matches('"'));
                assert!(
                    by_type["npm"].contains(&(name, version)),
                    "npm {name}@{version} not found"
                );
            }
            "go" => {
                let file = line.trim();
                let in_binary: Vec<&serde_json::Value> = archive["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| {
                        p["type"] == "go-module"
                            && p["locations"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|l| l["path"] == file)
                    })
                    .collect();
                assert!(
                    in_binary.iter().any(|p| p["name"] == "stdlib"),
                    "{file}: no Go toolchain"
                );
                assert!(
                    in_binary
                        .iter()
                        .any(|p| p["properties"]["go.main-package"].is_string()),
                    "{file}: no main package"
                );
            }
            _ => {}
        }
    }
    let dpkg = dpkg_query(&bench.join("app"));
    let ours: BTreeSet<(String, String)> = by_type["deb"]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        ours, dpkg,
        "every installed Debian package, as dpkg-query lists them"
    );
    for (group, artifact) in [
        ("org.apache.commons", "commons-lang3"),
        ("com.fasterxml.jackson.core", "jackson-databind"),
    ] {
        assert!(
            archive["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["group"] == group && p["name"] == artifact),
            "jar {group}:{artifact} not found"
        );
    }
    // The app layer's packages are attributed to it, the base's to the base.
    let layer_of = |t: &str, n: &str| {
        archive["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == t && p["name"] == n)
            .unwrap()["locations"][0]["layer"]
            .as_u64()
    };
    assert_eq!(layer_of("deb", "base-files"), Some(0));
    assert_eq!(layer_of("deb", "python3"), Some(1));
    assert_eq!(layer_of("python", "requests"), Some(2));
}

#[test]
fn layer_cache_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // stderr (the info log) and stdout of an sbom run with the given cache options.
    let run = |cache_args: &[&std::ffi::OsStr]| {
        let out = osprey()
            .current_dir(repo_root())
            .args([
                "--log-level",
                "info",
                "sbom",
                "oci-dir:examples/images/demo:v1",
                "--format",
                "json",
            ])
            .args(cache_args)
            .assert()
            .success();
        let o = out.get_output();
        (
            String::from_utf8(o.stderr.clone()).unwrap(),
            o.stdout.clone(),
        )
    };
    let with_cache = [std::ffi::OsStr::new("--cache-dir"), cache.as_os_str()];
    let (first_log, first) = run(&with_cache);
    assert!(
        first_log.contains("2 layers analysed, 0 from the cache"),
        "{first_log}"
    );
    let (second_log, second) = run(&with_cache);
    assert!(
        second_log.contains("0 layers analysed, 2 from the cache"),
        "{second_log}"
    );
    assert_eq!(first, second);
    let (no_cache_log, _) = run(&[std::ffi::OsStr::new("--no-cache")]);
    assert!(
        no_cache_log.contains("2 layers analysed, 0 from the cache"),
        "{no_cache_log}"
    );
}
