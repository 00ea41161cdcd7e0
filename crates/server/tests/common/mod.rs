//! A server on a loopback port over either backend, and a small client for it.

#![allow(dead_code)]

pub mod contract;

use std::path::{Path, PathBuf};
use std::time::Duration;

use osprey_server::{Options, bootstrap, serve, start};
use osprey_store::{Backend, Store, testing};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How long a test waits for a condition before it fails: generous, since a busy machine only
/// makes a test wait longer, never pass or fail differently.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `check` until it holds; fails naming `what` after [`PATIENCE`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct TestServer {
    pub base: String,
    pub admin: String,
    pub data: tempfile::TempDir,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: reqwest::Client,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

impl TestServer {
    /// A server whose destination policy also allows this machine, where the tests'
    /// receivers and registries listen (unless the test set exceptions of its own).
    pub async fn start(backend: Backend, mut options: Options) -> TestServer {
        if options.destinations.allowed().is_empty() {
            options.destinations = osprey_egress::Policy::restricted(vec![
                "127.0.0.1".parse().unwrap(),
                "::1".parse().unwrap(),
            ]);
        }
        TestServer::start_strict(backend, options).await
    }

    /// A server with exactly the destination policy of `options` (and a secret key, as
    /// `osprey serve` always has).
    pub async fn start_strict(backend: Backend, mut options: Options) -> TestServer {
        if options.secret_key.is_none() {
            options.secret_key = Some(osprey_server::secrets::SecretKey::random());
        }
        let data = tempfile::tempdir().unwrap();
        let store = match backend {
            Backend::Sqlite => Store::open_sqlite(data.path()).await.unwrap(),
            Backend::Postgres => testing::scratch_postgres()
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (database test) is part of the test setup"),
        };
        let token_file = bootstrap(&store, data.path())
            .await
            .unwrap()
            .expect("first start");
        let admin = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_string();
        let running = start(store, options).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(
                listener,
                running,
                async {
                    let _ = rx.await;
                },
                None,
            )
            .await
            .unwrap();
        });
        TestServer {
            base,
            admin,
            data,
            backend,
            shutdown: Some(tx),
            task: Some(task),
            client: reqwest::Client::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Sends a request; returns the status and the JSON body (or the text as a JSON string).
    /// The answer is checked against the published OpenAPI document ([`contract::check`]).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).ok();
        contract::check(&method, path, status, json.as_ref());
        (status, json.unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Posts a raw body (audit batches).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value, Option<String>) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry,
        )
    }

    /// Creates a member tenant with an admin token; returns (tenant id, token).
    pub async fn member(&self, name: &str) -> (String, String) {
        let (s, t) = self
            .post("/v1/tenants", &self.admin, json!({ "name": name }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let id = t["id"].as_str().unwrap().to_string();
        let token = self.token(name, "admin").await;
        (id, token)
    }

    pub async fn token(&self, tenant: &str, role: &str) -> String {
        let (s, t) = self
            .post(
                "/v1/tokens",
                &self.admin,
                json!({ "tenant": tenant, "role": role, "name": format!("{tenant}-{role}") }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        t["token"].as_str().unwrap().to_string()
    }

    /// Creates a cluster with a tenant's admin token; returns (cluster id, ingest token).
    pub async fn cluster(&self, token: &str, name: &str) -> (String, String) {
        let (s, c) = self
            .post("/v1/clusters", token, json!({ "name": name }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        (
            c["id"].as_str().unwrap().to_string(),
            c["ingest_token"].as_str().unwrap().to_string(),
        )
    }

    /// Posts batches with a cluster's ingest token, then waits until they are detected.
    pub async fn ingest(
        &self,
        cluster: &str,
        token: &str,
        batches: impl IntoIterator<Item = Vec<u8>>,
    ) {
        for b in batches {
            let (st, v, _) = self
                .post_raw(&format!("/v1/clusters/{cluster}/audit"), token, b)
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        self.wait_detected().await;
    }

    /// Waits until detection has caught up with everything kept.
    pub async fn wait_detected(&self) {
        wait_for("detection catching up", || async {
            let text = self
                .client
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines().any(|l| l == "osprey_detector_lag_events 0")
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled attack story's events.
pub fn story_events() -> Vec<Value> {
    let text =
        std::fs::read_to_string(repo_root().join("examples/audit/attack-story.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The bundled attack story as webhook batches (EventList) of `per_batch` events.
pub fn story_batches(per_batch: usize) -> Vec<Vec<u8>> {
    story_events()
        .chunks(per_batch)
        .map(|c| {
            serde_json::to_vec(
                &json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": c }),
            )
            .unwrap()
        })
        .collect()
}
