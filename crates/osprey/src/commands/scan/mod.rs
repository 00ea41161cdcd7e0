//! `osprey image scan` and `osprey sbom scan`: inventory (or an SBOM's packages) matched
//! against the vulnerability database, then filters, ignore rules and VEX, then the gate.

mod ocsf;
pub(crate) mod table;

use std::collections::BTreeMap;
use std::path::Path;

use osprey_inventory::Inventory;
use osprey_model::{Finding, ImageResource, SeverityLabel};
use osprey_vuln::db::Database;
use osprey_vuln::matcher::{MatchOptions, MatchReport, match_packages};
use osprey_vuln::policy::{self, Filters, Outcome, Suppressor, ignore::IgnoreFile, vex::Vex};
use serde::Serialize;

use super::db::{db_failure, now, open_db};
use super::image::open_image;
use super::output::{emit, stdout_is_terminal};
use super::sbom::take_inventory;
use crate::cli::{SbomScanArgs, ScanArgs, ScanFormat, ScanOptions};
use crate::exit::Failure;
use crate::ui::Ui;

/// A database older than this gets a warning.
const MAX_DB_AGE_DAYS: i64 = 7;
/// The ignore file read when none is named.
const DEFAULT_IGNORE_FILE: &str = ".ospreyignore.yaml";

/// What was scanned, for the reports.
pub struct Subject<'a> {
    pub target: ImageResource,
    /// `image` or `sbom`.
    pub kind: &'static str,
    pub inventory: &'a Inventory,
    /// An SBOM subject for CycloneDX output.
    pub sbom_subject: osprey_inventory::sbom::Subject,
}

pub fn image_scan(args: ScanArgs, ui: &Ui) -> Result<i32, Failure> {
    // Everything that can fail on bad input is checked before the image is read.
    let db = open_db(&args.scan.db)?;
    let ignore = load_ignore(&args.scan, ui)?;
    let image = open_image(&args.source, &args.image)?;
    let inventory = take_inventory(&image, &args.cache, ui)?;
    let subject = Subject {
        target: ImageResource {
            reference: image.source.clone(),
            digest: image
                .manifest_digest
                .as_ref()
                .or(image.config_digest.as_ref())
                .map(ToString::to_string),
            os: inventory.os.as_ref().map(osprey_model::Os::display_name),
        },
        kind: "image",
        inventory: &inventory,
        sbom_subject: osprey_inventory::sbom::Subject::of_image(&image),
    };
    scan(&db, &subject, ignore, &args.scan, ui)
}

pub fn sbom_scan(args: SbomScanArgs, ui: &Ui) -> Result<i32, Failure> {
    let db = open_db(&args.scan.db)?;
    let ignore = load_ignore(&args.scan, ui)?;
    let decoded = osprey_inventory::sbom::decode::read(&args.file).map_err(Failure::Input)?;
    for w in &decoded.warnings {
        ui.warn(w);
    }
    let subject = Subject {
        target: ImageResource {
            reference: decoded.subject.name.clone(),
            digest: decoded
                .subject
                .version
                .clone()
                .filter(|v| v.starts_with("sha256:")),
            os: decoded
                .inventory
                .os
                .as_ref()
                .map(osprey_model::Os::display_name),
        },
        kind: "sbom",
        inventory: &decoded.inventory,
        sbom_subject: decoded.subject.clone(),
    };
    scan(&db, &subject, ignore, &args.scan, ui)
}

fn load_ignore(opts: &ScanOptions, ui: &Ui) -> Result<Option<IgnoreFile>, Failure> {
    let path = match &opts.ignore_file {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_IGNORE_FILE).is_file() => DEFAULT_IGNORE_FILE.into(),
        None => return Ok(None),
    };
    let rules = IgnoreFile::load(&path, now().to_zoned(jiff::tz::TimeZone::UTC).date())
        .map_err(Failure::Input)?;
    for (id, date) in &rules.expired {
        ui.warn(&format!(
            "{}: the rule for {id} expired on {date} and no longer applies",
            path.display()
        ));
    }
    Ok(Some(rules))
}

fn scan(
    db: &Database,
    subject: &Subject<'_>,
    ignore: Option<IgnoreFile>,
    opts: &ScanOptions,
    ui: &Ui,
) -> Result<i32, Failure> {
    let meta = db.metadata();
    if let Some(age) = meta.age(now()) {
        let days = age.as_hours() / 24;
        if days > MAX_DB_AGE_DAYS {
            ui.warn(&format!(
                "{}: the vulnerability database was built {days} days ago ({}); run `osprey db update`",
                db.label(),
                meta.built_at
            ));
        }
    }
    let mut vex = Vex::new(
        subject
            .target
            .digest
            .iter()
            .cloned()
            .chain([subject.target.reference.clone()])
            .collect(),
    );
    for path in &opts.vex {
        vex.load(path).map_err(Failure::Input)?;
    }
    let inv = subject.inventory;
    let report = match_packages(db, &inv.packages, inv.os.as_ref(), &MatchOptions::default())
        .map_err(db_failure)?;
    warn_coverage(&report, inv, ui);
    let findings = osprey_vuln::report::findings(&subject.target, &inv.packages, &report.matches);
    let mut suppressors: Vec<&dyn Suppressor> = Vec::new();
    if let Some(i) = &ignore {
        suppressors.push(i);
    }
    if !vex.is_empty() {
        suppressors.push(&vex);
    }
    let filters = Filters {
        severities: opts.severity.clone(),
        ignore_unfixed: opts.ignore_unfixed,
    };
    let outcome = policy::apply(findings, &filters, &suppressors);
    tracing::info!(
        "{} packages, {} lookups, {} findings, {} suppressed",
        inv.packages.len(),
        report.lookups,
        outcome.findings.len(),
        outcome.suppressed.len()
    );
    let format = opts
        .format
        .unwrap_or(if opts.output.is_none() && stdout_is_terminal() {
            ScanFormat::Table
        } else {
            ScanFormat::Json
        });
    let shown_suppressed: &[Finding] = if opts.show_suppressed {
        &outcome.suppressed
    } else {
        &[]
    };
    emit(opts.output.as_deref(), |out| match format {
        ScanFormat::Table => table::write(out, subject, &outcome, shown_suppressed),
        ScanFormat::Json => {
            serde_json::to_writer_pretty(
                &mut *out,
                &document(db, subject, &outcome, shown_suppressed),
            )?;
            writeln!(out)
        }
        ScanFormat::Sarif => {
            osprey_vuln::sarif::write(out, &subject.target, &outcome.findings, shown_suppressed)
        }
        ScanFormat::CyclonedxJson => {
            let mut all: Vec<Finding> = outcome.findings.clone();
            all.extend(shown_suppressed.iter().cloned());
            let doc = osprey_inventory::sbom::Document::new(
                &subject.sbom_subject,
                inv,
                env!("CARGO_PKG_VERSION"),
            )
            .with_findings(&all);
            osprey_inventory::sbom::cyclonedx::write(&doc, out)
        }
        ScanFormat::OcsfJson => ocsf::write(out, subject, &outcome.findings, shown_suppressed),
    })?;
    Ok(if outcome.findings.is_empty() {
        0
    } else {
        opts.exit_code
    })
}

/// Warns about packages that could not be checked: an OS release or ecosystem the database
/// holds nothing for.
fn warn_coverage(report: &MatchReport, inv: &Inventory, ui: &Ui) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &inv.packages {
        if let Some((eco, _)) = osprey_vuln::ecosystem::lookup_key(p, inv.os.as_ref())
            && let Some(e) = report.uncovered.get(&eco)
        {
            *counts.entry(e.as_str()).or_default() += 1;
        }
    }
    for (eco, n) in counts {
        ui.warn(&format!("the vulnerability database has no advisories for {eco}; {n} packages of it were not checked"));
    }
    if let Some(os) = &inv.os
        && osprey_vuln::ecosystem::os_ecosystem(os).is_none()
        && inv.packages.iter().any(|p| p.kind.is_os())
    {
        ui.warn(&format!(
            "{}: no advisory feed covers this operating system release; its packages were not checked",
            os.display_name()
        ));
    }
    if !report.incomparable.is_empty() {
        tracing::info!(
            "{} packages have versions their ecosystem cannot order; they were not compared",
            report.incomparable.len()
        );
    }
}

#[derive(Serialize)]
struct ScanDocument<'a> {
    schema: &'static str,
    tool: Tool,
    target: Target<'a>,
    database: DatabaseFacts<'a>,
    summary: Summary,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "<[Finding]>::is_empty")]
    suppressed: &'a [Finding],
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Target<'a> {
    kind: &'static str,
    reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'a str>,
    packages: usize,
}

#[derive(Serialize)]
struct DatabaseFacts<'a> {
    path: &'a str,
    built_at: &'a str,
}

#[derive(Serialize)]
struct Summary {
    findings: usize,
    suppressed: usize,
    by_severity: BTreeMap<&'static str, usize>,
}

fn document<'a>(
    db: &'a Database,
    subject: &'a Subject<'_>,
    outcome: &'a Outcome,
    suppressed: &'a [Finding],
) -> ScanDocument<'a> {
    let mut by_severity: BTreeMap<&'static str, usize> = SeverityLabel::ALL
        .iter()
        .filter(|l| **l != SeverityLabel::Info)
        .map(|l| (l.as_str(), 0))
        .collect();
    for f in &outcome.findings {
        *by_severity.entry(f.severity.label.as_str()).or_default() += 1;
    }
    ScanDocument {
        schema: "osprey-scan/1",
        tool: Tool {
            name: "osprey",
            version: env!("CARGO_PKG_VERSION"),
        },
        target: Target {
            kind: subject.kind,
            reference: &subject.target.reference,
            digest: subject.target.digest.as_deref(),
            os: subject.target.os.as_deref(),
            packages: subject.inventory.packages.len(),
        },
        database: DatabaseFacts {
            path: db.label(),
            built_at: &db.metadata().built_at,
        },
        summary: Summary {
            findings: outcome.findings.len(),
            suppressed: outcome.suppressed.len(),
            by_severity,
        },
        findings: &outcome.findings,
        suppressed,
    }
}
