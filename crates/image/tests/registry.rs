//! Pulling from registries on loopback: Debian's docker-registry (open, htpasswd, token auth
//! against a token server written here) and a scripted fake for retries and tampering.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use osprey_image::{
    Credentials, Image, ImageError, OpenOptions, RegistryOptions, Source, WalkBudget,
};
use osprey_testkit::http::{Response, Server};
use osprey_testkit::layout::{Compression, ImageSpec, LayoutBuilder, TarLayer};
use osprey_testkit::registry::{Auth, FakeRegistry, Registry};
use osprey_testkit::token::{Policy, TokenServer};
use osprey_testkit::tools::skopeo_copy;

fn sample() -> ImageSpec {
    ImageSpec::new()
        .layer(
            TarLayer::new()
                .dir("etc")
                .file("etc/os-release", b"ID=test\n")
                .into_bytes(),
            Compression::Gzip,
            "base",
        )
        .layer(
            TarLayer::new()
                .file("app/bin", &vec![42u8; 300_000])
                .into_bytes(),
            Compression::Zstd,
            "app",
        )
}

fn layout(tmp: &Path) -> (PathBuf, ImageSpec, String) {
    let dir = tmp.join("layout");
    let spec = sample();
    let mut b = LayoutBuilder::new(&dir);
    let digest = b.add_image(Some("v1"), &spec);
    b.finish();
    (dir, spec, digest)
}

fn options(insecure: bool, credentials: Option<Credentials>) -> OpenOptions {
    OpenOptions {
        registry: RegistryOptions {
            insecure,
            credentials,
            docker_config: false,
            retry_base: std::time::Duration::from_millis(10),
            ..RegistryOptions::default()
        },
        ..OpenOptions::default()
    }
}

fn open(reference: &str, options: &OpenOptions) -> Result<Image, ImageError> {
    Image::open(&Source::parse(&format!("registry:{reference}"))?, options)
}

fn basic(u: &str, p: &str) -> Option<Credentials> {
    Some(Credentials::Basic {
        username: u.into(),
        password: p.into(),
    })
}

fn layer_bytes(image: &Image, index: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    image
        .walk_layer::<ImageError>(index, &WalkBudget::new(), |e| {
            let n = std::io::copy(e, &mut std::io::sink()).unwrap() as usize;
            out.push((e.path.to_string(), n));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn open_registry_serves_the_same_image_as_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spec, manifest) = layout(tmp.path());
    let registry = Registry::start(Auth::Open);
    skopeo_copy(
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{}/test/app:v1", registry.addr),
        None,
        false,
    );

    let local = Image::open(
        &Source::parse(&format!("oci-dir:{}:v1", dir.display())).unwrap(),
        &OpenOptions::default(),
    )
    .unwrap();
    let remote = open(
        &format!("{}/test/app:v1", registry.addr),
        &options(true, None),
    )
    .unwrap();
    assert_eq!(remote.kind, "registry");
    assert_eq!(
        remote.reference.as_deref(),
        Some(format!("{}/test/app:v1", registry.addr).as_str())
    );
    assert_eq!(
        remote.manifest_digest.as_ref().unwrap().to_string(),
        manifest
    );
    assert_eq!(remote.layers, local.layers);
    assert_eq!(
        remote
            .layers
            .iter()
            .map(|l| l.diff_id.clone().unwrap().to_string())
            .collect::<Vec<_>>(),
        spec.diff_ids()
    );
    assert_eq!(layer_bytes(&remote, 1), [("app/bin".to_string(), 300_000)]);
    let (tree, _) = remote.file_tree().unwrap();
    assert_eq!(tree.get("etc/os-release").unwrap().layer, 0);

    // By digest too.
    let pinned = open(
        &format!("{}/test/app@{manifest}", registry.addr),
        &options(true, None),
    )
    .unwrap();
    assert_eq!(pinned.layers, local.layers);

    // Without --insecure, a plain-HTTP registry fails with a hint.
    let err = open(
        &format!("{}/test/app:v1", registry.addr),
        &options(false, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "registry {}: cannot reach the registry",
            registry.addr
        )),
        "{err}"
    );
    assert!(
        err.ends_with("(a plain-HTTP registry? use --insecure)"),
        "{err}"
    );

    let err = open(
        &format!("{}/test/missing:v1", registry.addr),
        &options(true, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("HTTP 404 (not found): MANIFEST_UNKNOWN"),
        "{err}"
    );
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let mut b = LayoutBuilder::new(&dir);
    let which = |s: &str| TarLayer::new().file("arch", s.as_bytes()).into_bytes();
    b.add_index(
        Some("v1"),
        &[
            ImageSpec::new().layer(which("amd64"), Compression::Gzip, "amd64"),
            ImageSpec::new()
                .layer(which("arm64"), Compression::Gzip, "arm64")
                .platform("linux", "arm64", Some("v8")),
        ],
    );
    b.finish();
    let registry = Registry::start(Auth::Open);
    skopeo_copy(
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{}/multi/app:v1", registry.addr),
        None,
        true,
    );
    let reference = format!("{}/multi/app:v1", registry.addr);
    let default = open(&reference, &options(true, None)).unwrap();
    assert_eq!(default.layers[0].created_by.as_deref(), Some("amd64"));
    assert!(default.index_digest.is_some());
    let mut arm = options(true, None);
    arm.platform = Some("linux/arm64".parse().unwrap());
    let arm = open(&reference, &arm).unwrap();
    assert_eq!(arm.layers[0].created_by.as_deref(), Some("arm64"));
    let mut s390 = options(true, None);
    s390.platform = Some("linux/s390x".parse().unwrap());
    let err = open(&reference, &s390).unwrap_err().to_string();
    assert!(
        err.ends_with("no image for platform linux/s390x (available: linux/amd64, linux/arm64/v8)"),
        "{err}"
    );
}

#[test]
fn htpasswd_registry_wants_basic_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spec, _) = layout(tmp.path());
    let registry = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    skopeo_copy(
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{}/private/app:v1", registry.addr),
        Some(("alice", "s3cret")),
        false,
    );
    let reference = format!("{}/private/app:v1", registry.addr);

    let err = open(&reference, &options(true, None)).unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "registry {}: authentication required (HTTP 401, Basic) and no username/password found; use --username/--password or docker login",
            registry.addr
        )
    );
    let err = open(&reference, &options(true, basic("alice", "wrong")))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "registry {}: the credentials were not accepted (HTTP 401)",
            registry.addr
        )
    );
    let image = open(&reference, &options(true, basic("alice", "s3cret"))).unwrap();
    assert_eq!(
        image
            .layers
            .iter()
            .map(|l| l.diff_id.clone().unwrap().to_string())
            .collect::<Vec<_>>(),
        spec.diff_ids()
    );
    assert_eq!(
        layer_bytes(&image, 0),
        [("etc".to_string(), 0), ("etc/os-release".to_string(), 8)]
    );
}

#[test]
fn token_registry_bearer_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spec, _) = layout(tmp.path());
    let tokens = TokenServer::start(
        "osprey-test-registry",
        "osprey-test-issuer",
        Policy {
            users: vec![("bob".into(), "hunter2".into())],
            public_prefixes: vec!["public/".into()],
            refresh_tokens: vec!["refresh-123".into()],
        },
    );
    let registry = Registry::start(Auth::Token {
        realm: tokens.realm(),
        service: tokens.service.clone(),
        issuer: tokens.issuer.clone(),
        cert_pem: tokens.cert_pem.clone(),
    });
    for repo in ["public/app", "private/app"] {
        skopeo_copy(
            &format!("oci:{}:v1", dir.display()),
            &format!("docker://{}/{repo}:v1", registry.addr),
            Some(("bob", "hunter2")),
            false,
        );
    }
    let want = spec.diff_ids();
    let ids = |i: &Image| {
        i.layers
            .iter()
            .map(|l| l.diff_id.clone().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = tokens.server.requests().len();

    // Anonymous pull of a public repository: a token without credentials.
    let public = open(
        &format!("{}/public/app:v1", registry.addr),
        &options(true, None),
    )
    .unwrap();
    assert_eq!(ids(&public), want);
    assert_eq!(layer_bytes(&public, 1), [("app/bin".to_string(), 300_000)]);
    let reqs = tokens.server.requests();
    let anon = &reqs[before];
    assert_eq!(anon.method, "GET");
    assert_eq!(anon.query_all("scope"), ["repository:public/app:pull"]);
    assert_eq!(anon.query_all("service"), ["osprey-test-registry"]);
    assert!(anon.basic_auth().is_none());

    // Private repository: anonymous is refused, credentials go to the token server.
    let err = open(
        &format!("{}/private/app:v1", registry.addr),
        &options(true, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("authentication required (HTTP 401) and no credentials found"),
        "{err}"
    );
    let err = open(
        &format!("{}/private/app:v1", registry.addr),
        &options(true, basic("bob", "nope")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("refused the credentials (HTTP 401)"), "{err}");
    let before = tokens.server.requests().len();
    let private = open(
        &format!("{}/private/app:v1", registry.addr),
        &options(true, basic("bob", "hunter2")),
    )
    .unwrap();
    assert_eq!(ids(&private), want);
    assert_eq!(
        tokens.server.requests()[before].basic_auth(),
        Some(("bob".into(), "hunter2".into()))
    );

    // A docker identity token is exchanged with the OAuth2 refresh-token grant.
    let before = tokens.server.requests().len();
    let refreshed = open(
        &format!("{}/private/app:v1", registry.addr),
        &options(true, Some(Credentials::IdentityToken("refresh-123".into()))),
    )
    .unwrap();
    assert_eq!(ids(&refreshed), want);
    let req = &tokens.server.requests()[before];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.form().get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert_eq!(
        req.form().get("scope").map(String::as_str),
        Some("repository:private/app:pull")
    );
}

fn fake_registry(
    dir: PathBuf,
    manifest: String,
    script: Vec<(u16, Option<&'static str>)>,
) -> (Server, Arc<Mutex<u32>>) {
    let fake = FakeRegistry::serve(&dir, "fake/app", "v1", &manifest, script);
    (fake.server, fake.served)
}

#[test]
fn retries_429_and_5xx_then_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spec, manifest) = layout(tmp.path());
    let (server, _) = fake_registry(
        dir,
        manifest,
        vec![(429, Some("0")), (503, None), (502, None)],
    );
    let image = open(
        &format!("{}/fake/app:v1", server.addr),
        &options(true, None),
    )
    .unwrap();
    assert_eq!(image.layers.len(), spec.layers.len());
    assert_eq!(layer_bytes(&image, 1), [("app/bin".to_string(), 300_000)]);
    // The three scripted failures were retried on the same request.
    assert!(server.requests().len() >= 3 + 3);
}

#[test]
fn gives_up_after_bounded_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, manifest) = layout(tmp.path());
    let (server, served) = fake_registry(dir, manifest, vec![(503, None); 10]);
    let err = open(
        &format!("{}/fake/app:v1", server.addr),
        &options(true, None),
    )
    .unwrap_err()
    .to_string();
    assert!(err.ends_with("HTTP 503 after 4 retries"), "{err}");
    assert_eq!(*served.lock().unwrap(), 0);
}

#[test]
fn tampered_blob_from_registry_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, manifest) = layout(tmp.path());
    let (server, _) = fake_registry(dir.clone(), manifest, Vec::new());
    let image = open(
        &format!("{}/fake/app:v1", server.addr),
        &options(true, None),
    )
    .unwrap();
    let blob = dir
        .join("blobs/sha256")
        .join(image.layers[0].digest.as_ref().unwrap().hex());
    std::fs::write(
        &blob,
        Compression::Gzip.apply(&TarLayer::new().file("evil", b"x").into_bytes()),
    )
    .unwrap();
    let err = image
        .walk_layer::<ImageError>(0, &WalkBudget::new(), |_| Ok(()))
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::DigestMismatch { input, .. } if input.contains("layer 1")),
        "{err}"
    );

    // A config that does not match its digest is refused at open time.
    let config = image.config_digest.clone().unwrap();
    std::fs::write(dir.join("blobs/sha256").join(config.hex()), b"{}").unwrap();
    let err = open(
        &format!("{}/fake/app:v1", server.addr),
        &options(true, None),
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn unauthorized_without_challenge() {
    let server = Server::start(|_| Response::new(401));
    let err = open(&format!("{}/x/y:1", server.addr), &options(true, None))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "registry {}: HTTP 401 without a usable WWW-Authenticate challenge",
            server.addr
        )
    );
}
