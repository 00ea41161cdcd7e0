//! `osprey audit analyze`: audit logs in, findings out.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfy_table::{Cell, Table, presets::NOTHING};
use osprey_audit::event::reader::{ReadStats, Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};
use osprey_audit::intel::{AsnDb, IpList, ListKind, ListLimits};
use osprey_audit::rules::duration_us;
use osprey_audit::{Engine, EngineOptions, Findings, Intel, Loader};
use osprey_model::{Finding, SeverityLabel};
use osprey_simulate::{Attack, SimConfig};
use serde_json::json;

use super::output::{emit, put_table, stdout_is_terminal};
use super::scan::table::color;
use crate::cli::{AuditAnalyzeArgs, AuditCommand, AuditFormat, AuditSimulateArgs};
use crate::exit::Failure;
use crate::ui::Ui;

pub fn run(cmd: AuditCommand, ui: &Ui) -> Result<i32, Failure> {
    match cmd {
        AuditCommand::Analyze(args) => analyze(args, ui),
        AuditCommand::Simulate(args) => simulate(args, ui),
        AuditCommand::Import(args) => super::audit_import::import(args, ui),
    }
}

fn simulate(args: AuditSimulateArgs, ui: &Ui) -> Result<i32, Failure> {
    let duration_us =
        duration_us(&args.duration).map_err(|e| Failure::Input(format!("--duration: {e}")))?;
    let mut attacks = Vec::new();
    for name in &args.attack {
        attacks.push(Attack::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Attack::ALL.iter().map(|(n, _)| *n).collect();
            Failure::Input(format!(
                "--attack {name}: unknown attack (known: {})",
                known.join(", ")
            ))
        })?);
    }
    if args.nodes == 0 || args.nodes > 100_000 {
        return Err(Failure::Input(format!(
            "--nodes {}: expected 1 to 100000",
            args.nodes
        )));
    }
    if let Some(r) = args.rate
        && !(r.is_finite() && r > 0.0 && r <= 10_000_000.0)
    {
        return Err(Failure::Input(format!(
            "--rate {r}: expected a number of events per second up to 10000000"
        )));
    }
    let mut config = SimConfig {
        nodes: args.nodes,
        duration_s: (duration_us / 1_000_000) as u64,
        rate: args.rate,
        attacks,
        seed: args.seed,
        ..SimConfig::default()
    };
    if let Some(start) = &args.start {
        let t: jiff::Timestamp = start
            .parse()
            .map_err(|e| Failure::Input(format!("--start {start}: {e}")))?;
        config.start_s = t.as_second();
    }
    let mut events = 0;
    emit(args.output.as_deref(), |out| {
        events = osprey_simulate::simulate(&config, out)?;
        Ok(())
    })?;
    ui.note(&format!("simulated {events} events"));
    Ok(0)
}

/// What was read from one input.
pub(super) struct InputSummary {
    pub(super) name: String,
    pub(super) stats: ReadStats,
}

fn analyze(args: AuditAnalyzeArgs, ui: &Ui) -> Result<i32, Failure> {
    let mut engine = build_engine(&args)?;
    if let Some(path) = &args.baseline
        && path.exists()
    {
        let text =
            std::fs::read(path).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        engine.state.baselines = serde_json::from_slice(&text).map_err(|e| {
            Failure::Input(format!(
                "{}: not an Osprey baseline file: {e}",
                path.display()
            ))
        })?;
    }
    let mut findings = Findings::default();
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        AuditFormat::Table
    } else {
        AuditFormat::Json
    });

    if args.follow {
        return follow(&args, engine, findings, format, ui);
    }
    if let Some(addr) = &args.listen {
        return listen(&args, addr, engine, findings, format, ui);
    }

    let mut inputs = Vec::new();
    for file in &args.files {
        let summary = read_input(file, &args.cluster, &mut engine, &mut findings)?;
        if summary.stats.events == 0 && summary.stats.malformed > 0 {
            let first = &summary.stats.examples[0];
            return Err(Failure::Input(format!(
                "{}: no audit events: line {}: {}",
                summary.name, first.line, first.reason
            )));
        }
        report_malformed(ui, &summary);
        if summary.stats.events == 0 {
            ui.warn(&format!("{}: no audit events", summary.name));
        }
        inputs.push(summary);
    }
    save_baseline(&args, &engine)?;

    let dropped = findings.dropped;
    let all = findings.into_list();
    let (mut shown, suppressed): (Vec<Finding>, Vec<Finding>) =
        all.into_iter().partition(|f| f.suppression.is_none());
    shown.retain(|f| f.severity.label >= args.min_severity);
    sort_findings(&mut shown);
    let suppressed = if args.show_suppressed {
        suppressed
    } else {
        Vec::new()
    };
    let summary = summary_json(&inputs, &engine, &shown, dropped);
    emit(args.output.as_deref(), |out| match format {
        AuditFormat::Json => {
            let doc = json!({
                "summary": summary,
                "findings": shown,
                "suppressed": suppressed,
            });
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        AuditFormat::OcsfJson => {
            let events: Vec<_> = shown
                .iter()
                .chain(&suppressed)
                .map(osprey_model::export::ocsf_detection)
                .collect();
            serde_json::to_writer_pretty(&mut *out, &events)?;
            writeln!(out)
        }
        AuditFormat::Table => write_table(out, &inputs, &engine, &shown, &suppressed),
    })?;
    let gate = args.exit_code != 0 && shown.iter().any(|f| f.severity.label >= args.fail_on);
    Ok(if gate { args.exit_code } else { 0 })
}

fn build_engine(args: &AuditAnalyzeArgs) -> Result<Engine, Failure> {
    let mut loader = Loader::builtin();
    for dir in &args.rules {
        loader
            .add_path(dir)
            .map_err(|e| Failure::Input(e.to_string()))?;
    }
    let rules = loader
        .compile()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut intel = Intel::default();
    let limits = ListLimits::default();
    for (files, kind) in [
        (&args.trusted_list, ListKind::Trusted),
        (&args.threat_list, ListKind::Custom),
        (&args.intel_list, ListKind::Threat),
        (&args.tor_list, ListKind::Tor),
    ] {
        for f in files {
            intel.add(IpList::load(f, kind, &limits).map_err(|e| Failure::Input(e.to_string()))?);
        }
    }
    if let Some(path) = &args.asn_db {
        intel.set_asn_db(AsnDb::open(path, &limits).map_err(|e| Failure::Input(e.to_string()))?);
    }
    let learning_period_us = duration_us(&args.learning_period)
        .map_err(|e| Failure::Input(format!("--learning-period: {e}")))?;
    Ok(Engine::new(
        rules,
        intel,
        EngineOptions {
            learning_period_us,
            ..EngineOptions::default()
        },
    ))
}

pub(super) fn input_name(file: &Path) -> String {
    if file == Path::new("-") {
        "standard input".into()
    } else {
        file.display().to_string()
    }
}

fn read_input(
    file: &Path,
    cluster: &str,
    engine: &mut Engine,
    findings: &mut Findings,
) -> Result<InputSummary, Failure> {
    let name = input_name(file);
    let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
    let mut sink = |e: Event<'_>| {
        let e = with_cluster(e, cluster);
        engine.process(&e, findings);
    };
    let result = if file == Path::new("-") {
        reader.read_all(std::io::stdin().lock(), &mut sink)
    } else {
        let f = std::fs::File::open(file).map_err(|e| Failure::Input(format!("{name}: {e}")))?;
        reader.read_all(f, &mut sink)
    };
    result.map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    Ok(InputSummary {
        name,
        stats: reader.stats,
    })
}

/// Names the cluster of an event that does not say (the event is shortened to the name's
/// lifetime; events are covariant).
fn with_cluster<'s>(mut e: Event<'s>, cluster: &'s str) -> Event<'s> {
    if e.cluster.is_empty() {
        e.cluster = Cow::Borrowed(cluster);
    }
    e
}

pub(super) fn report_malformed(ui: &Ui, s: &InputSummary) {
    for m in s.stats.examples.iter().take(5) {
        ui.warn(&format!(
            "{}: line {}: skipped: {}",
            s.name, m.line, m.reason
        ));
    }
    if s.stats.malformed > 5 {
        ui.warn(&format!(
            "{}: {} malformed inputs skipped in all",
            s.name, s.stats.malformed
        ));
    }
}

fn save_baseline(args: &AuditAnalyzeArgs, engine: &Engine) -> Result<(), Failure> {
    if let Some(path) = &args.baseline {
        emit(Some(path), |out| {
            serde_json::to_writer(&mut *out, &engine.state.baselines)?;
            writeln!(out)
        })?;
    }
    Ok(())
}

/// `--follow`: findings are printed as they are first seen, one JSON object (or table line)
/// each; the process runs until it is stopped.
fn follow(
    args: &AuditAnalyzeArgs,
    mut engine: Engine,
    mut findings: Findings,
    format: AuditFormat,
    ui: &Ui,
) -> Result<i32, Failure> {
    let [file] = args.files.as_slice() else {
        return Err(Failure::Input("--follow reads exactly one file".into()));
    };
    if file == &PathBuf::from("-") {
        return Err(Failure::Input(
            "--follow needs a file, not standard input".into(),
        ));
    }
    let stop = AtomicBool::new(false);
    let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
    let mut printer = Printer::new(format, args.min_severity);
    let mut write_error = None;
    let cluster = args.cluster.as_str();
    let mut sink = |e: Event<'_>| {
        let e = with_cluster(e, cluster);
        engine.process(&e, &mut findings);
        if write_error.is_none()
            && let Err(e) = printer.print_new(&findings, &mut std::io::stdout().lock())
        {
            write_error = Some(e);
        }
    };
    reader
        .follow(file, Duration::from_millis(250), &stop, &mut sink)
        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let summary = InputSummary {
        name: input_name(file),
        stats: reader.stats,
    };
    report_malformed(ui, &summary);
    save_baseline(args, &engine)?;
    Ok(0)
}

/// Prints findings as they are first seen (`--follow`, `--listen`): one line each.
struct Printer {
    printed: usize,
    format: AuditFormat,
    min: SeverityLabel,
}

impl Printer {
    fn new(format: AuditFormat, min: SeverityLabel) -> Printer {
        Printer {
            printed: 0,
            format,
            min,
        }
    }

    fn print_new(&mut self, findings: &Findings, out: &mut dyn Write) -> std::io::Result<()> {
        let new = &findings.list()[self.printed..];
        self.printed = findings.len();
        for f in new {
            if f.severity.label < self.min || f.suppression.is_some() {
                continue;
            }
            match self.format {
                AuditFormat::Table => writeln!(
                    out,
                    "{} {:<8} {} {} ({})",
                    f.first_seen.as_deref().unwrap_or("-"),
                    f.severity.label,
                    f.kind,
                    f.description,
                    f.evidence
                        .as_ref()
                        .map(|e| e.rule_id.as_str())
                        .unwrap_or("")
                )?,
                AuditFormat::Json => {
                    serde_json::to_writer(&mut *out, f)?;
                    writeln!(out)?;
                }
                AuditFormat::OcsfJson => {
                    serde_json::to_writer(&mut *out, &osprey_model::export::ocsf_detection(f))?;
                    writeln!(out)?;
                }
            }
        }
        out.flush()
    }
}

/// The largest webhook batch accepted (the API server truncates batches at 10 MiB).
const MAX_BATCH: usize = 12 << 20;

struct Receiver {
    engine: Engine,
    findings: Findings,
    printer: Printer,
    token: Option<String>,
    cluster: String,
    events: u64,
    rejected: u64,
}

/// `--listen`: the API server's webhook backend posts `EventList` batches; each is analysed
/// before it is answered, so a batch answered 200 has been through every rule.
fn listen(
    args: &AuditAnalyzeArgs,
    addr: &str,
    engine: Engine,
    findings: Findings,
    format: AuditFormat,
    ui: &Ui,
) -> Result<i32, Failure> {
    use axum::Router;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the listener: {e}")))?;
    let state = Arc::new(Mutex::new(Receiver {
        engine,
        findings,
        printer: Printer::new(format, args.min_severity),
        token: args.ingest_token.clone(),
        cluster: args.cluster.clone(),
        events: 0,
        rejected: 0,
    }));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Input(format!("--listen {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::Internal(e.to_string()))?;
        ui.note(&format!("listening on http://{local}/k8s-audit"));
        // The token is checked before the body is read (the layer runs first).
        let app = Router::new()
            .route("/k8s-audit", post(receive))
            .route("/v1/audit", post(receive))
            .layer(DefaultBodyLimit::max(MAX_BATCH))
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                authenticate,
            ))
            .with_state(Arc::clone(&state));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Failure::Internal(format!("listener: {e}")))
    })?;
    let receiver = state
        .lock()
        .map_err(|_| Failure::Internal("the receiver failed".into()))?;
    ui.note(&format!(
        "received {} events ({} batches rejected), {} findings",
        receiver.events,
        receiver.rejected,
        receiver.findings.len()
    ));
    save_baseline(args, &receiver.engine)?;
    Ok(0)
}

/// Refuses a request without the receiver's bearer token (`--ingest-token`) before its body is
/// read; the token is compared in constant time (as SHA-256 digests).
async fn authenticate(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<Receiver>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let expected = match state.lock() {
        Ok(r) => r.token.clone(),
        Err(_) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "receiver failed\n",
            )
                .into_response();
        }
    };
    if let Some(token) = expected {
        let presented = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !osprey_server::secrets::same_secret(presented, &token) {
            if let Ok(mut r) = state.lock() {
                r.rejected += 1;
            }
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<Receiver>>>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let Ok(mut guard) = state.lock() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "receiver failed\n".into(),
        );
    };
    let r = &mut *guard;
    let Receiver {
        engine,
        findings,
        printer,
        cluster,
        events,
        rejected,
        ..
    } = r;
    let decoded = Decoder::default().decode(&body, &mut |e: Event<'_>| {
        let e = with_cluster(e, cluster);
        engine.process(&e, findings);
    });
    *events += decoded.events as u64;
    if let Err(e) = printer.print_new(findings, &mut std::io::stdout().lock()) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing findings: {e}\n"),
        );
    }
    match decoded.errors.first() {
        Some(e) if decoded.events == 0 => {
            *rejected += 1;
            (StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
        _ => (
            StatusCode::OK,
            format!("{{\"events\":{}}}\n", decoded.events),
        ),
    }
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .label
            .cmp(&a.severity.label)
            .then_with(|| a.first_seen.cmp(&b.first_seen))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.id.cmp(&b.id))
    });
}

fn by_severity(findings: &[Finding]) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for label in SeverityLabel::ALL.iter().rev() {
        let n = findings
            .iter()
            .filter(|f| f.severity.label == *label)
            .count();
        if n > 0 {
            m.insert(label.as_str().to_string(), json!(n));
        }
    }
    m
}

fn summary_json(
    inputs: &[InputSummary],
    engine: &Engine,
    shown: &[Finding],
    dropped: u64,
) -> serde_json::Value {
    json!({
        "inputs": inputs.iter().map(|i| json!({
            "name": i.name,
            "bytes": i.stats.bytes,
            "events": i.stats.events,
            "malformed": i.stats.malformed,
            "malformed_examples": i.stats.examples.iter().map(|m| json!({"line": m.line, "reason": m.reason})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "events": inputs.iter().map(|i| i.stats.events).sum::<u64>(),
        "malformed": inputs.iter().map(|i| i.stats.malformed).sum::<u64>(),
        "rules": engine.rules.rules.len(),
        "detections": engine.stats.detections,
        "suppressed": engine.stats.suppressed,
        "findings": shown.len(),
        "findings_by_severity": by_severity(shown),
        "findings_dropped": dropped,
    })
}

fn write_table(
    out: &mut dyn Write,
    inputs: &[InputSummary],
    engine: &Engine,
    shown: &[Finding],
    suppressed: &[Finding],
) -> std::io::Result<()> {
    let events: u64 = inputs.iter().map(|i| i.stats.events).sum();
    let malformed: u64 = inputs.iter().map(|i| i.stats.malformed).sum();
    let sev = by_severity(shown)
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(
        out,
        "{events} events read, {malformed} malformed; {} rules; {} findings{}{}",
        engine.rules.rules.len(),
        shown.len(),
        if sev.is_empty() {
            String::new()
        } else {
            format!(" ({sev})")
        },
        if engine.stats.suppressed > 0 {
            format!(
                ", {} detections archived by suppression rules",
                engine.stats.suppressed
            )
        } else {
            String::new()
        }
    )?;
    let colour_on = std::env::var_os("NO_COLOR").is_none() && stdout_is_terminal();
    for (title, list) in [("", shown), ("Suppressed:", suppressed)] {
        if list.is_empty() {
            continue;
        }
        let mut t = Table::new();
        t.load_preset(NOTHING);
        t.set_header([
            "SEVERITY",
            "TYPE",
            "COUNT",
            "USER",
            "RESOURCE",
            "RULE",
            "LAST SEEN",
        ]);
        for f in list {
            let k8s = f.resource.kubernetes.as_ref();
            let user = k8s
                .and_then(|k| k.user.as_ref())
                .map(|u| u.username.as_str())
                .unwrap_or("-");
            let action = f.action.as_ref();
            let res = action
                .map(|a| {
                    let mut r = a.resource.clone();
                    if !a.subresource.is_empty() {
                        r = format!("{r}/{}", a.subresource);
                    }
                    match (a.namespace.as_str(), a.resource_name.as_str()) {
                        ("", "") => r,
                        ("", n) => format!("{r} {n}"),
                        (ns, "") => format!("{r} in {ns}"),
                        (ns, n) => format!("{r} {ns}/{n}"),
                    }
                })
                .unwrap_or_default();
            let rule = f
                .evidence
                .as_ref()
                .map(|e| {
                    if e.catalogue.is_empty() {
                        e.rule_id.clone()
                    } else {
                        format!("{} [{}]", e.rule_id, e.catalogue.join(","))
                    }
                })
                .unwrap_or_default();
            let mut sev = Cell::new(f.severity.label.as_str());
            if colour_on {
                sev = sev.fg(color(f.severity.label));
            }
            t.add_row(vec![
                sev,
                Cell::new(&f.kind),
                Cell::new(f.count),
                Cell::new(user),
                Cell::new(res),
                Cell::new(rule),
                Cell::new(f.last_seen.as_deref().unwrap_or("-")),
            ]);
        }
        writeln!(out)?;
        put_table(out, title, &t)?;
    }
    Ok(())
}
