//! Image scans through the API on both backends: an image in a real local registry (Debian's
//! docker-registry) holding EICAR in one layer and requests 2.19.1 in another; on-demand scans,
//! SBOMs, continuous re-matching when the vulnerability database file is replaced, scans
//! triggered by an audit finding about a privileged pod (once per image per window, linked to
//! the finding), registries with sealed passwords, and tenancy.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{BACKENDS, TestServer, repo_root, wait_for};
use osprey_server::Options;
use osprey_server::secrets::SecretKey;
use osprey_testkit::layout::{Compression, ImageSpec, LayoutBuilder, TarLayer};
use osprey_testkit::registry::{Auth, Registry};
use osprey_testkit::tools::skopeo_copy;
use osprey_vuln::db::{Builder, SourceInfo};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Builds a vulnerability database from some of the bundled example advisories.
fn build_db(out: &Path, advisories: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    for a in advisories {
        std::fs::copy(
            repo_root().join(format!("examples/vulndb/osv/{a}.json")),
            src.path().join(format!("{a}.json")),
        )
        .unwrap();
    }
    let ingest =
        osprey_vuln::feeds::osv::import(src.path(), &osprey_vuln::feeds::Limits::default())
            .unwrap();
    let mut b = Builder::new();
    b.add(
        SourceInfo {
            kind: "osv".into(),
            location: src.path().display().to_string(),
            records: ingest.records,
            advisories: ingest.advisories.len(),
            withdrawn: 0,
            skipped: 0,
            problems: 0,
        },
        ingest.advisories,
    );
    // Written beside the target and renamed over it, as `osprey db update` replaces a database.
    // Each build is an hour after the one before, however fast the test runs: the build time is
    // what tells the server's databases apart.
    static BUILDS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let built = jiff::Timestamp::from_second(1_800_000_000 + n * 3600).unwrap();
    let tmp = out.with_extension("new");
    b.write(&tmp, built).unwrap();
    std::fs::rename(&tmp, out).unwrap();
}

/// An image with Alpine's release file, requests 2.19.1 (two known vulnerabilities in the
/// example advisories), and EICAR added in its second layer; pushed to `registry` as `name`.
fn push_image(registry: &Registry, name: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let spec = osprey_testkit::layout::requests_and_eicar("opt/tools/eicar.com");
    let mut b = LayoutBuilder::new(tmp.path());
    b.add_image(Some("v1"), &spec);
    b.finish();
    skopeo_copy(
        &format!("oci:{}:v1", tmp.path().display()),
        &format!("docker://{}/{name}", registry.addr),
        None,
        false,
    );
    format!("{}/{name}", registry.addr)
}

/// A vulnerability database of one advisory in a directory of its own (kept while the
/// directory lives).
fn small_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vuln.db");
    build_db(&db, &["PYSEC-2018-28"]);
    (dir, db)
}

fn options(db: &Path) -> Options {
    Options {
        vuln_db: Some(db.to_path_buf()),
        secret_key: Some(SecretKey::parse(&"42".repeat(32), "test").unwrap()),
        maintenance_interval: Duration::from_millis(200),
        rescan_interval: None,
        ..Options::default()
    }
}

/// Waits until a scan job has ended.
async fn wait_scan(server: &TestServer, token: &str, id: &str) -> Value {
    let job = || async {
        let (s, job) = server.get(&format!("/v1/scans/{id}"), token).await;
        assert_eq!(s, StatusCode::OK, "{job}");
        job
    };
    wait_for(&format!("scan {id} ending"), || async {
        !matches!(job().await["state"].as_str(), Some("queued" | "running"))
    })
    .await;
    job().await
}

/// The vulnerability ids of a tenant's findings in a workflow state.
async fn vulnerabilities(server: &TestServer, token: &str, workflow: &str) -> Vec<String> {
    let (s, page) = server
        .get(
            &format!("/v1/findings?type=Vulnerability:*&workflow={workflow}&limit=100"),
            token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut ids: Vec<String> = page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["vulnerability"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Scans reach only registries the destination policy allows. This server allows 127.0.0.2
/// and nothing else that is not public: a registry at 127.0.0.1, at a link-local or private
/// address, behind a name resolving to this machine, or reached through a redirect to this
/// machine, is refused before any request reaches it, and the tenant is told only that.
#[tokio::test]
async fn scans_reach_only_registries_the_policy_allows() {
    let registry = Registry::start(Auth::Open);
    let image = push_image(&registry, "shop/app:v1");
    let port = registry.addr.rsplit(':').next().unwrap().to_string();
    // A registry front on 127.0.0.2 that redirects every request to the real one.
    let target = format!("http://{}", registry.addr);
    let front = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let target = format!("{target}{uri}");
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", target)],
            )
        }
    });
    let front_addr = serve_on("127.0.0.2", front).await;

    let (_dbdir, db) = small_db();
    let server = TestServer::start_strict(
        osprey_store::Backend::Sqlite,
        Options {
            destinations: osprey_egress::Policy::restricted(vec!["127.0.0.2".parse().unwrap()]),
            ..options(&db)
        },
    )
    .await;
    let (a, _) = server.member("a").await;
    let analyst = server.token("a", "analyst").await;
    for host in [&registry.addr, &front_addr] {
        plain_http_registry(&server, &a, host).await;
    }
    for (image, host) in [
        (image.clone(), registry.addr.clone()),
        (
            format!("localhost:{port}/shop/app:v1"),
            format!("localhost:{port}"),
        ),
        (
            "169.254.169.254/latest/meta-data:v1".to_string(),
            "169.254.169.254".to_string(),
        ),
        (
            "10.0.0.1:5000/app:v1".to_string(),
            "10.0.0.1:5000".to_string(),
        ),
        (format!("{front_addr}/shop/app:v1"), front_addr.clone()),
    ] {
        let (s, job) = server
            .post("/v1/images/scan", &analyst, json!({ "image": image }))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        let done = wait_scan(&server, &analyst, job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "failed", "{image}: {done}");
        assert_eq!(
            done["detail"],
            format!("registry {host}: destination not allowed"),
            "{image}"
        );
    }
}

/// A registry on this machine answering every request with 404 and a body that never ends;
/// its `host:port`.
async fn endless_404_registry() -> String {
    use axum::body::{Body, Bytes};
    let app = axum::Router::new().fallback(|| async {
        let chunk = Bytes::from(vec![b'x'; 64 << 10]);
        let body =
            futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        (axum::http::StatusCode::NOT_FOUND, Body::from_stream(body))
    });
    serve_on("127.0.0.1", app).await
}

/// A registry on this machine answering every request with a manifest sent a byte every half
/// second; its `host:port`.
async fn drip_registry() -> String {
    use axum::body::{Body, Bytes};
    let app = axum::Router::new().fallback(|| async {
        let body = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), ()))
        });
        (
            axum::http::StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/vnd.oci.image.manifest.v1+json",
            )],
            Body::from_stream(body),
        )
    });
    serve_on("127.0.0.1", app).await
}

/// Serves `app` on a free port of `ip`; its `host:port`.
async fn serve_on(ip: &str, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    host
}

/// The organization's administrator marks `host` insecure (plain HTTP) for tenant `a`.
async fn plain_http_registry(server: &TestServer, a: &str, host: &str) {
    let (s, r) = server
        .post(
            "/v1/registries",
            &server.admin,
            json!({ "host": host, "insecure": true, "tenant": a }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
}

/// Hostile registries: one answering 404 with a body that never ends, one sending its
/// manifest a byte every half second. Each scan fails within its deadline with a reason (the
/// first registry's body is read to 64 KiB, never whole — it has no end).
#[tokio::test]
async fn hostile_registries_fail_their_scans_within_bounds() {
    let hosts = [endless_404_registry().await, drip_registry().await];
    let (_dbdir, db) = small_db();
    let server = TestServer::start(
        osprey_store::Backend::Sqlite,
        Options {
            scan_timeout: Duration::from_secs(3),
            scan_workers: 2,
            scan_jobs_per_tenant: 2,
            ..options(&db)
        },
    )
    .await;
    let (a, _) = server.member("a").await;
    let analyst = server.token("a", "analyst").await;
    let mut jobs = Vec::new();
    for host in &hosts {
        plain_http_registry(&server, &a, host).await;
        let (s, job) = server
            .post(
                "/v1/images/scan",
                &analyst,
                json!({ "image": format!("{host}/app:v1") }),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    let endless = wait_scan(&server, &analyst, &jobs[0]).await;
    assert_eq!(endless["state"], "failed");
    assert_eq!(
        endless["detail"],
        format!("registry {}: HTTP 404", hosts[0]),
        "{endless}"
    );
    let drip = wait_scan(&server, &analyst, &jobs[1]).await;
    assert_eq!(drip["state"], "failed");
    let detail = drip["detail"].as_str().unwrap();
    assert!(detail.contains("time limit passed"), "{detail}");
    let took = drip["finished_ms"].as_i64().unwrap() - drip["started_ms"].as_i64().unwrap();
    assert!(took < 30_000, "the deadline of 3 s held: {took} ms");
}

/// A tenant may queue only so many scans: beyond, the API answers 429; another tenant still
/// queues. (The one worker is held by a registry that sends a byte every half second.)
#[tokio::test]
async fn a_tenants_scan_queue_is_bounded() {
    let drip = drip_registry().await;
    let (_dbdir, db) = small_db();
    let server = TestServer::start(
        osprey_store::Backend::Sqlite,
        Options {
            scan_timeout: Duration::from_secs(120),
            scan_queue_per_tenant: 2,
            ..options(&db)
        },
    )
    .await;
    let (a, _) = server.member("a").await;
    server.member("b").await;
    let analyst = server.token("a", "analyst").await;
    let b_analyst = server.token("b", "analyst").await;
    plain_http_registry(&server, &a, &drip).await;
    let scan = |token: &str, image: String| {
        let (server, token) = (&server, token.to_string());
        async move {
            server
                .post("/v1/images/scan", &token, json!({ "image": image }))
                .await
        }
    };
    let (s, held) = scan(&analyst, format!("{drip}/app:v1")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{held}");
    let held = held["id"].as_str().unwrap().to_string();
    wait_for("the worker takes the first scan", || async {
        server.get(&format!("/v1/scans/{held}"), &analyst).await.1["state"] == "running"
    })
    .await;
    for n in 0..2 {
        let (s, job) = scan(&analyst, format!("{drip}/app:{n}")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    }
    let (s, e) = scan(&analyst, format!("{drip}/app:3")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("2 scans waiting"),
        "{e}"
    );
    let (s, job) = scan(&b_analyst, format!("{drip}/app:1")).await;
    assert_eq!(
        s,
        StatusCode::ACCEPTED,
        "another tenant still queues: {job}"
    );
}

#[tokio::test]
async fn on_demand_scans_store_sboms_and_rematch_when_the_database_changes() {
    for backend in BACKENDS {
        let registry = Registry::start(Auth::Open);
        let image = push_image(&registry, "shop/app:v1");
        let dbdir = tempfile::tempdir().unwrap();
        let db = dbdir.path().join("vuln.db");
        build_db(&db, &["PYSEC-2018-28"]);
        let server = TestServer::start(backend, options(&db)).await;
        let (a, a_admin) = server.member("a").await;
        let (_, b_admin) = server.member("b").await;
        let a_analyst = server.token("a", "analyst").await;
        let a_viewer = server.token("a", "viewer").await;

        // The registry is plain HTTP on loopback: insecure, which only the organization's
        // administrator may set (for the tenant).
        let (s, e) = server
            .post(
                "/v1/registries",
                &a_admin,
                json!({ "host": registry.addr, "insecure": true }),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(e["error"].as_str().unwrap().starts_with("insecure:"), "{e}");
        let (s, r) = server
            .post(
                "/v1/registries",
                &server.admin,
                json!({ "host": registry.addr, "insecure": true, "tenant": a }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");

        // Bad requests say what is wrong; viewers cannot start scans.
        let (s, e) = server
            .post(
                "/v1/images/scan",
                &a_analyst,
                json!({ "image": "oci-dir:/etc" }),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("registry images only"),
            "{e}"
        );
        let (s, _) = server
            .post("/v1/images/scan", &a_viewer, json!({ "image": image }))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, e) = server
            .post(
                "/v1/images/scan",
                &a_analyst,
                json!({ "image": image, "cluster": "nope" }),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");

        let (s, job) = server
            .post("/v1/images/scan", &a_analyst, json!({ "image": image }))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["state"], "queued");
        assert_eq!(job["kind"], "on_demand");
        let job = wait_scan(&server, &a_viewer, job["id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["vulnerabilities"], 1, "{job}");
        assert_eq!(job["threats"], 1, "{job}");
        assert!(job["packages"].as_i64().unwrap() >= 1, "{job}");
        let digest = job["image_digest"].as_str().unwrap().to_string();
        assert!(digest.starts_with("sha256:"), "{job}");
        assert_eq!(job["finding_ids"].as_array().unwrap().len(), 2, "{job}");

        // Findings: one vulnerability, one malware finding naming the file and its layer.
        assert_eq!(
            vulnerabilities(&server, &a_viewer, "new").await,
            ["CVE-2018-18074"]
        );
        let (_, page) = server
            .get(
                "/v1/findings?type=Execution:Container/MaliciousFile",
                &a_viewer,
            )
            .await;
        let malware = &page["findings"][0];
        assert_eq!(malware["source"], "malware", "{page}");
        assert_eq!(malware["resource"]["image"]["digest"], digest.as_str());
        let file = &malware["malware"]["threats"][0]["files"][0];
        assert_eq!(file["path"], "/opt/tools/eicar.com", "{malware}");
        assert_eq!(file["layer"], 1, "{malware}");

        // The SBOM of the digest, as CycloneDX, SPDX and the inventory itself.
        let (s, list) = server.get("/v1/sboms", &a_viewer).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["sboms"][0]["image_digest"], digest.as_str(), "{list}");
        assert_eq!(list["sboms"][0]["vulnerabilities"], 1, "{list}");
        let (s, cdx) = server.get(&format!("/v1/sboms/{digest}"), &a_viewer).await;
        assert_eq!(s, StatusCode::OK, "{cdx}");
        assert_eq!(cdx["bomFormat"], "CycloneDX");
        assert!(
            cdx["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "requests" && c["version"] == "2.19.1"),
            "{cdx}"
        );
        let (s, spdx) = server
            .get(&format!("/v1/sboms/{digest}?format=spdx"), &a_viewer)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
        let (s, e) = server
            .get(&format!("/v1/sboms/{digest}?format=xml"), &a_viewer)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

        // The graph: the image is linked to its packages, and the vulnerable package to the
        // image and to the finding that names it.
        let requests = "package/pkg%3Apypi%2Frequests%402.19.1";
        let (s, profile) = server
            .get(
                &format!("/v1/entities/image/{digest}?related_limit=1000"),
                &a_viewer,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{profile}");
        let related = |p: &Value, relation: &str| -> Vec<String> {
            p["related"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["relation"] == relation)
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect()
        };
        let packages = related(&profile, "package");
        assert!(packages.contains(&requests.to_string()), "{profile:#}");
        assert_eq!(
            packages.len() as i64,
            job["packages"].as_i64().unwrap(),
            "one edge per package: {profile:#}"
        );
        let (s, package) = server
            .get(&format!("/v1/entities/{requests}"), &a_viewer)
            .await;
        assert_eq!(s, StatusCode::OK, "{package}");
        assert_eq!(package["entity"]["name"], "pkg:pypi/requests@2.19.1");
        assert_eq!(package["entity"]["properties"]["version"], "2.19.1");
        assert_eq!(package["entity"]["properties"]["type"], "python");
        assert_eq!(related(&package, "package"), [format!("image/{digest}")]);
        assert_eq!(
            package["findings"].as_array().unwrap().len(),
            1,
            "the vulnerability finding: {package:#}"
        );
        let (s, found) = server
            .get("/v1/entities?type=package&q=pkg:pypi/requests", &a_viewer)
            .await;
        assert_eq!(s, StatusCode::OK, "{found}");
        assert_eq!(found["entities"][0]["id"], requests, "{found}");

        // Another member sees none of it.
        for path in [
            format!("/v1/scans/{}", job["id"].as_str().unwrap()),
            format!("/v1/sboms/{digest}"),
            format!("/v1/sboms/{digest}?tenant={a}"),
            format!("/v1/entities/image/{digest}"),
            format!("/v1/entities/{requests}"),
        ] {
            let (s, _) = server.get(&path, &b_admin).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        }
        for (path, key) in [
            ("/v1/scans", "scans"),
            ("/v1/sboms", "sboms"),
            ("/v1/registries", "registries"),
        ] {
            let (s, v) = server.get(path, &b_admin).await;
            assert_eq!(s, StatusCode::OK);
            assert!(v[key].as_array().unwrap().is_empty(), "{path}: {v}");
        }

        // A new database with both advisories: the stored SBOM is matched again without a
        // pull (the registry is gone) — one new finding — and a database without them
        // resolves both.
        drop(registry);
        build_db(&db, &["PYSEC-2014-13", "PYSEC-2018-28", "PYSEC-2023-74"]);
        wait_for("the re-match finds both", || async {
            vulnerabilities(&server, &a_viewer, "new").await == ["CVE-2018-18074", "CVE-2023-32681"]
        })
        .await;
        // Exported as OCSF, vulnerabilities are Vulnerability Findings (as `osprey image scan
        // --format ocsf-json` writes them), naming the scanned digest.
        let (st, ocsf) = server
            .get(
                "/v1/findings/export?format=ocsf&type=Vulnerability:*",
                &a_viewer,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{ocsf}");
        let events = ocsf.as_array().unwrap();
        assert_eq!(events.len(), 2, "{ocsf}");
        for e in events {
            osprey_testkit::schemas::assert_ocsf(e, "OCSF export of vulnerabilities");
        }
        assert!(events.iter().all(|e| {
            e["class_uid"] == 2002
                && e["vulnerabilities"][0]["cve"]["uid"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("CVE-"))
                && e["resources"][0]["uid"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("sha256:"))
        }));
        build_db(&db, &["PYSEC-2014-13"]);
        wait_for("the re-match resolves both", || async {
            vulnerabilities(&server, &a_viewer, "new").await.is_empty()
        })
        .await;
        assert_eq!(
            vulnerabilities(&server, &a_viewer, "resolved").await,
            ["CVE-2018-18074", "CVE-2023-32681"]
        );
        let (_, scans) = server.get("/v1/scans", &a_viewer).await;
        assert_eq!(
            scans["scans"].as_array().unwrap().len(),
            1,
            "re-matching is not a scan"
        );
        let id = server
            .get("/v1/findings?type=Vulnerability:*&limit=1", &a_viewer)
            .await
            .1["findings"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, history) = server
            .get(&format!("/v1/findings/{id}/history"), &a_viewer)
            .await;
        let last = history["history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["actor"], "scanner", "{history}");
        assert_eq!(last["detail"]["reason"], "no longer matched", "{history}");

        // Metrics count the scan and show the queue.
        let (_, metrics) = server.call(Method::GET, "/metrics", None, None).await;
        let metrics = metrics.as_str().unwrap().to_string();
        assert!(
            metrics.contains("osprey_scans_total{kind=\"on_demand\",state=\"done\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("osprey_scan_queue_jobs{state=\"queued\"} 0"),
            "{metrics}"
        );
        server.stop().await;
    }
}

/// A pod-create audit event: a privileged container running `image`.
fn privileged_pod(audit_id: &str, pod: &str, image: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": audit_id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods", "verb": "create",
        "user": {"username": "dev@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.8"], "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": pod, "apiVersion": "v1"},
        "responseStatus": {"code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": pod, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": image,
                "securityContext": {"privileged": true}}]}},
        "requestReceivedTimestamp": "2026-11-29T10:00:00.000000Z",
        "stageTimestamp": "2026-11-29T10:00:00.100000Z"
    })
}

#[tokio::test]
async fn audit_findings_about_workloads_trigger_one_scan_per_image_and_window() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "puller".into(),
        password: "pull-secret".into(),
    });
    let tmp = tempfile::tempdir().unwrap();
    // Push needs the credentials too.
    let image = {
        let dir = tmp.path().join("layout");
        let spec = ImageSpec::new().layer(
            TarLayer::new()
                .file("srv/eicar.txt", osprey_testkit::EICAR)
                .into_bytes(),
            Compression::Gzip,
            "ADD",
        );
        let mut b = LayoutBuilder::new(&dir);
        b.add_image(Some("v1"), &spec);
        b.finish();
        for (repo, tag) in [
            ("evil/miner", "v1"),
            ("evil/miner", "same-digest"),
            ("shop/web", "1"),
        ] {
            skopeo_copy(
                &format!("oci:{}:v1", dir.display()),
                &format!("docker://{}/{repo}:{tag}", registry.addr),
                Some(("puller", "pull-secret")),
                false,
            );
        }
        format!("{}/evil/miner", registry.addr)
    };
    for backend in BACKENDS {
        let db = tmp.path().join(format!("{backend:?}.db"));
        build_db(&db, &["PYSEC-2018-28"]);
        let server = TestServer::start(backend, options(&db)).await;
        let (_, a_admin) = server.member("a").await;
        let (cluster, ingest) = server.cluster(&a_admin, "prod").await;
        // The organization's administrator sets the registry (with its password) for all.
        let (s, r) = server
            .post(
                "/v1/registries",
                &server.admin,
                json!({ "host": registry.addr, "username": "puller", "password": "pull-secret", "insecure": true }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        assert!(
            r.get("password").is_none() && r.get("sealed_password").is_none(),
            "{r}"
        );
        let (s, e) = server
            .post(
                "/v1/registries",
                &a_admin,
                json!({ "host": "x.example", "password": "p" }),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

        // Two privileged pods with the same image, a third with another tag of the same
        // digest: two jobs (one per image name), the second skipped as already scanned.
        post_detected(
            &server,
            &cluster,
            &ingest,
            vec![
                privileged_pod("a-1", "miner-1", &format!("{image}:v1")),
                privileged_pod("a-2", "miner-2", &format!("{image}:v1")),
            ],
        )
        .await;
        let scans = wait_all_scans(&server, &a_admin, 1).await;
        let first = &scans[0];
        assert_eq!(first["kind"], "triggered", "{first}");
        assert_eq!(first["state"], "done", "{first}");
        assert_eq!(first["threats"], 1, "{first}");
        assert_eq!(first["cluster_id"], cluster.as_str());
        let trigger = first["trigger_finding_id"].as_str().unwrap();
        let (s, f) = server
            .get(&format!("/v1/findings/{trigger}"), &a_admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{f}");
        assert!(
            f["type"]
                .as_str()
                .unwrap()
                .starts_with("PrivilegeEscalation:Kubernetes/PrivilegedContainer"),
            "{f}"
        );
        assert_eq!(first["workload"]["workload"]["name"], "miner-1", "{first}");

        // The malware finding names the workload and the finding that triggered the scan.
        let (_, page) = server
            .get(
                "/v1/findings?type=Execution:Kubernetes/MaliciousFile",
                &a_admin,
            )
            .await;
        let m = &page["findings"][0];
        assert_eq!(m["malware"]["scan_type"], "TRIGGERED", "{page}");
        assert_eq!(m["malware"]["trigger_finding_id"], trigger, "{m}");
        assert_eq!(m["resource"]["kubernetes"]["namespace"], "default", "{m}");
        assert_eq!(m["cluster_id"], cluster.as_str(), "{m}");

        post_detected(
            &server,
            &cluster,
            &ingest,
            vec![
                privileged_pod("a-3", "miner-3", &format!("{image}:same-digest")),
                privileged_pod("a-4", "miner-4", &format!("{image}:v1")),
            ],
        )
        .await;
        let scans = wait_all_scans(&server, &a_admin, 2).await;
        let second = &scans[0];
        assert_eq!(second["image"], format!("{image}:same-digest"), "{scans:?}");
        assert_eq!(second["state"], "skipped", "{second}");
        assert_eq!(second["reused_from"], first["id"], "{second}");
        assert_eq!(second["image_digest"], first["image_digest"], "{second}");

        // An exec into a pod names only the pod: its images are those it was created with,
        // seen in an earlier batch.
        let web = format!("{}/shop/web:1", registry.addr);
        let mut pod = privileged_pod("a-5", "web-1", &web);
        pod["requestObject"]["spec"]["containers"][0]["securityContext"] = json!({});
        let exec = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": "a-6", "stage": "ResponseStarted",
            "requestURI": "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&tty=true",
            "verb": "create",
            "user": {"username": "dev@example.com", "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.8"], "userAgent": "kubectl/v1.30.0",
            "objectRef": {"resource": "pods", "namespace": "default", "name": "web-1",
                "subresource": "exec", "apiVersion": "v1"},
            "responseStatus": {"code": 101},
            "requestReceivedTimestamp": "2026-11-29T10:05:00.000000Z",
            "stageTimestamp": "2026-11-29T10:05:00.004000Z"
        });
        for item in [pod, exec] {
            post_detected(&server, &cluster, &ingest, vec![item]).await;
        }
        let scans = wait_all_scans(&server, &a_admin, 3).await;
        let third = &scans[0];
        assert_eq!(third["image"], web.as_str(), "{scans:?}");
        assert_eq!(third["kind"], "triggered", "{third}");
        let trigger = third["trigger_finding_id"].as_str().unwrap();
        let (_, f) = server
            .get(&format!("/v1/findings/{trigger}"), &a_admin)
            .await;
        assert_eq!(f["type"], "Execution:Kubernetes/ExecInPod", "{f}");
        assert_eq!(third["workload"]["workload"]["name"], "web-1", "{third}");
        assert_eq!(
            third["workload"]["workload"]["containers"][0]["image"],
            web.as_str(),
            "{third}"
        );
        server.stop().await;
    }
}

/// Posts audit events as one webhook batch and waits until they are detected.
/// A server allowing local images reads them for on-demand scans only: a pod whose image is
/// `dir:/etc` triggers a scan that refuses to read the server's own file system.
#[tokio::test]
async fn triggered_scans_never_read_local_sources() {
    let (_dbdir, db) = small_db();
    let server = TestServer::start(
        osprey_store::Backend::Sqlite,
        Options {
            allow_local_images: true,
            ..options(&db)
        },
    )
    .await;
    let (_, admin) = server.member("a").await;
    let (cluster, ingest) = server.cluster(&admin, "prod").await;
    post_detected(
        &server,
        &cluster,
        &ingest,
        vec![privileged_pod("l-1", "reader", "dir:/etc")],
    )
    .await;
    let scans = wait_all_scans(&server, &admin, 1).await;
    assert_eq!(scans[0]["kind"], "triggered");
    assert_eq!(scans[0]["state"], "failed", "{scans:?}");
    assert!(
        scans[0]["detail"]
            .as_str()
            .unwrap()
            .contains("not a registry reference"),
        "{scans:?}"
    );
    assert_eq!(scans[0]["packages"], 0);
    // On demand, the same server reads a local directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/os-release"),
        "ID=alpine\nVERSION_ID=3.20.0\n",
    )
    .unwrap();
    let (s, job) = server
        .post(
            "/v1/images/scan",
            &admin,
            json!({ "image": format!("dir:{}", dir.path().display()) }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let done = wait_scan(&server, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
}

async fn post_detected(server: &TestServer, cluster: &str, ingest: &str, items: Vec<Value>) {
    let batch = json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items });
    let (s, v, _) = server
        .post_raw(
            &format!("/v1/clusters/{cluster}/audit"),
            ingest,
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    server.wait_detected().await;
}

/// Waits until a tenant has `n` scan jobs, all ended; returns them newest first.
async fn wait_all_scans(server: &TestServer, token: &str, n: usize) -> Vec<Value> {
    let scans = || async {
        let (_, v) = server.get("/v1/scans", token).await;
        v["scans"].as_array().unwrap().clone()
    };
    wait_for(&format!("{n} scans ending"), || async {
        let scans = scans().await;
        scans.len() >= n
            && scans
                .iter()
                .all(|s| !matches!(s["state"].as_str(), Some("queued" | "running")))
    })
    .await;
    let scans = scans().await;
    assert_eq!(scans.len(), n, "{scans:?}");
    scans
}
