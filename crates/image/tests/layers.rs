//! Layers as attackers and broken tools write them: whiteouts, links, traversal attempts,
//! special files, corrupt and truncated data, digest mismatches, limits.

use std::io::Read;

use osprey_image::{
    EntryKind, FileTree, Image, ImageError, Limits, NodeKind, NoticeKind, OpenOptions, Source,
    WalkBudget,
};
use osprey_testkit::layout::{Compression, ImageSpec, LayoutBuilder, TarLayer, docker_archive};

fn open(source: &str) -> Result<Image, ImageError> {
    Image::open(&Source::parse(source)?, &OpenOptions::default())
}

fn open_with(source: &str, limits: Limits) -> Image {
    Image::open(
        &Source::parse(source).unwrap(),
        &OpenOptions {
            limits,
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

fn layout(dir: &std::path::Path, image: &ImageSpec) -> String {
    let mut b = LayoutBuilder::new(dir);
    b.add_image(Some("v1"), image);
    b.finish();
    format!("oci-dir:{}:v1", dir.display())
}

fn paths(tree: &FileTree) -> Vec<String> {
    tree.iter()
        .map(|(p, n)| format!("{p}@{}", n.layer + 1))
        .collect()
}

#[test]
fn whiteouts_and_opaque_directories_across_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = TarLayer::new()
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0")
        .file("etc/shadow", b"secret")
        .dir("var/cache/apt")
        .file("var/cache/apt/pkgcache.bin", b"cache")
        .file("var/cache/apt/srcpkgcache.bin", b"cache")
        .dir("opt/app")
        .file("opt/app/old.conf", b"old");
    let upper = TarLayer::new()
        .whiteout("etc/shadow")
        .whiteout("var/cache/apt")
        .dir("opt/app")
        .file("opt/app/new.conf", b"new")
        .opaque("opt/app");
    let spec = ImageSpec::new()
        .layer(base.into_bytes(), Compression::Gzip, "ADD rootfs /")
        .layer(
            upper.into_bytes(),
            Compression::Gzip,
            "RUN rm -rf /var/cache/apt /etc/shadow",
        );
    let image = open(&layout(tmp.path(), &spec)).unwrap();
    let (tree, notices) = image.file_tree().unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(
        paths(&tree),
        // var/cache was never an entry of its own (an implicit parent), so nothing of it remains.
        ["etc@1", "etc/passwd@1", "opt/app@2", "opt/app/new.conf@2"]
    );
    // Attribution names the layer's diff-id.
    let node = tree.get("opt/app/new.conf").unwrap();
    assert_eq!(tree.diff_id_of(node), image.layers[1].diff_id.as_ref());
    assert_eq!(
        image.layers[1].created_by.as_deref(),
        Some("RUN rm -rf /var/cache/apt /etc/shadow")
    );
}

#[test]
fn hard_links_point_at_their_target_and_content_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = TarLayer::new()
        .executable("usr/bin/perl5.36", b"#!perl binary")
        .hardlink("usr/bin/perl", "usr/bin/perl5.36")
        .hardlink("usr/bin/evil", "../../etc/passwd");
    let image = open(&layout(
        tmp.path(),
        &ImageSpec::new().layer(layer.into_bytes(), Compression::None, "x"),
    ))
    .unwrap();
    let mut seen = Vec::new();
    let report = image
        .walk_layer::<ImageError>(0, &WalkBudget::new(), |e| {
            let mut content = String::new();
            e.read_to_string(&mut content).unwrap();
            seen.push((e.path.to_string(), format!("{:?}", e.kind), content));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            (
                "usr/bin/perl5.36".into(),
                "File".into(),
                "#!perl binary".into()
            ),
            (
                "usr/bin/perl".into(),
                "HardLink { target: \"usr/bin/perl5.36\" }".into(),
                String::new()
            ),
        ]
    );
    assert_eq!(report.notices.len(), 1);
    assert_eq!(report.notices[0].kind, NoticeKind::PathEscapesRoot);
    let (tree, _) = image.file_tree().unwrap();
    assert_eq!(
        tree.get("usr/bin/perl").unwrap().kind,
        NodeKind::HardLink("usr/bin/perl5.36".into())
    );
}

#[test]
fn traversal_attempts_never_leave_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = TarLayer::new()
        .file("../etc/passwd", b"escape 1")
        .file("./a/../../../tmp/x", b"escape 2")
        .file("/rooted/file", b"absolute is rooted")
        .file("ok/../fine", b"stays inside")
        .whiteout("../outside")
        .symlink("evil", "../../../../../etc/shadow")
        .symlink("abs", "/etc/shadow")
        .file("etc/shadow", b"image's own shadow");
    let image = open(&layout(
        tmp.path(),
        &ImageSpec::new().layer(layer.into_bytes(), Compression::Gzip, "x"),
    ))
    .unwrap();
    let (tree, notices) = image.file_tree().unwrap();
    let escaped: Vec<_> = notices
        .iter()
        .filter(|n| n.kind == NoticeKind::PathEscapesRoot)
        .map(|n| n.path.clone().unwrap())
        .collect();
    assert_eq!(
        escaped,
        ["../etc/passwd", "./a/../../../tmp/x", "../.wh.outside"]
    );
    assert_eq!(
        paths(&tree),
        ["abs@1", "etc/shadow@1", "evil@1", "fine@1", "rooted/file@1"]
    );
    for link in ["evil", "abs"] {
        let r = tree.resolve(link).unwrap();
        assert_eq!(r.path, "etc/shadow", "{link}");
        assert_eq!(r.node.unwrap().kind, NodeKind::File);
    }
}

#[test]
fn device_files_and_fifos_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = TarLayer::new()
        .dir("dev")
        .char_device("dev/null")
        .fifo("run/initctl")
        .file("etc/hostname", b"h");
    let image = open(&layout(
        tmp.path(),
        &ImageSpec::new().layer(layer.into_bytes(), Compression::Zstd, "x"),
    ))
    .unwrap();
    let mut kinds = Vec::new();
    let report = image
        .walk_layer::<ImageError>(0, &WalkBudget::new(), |e| {
            kinds.push((e.path.to_string(), e.kind == EntryKind::File));
            Ok(())
        })
        .unwrap();
    assert_eq!(report.skipped_special, 2);
    assert_eq!(
        kinds,
        [
            ("dev".to_string(), false),
            ("etc/hostname".to_string(), true)
        ]
    );
    let digests = report.digests.unwrap();
    assert_eq!(digests.compression, osprey_image::Compression::Zstd);
    assert_eq!(Some(&digests.diff_id), image.layers[0].diff_id.as_ref());
}

#[test]
fn tampered_blob_is_a_digest_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = ImageSpec::new().layer(
        TarLayer::new().file("a", b"original").into_bytes(),
        Compression::Gzip,
        "x",
    );
    let source = layout(tmp.path(), &spec);
    let image = open(&source).unwrap();
    let blob = tmp
        .path()
        .join("blobs/sha256")
        .join(image.layers[0].digest.as_ref().unwrap().hex());
    std::fs::write(
        &blob,
        Compression::Gzip.apply(&TarLayer::new().file("a", b"tampered").into_bytes()),
    )
    .unwrap();
    let err = image.file_tree().unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("layer 1") && msg.contains("digest mismatch"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn tampered_layer_in_docker_archive_fails_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = ImageSpec::new().layer(
        TarLayer::new().file("a", b"original").into_bytes(),
        Compression::None,
        "x",
    );
    let good_diff_id = spec.diff_ids()[0].clone();
    spec.layers[0].0 = TarLayer::new().file("a", b"tampered").into_bytes();
    let mut config: serde_json::Value = serde_json::from_slice(&spec.config_json()).unwrap();
    config["rootfs"]["diff_ids"][0] = good_diff_id.into();
    // Write an archive whose config promises the original layer but holds the tampered one.
    let out = tmp.path().join("x.tar");
    docker_archive(&out, "x:1", &spec, false);
    let image = open(&format!("docker-archive:{}", out.display())).unwrap();
    assert!(
        image.file_tree().is_ok(),
        "an archive consistent with itself opens"
    );
    let forged = tmp.path().join("forged.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&forged).unwrap());
    let cfg = serde_json::to_vec(&config).unwrap();
    for (name, data) in [
        ("l/layer.tar", spec.layers[0].0.clone()),
        ("config.json", cfg),
        (
            "manifest.json",
            br#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#.to_vec(),
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let err = open(&format!("docker-archive:{}", forged.display()))
        .unwrap()
        .file_tree()
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::DigestMismatch { input, .. } if input.contains("uncompressed")),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_and_truncated_tar_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let tar = TarLayer::new()
        .file("big.bin", &big)
        .file("after", b"x")
        .into_bytes();

    // Corrupt gzip: flip bytes in the middle of the compressed layer of a docker archive.
    let spec = ImageSpec::new().layer(tar.clone(), Compression::None, "x");
    let out = tmp.path().join("gz.tar");
    docker_archive(&out, "x:1", &spec, true);
    let mut bytes = std::fs::read(&out).unwrap();
    let gz_start = bytes
        .windows(3)
        .position(|w| w == [0x1f, 0x8b, 0x08])
        .unwrap();
    for b in &mut bytes[gz_start + 200..gz_start + 260] {
        *b ^= 0x5a;
    }
    std::fs::write(&out, &bytes).unwrap();
    let err = open(&format!("docker-archive:{}", out.display()))
        .unwrap()
        .file_tree()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("docker-archive:{} layer 1", out.display())),
        "{msg}"
    );

    // Truncated tar: the layer stops in the middle of big.bin.
    let mut spec = ImageSpec::new().layer(tar.clone(), Compression::None, "x");
    spec.layers[0].0.truncate(tar.len() / 2);
    let out = tmp.path().join("trunc.tar");
    docker_archive(&out, "x:1", &spec, false);
    let err = open(&format!("docker-archive:{}", out.display()))
        .unwrap()
        .file_tree()
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn limits_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let long_name = format!("deep/{}", "x".repeat(300));
    let mut layer = TarLayer::new()
        .file("big", &[7u8; 5000])
        .file(&long_name, b"long")
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1/child");
    for i in 0..20 {
        layer = layer.file(&format!("many/{i}"), b"x");
    }
    layer = layer.file("loop1/child/under-loop", b"placed through a link loop");
    let source = layout(
        tmp.path(),
        &ImageSpec::new().layer(layer.into_bytes(), Compression::Gzip, "x"),
    );
    let limits = Limits {
        max_file_read: 1000,
        max_path_len: 200,
        max_files: 10,
        max_link_depth: 8,
        ..Limits::default()
    };
    let image = open_with(&source, limits);
    let mut big_read = 0;
    image
        .walk_layer::<ImageError>(0, &WalkBudget::new(), |e| {
            if e.path == "big" {
                assert!(e.truncated());
                big_read = std::io::copy(e, &mut std::io::sink()).unwrap();
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(big_read, 1000);
    let (tree, notices) = image.file_tree().unwrap();
    let kinds: Vec<&NoticeKind> = notices.iter().map(|n| &n.kind).collect();
    assert!(
        kinds.contains(&&NoticeKind::FileTruncated {
            size: 5000,
            limit: 1000
        }),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            NoticeKind::PathTooLong {
                length: 305,
                limit: 200
            }
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&&NoticeKind::TooManyFiles { limit: 10 }),
        "{kinds:?}"
    );
    assert_eq!(tree.len(), 10);
    assert_eq!(tree.resolve("loop1"), Err(8));

    // With room for every entry, the file under the looping link is reported, not placed.
    let image = open_with(
        &source,
        Limits {
            max_link_depth: 8,
            ..Limits::default()
        },
    );
    let (tree, notices) = image.file_tree().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.kind == NoticeKind::LinkDepthExceeded { limit: 8 }),
        "{notices:?}"
    );
    assert!(tree.iter().all(|(p, _)| !p.ends_with("under-loop")));
}
