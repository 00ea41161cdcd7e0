//! `osprey image inspect` end to end: the real binary on images built here, on the corpus, on
//! the bench images, and against registries on loopback.

mod common;

use std::path::Path;

use common::osprey;
use osprey_testkit::layout::{Compression, ImageSpec, LayoutBuilder, TarLayer};
use osprey_testkit::registry::{Auth, Registry};
use osprey_testkit::tools::{bench_images, skopeo_copy, testdata};
use predicates::prelude::*;

fn sample_layout(dir: &Path) {
    let mut spec = ImageSpec::new()
        .layer(
            TarLayer::new()
                .dir("etc")
                .file("etc/os-release", b"ID=sample\n")
                .dir("usr/bin")
                .executable("usr/bin/tool", b"\x7fELF...")
                .symlink("bin", "usr/bin")
                .into_bytes(),
            Compression::Gzip,
            "ADD rootfs.tar /",
        )
        .layer(
            TarLayer::new()
                .whiteout("etc/os-release")
                .dir("app")
                .file("app/config.yaml", b"a: 1\n")
                .into_bytes(),
            Compression::Gzip,
            "RUN rm /etc/os-release && install app",
        );
    spec.entrypoint = vec!["/app/run".into(), "--serve".into()];
    spec.user = "1000:1000".into();
    spec.labels = vec![(
        "org.opencontainers.image.source".into(),
        "https://example.org/sample".into(),
    )];
    let mut b = LayoutBuilder::new(dir);
    b.add_image(Some("v1"), &spec);
    b.finish();
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

fn layer_list(v: &serde_json::Value) -> Vec<(String, u64)> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["diff_id"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn version_and_help() {
    osprey()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("osprey {}\n", env!("CARGO_PKG_VERSION")));
    osprey()
        .args(["image", "inspect", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Examples:")
                .and(predicate::str::contains("oci-dir:PATH[:TAG]")),
        );
    osprey().args(["image", "frobnicate"]).assert().code(2);
    osprey()
        .args(["--log-level", "loud=on=off", "image", "inspect", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "osprey: error: --log-level \"loud=on=off\": ",
        ));
}

#[test]
fn table_and_json_output() {
    let tmp = tempfile::tempdir().unwrap();
    sample_layout(&tmp.path().join("layout"));
    let table = osprey()
        .current_dir(tmp.path())
        .args(["image", "inspect", "oci-dir:layout:v1"])
        .assert()
        .success();
    insta::assert_snapshot!(
        "inspect_table",
        String::from_utf8(table.get_output().stdout.clone()).unwrap()
    );
    let out = osprey()
        .current_dir(tmp.path())
        .args([
            "image",
            "inspect",
            "oci-dir:layout:v1",
            "--format",
            "json",
            "--files",
        ])
        .assert()
        .success();
    insta::assert_json_snapshot!("inspect_json_files", json(&out.get_output().stdout));
}

#[test]
fn files_table_shows_merged_view_and_warnings_respect_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let mut b = LayoutBuilder::new(&dir);
    b.add_image(
        Some("v1"),
        &ImageSpec::new().layer(
            TarLayer::new()
                .file("../escape", b"x")
                .file("ok", b"y")
                .into_bytes(),
            Compression::None,
            "x",
        ),
    );
    b.finish();
    let src = format!("oci-dir:{}:v1", dir.display());
    osprey()
        .args(["image", "inspect", &src, "--files"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^ -rw-r--r--\s+1\s+1\s+/ok$").unwrap())
        .stderr("osprey: warning: layer 1: /../escape: path escapes the image root; skipped\n");
    osprey()
        .args(["image", "inspect", &src, "--files", "-q"])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn input_errors_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "plain text, not an image\n".repeat(50)).unwrap();
    let dir = tmp.path().join("layout");
    sample_layout(&dir);
    let manifest = json(
        &osprey()
            .args([
                "image",
                "inspect",
                &format!("oci-dir:{}:v1", dir.display()),
                "--format",
                "json",
            ])
            .output()
            .unwrap()
            .stdout,
    );
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::remove_file(dir.join("blobs/sha256").join(&layer)).unwrap();

    let cases = [
        (
            format!("docker-archive:{}", text.display()),
            format!("{}: not a valid tar archive (bad header)", text.display()),
        ),
        (
            format!("oci-dir:{}:v1", dir.display()),
            format!("{}: missing blob sha256:{layer} (layer 1)", dir.display()),
        ),
        (
            "./no-such-image.tar".to_string(),
            "source \"./no-such-image.tar\": no such file or directory, and not an image reference"
                .to_string(),
        ),
    ];
    for (source, message) in cases {
        osprey()
            .args(["image", "inspect", &source])
            .assert()
            .code(2)
            .stdout("")
            .stderr(format!("osprey: error: {message}\n"));
    }
    osprey()
        .args(["image", "inspect", "alpine", "--platform", "linux"])
        .assert()
        .code(2)
        .stderr("osprey: error: platform \"linux\": expected os/arch or os/arch/variant, e.g. linux/arm64\n");
}

#[test]
fn registry_credentials_from_flags_and_docker_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    sample_layout(&dir);
    let registry = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    skopeo_copy(
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{}/team/sample:v1", registry.addr),
        Some(("alice", "s3cret")),
        false,
    );
    let src = format!("registry:{}/team/sample:v1", registry.addr);

    osprey().args(["image", "inspect", &src, "--insecure"]).assert().code(2).stderr(format!(
        "osprey: error: registry {}: authentication required (HTTP 401, Basic) and no username/password found; use --username/--password or docker login\n",
        registry.addr
    ));
    osprey()
        .args([
            "image",
            "inspect",
            &src,
            "--insecure",
            "--username",
            "alice",
            "--password",
            "s3cret",
        ])
        .assert()
        .success();
    osprey()
        .args(["image", "inspect", &src, "--insecure"])
        .env("OSPREY_REGISTRY_USERNAME", "alice")
        .env("OSPREY_REGISTRY_PASSWORD", "s3cret")
        .assert()
        .success();

    use base64::Engine;
    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {&registry.addr: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    osprey()
        .args(["image", "inspect", &src, "--insecure"])
        .env("DOCKER_CONFIG", &docker)
        .assert()
        .success();
    osprey()
        .args(["image", "inspect", &src, "--insecure", "--no-docker-config"])
        .env("DOCKER_CONFIG", &docker)
        .assert()
        .code(2);
}

/// The done-when of the foundation issue: the bench app image pushed to a registry on loopback
/// lists the same layers as its OCI layout and its docker archive.
#[test]
fn bench_app_image_same_layers_from_every_source() {
    let Some(bench) = bench_images() else { return };
    let registry = Registry::start(Auth::Open);
    skopeo_copy(
        &format!("oci:{}:v1", bench.join("app").display()),
        &format!("docker://{}/bench/app:v1", registry.addr),
        None,
        false,
    );
    let inspect = |src: &str, extra: &[&str]| {
        let out = osprey()
            .args(["image", "inspect", src, "--format", "json"])
            .args(extra)
            .assert()
            .success();
        json(&out.get_output().stdout)
    };
    let remote = inspect(
        &format!("registry:{}/bench/app:v1", registry.addr),
        &["--insecure"],
    );
    let layout = inspect(&format!("oci-dir:{}:v1", bench.join("app").display()), &[]);
    let archive = inspect(
        &format!("docker-archive:{}", bench.join("app.tar").display()),
        &[],
    );
    assert_eq!(layer_list(&remote).len(), 3);
    assert_eq!(layer_list(&remote), layer_list(&layout));
    assert_eq!(remote["manifest_digest"], layout["manifest_digest"]);
    assert_eq!(remote["config_digest"], archive["config_digest"]);
    let diff_ids = |v: &serde_json::Value| {
        layer_list(v)
            .into_iter()
            .map(|(d, _)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(diff_ids(&archive), diff_ids(&layout));

    // The merged view of the real image: Debian's merged /usr, files from every layer, and the
    // app layer's whiteouts applied.
    let files = inspect(
        &format!("oci-dir:{}:v1", bench.join("app").display()),
        &["--files"],
    );
    let files = files["files"].as_array().unwrap();
    let find = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(find("/bin")["type"], "symlink");
    assert_eq!(find("/bin")["target"], "usr/bin");
    assert_eq!(find("/usr/lib/os-release")["layer"], 0);
    assert_eq!(find("/usr/bin/python3.11")["layer"], 1);
    assert_eq!(find("/app/package.json")["layer"], 2);
    assert!(files.iter().all(|f| {
        !f["path"]
            .as_str()
            .unwrap()
            .starts_with("/usr/share/doc/python3")
    }));
}

#[test]
fn corpus_images_inspect() {
    let out = osprey()
        .args([
            "image",
            "inspect",
            testdata("pkgdb/images/trivy-alpine-310.tar.gz")
                .to_str()
                .unwrap(),
            "--format",
            "json",
        ])
        .assert()
        .success();
    let v = json(&out.get_output().stdout);
    assert_eq!(v["kind"], "docker-archive");
    assert_eq!(v["repo_tags"], serde_json::json!(["alpine:3.10"]));
    assert_eq!(v["platform"], "linux/amd64");
    assert_eq!(
        layer_list(&v),
        [(
            "sha256:531743b7098cb2aaf615641007a129173f63ed86ca32fe7b5a246a1c47286028".to_string(),
            5818880
        )]
    );
}
