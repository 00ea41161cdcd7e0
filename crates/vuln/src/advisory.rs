//! Advisories as the database stores them: OSV's model, trimmed to what matching and reports
//! need, in plain types that encode compactly (no optional-field tricks, so any serde format
//! reads them back).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ecosystem;
use crate::version::{Scheme, Version};

/// One advisory from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    /// Other identifiers of the same vulnerability.
    pub aliases: Vec<String>,
    pub summary: String,
    pub details: String,
    /// RFC 3339, as the source writes it.
    pub published: Option<String>,
    pub modified: Option<String>,
    pub ratings: Vec<Rating>,
    pub references: Vec<String>,
    /// The feed it came from (`osv`, `alpine-secdb`, `debian-tracker`, `debian-dsa`, `rubysec`).
    pub source: String,
    /// Set for advisories that are not vulnerabilities (RustSec's `unmaintained`, `unsound`).
    pub informational: Option<String>,
    pub affected: Vec<Affected>,
}

/// How severe a source says a vulnerability is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Rating {
    /// A CVSS vector and the base score computed from it.
    Cvss { vector: String, score: f64 },
    /// A label from a source without a vector (`GHSA: MODERATE`, `debian: low`).
    Label { source: String, label: String },
    /// A CVSS base score given without its vector (RubySec's `cvss_v3: 6.3`).
    Score {
        source: String,
        version: String,
        score: f64,
    },
}

impl Rating {
    /// `2.0`, `3.0`, `3.1`, `4.0` for CVSS ratings.
    pub fn cvss_version(&self) -> Option<&str> {
        match self {
            Rating::Cvss { vector, .. } => Some(cvss_version(vector)),
            Rating::Score { version, .. } => Some(version),
            Rating::Label { .. } => None,
        }
    }
}

/// The CVSS version a vector is written in.
pub fn cvss_version(vector: &str) -> &str {
    match vector.split('/').next() {
        Some("CVSS:4.0") => "4.0",
        Some("CVSS:3.1") => "3.1",
        Some("CVSS:3.0") => "3.0",
        _ => "2.0",
    }
}

/// The packages of one ecosystem an advisory affects, and which of their versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// Canonical OSV ecosystem (`PyPI`, `Debian:12`).
    pub ecosystem: String,
    /// Normalized as the ecosystem compares names.
    pub name: String,
    pub ranges: Vec<Range>,
    /// Affected versions listed one by one.
    pub versions: Vec<String>,
    /// Ratings that apply to this package only.
    pub ratings: Vec<Rating>,
}

/// A set of affected versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Range {
    /// OSV `ECOSYSTEM` events, ordered with the ecosystem's ordering.
    Ecosystem(Vec<Event>),
    /// OSV `SEMVER` events.
    Semver(Vec<Event>),
    /// Every version outside all of these requirement sets is affected (RubySec's patched and
    /// unaffected versions). Each set is a conjunction of constraints.
    Outside(Vec<Vec<Constraint>>),
}

/// An OSV range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// A version constraint (`>= 2.2.1`, `~> 5.2.4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub op: Op,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// RubyGems' pessimistic operator: `~> 2.2` means `>= 2.2, < 3`; `~> 2.2.8` means
    /// `>= 2.2.8, < 2.3`.
    Pessimistic,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Pessimistic => "~>",
        }
    }
}

/// Whether one installed version is affected by one [`Affected`] entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    NotAffected,
    Affected {
        /// Versions that fix it, lowest first (only those above the installed version).
        fixed: Vec<String>,
        /// The affected ranges, written out (`>=4.0, <4.3`), as evidence.
        ranges: Vec<String>,
    },
    /// The installed version does not parse in the ecosystem's ordering.
    Incomparable,
}

impl Affected {
    /// Evaluates `installed` against this entry with OSV's rules: affected when it is listed in
    /// `versions` or falls in any range.
    pub fn evaluate(&self, installed: &str) -> Verdict {
        let scheme = ecosystem::scheme(&self.ecosystem);
        let mut parsed = ParsedCache::default();
        let mut comparable = false;
        let mut affected = false;
        let mut fixed: Vec<(Version, String)> = Vec::new();
        let mut ranges = Vec::new();
        if let Some(v) = parsed.get(scheme, installed) {
            comparable = true;
            if self.versions.iter().any(|x| {
                Version::parse(scheme, x).is_some_and(|x| x.compare(v) == Some(Ordering::Equal))
            }) {
                affected = true;
                ranges.push(format!("={installed}"));
            }
        } else if self.versions.iter().any(|x| x == installed) {
            comparable = true;
            affected = true;
            ranges.push(format!("={installed}"));
        }
        for range in &self.ranges {
            let (events, scheme) = match range {
                Range::Ecosystem(e) => (e, scheme),
                Range::Semver(e) => (e, ecosystem::semver_scheme(&self.ecosystem)),
                Range::Outside(sets) => {
                    let Some(v) = parsed.get(scheme, installed) else {
                        continue;
                    };
                    comparable = true;
                    match outside(sets, scheme, v) {
                        Some(fixes) => {
                            affected = true;
                            ranges.push(describe_outside(sets));
                            for f in fixes {
                                if let Some(fv) = Version::parse(scheme, &f) {
                                    fixed.push((fv, f));
                                }
                            }
                        }
                        None => continue,
                    }
                    continue;
                }
            };
            let Some(v) = parsed.get(scheme, installed) else {
                continue;
            };
            comparable = true;
            if let Some(fix) = in_events(events, scheme, v) {
                affected = true;
                ranges.push(describe_events(events));
                if let Some(f) = fix
                    && let Some(fv) = Version::parse(scheme, &f)
                {
                    fixed.push((fv, f));
                }
            }
        }
        if !comparable {
            return Verdict::Incomparable;
        }
        if !affected {
            return Verdict::NotAffected;
        }
        fixed.sort_by(|a, b| a.0.compare(&b.0).unwrap_or(Ordering::Equal));
        let mut fixed: Vec<String> = fixed.into_iter().map(|(_, s)| s).collect();
        fixed.dedup();
        ranges.dedup();
        Verdict::Affected { fixed, ranges }
    }
}

/// The installed version parsed once per scheme.
#[derive(Default)]
struct ParsedCache {
    entries: Vec<(Scheme, Option<Version>)>,
}

impl ParsedCache {
    fn get(&mut self, scheme: Scheme, text: &str) -> Option<&Version> {
        let at = match self.entries.iter().position(|(s, _)| *s == scheme) {
            Some(at) => at,
            None => {
                self.entries.push((scheme, Version::parse(scheme, text)));
                self.entries.len() - 1
            }
        };
        self.entries[at].1.as_ref()
    }
}

/// OSV's range evaluation: events sorted by version (`introduced: 0` first); walking them,
/// an `introduced` at or below the version turns "affected" on, a `fixed` at or below it or
/// a `last_affected` below it turns it off, a `limit` at or below it ends the range.
/// Returns `Some(next fix)` when affected.
fn in_events(events: &[Event], scheme: Scheme, v: &Version) -> Option<Option<String>> {
    let mut sorted: Vec<(Option<Version>, &Event)> = Vec::with_capacity(events.len());
    for e in events {
        let parsed = match e {
            Event::Introduced(x) if x == "0" => None,
            _ => Some(Version::parse(scheme, e.version())?),
        };
        sorted.push((parsed, e));
    }
    // `introduced: 0` sorts first; at equal versions, keep the record's order.
    sorted.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    let mut index_on = 0;
    for (i, (ev, e)) in sorted.iter().enumerate() {
        let cmp = ev.as_ref().map_or(Ordering::Less, |ev| {
            ev.compare(v).unwrap_or(Ordering::Greater)
        });
        match e {
            Event::Introduced(_) if cmp != Ordering::Greater => {
                affected = true;
                index_on = i;
            }
            Event::Fixed(_) if cmp != Ordering::Greater => affected = false,
            Event::LastAffected(_) if cmp == Ordering::Less => affected = false,
            Event::Limit(_) if cmp != Ordering::Greater => affected = false,
            _ => {}
        }
    }
    if !affected {
        return None;
    }
    // The fix is the first `fixed` after the `introduced` that switched "affected" on.
    let fix = sorted[index_on..].iter().find_map(|(ev, e)| match e {
        Event::Fixed(f)
            if ev
                .as_ref()
                .is_some_and(|ev| ev.compare(v) == Some(Ordering::Greater)) =>
        {
            Some(f.clone())
        }
        _ => None,
    });
    Some(fix)
}

/// `>=4.0, <4.3 || >=5.0, <5.2` from a list of events.
pub fn describe_events(events: &[Event]) -> String {
    let mut parts = Vec::new();
    let mut lower: Option<&str> = None;
    for e in events {
        match e {
            Event::Introduced(v) => {
                if let Some(l) = lower.take() {
                    parts.push(format!(">={l}"));
                }
                lower = Some(v);
            }
            Event::Fixed(v) | Event::Limit(v) => {
                parts.push(bounded(lower.take(), &format!("<{v}")))
            }
            Event::LastAffected(v) => parts.push(bounded(lower.take(), &format!("<={v}"))),
        }
    }
    if let Some(l) = lower {
        parts.push(if l == "0" {
            "*".to_string()
        } else {
            format!(">={l}")
        });
    }
    parts.join(" || ")
}

fn bounded(lower: Option<&str>, upper: &str) -> String {
    match lower {
        Some(l) if l != "0" => format!(">={l}, {upper}"),
        _ => upper.to_string(),
    }
}

fn describe_outside(sets: &[Vec<Constraint>]) -> String {
    let sets: Vec<String> = sets
        .iter()
        .map(|set| {
            set.iter()
                .map(|c| format!("{} {}", c.op.as_str(), c.version))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    format!("not ({})", sets.join(" || "))
}

/// `Some(fix candidates)` when `v` satisfies none of the sets; the candidates are the lower
/// bounds of the sets above `v`.
fn outside(sets: &[Vec<Constraint>], scheme: Scheme, v: &Version) -> Option<Vec<String>> {
    let mut fixes = Vec::new();
    for set in sets {
        if set.iter().all(|c| satisfies(c, scheme, v)) {
            return None;
        }
        for c in set {
            if matches!(c.op, Op::Ge | Op::Pessimistic | Op::Eq)
                && Version::parse(scheme, &c.version).and_then(|x| x.compare(v))
                    == Some(Ordering::Greater)
            {
                fixes.push(c.version.clone());
            }
        }
    }
    Some(fixes)
}

fn satisfies(c: &Constraint, scheme: Scheme, v: &Version) -> bool {
    let Some(target) = Version::parse(scheme, &c.version) else {
        return false;
    };
    let Some(ord) = v.compare(&target) else {
        return false;
    };
    match c.op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Pessimistic => {
            if ord == Ordering::Less {
                return false;
            }
            let upper = pessimistic_upper(&c.version);
            Version::parse(scheme, &upper).and_then(|u| v.compare(&u)) == Some(Ordering::Less)
        }
    }
}

/// The exclusive upper bound of `~> X`: drop the last numeric part (and anything after the
/// first non-numeric one) and bump the new last part; `~> 2` is `< 3`.
fn pessimistic_upper(version: &str) -> String {
    let mut parts: Vec<&str> = version
        .split('.')
        .take_while(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
        .collect();
    if parts.len() > 1 {
        parts.pop();
    }
    let mut nums: Vec<u64> = parts
        .iter()
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect();
    if let Some(last) = nums.last_mut() {
        *last = last.saturating_add(1);
    }
    nums.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(ecosystem: &str, ranges: Vec<Range>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: ecosystem.into(),
            name: "x".into(),
            ranges,
            versions: versions.iter().map(|s| s.to_string()).collect(),
            ratings: vec![],
        }
    }

    fn intro(v: &str) -> Event {
        Event::Introduced(v.into())
    }
    fn fixed(v: &str) -> Event {
        Event::Fixed(v.into())
    }

    fn is_affected(a: &Affected, v: &str) -> Option<Vec<String>> {
        match a.evaluate(v) {
            Verdict::Affected { fixed, .. } => Some(fixed),
            _ => None,
        }
    }

    #[test]
    fn ecosystem_ranges_with_two_branches() {
        let a = affected(
            "PyPI",
            vec![Range::Ecosystem(vec![
                intro("4.0"),
                fixed("4.3"),
                intro("5.0"),
                fixed("5.2"),
            ])],
            &[],
        );
        assert_eq!(is_affected(&a, "3.9"), None);
        assert_eq!(is_affected(&a, "4.0"), Some(vec!["4.3".into()]));
        assert_eq!(is_affected(&a, "4.2.9"), Some(vec!["4.3".into()]));
        assert_eq!(is_affected(&a, "4.3"), None);
        assert_eq!(is_affected(&a, "4.9"), None);
        assert_eq!(is_affected(&a, "5.1"), Some(vec!["5.2".into()]));
        assert_eq!(is_affected(&a, "5.2"), None);
        assert_eq!(
            is_affected(&a, "5.2.0rc1"),
            Some(vec!["5.2".into()]),
            "a pre-release of the fix is before it"
        );
    }

    #[test]
    fn unordered_events_are_sorted_first() {
        let a = affected(
            "PyPI",
            vec![Range::Ecosystem(vec![
                fixed("5.2"),
                intro("5.0"),
                fixed("4.3"),
                intro("0"),
            ])],
            &[],
        );
        assert_eq!(is_affected(&a, "1.0"), Some(vec!["4.3".into()]));
        assert_eq!(is_affected(&a, "4.5"), None);
        assert_eq!(is_affected(&a, "5.0"), Some(vec!["5.2".into()]));
    }

    #[test]
    fn last_affected_and_limit() {
        let a = affected(
            "Go",
            vec![Range::Semver(vec![
                intro("0"),
                Event::LastAffected("1.2.3".into()),
            ])],
            &[],
        );
        assert_eq!(is_affected(&a, "v1.2.3"), Some(vec![]));
        assert_eq!(is_affected(&a, "v1.2.4"), None);
        let a = affected(
            "Go",
            vec![Range::Semver(vec![
                intro("1.0.0"),
                Event::Limit("2.0.0".into()),
            ])],
            &[],
        );
        assert_eq!(is_affected(&a, "v1.5.0"), Some(vec![]));
        assert_eq!(is_affected(&a, "v2.0.0"), None);
    }

    #[test]
    fn no_fix_means_every_later_version() {
        let a = affected("Debian:12", vec![Range::Ecosystem(vec![intro("0")])], &[]);
        assert_eq!(is_affected(&a, "1:2.3-4"), Some(vec![]));
    }

    #[test]
    fn versions_list() {
        let a = affected("PyPI", vec![], &["1.0", "1.1"]);
        assert_eq!(is_affected(&a, "1.1.0"), Some(vec![]), "PEP 440 equality");
        assert_eq!(is_affected(&a, "1.2"), None);
    }

    #[test]
    fn distro_orderings_apply() {
        let a = affected(
            "Debian:12",
            vec![Range::Ecosystem(vec![
                intro("0"),
                fixed("3.0.11-1~deb12u2"),
            ])],
            &[],
        );
        assert_eq!(
            is_affected(&a, "3.0.11-1~deb12u1"),
            Some(vec!["3.0.11-1~deb12u2".into()])
        );
        assert_eq!(is_affected(&a, "3.0.11-1~deb12u2"), None);
        assert_eq!(is_affected(&a, "3.0.13-1~deb12u1"), None);
        let a = affected(
            "Alpine:v3.10",
            vec![Range::Ecosystem(vec![intro("0"), fixed("1.1.1d-r2")])],
            &[],
        );
        assert_eq!(is_affected(&a, "1.1.1d-r0"), Some(vec!["1.1.1d-r2".into()]));
        assert_eq!(is_affected(&a, "1.1.1g-r0"), None);
    }

    #[test]
    fn incomparable_versions_are_reported() {
        let a = affected(
            "Debian:12",
            vec![Range::Ecosystem(vec![intro("0"), fixed("1.0-1")])],
            &[],
        );
        assert_eq!(a.evaluate("not a version!"), Verdict::Incomparable);
    }

    #[test]
    fn outside_requirement_sets() {
        let req = |op, v: &str| Constraint {
            op,
            version: v.into(),
        };
        let a = affected(
            "RubyGems",
            vec![Range::Outside(vec![
                vec![req(Op::Pessimistic, "2.2.8"), req(Op::Ge, "2.2.8.1")],
                vec![req(Op::Ge, "2.3.1")],
                vec![req(Op::Lt, "2.0")],
            ])],
            &[],
        );
        assert_eq!(is_affected(&a, "1.9"), None, "unaffected below 2.0");
        assert_eq!(
            is_affected(&a, "2.2.8"),
            Some(vec!["2.2.8.1".into(), "2.3.1".into()])
        );
        assert_eq!(is_affected(&a, "2.2.8.1"), None);
        assert_eq!(is_affected(&a, "2.2.9"), None);
        assert_eq!(
            is_affected(&a, "2.3.0"),
            Some(vec!["2.3.1".into()]),
            "~> 2.2.8 stops before 2.3"
        );
        assert_eq!(is_affected(&a, "2.3.1"), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe_events(&[intro("4.0"), fixed("4.3"), intro("5.0"), fixed("5.2")]),
            ">=4.0, <4.3 || >=5.0, <5.2"
        );
        assert_eq!(describe_events(&[intro("0"), fixed("1.2")]), "<1.2");
        assert_eq!(describe_events(&[intro("0")]), "*");
        assert_eq!(
            describe_events(&[intro("1.0"), Event::LastAffected("1.4".into())]),
            ">=1.0, <=1.4"
        );
        assert_eq!(pessimistic_upper("2.2.8"), "2.3");
        assert_eq!(pessimistic_upper("2"), "3");
        assert_eq!(pessimistic_upper("5.2.4.rc1"), "5.3");
    }
}
