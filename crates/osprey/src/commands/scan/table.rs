//! The table for people: findings grouped by target (the OS packages, each lock file or
//! binary, each language's installed packages), one row per vulnerable package, severities
//! coloured on a terminal.

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::{Cell, Color, Table, presets::NOTHING};
use osprey_model::{Finding, SeverityLabel, VulnerablePackage};
use osprey_vuln::policy::Outcome;

use super::Subject;
use crate::commands::output::put_table;

/// Longest title shown in a row.
const TITLE_CHARS: usize = 60;

pub fn write(
    out: &mut dyn Write,
    subject: &Subject<'_>,
    outcome: &Outcome,
    suppressed: &[Finding],
) -> std::io::Result<()> {
    let target = &subject.target;
    writeln!(
        out,
        "{}{}",
        target.reference,
        target
            .digest
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "OS: {}", target.os.as_deref().unwrap_or("unknown"))?;
    let total: usize = outcome
        .findings
        .iter()
        .map(|f| f.vulnerability.as_ref().map_or(0, |v| v.packages.len()))
        .sum();
    writeln!(
        out,
        "{} vulnerabilities ({}), {} affected packages{}",
        outcome.findings.len(),
        by_severity(&outcome.findings),
        total,
        if outcome.suppressed.is_empty() {
            String::new()
        } else {
            format!(", {} suppressed", outcome.suppressed.len())
        }
    )?;
    write_groups(out, subject, &outcome.findings, false)?;
    if !suppressed.is_empty() {
        writeln!(out, "\nSuppressed:")?;
        write_groups(out, subject, suppressed, true)?;
    }
    Ok(())
}

fn write_groups(
    out: &mut dyn Write,
    subject: &Subject<'_>,
    findings: &[Finding],
    suppressed: bool,
) -> std::io::Result<()> {
    let mut groups: BTreeMap<String, Vec<(&Finding, &VulnerablePackage)>> = BTreeMap::new();
    for f in findings {
        for p in f.vulnerability.iter().flat_map(|v| &v.packages) {
            groups.entry(group_of(subject, p)).or_default().push((f, p));
        }
    }
    let colour = std::env::var_os("NO_COLOR").is_none();
    for (group, rows) in groups {
        let mut header = vec![
            "PACKAGE",
            "VULNERABILITY",
            "SEVERITY",
            "INSTALLED",
            "FIXED",
            "LAYER",
            "TITLE",
        ];
        if suppressed {
            header.push("SUPPRESSED BY");
        }
        let mut t = Table::new();
        t.load_preset(NOTHING);
        if !colour {
            t.force_no_tty();
        }
        t.set_header(header);
        for (f, p) in rows {
            let v = f.vulnerability.as_ref().expect("vulnerability findings");
            let severity = match f.severity.score {
                Some(s) => format!("{} {s:.1}", f.severity.label),
                None => f.severity.label.to_string(),
            };
            let mut row = vec![
                Cell::new(&p.name),
                Cell::new(&v.id),
                Cell::new(severity).fg(color(f.severity.label)),
                Cell::new(&p.version),
                Cell::new(p.fixed_versions.first().map_or("-", String::as_str)),
                Cell::new(p.layer.map_or("-".to_string(), |l| (l + 1).to_string())),
                Cell::new(clip(&f.description)),
            ];
            if let Some(s) = &f.suppression {
                let why = if s.reason.is_empty() {
                    s.status.clone()
                } else {
                    format!("{}: {}", s.status, s.reason)
                };
                row.push(Cell::new(format!("{} ({why})", s.by)));
            }
            t.add_row(row);
        }
        writeln!(out)?;
        put_table(out, &group, &t)?;
    }
    Ok(())
}

/// The target a package belongs to: OS packages together, installed language packages per
/// ecosystem, lock files and binaries per file.
fn group_of(subject: &Subject<'_>, p: &VulnerablePackage) -> String {
    if p.kind.is_os() {
        return format!(
            "{} ({})",
            subject.target.os.as_deref().unwrap_or("OS packages"),
            p.kind
        );
    }
    let file = p
        .path
        .as_deref()
        .and_then(|x| x.rsplit(['/', '!']).next())
        .unwrap_or("");
    let installed = matches!(file, "METADATA" | "PKG-INFO" | "package.json")
        || file.ends_with(".gemspec")
        || file.ends_with(".egg-info");
    match &p.path {
        Some(path) if !installed => format!("{path} ({})", p.kind),
        _ => format!("{} packages ({})", p.ecosystem, p.kind),
    }
}

/// The colour of a severity on a terminal (shared by every table).
pub(crate) fn color(label: SeverityLabel) -> Color {
    match label {
        SeverityLabel::Critical => Color::Red,
        SeverityLabel::High => Color::DarkRed,
        SeverityLabel::Medium => Color::Yellow,
        SeverityLabel::Low => Color::Blue,
        SeverityLabel::Info | SeverityLabel::Untriaged => Color::Grey,
    }
}

fn by_severity(findings: &[Finding]) -> String {
    let mut parts = Vec::new();
    // Vulnerabilities are never rated Info (that label is for audit trails).
    for label in SeverityLabel::ALL
        .iter()
        .rev()
        .filter(|l| **l != SeverityLabel::Info)
    {
        let n = findings
            .iter()
            .filter(|f| f.severity.label == *label)
            .count();
        parts.push(format!("{label}: {n}"));
    }
    parts.join(", ")
}

fn clip(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(TITLE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}
