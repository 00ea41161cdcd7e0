//! The per-layer analysis cache: keyed by diff-id, shared across images, never trusted blindly.

use osprey_image::{Image, OpenOptions, RegistryOptions, Source};
use osprey_inventory::{Cache, Options, inventory};
use osprey_testkit::layout::{Compression, ImageSpec, LayoutBuilder, TarLayer};
use osprey_testkit::registry::FakeRegistry;

fn base_layer() -> Vec<u8> {
    TarLayer::new()
        .file("etc/os-release", b"ID=alpine\nVERSION_ID=3.18.4\n")
        .file("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\no:busybox\n\n")
        .into_bytes()
}

fn app_layer(version: &str) -> Vec<u8> {
    TarLayer::new()
        .file(
            "app/node_modules/left-pad/package.json",
            format!("{{\"name\":\"left-pad\",\"version\":\"{version}\"}}").as_bytes(),
        )
        .into_bytes()
}

fn layout(dir: &std::path::Path, app_version: &str) -> (String, String) {
    let spec = ImageSpec::new()
        .layer(base_layer(), Compression::Gzip, "base")
        .layer(app_layer(app_version), Compression::Gzip, "app");
    let mut b = LayoutBuilder::new(dir);
    let manifest = b.add_image(Some("v1"), &spec);
    b.finish();
    (format!("oci-dir:{}:v1", dir.display()), manifest)
}

fn run(source: &str, cache: &Cache) -> osprey_inventory::Inventory {
    let image = Image::open(&Source::parse(source).unwrap(), &OpenOptions::default()).unwrap();
    inventory(
        &image,
        &Options {
            cache: Some(cache.clone()),
            ..Options::default()
        },
    )
    .unwrap()
}

fn names(inv: &osprey_inventory::Inventory) -> Vec<(String, String)> {
    inv.packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

#[test]
fn second_scan_and_shared_layers_come_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::new(tmp.path().join("cache"));
    let (a, _) = layout(&tmp.path().join("a"), "1.0.0");
    let (b, _) = layout(&tmp.path().join("b"), "1.3.0");

    let first = run(&a, &cache);
    assert_eq!(
        (first.stats.layers_analyzed, first.stats.layers_cached),
        (2, 0)
    );
    let again = run(&a, &cache);
    assert_eq!(
        (again.stats.layers_analyzed, again.stats.layers_cached),
        (0, 2)
    );
    assert_eq!(names(&again), names(&first));
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&first).unwrap()
    );

    let other = run(&b, &cache);
    assert_eq!(
        (other.stats.layers_analyzed, other.stats.layers_cached),
        (1, 1),
        "the shared base layer is reused"
    );
    assert!(names(&other).contains(&("left-pad".into(), "1.3.0".into())));
    assert!(names(&other).contains(&("musl".into(), "1.2.4-r2".into())));
    // Layers are attributed to their own diff-ids, also when they came from the cache.
    let musl = other.packages.iter().find(|p| p.name == "musl").unwrap();
    assert_eq!(musl.locations[0].layer, Some(0));

    // A damaged entry is a miss: analysed again and rewritten.
    let entries: Vec<_> = walk(&tmp.path().join("cache"));
    assert_eq!(entries.len(), 3);
    for e in &entries {
        std::fs::write(e, b"garbage").unwrap();
    }
    let repaired = run(&a, &cache);
    assert_eq!(
        (repaired.stats.layers_analyzed, repaired.stats.layers_cached),
        (2, 0)
    );
    assert_eq!(names(&repaired), names(&first));
    assert_eq!(run(&a, &cache).stats.layers_cached, 2);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn cached_registry_layers_are_not_downloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let (_, manifest) = layout(&dir, "1.0.0");
    let fake = FakeRegistry::serve(&dir, "cache/app", "v1", &manifest, Vec::new());
    let cache = Cache::new(tmp.path().join("cache"));
    let options = OpenOptions {
        registry: RegistryOptions {
            insecure: true,
            docker_config: false,
            ..RegistryOptions::default()
        },
        ..OpenOptions::default()
    };
    let source = Source::parse(&format!("registry:{}/cache/app:v1", fake.server.addr)).unwrap();
    let scan = || {
        let image = Image::open(&source, &options).unwrap();
        inventory(
            &image,
            &Options {
                cache: Some(cache.clone()),
                ..Options::default()
            },
        )
        .unwrap()
    };
    let first = scan();
    assert_eq!(first.packages.len(), 3);
    let blobs_first = fake.blob_requests().len();
    assert_eq!(blobs_first, 3, "config and two layers");
    let second = scan();
    assert_eq!(second.stats.layers_cached, 2);
    assert_eq!(
        fake.blob_requests().len() - blobs_first,
        1,
        "only the config is fetched again"
    );
}

#[test]
fn a_forged_diff_id_misses_the_cache_and_fails_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::new(tmp.path().join("cache"));
    let (genuine, _) = layout(&tmp.path().join("genuine"), "1.0.0");
    assert_eq!(run(&genuine, &cache).stats.layers_analyzed, 2);

    // Same base layer; the app layer carries other bytes but claims the genuine app layer's
    // diff-id, hoping for a cache hit that would hide its content.
    let true_ids = ImageSpec::new()
        .layer(base_layer(), Compression::Gzip, "base")
        .layer(app_layer("1.0.0"), Compression::Gzip, "app")
        .diff_ids();
    let mut forged = ImageSpec::new()
        .layer(base_layer(), Compression::Gzip, "base")
        .layer(app_layer("6.6.6"), Compression::Gzip, "app");
    forged.forged_diff_ids = Some(true_ids);
    let dir = tmp.path().join("forged");
    let mut b = LayoutBuilder::new(&dir);
    b.add_image(Some("v1"), &forged);
    b.finish();
    let image = Image::open(
        &Source::parse(&format!("oci-dir:{}:v1", dir.display())).unwrap(),
        &OpenOptions::default(),
    )
    .unwrap();
    let err = inventory(
        &image,
        &Options {
            cache: Some(cache.clone()),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}
