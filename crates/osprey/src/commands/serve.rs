//! `osprey serve` and `osprey token create`.

use std::path::Path;
use std::time::Duration;

use osprey_server::launch::{Launch, LaunchError, open_store as open_server_store};
use osprey_server::{
    Options, TlsFiles, bootstrap, serve as serve_http, start_with_bus, tls_config,
};

use osprey_store::{Role, Store};

use crate::cli::{ServeArgs, StoreArgs, TokenCommand, TokenCreateArgs};
use crate::exit::Failure;
use crate::ui::Ui;

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the runtime: {e}")))
}

/// A start-up error as a message naming the flag that set what is wrong (`secret_key_file`:
/// `--secret-key-file`, when given).
fn launch_failure(e: LaunchError, secret_key_file: Option<&Path>) -> Failure {
    match e {
        LaunchError::Database { .. } => Failure::Input(format!("--database {e}")),
        LaunchError::Data { .. } => Failure::Input(format!("--data {e}")),
        LaunchError::SecretKey(_) => Failure::Input(match secret_key_file {
            Some(_) => format!("--secret-key-file {e}"),
            None => e.to_string(),
        }),
        LaunchError::WrongSecretKey(_) => Failure::Input(match secret_key_file {
            Some(f) => format!("--secret-key-file {}: {e}", f.display()),
            None => format!("the secret key: {e}"),
        }),
        LaunchError::Bus { .. } => Failure::Input(format!("--bus {e}")),
        LaunchError::VulnDb { .. } => Failure::Input(format!("--vuln-db {e}")),
        LaunchError::Setup(_) => Failure::Internal(e.to_string()),
    }
}

async fn open_store(args: &StoreArgs) -> Result<Store, Failure> {
    open_server_store(args.database.as_deref(), &args.data)
        .await
        .map_err(|e| launch_failure(e, None))
}

/// On an empty store, the organization's administrator tenant and its admin token file.
async fn set_up(store: &Store, args: &StoreArgs) -> Result<(), Failure> {
    if let Some(path) = bootstrap(store, &args.data)
        .await
        .map_err(|e| launch_failure(LaunchError::Setup(e), None))?
    {
        announce_admin_token(&path);
    }
    Ok(())
}

fn announce_admin_token(path: &std::path::Path) {
    eprintln!(
        "osprey: created the organization's administrator tenant \"admin\"; its admin token is in {}",
        path.display()
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

pub fn serve(args: ServeArgs, ui: &Ui) -> Result<i32, Failure> {
    if args.max_pending_events < 1 {
        return Err(Failure::Input(
            "--max-pending-events: expected at least 1".into(),
        ));
    }
    let metrics_token = metrics_token(&args)?;
    runtime()?.block_on(async {
        // Everything that can be wrong with the settings is found before anything is created.
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(
                tls_config(&TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
                .await
                .map_err(|e| Failure::Input(format!("--tls-cert/--tls-key: {e}")))?,
            ),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| Failure::Input(format!("--listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::Internal(e.to_string()))?;
        // The demo's tokens are printed and its settings open: it is for this machine only.
        if args.demo && !local.ip().is_loopback() {
            return Err(Failure::Input(format!(
                "--demo: listens on {local}, reachable from other machines; the demo serves 127.0.0.1 only (--listen 127.0.0.1:8080)"
            )));
        }
        if tls.is_none() && !local.ip().is_loopback() {
            eprintln!(
                "osprey: warning: serving plain HTTP on {local}, reachable from other machines: tokens, sessions and audit events cross the network in clear; serve HTTPS (--tls-cert/--tls-key) or put a TLS proxy in front"
            );
        }
        let demo = if args.demo {
            Some(
                osprey_server::demo::DemoFiles::locate(&args.examples)
                    .map_err(|e| Failure::Input(format!("--demo: {e}")))?,
            )
        } else {
            None
        };
        let mut vuln_db = args.vuln_db.clone();
        if args.demo && vuln_db.is_none() {
            vuln_db = Some(demo_database(&args, ui)?);
        }
        let bus_max_bytes = args.bus_max_mb.saturating_mul(1 << 20);
        let launched = Launch {
            database: args.store.database.clone(),
            data: args.store.data.clone(),
            secret_key_file: args.secret_key_file.clone(),
            bus: args.bus.clone(),
            bus_max_bytes,
            vuln_db: vuln_db.clone(),
        }
        .open()
        .await
        .map_err(|e| launch_failure(e, args.secret_key_file.as_deref()))?;
        let _served = launched.guard;
        if let Some(path) = &launched.admin_token_file {
            announce_admin_token(path);
        }
        if let Some(bus) = &launched.bus {
            eprintln!(
                "osprey: sharing the database through the bus (namespace {}, this server {})",
                bus.namespace, bus.server_id
            );
        }
        let (store, bus) = (launched.store, launched.bus);
        let options = Options {
            max_pending_events: args.max_pending_events,
            audit_retention: Duration::from_secs(args.audit_retention_days.saturating_mul(86_400)),
            dedupe_max_keys: usize::try_from(args.dedupe_events).unwrap_or(usize::MAX),
            graph_retention: (args.graph_retention_days > 0)
                .then(|| Duration::from_secs(args.graph_retention_days.saturating_mul(86_400))),
            graph_max_edges_per_hour: usize::try_from(args.graph_max_edges_per_hour)
                .unwrap_or(usize::MAX),
            scan_workers: args.scan_workers,
            vuln_db,
            scan_cache: Some(osprey_server::scanner::default_cache(&args.store.data)),
            rescan_interval: (args.rescan_interval_hours > 0)
                .then(|| Duration::from_secs(args.rescan_interval_hours.saturating_mul(3600))),
            allow_local_images: args.allow_local_images || args.demo,
            // The demo's pod runs the bundled image from the source tree: its triggered scan
            // may read that one local source.
            trusted_local_image: demo.as_ref().map(|d| d.image.clone()),
            secret_key: Some(launched.secret_key),
            bus_max_bytes,
            https: tls.is_some(),
            destinations: destinations(&args),
            scan_timeout: Duration::from_secs(args.scan_timeout_minutes.saturating_mul(60)),
            scan_max_download_bytes: args.scan_max_download_mb.saturating_mul(1 << 20),
            scan_jobs_per_tenant: args
                .scan_jobs_per_tenant
                .unwrap_or(args.scan_workers / 2)
                .max(1),
            scan_queue_per_tenant: args.scan_queue_per_tenant,
            metrics_token,
            ..Options::default()
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let running = start_with_bus(store, options, bus)
            .await
            .map_err(|e| Failure::Internal(format!("starting: {e}")))?;
        eprintln!(
            "osprey: listening on {scheme}://{local} (console at /console, API under /v1, health at /healthz, metrics at /metrics)"
        );
        if let Some(files) = demo {
            let app = std::sync::Arc::clone(&running.app);
            let base = format!("http://{}", loopback(local));
            let data = args.store.data.clone();
            eprintln!("osprey: setting up the demo organization (attack story, image scan)…");
            tokio::spawn(async move {
                match osprey_server::demo::run(app, files, &base, &data).await {
                    Ok(summary) => {
                        for line in summary.lines() {
                            eprintln!("osprey: {line}");
                        }
                    }
                    Err(e) => eprintln!("osprey: demo: {e}"),
                }
            });
        }
        serve_http(listener, running, shutdown_signal(), tls)
            .await
            .map_err(|e| Failure::Internal(format!("serving: {e}")))?;
        ui.note("stopped: every accepted batch is stored");
        Ok(0)
    })
}

/// The token /metrics asks for: OSPREY_METRICS_TOKEN, or the first line of
/// --metrics-token-file; none when neither is given.
fn metrics_token(args: &ServeArgs) -> Result<Option<String>, Failure> {
    if let Ok(token) = std::env::var("OSPREY_METRICS_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_string()));
    }
    let Some(path) = &args.metrics_token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("--metrics-token-file {}: {e}", path.display())))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.len() < 16 {
        return Err(Failure::Input(format!(
            "--metrics-token-file {}: expected a token of at least 16 characters on its first line",
            path.display()
        )));
    }
    Ok(Some(token.to_string()))
}

/// Where the server may connect: public addresses, the operator's exceptions, and this
/// machine for the demo (whose story and scan run here).
fn destinations(args: &ServeArgs) -> osprey_egress::Policy {
    let mut allowed = args.allow_destination.clone();
    if args.demo {
        for local in ["127.0.0.1", "::1"] {
            allowed.push(local.parse().expect("an address"));
        }
    }
    osprey_egress::Policy::restricted(allowed)
}

/// The address to reach a listener on from this machine (a wildcard listen address is
/// reached on loopback).
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = match addr {
            std::net::SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            std::net::SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        std::net::SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// The demo's vulnerability database: the bundled example advisories, built into the data
/// directory.
fn demo_database(args: &ServeArgs, ui: &Ui) -> Result<std::path::PathBuf, Failure> {
    let osv = args.examples.join("vulndb/osv");
    if !osv.is_dir() {
        return Err(Failure::Input(format!(
            "--demo: {}: not found (--demo runs from Osprey's source tree, which bundles it)",
            osv.display()
        )));
    }
    osprey_store::create_private_dir(&args.store.data)
        .map_err(|e| Failure::Input(format!("--data {}: {e}", args.store.data.display())))?;
    let out = args.store.data.join("demo-vuln.db");
    let jobs = [super::db::FeedJob::local(
        "osv",
        &osv,
        osprey_vuln::feeds::osv::import,
    )];
    super::db::build_database(&jobs, &out, false, false, ui)?;
    Ok(out)
}

pub fn token(cmd: TokenCommand, ui: &Ui) -> Result<i32, Failure> {
    let TokenCommand::Create(args) = cmd;
    create_token(args, ui)
}

fn create_token(args: TokenCreateArgs, _ui: &Ui) -> Result<i32, Failure> {
    let role = match Role::parse(&args.role) {
        Some(Role::Ingest) | None => {
            return Err(Failure::Input(format!(
                "--role {}: expected admin, analyst or viewer (ingest tokens come with their cluster)",
                args.role
            )));
        }
        Some(r) => r,
    };
    runtime()?.block_on(async {
        let store = open_store(&args.store).await?;
        let result = async {
            set_up(&store, &args.store).await?;
            let tenant = store
                .tenant_by_name(&args.tenant)
                .await
                .map_err(|e| Failure::Internal(e.to_string()))?
                .ok_or_else(|| {
                    Failure::Input(format!("--tenant {}: no such tenant", args.tenant))
                })?;
            let (info, secret) = store
                .create_token(&tenant.id, &args.name, role, None)
                .await
                .map_err(|e| Failure::Input(format!("--name {}: {e}", args.name)))?;
            store
                .log_action(
                    &tenant.id,
                    "cli",
                    "token.create",
                    &info.id,
                    serde_json::json!({ "tenant": tenant.id, "role": role, "name": info.name }),
                )
                .await
                .map_err(|e| Failure::Internal(e.to_string()))?;
            println!("{secret}");
            Ok(0)
        }
        .await;
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .ok();
        result
    })
}
