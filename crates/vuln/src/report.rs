//! Findings from matches: advisories that are aliases of one another (a CVE, its GHSA, the
//! PYSEC and GO- records that cite them) become one finding per scanned target, listing every
//! vulnerable package with its fixes, scored from the best rating any of them carries.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use osprey_model::{
    Cvss, Finding, FixAvailable, ImageResource, Package, Resource, Severity, SeverityLabel,
    VendorSeverity, Vulnerability, VulnerablePackage,
};
use sha2::{Digest, Sha256};

use crate::advisory::{Advisory, Rating};
use crate::ecosystem;
use crate::matcher::PackageMatch;
use crate::version::Version;

/// Most references kept per finding.
const MAX_REFERENCES: usize = 24;

/// Builds the findings of one scanned target, most severe first.
pub fn findings(
    target: &ImageResource,
    packages: &[Package],
    matches: &[PackageMatch],
) -> Vec<Finding> {
    // Each match contributes its identifiers. An advisory that bundles several CVEs (a DSA,
    // a USN) stands for each of them separately and links none of them together.
    let mut entries: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let cves: Vec<&String> = m
            .advisory
            .aliases
            .iter()
            .filter(|a| a.starts_with("CVE-"))
            .collect();
        if cves.len() > 1 && !m.advisory.id.starts_with("CVE-") {
            for cve in cves {
                entries.push((i, vec![cve.clone()]));
            }
        } else {
            let mut ids = vec![m.advisory.id.clone()];
            ids.extend(m.advisory.aliases.iter().cloned());
            entries.push((i, ids));
        }
    }
    let mut sets = UnionFind::default();
    for (_, ids) in &entries {
        for id in &ids[1..] {
            sets.union(&ids[0], id);
        }
        sets.find(&ids[0]);
    }
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (n, (_, ids)) in entries.iter().enumerate() {
        groups.entry(sets.find(&ids[0])).or_default().push(n);
    }
    let mut out: Vec<Finding> = groups
        .values()
        .map(|members| finding(target, packages, matches, &entries, members))
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .label
            .cmp(&a.severity.label)
            .then_with(|| {
                b.severity
                    .score
                    .partial_cmp(&a.severity.score)
                    .unwrap_or(Ordering::Equal)
            })
            .then_with(|| a.title.cmp(&b.title))
    });
    out
}

fn finding(
    target: &ImageResource,
    packages: &[Package],
    matches: &[PackageMatch],
    entries: &[(usize, Vec<String>)],
    members: &[usize],
) -> Finding {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut advisories: Vec<&Advisory> = Vec::new();
    for &n in members {
        ids.extend(entries[n].1.iter().cloned());
        let a = &matches[entries[n].0].advisory;
        if !advisories.iter().any(|x| std::ptr::eq(*x, &**a)) {
            advisories.push(a);
        }
    }
    let primary = preferred_id(&ids);
    // Bundling advisories are not in `ids` (they would join unrelated CVEs); list them too.
    let mut aliases: BTreeSet<String> = ids.iter().filter(|i| **i != primary).cloned().collect();
    aliases.extend(
        advisories
            .iter()
            .map(|a| a.id.clone())
            .filter(|i| *i != primary),
    );

    // One entry per vulnerable package, merging what several advisories say about it.
    let mut by_package: BTreeMap<usize, VulnerablePackage> = BTreeMap::new();
    for &n in members {
        let m = &matches[entries[n].0];
        let p = &packages[m.package];
        let entry = by_package
            .entry(m.package)
            .or_insert_with(|| vulnerable_package(p, m));
        if !entry.advisories.contains(&m.advisory.id) {
            entry.advisories.push(m.advisory.id.clone());
        }
        for f in &m.fixed {
            if !entry.fixed_versions.contains(f) {
                entry.fixed_versions.push(f.clone());
            }
        }
        for r in &m.ranges {
            if !entry.vulnerable_ranges.contains(r) {
                entry.vulnerable_ranges.push(r.clone());
            }
        }
    }
    let mut vulnerable: Vec<VulnerablePackage> = by_package.into_values().collect();
    for v in &mut vulnerable {
        let scheme = ecosystem::scheme(&v.ecosystem);
        v.fixed_versions.sort_by(|a, b| {
            match (Version::parse(scheme, a), Version::parse(scheme, b)) {
                (Some(x), Some(y)) => x.compare(&y).unwrap_or(Ordering::Equal),
                _ => a.cmp(b),
            }
        });
    }
    vulnerable.sort_by(|a, b| (&a.name, &a.version, &a.path).cmp(&(&b.name, &b.version, &b.path)));
    let fix_available = FixAvailable::of(vulnerable.iter().map(|v| !v.fixed_versions.is_empty()));

    let (severity, cvss, vendor_severity) = severity(&advisories);
    let description = advisories
        .iter()
        .map(|a| a.summary.as_str())
        .find(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            advisories
                .iter()
                .map(|a| a.details.as_str())
                .find(|d| !d.is_empty())
                .map(|d| crate::feeds::clip_words(d, 500))
        })
        .unwrap_or_default();
    let mut references: Vec<String> = Vec::new();
    for r in advisories.iter().flat_map(|a| &a.references) {
        if references.len() < MAX_REFERENCES && !references.contains(r) {
            references.push(r.clone());
        }
    }
    let published = advisories.iter().filter_map(|a| a.published.clone()).min();
    let modified = advisories.iter().filter_map(|a| a.modified.clone()).max();
    let first = &vulnerable[0];
    let title = match vulnerable.len() {
        1 => format!("{primary} in {} {}", first.name, first.version),
        n => format!(
            "{primary} in {} {} and {} more",
            first.name,
            first.version,
            n - 1
        ),
    };
    let kind = match primary.split('-').next() {
        Some("CVE") | None => "Vulnerability:Package/CVE".to_string(),
        Some(prefix) => format!("Vulnerability:Package/{prefix}"),
    };
    let subject = target.digest.as_deref().unwrap_or(&target.reference);
    let id = hex::encode(
        &Sha256::digest(format!("vulnerability\0{subject}\0{primary}").as_bytes())[..16],
    );
    Finding {
        id,
        kind,
        title,
        description,
        severity,
        resource: Resource {
            image: Some(target.clone()),
            kubernetes: None,
        },
        vulnerability: Some(Vulnerability {
            id: primary,
            aliases: aliases.into_iter().collect(),
            cvss,
            vendor_severity,
            fix_available,
            packages: vulnerable,
            references,
            published,
            modified,
        }),
        count: 1,
        ..Finding::default()
    }
}

fn vulnerable_package(p: &Package, m: &PackageMatch) -> VulnerablePackage {
    let location = p.locations.first();
    VulnerablePackage {
        name: match (&p.group, p.kind) {
            (Some(g), osprey_model::PackageType::JavaArchive) => format!("{g}:{}", p.name),
            _ => p.name.clone(),
        },
        version: p.version.clone(),
        kind: p.kind,
        purl: p.purl.clone(),
        source_name: p.source_name.clone().filter(|s| *s != p.name),
        source_version: p.source_version.clone().filter(|s| *s != p.version),
        fixed_versions: Vec::new(),
        path: location.map(|l| l.path.clone()),
        layer: location.and_then(|l| l.layer),
        layer_diff_id: location.and_then(|l| l.layer_diff_id.clone()),
        advisories: Vec::new(),
        ecosystem: m.ecosystem.clone(),
        vulnerable_ranges: Vec::new(),
    }
}

/// CVE first, then GHSA, then any other id; the lowest of a kind.
fn preferred_id(ids: &BTreeSet<String>) -> String {
    let rank = |id: &str| match id.split('-').next() {
        Some("CVE") => 0,
        Some("GHSA") => 1,
        _ => 2,
    };
    ids.iter()
        .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)))
        .cloned()
        .unwrap_or_default()
}

/// The finding's severity: the highest CVSS v3 base score among the advisories, else v4,
/// else v2, else a bare score, else the most severe label a source gave.
fn severity(advisories: &[&Advisory]) -> (Severity, Vec<Cvss>, Vec<VendorSeverity>) {
    let mut cvss: Vec<Cvss> = Vec::new();
    let mut scores: Vec<(String, f64)> = Vec::new();
    let mut labels: Vec<VendorSeverity> = Vec::new();
    for a in advisories {
        for r in a
            .ratings
            .iter()
            .chain(a.affected.iter().flat_map(|x| &x.ratings))
        {
            match r {
                Rating::Cvss { vector, score } => {
                    if !cvss.iter().any(|c| c.vector == *vector) {
                        cvss.push(Cvss {
                            version: crate::advisory::cvss_version(vector).to_string(),
                            vector: vector.clone(),
                            base_score: *score,
                            source: a.id.clone(),
                        });
                    }
                }
                Rating::Score { version, score, .. } => scores.push((version.clone(), *score)),
                Rating::Label { source, label } => {
                    let v = VendorSeverity {
                        source: source.clone(),
                        label: label.clone(),
                    };
                    if !labels.contains(&v) {
                        labels.push(v);
                    }
                }
            }
        }
    }
    let best = |pred: &dyn Fn(&str) -> bool| {
        cvss.iter()
            .filter(|c| pred(&c.version))
            .map(|c| c.base_score)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
    };
    let score = best(&|v| v.starts_with('3'))
        .or_else(|| best(&|v| v.starts_with('4')))
        .or_else(|| best(&|v| v.starts_with('2')))
        .or_else(|| {
            scores
                .iter()
                .map(|s| s.1)
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
        });
    let severity = match score {
        Some(s) => Severity::from_score(s),
        None => Severity::label(
            labels
                .iter()
                .filter_map(|l| SeverityLabel::parse_loose(&l.label))
                .max()
                .unwrap_or(SeverityLabel::Untriaged),
        ),
    };
    (severity, cvss, labels)
}

/// Disjoint sets of identifiers.
#[derive(Default)]
struct UnionFind {
    parent: HashMap<String, String>,
}

impl UnionFind {
    fn find(&mut self, x: &str) -> String {
        let mut root = x.to_string();
        loop {
            match self.parent.get(&root) {
                Some(p) if *p != root => root = p.clone(),
                Some(_) => break,
                None => {
                    self.parent.insert(root.clone(), root.clone());
                    break;
                }
            }
        }
        // Path compression.
        let mut cur = x.to_string();
        while cur != root {
            let next = self
                .parent
                .insert(cur.clone(), root.clone())
                .unwrap_or_else(|| root.clone());
            cur = next;
        }
        root
    }

    fn union(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller id becomes the root, so groups are named the same every run.
            let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(child, root);
        }
    }
}
