//! `osprey graph`: the investigation graph offline. `build` keeps audit logs in a local store
//! and runs the server's own detection over them (`osprey_server::offline`); `show` reads an
//! entity's profile back (`osprey_server::profiles`), as a table or as the API's JSON.

use std::io::Write;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use osprey_graph::profile::MAX_SCOPE_HOURS;
use osprey_graph::{EntityId, EntityType, Hour};
use osprey_server::impact::{self, ImpactView};
use osprey_server::offline::{Offline, read_scan};
use osprey_server::profiles::{self, Profile};
use osprey_store::{SQLITE_FILE, Store, StoredFinding};

use super::audit_import::{Batcher, check_inputs};
use super::output::{emit, put_table, stdout_is_terminal};
use crate::cli::{GraphBuildArgs, GraphCommand, GraphFormat, GraphShowArgs};
use crate::exit::Failure;
use crate::ui::Ui;

/// Events per kept batch.
const BATCH_EVENTS: usize = 500;
const HOUR_MS: i64 = 3_600_000;

pub fn run(cmd: GraphCommand, ui: &Ui) -> Result<i32, Failure> {
    match cmd {
        GraphCommand::Build(args) => build(args, ui),
        GraphCommand::Show(args) => show(args),
    }
}

/// The server's detection runs on its own thread against the runtime's handle: a runtime
/// with workers.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the runtime: {e}")))
}

/// A snapshot or a scan document is at most this large.
const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;

/// A snapshot or scan file, whole (bounded).
fn read_document(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    let name = path.display();
    let bad = |why: String| Failure::Input(format!("{name}: {why}"));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a file".into()));
    }
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(bad(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    std::fs::read(path).map_err(|e| bad(e.to_string()))
}

/// An image's SBOM (CycloneDX or SPDX JSON): the image's digest, which the SBOM's subject
/// must name, and its packages.
fn read_sbom(path: &std::path::Path) -> Result<(String, Vec<osprey_model::Package>), Failure> {
    let bad = |why: String| Failure::Input(format!("--sbom {}: {why}", path.display()));
    let bytes = read_document(path)?;
    let limits = osprey_inventory::sbom::decode::Limits::default();
    let decoded =
        osprey_inventory::sbom::decode::decode(&path.display().to_string(), &bytes, &limits)
            .map_err(|e| Failure::Input(format!("--sbom {e}")))?;
    let digest = decoded
        .subject
        .version
        .filter(|v| EntityId::parse_key(EntityType::Image, v).is_ok())
        .ok_or_else(|| {
            bad("the SBOM names no image digest (its subject's version is not sha256:…; make it with osprey sbom IMAGE)".into())
        })?;
    Ok((digest, decoded.inventory.packages))
}

fn build(args: GraphBuildArgs, ui: &Ui) -> Result<i32, Failure> {
    check_inputs(&args.files)?;
    // The snapshot and the scans are read before the logs (a bad one fails at once).
    let snapshot = match &args.snapshot {
        Some(path) => Some(
            osprey_graph::snapshot::read(&read_document(path)?)
                .map_err(|e| Failure::Input(format!("--snapshot {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut scans = Vec::new();
    for path in &args.scan {
        scans.push(
            read_scan(&read_document(path)?)
                .map_err(|e| Failure::Input(format!("--scan {}: {e}", path.display())))?,
        );
    }
    let mut sboms = Vec::new();
    for path in &args.sbom {
        sboms.push(read_sbom(path)?);
    }
    if args.cluster.trim().is_empty() {
        return Err(Failure::Input("--cluster: empty".into()));
    }
    let db = args.db.display().to_string();
    let rt = runtime()?;
    let offline = rt
        .block_on(Offline::open(&args.db, &args.cluster))
        .map_err(|e| Failure::Input(format!("--db {db}: {e}")))?;
    let mut batcher = Batcher::new(BATCH_EVENTS, |body, events| {
        rt.block_on(offline.keep(&body, events))
            .map_err(|e| Failure::Internal(format!("--db {db}: keeping a batch: {e}")))
    });
    let read = batcher.read_files(&args.files, ui)?;
    let batches = batcher.batches;
    drop(batcher);
    ui.note(&format!(
        "kept {read} events in {batches} batches; detecting them"
    ));
    let built = rt
        .block_on(offline.detect())
        .map_err(|e| Failure::Internal(format!("--db {db}: detection: {e}")))?;
    if let Some(snapshot) = snapshot {
        let taken = rt
            .block_on(offline.snapshot(snapshot))
            .map_err(|e| Failure::Internal(format!("--db {db}: the snapshot: {e}")))?;
        ui.note(&format!(
            "snapshot: {} running pods ({} no longer running), {} RBAC objects",
            taken.pods, taken.deleted_pods, taken.rbac_objects
        ));
    }
    for scan in scans {
        let (digest, n) = rt
            .block_on(offline.scan(scan))
            .map_err(|e| Failure::Internal(format!("--db {db}: a scan: {e}")))?;
        ui.note(&format!("scan of {digest}: {n} vulnerability findings"));
    }
    for (digest, packages) in sboms {
        let n = rt
            .block_on(offline.sbom(&digest, &packages))
            .map_err(|e| Failure::Internal(format!("--db {db}: an SBOM: {e}")))?;
        ui.note(&format!("SBOM of {digest}: {n} packages"));
    }
    println!(
        "cluster {} ({}): {} findings, {} attack sequences",
        built.cluster.name, built.cluster.id, built.findings, built.sequences
    );
    println!(
        "profiles: osprey graph show --db {db} cluster/{}",
        built.cluster.name
    );
    Ok(0)
}

fn show(args: GraphShowArgs) -> Result<i32, Failure> {
    let db = args.db.display().to_string();
    if !args.db.join(SQLITE_FILE).is_file() {
        return Err(Failure::Input(format!(
            "--db {db}: no Osprey store here (osprey graph build makes one)"
        )));
    }
    let rt = runtime()?;
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        GraphFormat::Table
    } else {
        GraphFormat::Json
    });
    if args.impact {
        let view = rt.block_on(read_impact(&args))?;
        emit(None, |out| match format {
            GraphFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &view)?;
                writeln!(out)
            }
            GraphFormat::Table => write_impact(out, &view),
        })?;
        return Ok(0);
    }
    let (profile, findings) = rt.block_on(read_profile(&args))?;
    emit(None, |out| match format {
        GraphFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &profile)?;
            writeln!(out)
        }
        GraphFormat::Table => write_table(out, &profile, &findings),
    })?;
    Ok(0)
}

/// The store at `--db` and its tenants.
async fn open_store(args: &GraphShowArgs) -> Result<(Store, Vec<String>), Failure> {
    let db = args.db.display().to_string();
    let store_err = |e: &dyn std::fmt::Display| Failure::Input(format!("--db {db}: {e}"));
    let store = Store::open_sqlite(&args.db)
        .await
        .map_err(|e| store_err(&e))?;
    let tenants: Vec<String> = store
        .tenants()
        .await
        .map_err(|e| store_err(&e))?
        .into_iter()
        .map(|t| t.id)
        .collect();
    Ok((store, tenants))
}

/// An entity's impact.
async fn read_impact(args: &GraphShowArgs) -> Result<ImpactView, Failure> {
    let db = args.db.display().to_string();
    let (store, tenants) = open_store(args).await?;
    let id = entity_id(&store, &args.entity).await?;
    if !impact::applies_to(id.kind()) {
        return Err(Failure::Input(format!(
            "entity {}: impact is for images, vulnerabilities, subjects and pods",
            args.entity
        )));
    }
    impact::impact(&store, &tenants, &id)
        .await
        .map_err(|e| Failure::Input(format!("--db {db}: {e}")))?
        .ok_or_else(|| Failure::Input(format!("entity {}: not in the store at {db}", args.entity)))
}

fn write_impact(out: &mut dyn Write, v: &ImpactView) -> std::io::Result<()> {
    let i = &v.impact;
    writeln!(
        out,
        "{}  impact: {} running pods",
        v.entity.id, i.pods_total
    )?;
    for image in &v.images {
        writeln!(out, "image  {image}")?;
    }
    for c in &v.clusters {
        let snapshot = c.snapshot.as_deref().unwrap_or("none");
        writeln!(
            out,
            "{}  {} RBAC objects, snapshot {snapshot}",
            c.id, c.rbac_objects
        )?;
    }
    for n in &v.notices {
        writeln!(out, "notice  {n}")?;
    }
    if !i.pods.is_empty() {
        let mut t = table(&["POD", "NODE", "REACHES NODE", "WHY", "WHO CAN REACH IT"]);
        for p in &i.pods {
            let who: Vec<String> = p
                .access
                .iter()
                .map(|a| {
                    let can: Vec<&str> = a.can.iter().map(|c| c.as_str()).collect();
                    format!("{} {} ({})", a.subject.kind, a.subject.name, can.join(", "))
                })
                .collect();
            t.add_row([
                p.id.clone(),
                p.node.clone().unwrap_or_default(),
                if p.reaches_host { "yes" } else { "" }.to_string(),
                p.reasons.join("; "),
                who.join("\n"),
            ]);
        }
        put_table(out, "\nPods", &t)?;
    }
    if !i.subjects.is_empty() {
        let mut t = table(&["SUBJECT", "CAN", "PODS"]);
        for r in &i.subjects {
            let can: Vec<&str> = r.can.iter().map(|c| c.as_str()).collect();
            t.add_row([
                format!("{} {}", r.subject.kind, r.subject.name),
                can.join(", "),
                r.pods.to_string(),
            ]);
        }
        put_table(out, "\nWho can reach them", &t)?;
    }
    if !i.secrets.is_empty() {
        let mut t = table(&["NAMESPACE", "SECRETS", "VIA"]);
        for s in &i.secrets {
            let names = if s.names.is_empty() {
                "all".to_string()
            } else {
                s.names.join(", ")
            };
            t.add_row([s.namespace.clone(), names, s.via.clone()]);
        }
        put_table(out, "\nSecrets it can read", &t)?;
    }
    Ok(())
}

/// The profile, and the findings it lists as stored (for the table).
async fn read_profile(args: &GraphShowArgs) -> Result<(Profile, Vec<StoredFinding>), Failure> {
    let db = args.db.display().to_string();
    let store_err = |e: &dyn std::fmt::Display| Failure::Input(format!("--db {db}: {e}"));
    let (store, tenants) = open_store(args).await?;
    let id = entity_id(&store, &args.entity).await?;
    // By default the scope covers the entity's life (at most a year up to its last hour).
    let rows = profiles::entity_rows(&store, &tenants, &id)
        .await
        .map_err(|e| store_err(&e))?;
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.first_ms).min(),
        rows.iter().map(|r| r.last_ms).max(),
    ) else {
        return Err(Failure::Input(format!(
            "entity {}: not in the store at {db}",
            args.entity
        )));
    };
    let time = |name: &str, text: &str| -> Result<i64, Failure> {
        text.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|_| Failure::Input(format!("--{name} {text:?}: expected an RFC 3339 time")))
    };
    let end = match &args.end {
        Some(t) => time("end", t)?,
        None => (Hour::of_ms(last).0 + 1) * HOUR_MS,
    };
    let start = match &args.start {
        Some(t) => time("start", t)?,
        None => {
            let hour = Hour::of_ms(first).0.max(end / HOUR_MS - MAX_SCOPE_HOURS);
            hour.min(end / HOUR_MS - 1) * HOUR_MS
        }
    };
    let scope = profiles::scope_of(Some(start), Some(end))
        .map_err(|e| Failure::Input(format!("--start/--end: {e}")))?;
    let profile = profiles::profile(&store, &tenants, &id, scope, args.related.max(1), 0)
        .await
        .map_err(|e| store_err(&e))?
        .ok_or_else(|| Failure::Input(format!("entity {}: not in the store", args.entity)))?;
    let mut findings = store
        .findings_by_id(&profile.findings)
        .await
        .map_err(|e| store_err(&e))?;
    findings.sort_by(|a, b| {
        b.finding
            .severity
            .label
            .cmp(&a.finding.severity.label)
            .then_with(|| a.finding.first_seen.cmp(&b.finding.first_seen))
    });
    Ok((profile, findings))
}

/// The entity an argument names; a cluster may be named instead of its id.
async fn entity_id(store: &Store, text: &str) -> Result<EntityId, Failure> {
    let bad = |why: String| Failure::Input(format!("entity {text:?}: {why}"));
    let (kind, key) = text.split_once('/').ok_or_else(|| {
        bad("expected TYPE/ID (ip/203.0.113.66, pod/CLUSTER/NAMESPACE/NAME)".into())
    })?;
    let kind = EntityType::parse(kind).ok_or_else(|| {
        bad(format!(
            "type {kind:?}: expected one of {}",
            EntityType::names()
        ))
    })?;
    let id = EntityId::parse_key(kind, key).map_err(|e| bad(e.to_string()))?;
    let Some(cluster) = id.cluster_id() else {
        return Ok(id);
    };
    let store_err = |e: osprey_store::StoreError| Failure::Input(e.to_string());
    if store.cluster(cluster).await.map_err(store_err)?.is_some() {
        return Ok(id);
    }
    let named = store
        .clusters(None)
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|c| c.name == cluster);
    match named {
        Some(c) => {
            let rest = key.strip_prefix(cluster).unwrap_or_default();
            EntityId::parse_key(kind, &format!("{}{rest}", c.id)).map_err(|e| bad(e.to_string()))
        }
        None => Err(bad(format!("no cluster named or numbered {cluster:?}"))),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header.to_vec());
    t
}

fn write_table(
    out: &mut dyn Write,
    p: &Profile,
    findings: &[StoredFinding],
) -> std::io::Result<()> {
    let e = &p.entity;
    writeln!(out, "{}  {}", e.id, e.name)?;
    writeln!(out, "seen   {} to {}", e.first_seen, e.last_seen)?;
    writeln!(out, "scope  {} to {}", p.scope.start, p.scope.end)?;
    if e.properties.as_object().is_some_and(|o| !o.is_empty()) {
        writeln!(out, "properties  {}", e.properties)?;
    }
    let a = &p.activity;
    for n in &a.notices {
        writeln!(out, "notice ({})  {}", n.kind, n.message)?;
    }
    let c = &a.api_calls;
    writeln!(
        out,
        "\nAPI calls  {} (success {}, failed {}, unauthorized {}, forbidden {})",
        c.total,
        c.by_result.success,
        c.by_result.failed,
        c.by_result.unauthorized,
        c.by_result.forbidden
    )?;
    let counts = |n: &osprey_graph::Counts| {
        [n.success, n.failed, n.unauthorized, n.forbidden].map(|v| v.to_string())
    };
    if !c.by_verb_resource.is_empty() {
        let mut t = table(&[
            "VERB",
            "RESOURCE",
            "SUCCESS",
            "FAILED",
            "UNAUTHORIZED",
            "FORBIDDEN",
        ]);
        for v in &c.by_verb_resource {
            let [s, f, u, fb] = counts(&v.counts);
            t.add_row([v.verb.clone(), v.resource.clone(), s, f, u, fb]);
        }
        put_table(out, "", &t)?;
    }
    if !c.hourly.is_empty() {
        let mut t = table(&["HOUR", "SUCCESS", "FAILED", "UNAUTHORIZED", "FORBIDDEN"]);
        for h in &c.hourly {
            let [s, f, u, fb] = counts(&h.counts);
            t.add_row([h.hour.clone(), s, f, u, fb]);
        }
        put_table(out, "\nBy hour", &t)?;
    }
    if !a.newly_observed.is_empty() {
        let mut t = table(&["KIND", "VALUE", "FIRST SEEN"]);
        for n in &a.newly_observed {
            t.add_row([n.kind.to_string(), n.value.clone(), n.first_seen.clone()]);
        }
        put_table(out, "\nNewly observed (not in the 45 days before)", &t)?;
    }
    if !a.related.is_empty() {
        let mut t = table(&["RELATION", "ENTITY", "COUNT", "FIRST SEEN", "LAST SEEN"]);
        for r in &a.related {
            let arrow = match r.direction {
                osprey_graph::profile::Direction::Out => "→",
                osprey_graph::profile::Direction::In => "←",
            };
            t.add_row([
                format!("{arrow} {}", r.relation.as_str()),
                r.id.clone(),
                r.count.to_string(),
                r.first_seen.clone(),
                r.last_seen.clone(),
            ]);
        }
        let more = if p.related_next.is_some() {
            " (more: --related N)"
        } else {
            ""
        };
        put_table(out, &format!("\nRelated{more}"), &t)?;
    }
    if !findings.is_empty() {
        let mut t = table(&["SEVERITY", "TYPE", "FIRST SEEN", "ID"]);
        for f in findings {
            let f = &f.finding;
            t.add_row([
                f.severity.label.as_str().to_string(),
                f.kind.clone(),
                f.first_seen.clone().unwrap_or_default(),
                f.id.clone(),
            ]);
        }
        put_table(out, "\nFindings", &t)?;
    }
    Ok(())
}
