//! Every local source kind opens to the same image; selection by tag and platform; errors.

use osprey_image::{Image, ImageError, NodeKind, OpenOptions, Platform, Source, WalkBudget};
use osprey_testkit::layout::{
    Compression, ImageSpec, LayoutBuilder, TarLayer, docker_archive, tar_dir,
};
use osprey_testkit::tools::{testdata, umoci_layout};

fn open(source: &str) -> Result<Image, ImageError> {
    Image::open(&Source::parse(source)?, &OpenOptions::default())
}

fn open_platform(source: &str, platform: &str) -> Result<Image, ImageError> {
    let options = OpenOptions {
        platform: Some(platform.parse().unwrap()),
        ..OpenOptions::default()
    };
    Image::open(&Source::parse(source)?, &options)
}

fn sample() -> ImageSpec {
    let mut spec = ImageSpec::new()
        .layer(
            TarLayer::new()
                .dir("etc")
                .file("etc/os-release", b"ID=test\n")
                .into_bytes(),
            Compression::Gzip,
            "ADD base /",
        )
        .layer(
            TarLayer::new()
                .dir("app")
                .executable("app/run", b"#!/bin/sh\necho hi\n")
                .into_bytes(),
            Compression::Gzip,
            "COPY run /app/",
        );
    spec.entrypoint = vec!["/app/run".into()];
    spec.labels = vec![("org.opencontainers.image.title".into(), "sample".into())];
    spec
}

fn diff_ids(image: &Image) -> Vec<String> {
    image
        .layers
        .iter()
        .map(|l| l.diff_id.as_ref().unwrap().to_string())
        .collect()
}

#[test]
fn layout_archive_and_docker_archive_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = sample();
    let dir = tmp.path().join("layout");
    let mut b = LayoutBuilder::new(&dir);
    let manifest = b.add_image(Some("v1"), &spec);
    b.finish();
    let oci_tar = tmp.path().join("layout.tar");
    tar_dir(&dir, &oci_tar, false);
    let oci_tgz = tmp.path().join("layout.tar.gz");
    tar_dir(&dir, &oci_tgz, true);
    let docker = tmp.path().join("docker.tar");
    docker_archive(&docker, "sample:v1", &spec, false);
    let docker_gz_layers = tmp.path().join("docker-gz.tar");
    docker_archive(&docker_gz_layers, "sample:v1", &spec, true);

    let want = spec.diff_ids();
    let sources = [
        format!("oci-dir:{}:v1", dir.display()),
        format!("{}:v1", dir.display()),
        dir.display().to_string(),
        format!("oci-archive:{}:v1", oci_tar.display()),
        format!("oci-archive:{}", oci_tgz.display()),
        oci_tgz.display().to_string(),
        format!("docker-archive:{}", docker.display()),
        format!("docker-archive:{}:sample:v1", docker.display()),
        docker_gz_layers.display().to_string(),
    ];
    for s in &sources {
        let image = open(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(diff_ids(&image), want, "{s}");
        assert_eq!(
            image.platform,
            Some(Platform::new("linux", "amd64", None)),
            "{s}"
        );
        let cfg = image.config.as_ref().unwrap().config().as_ref().unwrap();
        assert_eq!(
            cfg.entrypoint().as_deref(),
            Some(&["/app/run".to_string()][..]),
            "{s}"
        );
        assert_eq!(
            image.layers[1].created_by.as_deref(),
            Some("COPY run /app/"),
            "{s}"
        );
        if image.kind != "docker-archive" {
            assert_eq!(
                image.manifest_digest.as_ref().unwrap().to_string(),
                manifest,
                "{s}"
            );
        } else {
            assert_eq!(image.repo_tags, ["sample:v1"], "{s}");
        }
        let (tree, notices) = image.file_tree().unwrap();
        assert!(notices.is_empty(), "{s}: {notices:?}");
        let run = tree.get("app/run").unwrap();
        assert_eq!(
            (run.kind.clone(), run.size, run.mode, run.layer),
            (NodeKind::File, 18, 0o755, 1),
            "{s}"
        );
        let mut content = Vec::new();
        image
            .walk_layer::<ImageError>(1, &WalkBudget::new(), |e| {
                if e.path == "app/run" {
                    content = e.read_limited(1024).unwrap().unwrap();
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(content, b"#!/bin/sh\necho hi\n", "{s}");
    }
}

#[test]
fn tags_and_platforms_select_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let mut b = LayoutBuilder::new(&dir);
    let one = |name: &str| TarLayer::new().file("which", name.as_bytes()).into_bytes();
    b.add_image(
        Some("v1"),
        &ImageSpec::new().layer(one("v1"), Compression::Gzip, "v1"),
    );
    b.add_image(
        Some("v2"),
        &ImageSpec::new().layer(one("v2"), Compression::Gzip, "v2"),
    );
    b.add_index(
        Some("multi"),
        &[
            ImageSpec::new().layer(one("amd64"), Compression::Gzip, "amd64"),
            ImageSpec::new()
                .layer(one("arm64"), Compression::Gzip, "arm64")
                .platform("linux", "arm64", Some("v8")),
            ImageSpec::new()
                .layer(one("armv7"), Compression::Gzip, "armv7")
                .platform("linux", "arm", Some("v7")),
        ],
    );
    b.finish();
    let d = dir.display();

    let v2 = open(&format!("oci-dir:{d}:v2")).unwrap();
    assert_eq!(v2.layers[0].created_by.as_deref(), Some("v2"));
    assert_eq!(v2.reference.as_deref(), Some("v2"));

    let err = open(&format!("oci-dir:{d}")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{d}: the layout holds several images; name one with :TAG (available: v1, v2, multi)"
        )
    );
    let err = open(&format!("oci-dir:{d}:v9")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{d}: no image tagged \"v9\" (available: v1, v2, multi)")
    );

    let host = open(&format!("oci-dir:{d}:multi")).unwrap();
    assert_eq!(host.layers[0].created_by.as_deref(), Some("amd64"));
    assert!(host.index_digest.is_some());
    let arm = open_platform(&format!("oci-dir:{d}:multi"), "linux/arm64").unwrap();
    assert_eq!(arm.layers[0].created_by.as_deref(), Some("arm64"));
    assert_eq!(arm.platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
    let v7 = open_platform(&format!("oci-dir:{d}:multi"), "linux/arm/v7").unwrap();
    assert_eq!(v7.layers[0].created_by.as_deref(), Some("armv7"));
    let err = open_platform(&format!("oci-dir:{d}:multi"), "linux/s390x")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{d}: no image for platform linux/s390x (available: linux/amd64, linux/arm64/v8, linux/arm/v7)"
        )
    );
    // A single-platform image asked for another platform is refused rather than mislabelled.
    let err = open_platform(&format!("oci-dir:{d}:v1"), "linux/arm64")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no image for platform linux/arm64 (available: linux/amd64)"),
        "{err}"
    );
}

#[test]
fn broken_inputs_give_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let mut b = LayoutBuilder::new(&dir);
    b.add_image(Some("v1"), &sample());
    b.finish();
    let image = open(&format!("oci-dir:{}:v1", dir.display())).unwrap();
    let layer = image.layers[1].digest.clone().unwrap();
    drop(image);
    std::fs::remove_file(dir.join("blobs/sha256").join(layer.hex())).unwrap();
    let err = open(&format!("oci-dir:{}:v1", dir.display()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{}: missing blob {layer} (layer 2)", dir.display())
    );

    let text = tmp.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is a text file, not an image archive\n".repeat(40),
    )
    .unwrap();
    let err = open(&format!("docker-archive:{}", text.display()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{}: not a valid tar archive (bad header)", text.display())
    );
    let short = tmp.path().join("short.txt");
    std::fs::write(&short, "hello\n").unwrap();
    assert!(
        open(&format!("docker-archive:{}", short.display()))
            .unwrap_err()
            .to_string()
            .starts_with(&short.display().to_string())
    );

    std::fs::write(dir.join("index.json"), "{not json").unwrap();
    let err = open(&format!("oci-dir:{}", dir.display()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: index.json: invalid index:", dir.display())),
        "{err}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = open(&format!("oci-dir:{}", empty.display()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: not an OCI image layout: no oci-layout file",
            empty.display()
        )
    );

    let plain = tmp.path().join("plain.tar");
    tar_dir(&empty, &plain, false);
    std::fs::write(empty.join("x"), "x").unwrap();
    tar_dir(&empty, &plain, false);
    let err = open(&plain.display().to_string()).unwrap_err().to_string();
    assert!(err.contains("not an image archive"), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn dir_source_walks_a_root_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=debian\n").unwrap();
    std::fs::create_dir(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    std::os::unix::fs::symlink("/../../../etc/passwd", root.join("escape")).unwrap();
    std::fs::write(root.join("usr/lib/a"), "same inode").unwrap();
    std::fs::hard_link(root.join("usr/lib/a"), root.join("usr/lib/b")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());

    let image = open(&format!("dir:{}", root.display())).unwrap();
    assert_eq!(image.kind, "dir");
    let (tree, notices) = image.file_tree().unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    let r = tree.resolve("etc/os-release").unwrap();
    assert_eq!(r.path, "usr/lib/os-release");
    assert_eq!(tree.resolve("escape").unwrap().path, "etc/passwd");
    assert_eq!(
        tree.get("usr/lib/b").unwrap().kind,
        NodeKind::HardLink("usr/lib/a".into())
    );
    assert!(tree.get("fifo").is_none());
    let mut os_release = String::new();
    let report = image
        .walk_layer::<ImageError>(0, &WalkBudget::new(), |e| {
            if e.path == "usr/lib/os-release" {
                os_release = String::from_utf8(e.read_limited(100).unwrap().unwrap()).unwrap();
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(os_release, "ID=debian\n");
    assert_eq!(report.skipped_special, 1);
}

#[test]
fn umoci_built_layout_with_whiteout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("umoci");
    umoci_layout(
        &dir,
        "v1",
        &[
            &|rootfs| {
                std::fs::create_dir_all(rootfs.join("etc")).unwrap();
                std::fs::write(rootfs.join("etc/os-release"), "ID=osprey-test\n").unwrap();
                std::fs::write(rootfs.join("etc/removed"), "gone later").unwrap();
            },
            &|rootfs| {
                std::fs::remove_file(rootfs.join("etc/removed")).unwrap();
                std::fs::create_dir_all(rootfs.join("app")).unwrap();
                std::fs::write(rootfs.join("app/data"), "x").unwrap();
            },
        ],
    );
    let image = open(&format!("oci-dir:{}:v1", dir.display())).unwrap();
    assert_eq!(image.layers.len(), 2);
    let labels = image
        .config
        .as_ref()
        .unwrap()
        .config()
        .as_ref()
        .unwrap()
        .labels()
        .clone()
        .unwrap();
    assert_eq!(
        labels.get("org.osprey.test").map(String::as_str),
        Some("umoci")
    );
    let (tree, _) = image.file_tree().unwrap();
    assert!(tree.get("etc/removed").is_none());
    assert_eq!(tree.get("etc/os-release").unwrap().layer, 0);
    assert_eq!(tree.get("app/data").unwrap().layer, 1);
}

/// The images of testdata/pkgdb/images, checked against what testdata/NOTICE records.
#[test]
fn corpus_images_list_their_layers() {
    let alpine310 = open(
        &testdata("pkgdb/images/trivy-alpine-310.tar.gz")
            .display()
            .to_string(),
    )
    .unwrap();
    assert_eq!(alpine310.kind, "docker-archive");
    assert_eq!(alpine310.repo_tags, ["alpine:3.10"]);
    assert!(
        alpine310
            .config_digest
            .as_ref()
            .unwrap()
            .hex()
            .starts_with("af341ccd2df8")
    );
    assert_eq!(alpine310.layers.len(), 1);
    assert!(
        alpine310.layers[0]
            .diff_id
            .as_ref()
            .unwrap()
            .hex()
            .starts_with("531743b7098c")
    );
    let (tree, notices) = alpine310.file_tree().unwrap();
    assert!(notices.is_empty());
    assert!(tree.get("lib/apk/db/installed").is_some());
    assert_eq!(tree.resolve("bin/sh").unwrap().path, "bin/busybox");

    let alpine311 = open(&format!(
        "docker-archive:{}",
        testdata("pkgdb/images/trivy-alpine-311.tar.gz").display()
    ))
    .unwrap();
    assert_eq!(alpine311.repo_tags, ["alpine:3.11"]);
    assert_eq!(alpine311.layers.len(), 1);
    assert!(
        alpine311
            .file_tree()
            .unwrap()
            .0
            .get("etc/alpine-release")
            .is_some()
    );

    let oci = open(&format!(
        "oci-dir:{}",
        testdata("pkgdb/images/trivy-test.oci").display()
    ))
    .unwrap();
    assert_eq!(
        oci.manifest_digest.as_ref().unwrap().hex(),
        "afb744871f99e0ff8e6f253244836ed34c5d805fdb096d3a205ffaf5e9073cab"
    );
    assert_eq!(oci.layers.len(), 1);
    assert_eq!(oci.layers[0].size, Some(2610));
    let (tree, _) = oci.file_tree().unwrap();
    assert_eq!(tree.get("hello").unwrap().size, 13336);
}
