//! The matcher against real advisory data from testdata/vulndb, checked against the
//! answers of an independent oracle (tests/oracle/osv_oracle.py → tests/expected/*.tsv):
//! PyPA advisories for the bench app image's pip packages, golang-vulndb and RustSec for the
//! modules of the binaries in pkgdb, RubySec for a Rails Gemfile.lock, and the Alpine secdb
//! for two current and one older installed apk database, version by version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use osprey_model::{Os, Package, PackageType};
use osprey_testkit::tools::{Expectation, testdata, vuln_expectations};
use osprey_vuln::db::{Builder, Database, SourceInfo};
use osprey_vuln::feeds::{self, Ingest};
use osprey_vuln::matcher::{MatchOptions, match_packages};
use osprey_vuln::version::{ApkVersion, Scheme, Version};

fn expected(name: &str) -> Vec<Expectation> {
    vuln_expectations(name)
}

fn source(kind: &str, ingest: &Ingest) -> SourceInfo {
    SourceInfo {
        kind: kind.into(),
        location: "corpus".into(),
        records: ingest.records,
        advisories: ingest.advisories.len(),
        withdrawn: ingest.withdrawn,
        skipped: ingest.skipped,
        problems: ingest.problems.len(),
    }
}

/// The database of the whole vulndb corpus, built once per test run.
fn corpus_db() -> &'static Database {
    static DB: OnceLock<(tempfile::TempDir, Database)> = OnceLock::new();
    &DB.get_or_init(|| {
        let limits = feeds::Limits::default();
        let mut b = Builder::new();
        for (kind, dir) in [
            ("osv", "vulndb/golang-vulndb/osv"),
            ("osv", "vulndb/rustsec/osv"),
            ("osv", "vulndb/pypa/osv"),
        ] {
            let ingest = feeds::osv::import(&testdata(dir), &limits).unwrap();
            assert!(ingest.problems.is_empty(), "{dir}: {:?}", ingest.problems);
            b.add(source(kind, &ingest), ingest.advisories);
        }
        let alpine = feeds::alpine::import(&testdata("vulndb/alpine-secdb"), &limits).unwrap();
        // The archived secdb has typos apk-tools itself rejects ("4.8.0.-r1"): reported, skipped.
        assert!(
            alpine
                .problems
                .iter()
                .all(|p| p.reason.contains("is not an apk version")),
            "{:?}",
            alpine.problems
        );
        b.add(source("alpine-secdb", &alpine), alpine.advisories);
        let rubysec = feeds::rubysec::import(&testdata("vulndb/rubysec"), &limits).unwrap();
        assert!(rubysec.problems.is_empty(), "{:?}", rubysec.problems);
        b.add(source("rubysec", &rubysec), rubysec.advisories);
        let debian =
            feeds::debian::import(&testdata("vulndb/debian-security-tracker"), &limits).unwrap();
        assert!(debian.problems.is_empty(), "{:?}", debian.problems);
        b.add(source("debian-tracker", &debian), debian.advisories);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.db");
        b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
        let db = Database::open(&path).unwrap();
        (dir, db)
    })
    .1
}

/// Matches the golden file's packages and compares, listing every difference.
fn check(db: &Database, file: &str, kind: PackageType, os: Option<Os>) {
    let rows = expected(file);
    let packages: Vec<Package> = rows
        .iter()
        .map(|(_, name, version, _)| {
            let mut p = Package::new(kind, name.clone(), version.clone(), "test");
            if kind.is_os() {
                p.source_name = Some(name.clone());
            }
            p
        })
        .collect();
    let report = match_packages(db, &packages, os.as_ref(), &MatchOptions::default()).unwrap();
    let mut got: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for m in &report.matches {
        got.entry(m.package)
            .or_default()
            .insert(m.advisory.id.clone());
    }
    let mut diffs = Vec::new();
    for (i, (eco, name, version, want)) in rows.iter().enumerate() {
        let have = got.remove(&i).unwrap_or_default();
        if have != *want {
            let extra: Vec<_> = have.difference(want).collect();
            let missing: Vec<_> = want.difference(&have).collect();
            diffs.push(format!(
                "{eco} {name} {version}: extra {extra:?}, missing {missing:?}"
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{file}: {} packages differ from the oracle:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    let total: usize = rows.iter().map(|r| r.3.len()).sum();
    assert_eq!(report.matches.len(), total, "{file}");
}

#[test]
fn pypa_advisories_for_the_app_images_pip_packages() {
    check(corpus_db(), "pypi-app.tsv", PackageType::Python, None);
    // The oracle's answer is not empty: the pinned versions are old on purpose.
    assert_eq!(
        expected("pypi-app.tsv")
            .iter()
            .map(|r| r.3.len())
            .sum::<usize>(),
        56
    );
}

#[test]
fn pypa_ranges_alone_give_the_same_answer() {
    // PyPA records list affected versions one by one next to their ranges; drop the lists
    // so that only range evaluation can find the matches.
    let mut ingest =
        feeds::osv::import(&testdata("vulndb/pypa/osv"), &feeds::Limits::default()).unwrap();
    let mut listed = 0;
    for a in &mut ingest.advisories {
        for x in &mut a.affected {
            listed += x.versions.len();
            x.versions.clear();
        }
    }
    assert!(
        listed > 13_000,
        "the corpus has version lists to drop ({listed})"
    );
    let mut b = Builder::new();
    b.add(source("osv", &ingest), ingest.advisories);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranges.db");
    b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
    check(
        &Database::open(&path).unwrap(),
        "pypi-app.tsv",
        PackageType::Python,
        None,
    );
}

#[test]
fn golang_vulndb_for_the_go_binaries() {
    check(corpus_db(), "go-binaries.tsv", PackageType::GoModule, None);
    assert_eq!(
        expected("go-binaries.tsv")
            .iter()
            .map(|r| r.3.len())
            .sum::<usize>(),
        262
    );
}

#[test]
fn rustsec_for_the_rust_binaries() {
    // No RustSec advisory covers these crate versions: the check is that none is claimed.
    check(
        corpus_db(),
        "crates-binaries.tsv",
        PackageType::RustCrate,
        None,
    );
}

#[test]
fn rubysec_for_a_rails_gemfile_lock() {
    check(corpus_db(), "rubygems-gemfile.tsv", PackageType::Gem, None);
    assert!(
        expected("rubygems-gemfile.tsv")
            .iter()
            .map(|r| r.3.len())
            .sum::<usize>()
            > 50
    );
}

fn alpine(version: &str) -> Option<Os> {
    Some(Os {
        id: "alpine".into(),
        version_id: Some(version.into()),
        ..Os::default()
    })
}

#[test]
fn alpine_images_against_the_secdb_of_their_release() {
    check(
        corpus_db(),
        "alpine-image-alpine-310.tsv",
        PackageType::Apk,
        alpine("3.10.4"),
    );
    check(
        corpus_db(),
        "alpine-image-alpine-311.tsv",
        PackageType::Apk,
        alpine("3.11.5"),
    );
}

#[test]
fn an_older_apk_database_against_its_secdb() {
    check(
        corpus_db(),
        "alpine-trivy-apk.tsv",
        PackageType::Apk,
        alpine("3.4.6"),
    );
    assert_eq!(
        expected("alpine-trivy-apk.tsv")
            .iter()
            .map(|r| r.3.len())
            .sum::<usize>(),
        32
    );
}

#[test]
fn apk_ordering_pair_by_pair() {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected/apk-order.tsv");
    let mut n = 0;
    let mut wrong = Vec::new();
    for line in std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let want: i32 = f[2].parse().unwrap();
        let (a, b): (ApkVersion, ApkVersion) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let have = a.cmp(&b) as i32;
        if have != want {
            wrong.push(format!(
                "{} vs {}: oracle {want}, osprey {have}",
                f[0], f[1]
            ));
        }
        assert_eq!(
            Version::parse(Scheme::Apk, f[0])
                .unwrap()
                .compare(&Version::parse(Scheme::Apk, f[1]).unwrap())
                .unwrap() as i32,
            have
        );
        n += 1;
    }
    assert!(n > 2000, "{n} pairs");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_corpus_database_describes_itself() {
    let m = corpus_db().metadata();
    for eco in [
        "Go",
        "PyPI",
        "crates.io",
        "RubyGems",
        "Alpine:v3.10",
        "Alpine:v3.4",
        "Debian:11",
    ] {
        assert!(m.covers(eco), "{eco}");
    }
    assert!(m.advisories > 3_900, "{}", m.advisories);
    assert_eq!(m.sources.len(), 6);
}
