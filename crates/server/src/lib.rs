//! `osprey serve`: the platform as one process — the audit webhook, detection behind it, the
//! findings API, tenants and tokens — over the store (embedded SQLite or PostgreSQL).
//!
//! The ingest path follows source → detect → sink with acknowledgement only once durable:
//! [`ingest`] keeps batches (group commit) and answers; [`detector`] reads them behind it on its
//! own thread; [`api`] serves what it found. Handlers run the engines only through
//! `spawn_blocking` or the detector's thread, never on the async workers.

pub mod api;
pub mod auth;
pub mod bus;
pub mod cluster_snapshot;
pub mod console;
pub mod console_assets;
pub mod demo;
pub mod detector;
pub mod error;
pub mod hunts;
pub mod impact;
pub mod ingest;
pub mod launch;
pub mod metrics;
pub mod offline;
pub mod outputs;
pub mod profiles;
pub mod samples;
pub mod scanner;
pub mod secrets;
pub mod sequences;
pub mod settings;

pub use launch::{ADMIN_TOKEN_FILE, ServeGuard, bootstrap, lock_store};

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use osprey_audit::RuleSet;
use osprey_store::Store;
use tokio::sync::{Notify, mpsc, watch};

use crate::error::{ServerError, ServerResult};
use crate::metrics::Metrics;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Audit events kept but not yet detected beyond which the webhook answers 429.
    pub max_pending_events: i64,
    /// Batches waiting for the writer beyond which the webhook answers 429.
    pub write_queue: usize,
    /// Retry-After of a 429, in seconds.
    pub retry_after_secs: u64,
    /// zstd level of kept batches.
    pub compression_level: i32,
    /// How long raw audit batches are kept (once detection has passed them).
    pub audit_retention: std::time::Duration,
    /// How long an audit event is remembered as detected: a retry arriving later than this
    /// would be detected again.
    pub dedupe_window: std::time::Duration,
    /// How many detected events (and batches) are remembered at most, whatever their age.
    pub dedupe_max_keys: usize,
    /// How long the investigation graph keeps its hourly counts and the entities last seen
    /// within it (`None`: no graph is kept).
    pub graph_retention: Option<std::time::Duration>,
    /// New relationships an entity makes in one hour beyond which it keeps only its counts.
    pub graph_max_edges_per_hour: usize,
    /// First wait after a failed output delivery (doubling per attempt, at most 5 minutes).
    pub output_backoff: std::time::Duration,
    /// Time allowed for one output request.
    pub output_timeout: std::time::Duration,
    /// Image scan workers (0: no scans, triggered or asked for).
    pub scan_workers: usize,
    /// The vulnerability database scans match against (reopened when the file changes, and
    /// every stored SBOM matched again); `None`: scans look for malware and keep SBOMs only.
    pub vuln_db: Option<std::path::PathBuf>,
    /// Per-layer result caches of scans (`None`: every layer is read every time).
    pub scan_cache: Option<std::path::PathBuf>,
    /// A triggered scan of an image at most this often.
    pub trigger_window: std::time::Duration,
    /// Stored images are scanned again after this long (`None`: never).
    pub rescan_interval: Option<std::time::Duration>,
    /// On-demand scans (`POST /v1/images/scan`) may name local sources (`oci-dir:`, `dir:`,
    /// archives), not only registry references: for a single-user server, never a shared one.
    /// Triggered and scheduled scans, whose image strings come from audit events, never read
    /// local sources, but for `trusted_local_image`.
    pub allow_local_images: bool,
    /// The one local source a triggered or scheduled scan may read (the demo's bundled image).
    pub trusted_local_image: Option<String>,
    /// Seals registry passwords in the store.
    pub secret_key: Option<secrets::SecretKey>,
    /// How often stored SBOMs are checked against the vulnerability database file and the
    /// re-scan schedule.
    pub maintenance_interval: std::time::Duration,
    /// With a bus: bytes of batches waiting on it beyond which the webhook answers 429 (the
    /// audit stream is bounded to this too).
    pub bus_max_bytes: u64,
    /// The server is reached over HTTPS: the console's session cookie is `Secure`.
    pub https: bool,
    /// Where the server may connect (registries, token servers, outputs): public addresses
    /// and the operator's exceptions (`--allow-destination`).
    pub destinations: osprey_egress::Policy,
    /// How long one scan may take to download its image.
    pub scan_timeout: std::time::Duration,
    /// Bytes one scan may download.
    pub scan_max_download_bytes: u64,
    /// Scans of one tenant running at once (a tenant's queue cannot hold every worker).
    pub scan_jobs_per_tenant: usize,
    /// Scans of one tenant waiting at most: more on-demand scans are refused (429), more
    /// triggered and scheduled ones dropped.
    pub scan_queue_per_tenant: i64,
    /// When set, `/metrics` answers only a request presenting it as a bearer token.
    pub metrics_token: Option<String>,
}
impl Default for Options {
    fn default() -> Self {
        Options {
            max_pending_events: 2_000_000,
            write_queue: 256,
            retry_after_secs: 2,
            compression_level: 1,
            audit_retention: std::time::Duration::from_secs(7 * 86_400),
            dedupe_window: std::time::Duration::from_secs(86_400),
            dedupe_max_keys: detector::seen::DEFAULT_MAX_KEYS,
            graph_retention: Some(std::time::Duration::from_secs(365 * 86_400)),
            graph_max_edges_per_hour: osprey_graph::DEFAULT_MAX_EDGES_PER_HOUR,
            output_backoff: std::time::Duration::from_secs(1),
            output_timeout: std::time::Duration::from_secs(10),
            scan_workers: 1,
            vuln_db: None,
            scan_cache: None,
            trigger_window: osprey_malware::trigger::DEFAULT_WINDOW,
            rescan_interval: Some(std::time::Duration::from_secs(86_400)),
            allow_local_images: false,
            trusted_local_image: None,
            secret_key: None,
            maintenance_interval: std::time::Duration::from_secs(30),
            bus_max_bytes: 1 << 30,
            https: false,
            destinations: osprey_egress::Policy::default(),
            scan_timeout: std::time::Duration::from_secs(30 * 60),
            scan_max_download_bytes: 20 << 30,
            scan_jobs_per_tenant: 1,
            scan_queue_per_tenant: 100,
            metrics_token: None,
        }
    }
}

/// What every handler shares.
pub struct App {
    pub store: Store,
    pub options: Options,
    pub metrics: Metrics,
    pub writer: ingest::WriteQueue,
    /// Events kept and not yet through detection.
    pub pending_events: AtomicI64,
    /// The error of the last detection round when it failed (`None` once a round succeeds),
    /// with how many rounds in a row failed.
    pub detection_failing: std::sync::Mutex<Option<(u32, String)>>,
    pub detector_wake: Notify,
    /// Wakes the output dispatcher (new findings).
    pub outputs_wake: Notify,
    /// Wakes a scan worker (a job was queued).
    pub scans_wake: Notify,
    /// Wakes the retro-hunter (a hunt was queued).
    pub hunts_wake: Notify,
    /// Bumped when an IP list or a suppression rule changes; the detector compiles the
    /// settings again when it differs from what it has.
    pub settings_version: std::sync::atomic::AtomicU64,
    /// Finding types the detection catalogue can raise (for sample findings).
    pub catalogue: Vec<samples::CatalogueEntry>,
    /// With `--bus`: the servers sharing this database share the work through it.
    pub bus: Option<Arc<bus::Bus>>,
    /// The web console's session and CSRF keys.
    pub console: console::session::Keys,
}

impl App {
    /// Whether this server runs the work that must run once per database (outputs,
    /// re-matching and re-scans, expiry): always without a bus, the leader with one.
    pub fn is_leader(&self) -> bool {
        self.bus.as_ref().is_none_or(|b| b.is_leader())
    }

    /// A scan job was queued (and committed): wake a local worker, or put it on the bus.
    pub fn scan_queued(&self, job_id: &str) {
        let Some(bus) = &self.bus else {
            self.scans_wake.notify_one();
            return;
        };
        let bus = Arc::clone(bus);
        let id = job_id.to_string();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    if let Err(e) = bus.queue_scan(&id).await {
                        tracing::warn!(job = id, error = %e, "putting a scan on the bus failed; the leader puts it there later");
                    }
                });
            }
            Err(_) => tracing::warn!(
                job = id,
                "no runtime to put a scan on the bus; the leader puts it there later"
            ),
        }
    }
}

/// A started server's background work; [`Running::stop`] ends it in order.
pub struct Running {
    pub app: Arc<App>,
    writer: tokio::task::JoinHandle<()>,
    dispatcher: tokio::task::JoinHandle<()>,
    detector: std::thread::JoinHandle<()>,
    scanners: Vec<std::thread::JoinHandle<()>>,
    hunter: std::thread::JoinHandle<()>,
    leases: Option<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// How long a stop waits for scans in progress; a scan still running then is queued again at
/// the next start.
const SCAN_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the writer and the detector over a store.
pub async fn start(store: Store, options: Options) -> ServerResult<Running> {
    start_with_bus(store, options, None).await
}

/// Starts a server that shares its database with others through a bus (PostgreSQL only).
pub async fn start_with_bus(
    store: Store,
    options: Options,
    bus: Option<Arc<bus::Bus>>,
) -> ServerResult<Running> {
    if bus.is_some() && store.backend() != osprey_store::Backend::Postgres {
        return Err(ServerError::Invalid(
            "a bus needs a PostgreSQL database (--database postgres://…) that every server shares"
                .into(),
        ));
    }
    let (tx, rx) = mpsc::channel(options.write_queue);
    let rules = RuleSet::builtin();
    let app = Arc::new(App {
        store,
        metrics: Metrics::new(),
        writer: tx,
        pending_events: AtomicI64::new(0),
        detection_failing: std::sync::Mutex::new(None),
        detector_wake: Notify::new(),
        outputs_wake: Notify::new(),
        scans_wake: Notify::new(),
        hunts_wake: Notify::new(),
        settings_version: std::sync::atomic::AtomicU64::new(1),
        catalogue: samples::catalogue(&rules),
        bus,
        console: console::session::Keys::new(options.secret_key.as_ref(), options.https),
        options,
    });
    seal_output_secrets(&app).await?;
    let detector = detector::Detector::load(Arc::clone(&app), rules).await?;
    let (stop, stop_rx) = watch::channel(false);
    let leases = match &app.bus {
        Some(bus) => {
            // The first renewal before anything else: the leader and the partitions this
            // server starts with.
            if let Err(e) = bus.renew().await {
                tracing::warn!(error = %e, "taking bus leases failed; retrying");
            }
            let bus = Arc::clone(bus);
            let stop = stop_rx.clone();
            Some(tokio::spawn(async move { bus.run_leases(stop).await }))
        }
        None => None,
    };
    let writer = tokio::spawn(ingest::run_writer(Arc::clone(&app), rx, stop_rx.clone()));
    let dispatcher = tokio::spawn(outputs::run_dispatcher(Arc::clone(&app), stop_rx.clone()));
    let mut scanners = Vec::new();
    // With a bus, a job left running by a stopped server comes back from the bus.
    if app.options.scan_workers > 0 && app.bus.is_none() {
        let (requeued, failed) = app.store.requeue_running_scans().await?;
        if requeued > 0 {
            tracing::info!(
                jobs = requeued,
                "scans left running by the last process queued again"
            );
        }
        if failed > 0 {
            tracing::warn!(
                jobs = failed,
                "scans the server stopped during three times failed"
            );
        }
    }
    if app.options.scan_workers > 0 {
        scanners = scanner::spawn(Arc::clone(&app), app.options.scan_workers, stop_rx.clone())?;
    }
    let hunter = hunts::spawn(Arc::clone(&app), stop_rx.clone())?;
    let handle = tokio::runtime::Handle::current();
    let detector = std::thread::Builder::new()
        .name("osprey-detector".into())
        .spawn(move || handle.block_on(detector.run(stop_rx)))
        .map_err(ServerError::io("starting the detector thread"))?;
    Ok(Running {
        app,
        writer,
        dispatcher,
        detector,
        scanners,
        hunter,
        leases,
        stop,
    })
}

impl Running {
    /// After the HTTP server stopped taking requests: the writer drains what was accepted,
    /// the detector finishes its round and saves its baselines.
    pub async fn stop(self) {
        let Running {
            app,
            writer,
            dispatcher,
            detector,
            scanners,
            hunter,
            leases,
            stop,
        } = self; // No request is in flight any more: every accepted batch has been committed.
        let _ = stop.send(true);
        let _ = writer.await;
        let _ = tokio::task::spawn_blocking(move || detector.join()).await;
        // A hunt in progress goes back to the queue after the page it is reading.
        let _ = tokio::task::spawn_blocking(move || hunter.join()).await;
        if let Some(leases) = leases {
            let _ = leases.await;
        }
        if let Some(bus) = &app.bus {
            // The detector saved its partitions' baselines: the others take over now.
            bus.release(false).await;
        }
        let scans = tokio::task::spawn_blocking(move || {
            for s in scanners {
                let _ = s.join();
            }
        });
        if tokio::time::timeout(SCAN_STOP_WAIT, scans).await.is_err() {
            tracing::warn!("a scan is still running; it is queued again at the next start");
        }
        let _ = dispatcher.await;
        if let Some(bus) = &app.bus {
            bus.release(true).await;
        }
        drop(app);
    }
}

/// The OpenAPI document's frame: title, version, the bearer scheme every route but health and
/// metrics uses. The paths come from the handlers' own annotations, through the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Osprey", description = "Osprey's platform API: tenants, tokens, clusters, the audit webhook, findings, detection settings (IP lists, suppression rules), image scans and SBOMs, registries and outputs, and the investigation graph (entities, their profiles and impact, cluster snapshots, finding groups, retro-hunts)."),
    paths(api::entities::get_entity, api::entities::entity_impact, api::snapshots::put_snapshot),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An Osprey API token (osp_…)"))
                    .build(),
            ),
        );
    }
}

/// Every route, and the OpenAPI document describing exactly those routes.
pub fn routes() -> (Router<Arc<App>>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(
            api::tenants::create_tenant,
            api::tenants::list_tenants
        ))
        .routes(routes!(
            api::tenants::create_token,
            api::tenants::list_tokens
        ))
        .routes(routes!(api::tenants::revoke_token))
        .routes(routes!(
            api::clusters::create_cluster,
            api::clusters::list_clusters
        ))
        .routes(routes!(api::clusters::get_cluster))
        .routes(routes!(api::clusters::rotate_ingest_token))
        .routes(routes!(ingest::receive))
        .routes(routes!(api::findings::list_findings))
        .routes(routes!(
            api::findings::get_finding,
            api::findings::update_finding
        ))
        .routes(routes!(api::findings::finding_history))
        .routes(routes!(api::findings::finding_statistics))
        .routes(routes!(api::export::export_findings))
        .routes(routes!(api::findings::create_samples))
        .routes(routes!(api::admin::admin_log))
        .routes(routes!(
            api::outputs::create_output,
            api::outputs::list_outputs
        ))
        .routes(routes!(api::outputs::delete_output))
        .routes(routes!(api::outputs::output_deliveries))
        .routes(routes!(api::scans::scan_image))
        .routes(routes!(api::scans::list_scans))
        .routes(routes!(api::scans::get_scan))
        .routes(routes!(api::scans::list_sboms))
        .routes(routes!(api::scans::get_sbom))
        .routes(routes!(
            api::scans::create_registry,
            api::scans::list_registries
        ))
        .routes(routes!(api::scans::delete_registry))
        .routes(routes!(
            api::settings::put_ip_list,
            api::settings::delete_ip_list
        ))
        .routes(routes!(api::settings::list_ip_lists))
        .routes(routes!(
            api::settings::create_suppression_rule,
            api::settings::list_suppression_rules
        ))
        .routes(routes!(api::settings::delete_suppression_rule))
        .routes(routes!(api::entities::search_entities))
        .routes(routes!(api::groups::list_groups))
        .routes(routes!(api::groups::get_group))
        .routes(routes!(api::hunts::create_hunt, api::hunts::list_hunts))
        .routes(routes!(api::hunts::get_hunt, api::hunts::cancel_hunt))
        // An entity id holds slashes: the route takes the rest of the path (documented in
        // `ApiDoc` as /v1/entities/{type}/{id}).
        .route("/v1/entities/{type}/{*id}", get(api::entities::get_entity))
        // A snapshot is larger than other bodies (documented in `ApiDoc`).
        .route(
            "/v1/clusters/{id}/snapshot",
            axum::routing::put(api::snapshots::put_snapshot)
                .layer(DefaultBodyLimit::max(api::snapshots::MAX_SNAPSHOT_BYTES)),
        )
        .split_for_parts()
}

/// Every route, `/openapi.json` among them.
pub fn router(app: Arc<App>) -> Router {
    let (routes, mut doc) = routes();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let doc = Arc::new(doc);
    routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(console::routes())
        // Webhook batches are up to 10 MiB; other bodies are small.
        .layer(DefaultBodyLimit::max(ingest::MAX_BATCH_BYTES))
        .fallback(|| async { error::ApiError::not_found("route") })
        .with_state(app)
}

/// The process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
async fn health() -> &'static str {
    "ok\n"
}

/// The database answers, the audit writer runs and (with a bus) NATS is connected.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready, with the reason")))]
async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    if app.writer.is_closed() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit writer stopped\n",
        );
    }
    if !app.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer\n",
        );
    }
    if app.bus.as_ref().is_some_and(|b| !b.connected()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the bus (NATS) is not connected\n",
        );
    }
    (StatusCode::OK, "ready\n")
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"), (status = 401, description = "The server has a metrics token and the request did not present it", body = api::ErrorBody)))]
async fn metrics(State(app): State<Arc<App>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &app.options.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !secrets::same_secret(presented, token) {
            app.metrics.auth_refused.inc();
            return error::ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "/metrics needs the metrics token (--metrics-token-file)",
            )
            .into_response();
        }
    }
    // Writer and detector both move the backlog; the gauge reads it when asked.
    app.metrics.detector_lag_events.set(
        app.pending_events
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
    );
    if let Some(bus) = &app.bus {
        let (messages, bytes) = bus.backlog();
        app.metrics.bus_backlog_batches.set(messages as i64);
        app.metrics.bus_backlog_bytes.set(bytes as i64);
        app.metrics.bus_partitions_held.set(bus.held().len() as i64);
        app.metrics.bus_servers.set(bus.servers() as i64);
    }
    if let Ok((queued, running)) = app.store.scan_queue_depth().await {
        for (state, n) in [("queued", queued), ("running", running)] {
            app.metrics
                .scan_queue
                .get_or_create(&vec![("state".to_string(), state.to_string())])
                .set(n);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Reads a certificate and key for HTTPS; the error names the file and what is wrong.
pub async fn tls_config(files: &TlsFiles) -> ServerResult<axum_server::tls_rustls::RustlsConfig> {
    for (what, path) in [("certificate", &files.cert), ("key", &files.key)] {
        std::fs::metadata(path).map_err(ServerError::io(format!("{what} {}", path.display())))?;
    }
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| {
            ServerError::Invalid(format!(
                "{} / {}: not a PEM certificate chain and private key: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })
}

/// Serves (HTTPS when `tls` is given) until `shutdown` resolves, then stops taking requests,
/// finishes those in flight and stops the background work.
pub async fn serve(
    listener: tokio::net::TcpListener,
    running: Running,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&running.app));
    let result = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                // No deadline: requests in flight (webhook batches waiting for their commit)
                // finish.
                stopper.graceful_shutdown(None);
            });
            let std_listener = listener.into_std()?;
            axum_server::from_tcp_rustls(std_listener, config)?
                .handle(handle)
                .serve(app.into_make_service())
                .await
        }
    };
    running.stop().await;
    result
}

/// Seals the webhook keys an earlier version stored in clear.
async fn seal_output_secrets(app: &App) -> ServerResult<()> {
    let Some(key) = app.options.secret_key.as_ref() else {
        return Ok(());
    };
    let mut sealed = 0;
    for o in app.store.outputs(None).await? {
        if !o.secret.is_empty() && !o.secret.starts_with(secrets::SEALED_TEXT) {
            app.store
                .set_output_secret(&o.id, &key.seal_text(&o.secret))
                .await?;
            sealed += 1;
        }
    }
    if sealed > 0 {
        tracing::info!(outputs = sealed, "webhook keys stored in clear sealed");
    }
    Ok(())
}

/// Writes a secret readable by its owner only.
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        osprey_store::create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
}
