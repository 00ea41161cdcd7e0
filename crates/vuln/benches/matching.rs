//! Opening the vulnerability database and matching a 2,500-package inventory against it: a
//! database of real feeds (testdata/vulndb, or whole feeds laid out the same way in the folder
//! OSPREY_BENCH_VULNDB names), and a synthetic one of 500,000 advisories to show how both scale. Targets (issue 4): open < 20 ms, match < 50 ms.
//!
//! The packages are chosen so that every lookup finds advisories (names from the database,
//! versions from their ranges): the expensive case, not the common one where most packages of
//! an image have none.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use osprey_model::{Os, Package, PackageType};
use osprey_testkit::tools::testdata;
use osprey_vuln::advisory::{Advisory, Affected, Event, Range, Rating};
use osprey_vuln::db::{Builder, Database, SourceInfo};
use osprey_vuln::feeds;
use osprey_vuln::matcher::{MatchOptions, match_packages};

fn source(n: usize) -> SourceInfo {
    SourceInfo {
        kind: "osv".into(),
        location: "bench".into(),
        records: n,
        advisories: n,
        withdrawn: 0,
        skipped: 0,
        problems: 0,
    }
}

/// The feeds' folder: OSPREY_BENCH_VULNDB, else the repository's subset.
fn feeds_dir() -> PathBuf {
    std::env::var_os("OSPREY_BENCH_VULNDB")
        .map(PathBuf::from)
        .unwrap_or_else(|| testdata("vulndb"))
}

fn corpus_db(dir: &Path) -> PathBuf {
    let limits = feeds::Limits::default();
    let feeds_dir = feeds_dir();
    let mut b = Builder::new();
    for d in ["golang-vulndb/osv", "rustsec/osv", "pypa/osv"] {
        let i = feeds::osv::import(&feeds_dir.join(d), &limits).unwrap();
        b.add(source(i.advisories.len()), i.advisories);
    }
    let i = feeds::alpine::import(&feeds_dir.join("alpine-secdb"), &limits).unwrap();
    b.add(source(i.advisories.len()), i.advisories);
    let i = feeds::rubysec::import(&feeds_dir.join("rubysec"), &limits).unwrap();
    b.add(source(i.advisories.len()), i.advisories);
    let i = feeds::debian::import(&feeds_dir.join("debian-security-tracker"), &limits).unwrap();
    b.add(source(i.advisories.len()), i.advisories);
    let path = dir.join("corpus.db");
    b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
    path
}

/// 2,500 packages whose names the database holds, at versions inside their advisories' ranges,
/// spread over the database's language ecosystems.
fn packages_from(db: &Database, n: usize) -> Vec<Package> {
    let kinds = [
        ("PyPI", PackageType::Python),
        ("Go", PackageType::GoModule),
        ("crates.io", PackageType::RustCrate),
        ("RubyGems", PackageType::Gem),
        ("npm", PackageType::Npm),
    ];
    let mut out = Vec::new();
    for block in db.blocks() {
        let block = block.unwrap();
        let Some((_, kind)) = kinds.iter().find(|(e, _)| *e == block.ecosystem) else {
            continue;
        };
        let version = block
            .advisories
            .iter()
            .flat_map(|a| &a.affected)
            .flat_map(|a| &a.ranges)
            .find_map(|r| match r {
                Range::Ecosystem(e) | Range::Semver(e) => e.iter().find_map(|ev| match ev {
                    Event::Introduced(v) if v != "0" => Some(v.clone()),
                    _ => None,
                }),
                Range::Outside(_) => None,
            })
            .unwrap_or_else(|| "0.0.1".into());
        out.push(Package::new(*kind, block.name.clone(), version, "bench"));
        if out.len() == n {
            break;
        }
    }
    // Pad with packages no advisory names, like most of a real image.
    let mut i = 0;
    while out.len() < n {
        out.push(Package::new(
            PackageType::Python,
            format!("unlisted-{i}"),
            "1.0",
            "bench",
        ));
        i += 1;
    }
    out
}

/// A synthetic database: `advisories` records over `advisories / 5` npm packages, each with a
/// CVSS vector, two ranges and a versions list, like a GHSA record.
fn synthetic_db(dir: &Path, advisories: usize) -> PathBuf {
    let packages = advisories / 5;
    let mut list = Vec::with_capacity(advisories);
    for i in 0..advisories {
        let p = i % packages;
        let minor = (i / packages) as u32;
        list.push(Advisory {
            id: format!("GHSA-{i:04x}-synt-hetc"),
            aliases: vec![format!("CVE-2099-{i}")],
            summary: format!(
                "Synthetic advisory {i} for package-{p}: a denial of service in the parser"
            ),
            details: "A crafted input makes the parser loop; versions before the fix are affected."
                .repeat(3),
            published: Some("2024-01-01T00:00:00Z".into()),
            modified: Some("2024-06-01T00:00:00Z".into()),
            ratings: vec![Rating::Cvss {
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H".into(),
                score: 7.5,
            }],
            references: vec![
                format!("https://github.com/advisories/GHSA-{i:04x}-synt-hetc"),
                format!("https://example.com/package-{p}/issues/{i}"),
            ],
            source: "osv".into(),
            informational: None,
            affected: vec![Affected {
                ecosystem: "npm".into(),
                name: format!("package-{p}"),
                ranges: vec![Range::Semver(vec![
                    Event::Introduced(format!("{minor}.0.0")),
                    Event::Fixed(format!("{minor}.4.2")),
                    Event::Introduced(format!("{}.0.0", minor + 10)),
                    Event::Fixed(format!("{}.1.0", minor + 10)),
                ])],
                versions: (0..4).map(|patch| format!("{minor}.{patch}.0")).collect(),
                ratings: vec![],
            }],
        });
    }
    let mut b = Builder::new();
    b.add(source(advisories), list);
    let path = dir.join("synthetic.db");
    b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let corpus_path = corpus_db(dir.path());
    let db = Database::open(&corpus_path).unwrap();
    let packages = packages_from(&db, 2_500);
    let hits = match_packages(&db, &packages, None, &MatchOptions::default()).unwrap();
    eprintln!(
        "corpus database: {} advisories, {} packages, {} bytes; {} of 2,500 packages looked up, {} matches",
        db.metadata().advisories,
        db.metadata().packages,
        std::fs::metadata(&corpus_path).unwrap().len(),
        hits.lookups,
        hits.matches.len()
    );
    c.bench_function("open corpus database", |b| {
        b.iter(|| black_box(Database::open(&corpus_path).unwrap()))
    });
    c.bench_function("match 2500 packages (corpus)", |b| {
        b.iter(|| {
            black_box(
                match_packages(&db, &packages, None, &MatchOptions::default())
                    .unwrap()
                    .matches
                    .len(),
            )
        })
    });
    let target = osprey_model::ImageResource {
        reference: "bench".into(),
        digest: None,
        os: None,
    };
    c.bench_function("findings from the matches (corpus)", |b| {
        b.iter(|| black_box(osprey_vuln::report::findings(&target, &packages, &hits.matches).len()))
    });

    let synthetic_path = synthetic_db(dir.path(), 500_000);
    let synthetic = Database::open(&synthetic_path).unwrap();
    let npm: Vec<Package> = (0..2_500)
        .map(|i| {
            Package::new(
                PackageType::Npm,
                format!("package-{}", i * 37),
                format!("{}.2.0", i % 5),
                "bench",
            )
        })
        .collect();
    let found = match_packages(&synthetic, &npm, None::<&Os>, &MatchOptions::default()).unwrap();
    eprintln!(
        "synthetic database: {} advisories, {} packages, {} bytes; {} matches for 2,500 packages",
        synthetic.metadata().advisories,
        synthetic.metadata().packages,
        std::fs::metadata(&synthetic_path).unwrap().len(),
        found.matches.len()
    );
    c.bench_function("open synthetic database (500k advisories)", |b| {
        b.iter(|| black_box(Database::open(&synthetic_path).unwrap()))
    });
    c.bench_function("match 2500 packages (synthetic 500k)", |b| {
        b.iter(|| {
            black_box(
                match_packages(&synthetic, &npm, None, &MatchOptions::default())
                    .unwrap()
                    .matches
                    .len(),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
