//! `osprey db …`: build the vulnerability database from local feeds, describe it.

use std::io::Write;
use std::path::{Path, PathBuf};

use comfy_table::{Table, presets::NOTHING};
use osprey_vuln::db::{Builder, Database, DbError, Metadata, SourceInfo};
use osprey_vuln::feeds::{self, FeedError, Ingest};

use super::output::{emit, put_table};
use crate::cli::{DbArgs, DbBuildArgs, DbCommand, DbInfoArgs, InspectFormat};
use crate::exit::Failure;
use crate::ui::Ui;

/// Problems printed one by one before the rest are only counted.
const PROBLEMS_SHOWN: usize = 20;

pub fn run(cmd: DbCommand, ui: &Ui) -> Result<i32, Failure> {
    match cmd {
        DbCommand::Build(args) => build(args, ui),
        DbCommand::Update(args) => super::db_update::update(args, ui),
        DbCommand::Info(args) => info(args),
    }
}

/// The database path: `--db`/`$OSPREY_DB`, else `db/osprey.db` in the cache directory.
pub fn db_path(args: &DbArgs) -> Result<PathBuf, Failure> {
    if let Some(p) = &args.db {
        return Ok(p.clone());
    }
    osprey_inventory::Cache::default_dir()
        .map(|d| d.join("db").join("osprey.db"))
        .ok_or_else(|| {
            Failure::Input("no database path: pass --db or set OSPREY_DB (HOME is not set)".into())
        })
}

/// Opens the database for a scan, with a one-line reason when it is missing or damaged.
pub fn open_db(args: &DbArgs) -> Result<Database, Failure> {
    let path = db_path(args)?;
    if !path.exists() {
        return Err(Failure::Input(format!(
            "{}: no vulnerability database here; run `osprey db update`, or `osprey db build` from local feeds",
            path.display()
        )));
    }
    Database::open(&path).map_err(db_failure)
}

pub fn db_failure(e: DbError) -> Failure {
    match e {
        DbError::Io { .. }
        | DbError::NotADatabase { .. }
        | DbError::UnsupportedFormat { .. }
        | DbError::Corrupt { .. } => Failure::Input(e.to_string()),
    }
}

/// Now, or `SOURCE_DATE_EPOCH` when set (reproducible builds and tests).
pub fn now() -> jiff::Timestamp {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or_else(jiff::Timestamp::now)
}

/// Imports one feed.
pub type Importer = fn(&Path, &feeds::Limits) -> Result<Ingest, FeedError>;

/// One feed to import: its kind, where its files are, and where it came from.
pub struct FeedJob {
    pub kind: &'static str,
    pub path: PathBuf,
    /// Shown in `db info`: the path, or the URL it was downloaded from.
    pub location: String,
    pub import: Importer,
}

impl FeedJob {
    pub fn local(kind: &'static str, path: &Path, import: Importer) -> FeedJob {
        FeedJob {
            kind,
            path: path.to_path_buf(),
            location: path.display().to_string(),
            import,
        }
    }
}

fn build(args: DbBuildArgs, ui: &Ui) -> Result<i32, Failure> {
    let mut jobs = Vec::new();
    jobs.extend(
        args.osv
            .iter()
            .map(|p| FeedJob::local("osv", p, feeds::osv::import)),
    );
    jobs.extend(
        args.alpine_secdb
            .iter()
            .map(|p| FeedJob::local("alpine-secdb", p, feeds::alpine::import)),
    );
    jobs.extend(
        args.debian_tracker
            .iter()
            .map(|p| FeedJob::local("debian-tracker", p, feeds::debian::import)),
    );
    jobs.extend(
        args.rubysec
            .iter()
            .map(|p| FeedJob::local("rubysec", p, feeds::rubysec::import)),
    );
    if jobs.is_empty() {
        return Err(Failure::Input(
            "db build: no feeds given; pass --osv, --alpine-secdb, --debian-tracker or --rubysec"
                .into(),
        ));
    }
    let out = match &args.out {
        Some(p) => p.clone(),
        None => db_path(&DbArgs { db: None })?,
    };
    build_database(&jobs, &out, args.strict, false, ui)?;
    Ok(0)
}

/// Imports the feeds (in parallel: each is independent and mostly parsing) and writes the
/// database to `out` atomically; with `keep_previous`, the database it replaces is kept as
/// `<out>.previous`.
pub fn build_database(
    jobs: &[FeedJob],
    out: &Path,
    strict: bool,
    keep_previous: bool,
    ui: &Ui,
) -> Result<Metadata, Failure> {
    let limits = feeds::Limits::default();
    let bar = ui.progress(jobs.len() as u64, "importing feeds");
    let results: Vec<Result<Ingest, FeedError>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (limits, bar) = (&limits, &bar);
                s.spawn(move || {
                    let r = (job.import)(&job.path, limits);
                    bar.inc(1);
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("feed import panicked"))
            .collect()
    });
    bar.finish_and_clear();
    let mut builder = Builder::new();
    let mut problems = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        let ingest = result.map_err(|e| Failure::Input(e.to_string()))?;
        tracing::info!(
            "{} {}: {} records, {} advisories, {} withdrawn, {} skipped, {} malformed",
            job.kind,
            job.location,
            ingest.records,
            ingest.advisories.len(),
            ingest.withdrawn,
            ingest.skipped,
            ingest.problems.len()
        );
        let source = SourceInfo {
            kind: job.kind.to_string(),
            location: job.location.clone(),
            records: ingest.records,
            advisories: ingest.advisories.len(),
            withdrawn: ingest.withdrawn,
            skipped: ingest.skipped,
            problems: ingest.problems.len(),
        };
        problems.extend(ingest.problems);
        builder.add(source, ingest.advisories);
    }
    if strict && !problems.is_empty() {
        return Err(Failure::Input(format!(
            "{} (and {} more malformed records)",
            problems[0],
            problems.len() - 1
        )));
    }
    for p in problems.iter().take(PROBLEMS_SHOWN) {
        ui.warn(&format!("skipped {p}"));
    }
    if problems.len() > PROBLEMS_SHOWN {
        ui.warn(&format!(
            "skipped {} more malformed records (see --log-level info)",
            problems.len() - PROBLEMS_SHOWN
        ));
        for p in &problems[PROBLEMS_SHOWN..] {
            tracing::info!("skipped {p}");
        }
    }
    if keep_previous && out.is_file() {
        keep_as_previous(out).map_err(|e| {
            Failure::Input(format!(
                "{}: keeping the previous database: {e}",
                out.display()
            ))
        })?;
    }
    let meta = builder
        .write(out, now())
        .map_err(|e| Failure::Input(e.to_string()))?;
    if !ui.is_quiet() {
        eprintln!(
            "osprey: wrote {}: {} advisories for {} packages in {} ecosystems ({} malformed records skipped)",
            out.display(),
            meta.advisories,
            meta.packages,
            meta.ecosystems.len(),
            problems.len()
        );
    }
    Ok(meta)
}

/// Links the current database to `<db>.previous` (replacing an older one atomically), so the
/// current file stays in place until the new one is renamed over it.
fn keep_as_previous(db: &Path) -> std::io::Result<()> {
    let mut previous = db.as_os_str().to_owned();
    previous.push(".previous");
    let mut staging = previous.clone();
    staging.push(".tmp");
    let _ = std::fs::remove_file(&staging);
    if std::fs::hard_link(db, &staging).is_err() {
        std::fs::copy(db, &staging)?;
    }
    std::fs::rename(&staging, &previous)
}

fn info(args: DbInfoArgs) -> Result<i32, Failure> {
    let path = db_path(&args.db)?;
    let db = Database::open(&path).map_err(db_failure)?;
    let meta = db.metadata();
    emit(None, |out| match args.format {
        InspectFormat::Json => {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({ "path": path, "metadata": meta }),
            )?;
            writeln!(out)
        }
        InspectFormat::Table => write_info(out, &path, meta),
    })?;
    Ok(0)
}

fn write_info(out: &mut dyn Write, path: &Path, meta: &Metadata) -> std::io::Result<()> {
    writeln!(out, "Database:   {}", path.display())?;
    writeln!(out, "Format:     {}", meta.format)?;
    let age = meta
        .age(now())
        .map(|a| format!(" ({} days ago)", a.as_hours() / 24))
        .unwrap_or_default();
    writeln!(
        out,
        "Built:      {}{age} by {}",
        meta.built_at, meta.built_by
    )?;
    writeln!(
        out,
        "Advisories: {} for {} packages",
        meta.advisories, meta.packages
    )?;
    writeln!(out)?;
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec![
        "SOURCE",
        "LOCATION",
        "RECORDS",
        "ADVISORIES",
        "WITHDRAWN",
        "SKIPPED",
        "MALFORMED",
    ]);
    for s in &meta.sources {
        t.add_row(vec![
            s.kind.clone(),
            s.location.clone(),
            s.records.to_string(),
            s.advisories.to_string(),
            s.withdrawn.to_string(),
            s.skipped.to_string(),
            s.problems.to_string(),
        ]);
    }
    put_table(out, "", &t)?;
    writeln!(out)?;
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec!["ECOSYSTEM", "ADVISORIES", "PACKAGES"]);
    for (e, c) in &meta.ecosystems {
        t.add_row(vec![
            e.clone(),
            c.advisories.to_string(),
            c.packages.to_string(),
        ]);
    }
    put_table(out, "", &t)
}
