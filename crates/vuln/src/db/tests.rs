use super::*;
use crate::advisory::{Affected, Event, Range};

fn advisory(id: &str, affected: &[(&str, &str)]) -> Advisory {
    Advisory {
        id: id.into(),
        aliases: vec![format!("CVE-{id}")],
        summary: format!("summary of {id}"),
        details: String::new(),
        published: None,
        modified: None,
        ratings: vec![],
        references: vec![],
        source: "osv".into(),
        informational: None,
        affected: affected
            .iter()
            .map(|(e, n)| Affected {
                ecosystem: e.to_string(),
                name: n.to_string(),
                ranges: vec![Range::Ecosystem(vec![
                    Event::Introduced("0".into()),
                    Event::Fixed("2.0".into()),
                ])],
                versions: vec![],
                ratings: vec![],
            })
            .collect(),
    }
}

fn source(n: usize) -> SourceInfo {
    SourceInfo {
        kind: "osv".into(),
        location: "test".into(),
        records: n,
        advisories: n,
        withdrawn: 0,
        skipped: 0,
        problems: 0,
    }
}

fn build(dir: &Path) -> std::path::PathBuf {
    let mut b = Builder::new();
    b.add(
        source(3),
        vec![
            advisory("A-1", &[("PyPI", "requests"), ("PyPI", "urllib3")]),
            advisory("A-2", &[("PyPI", "requests")]),
        ],
    );
    b.add(
        source(1),
        vec![advisory("A-3", &[("Debian:12", "openssl")])],
    );
    let path = dir.join("sub/osprey.db");
    let meta = b
        .write(&path, "2026-11-01T00:00:00Z".parse().unwrap())
        .unwrap();
    assert_eq!(meta.advisories, 3);
    assert_eq!(meta.packages, 3);
    path
}

use std::path::Path;

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let db = Database::open(&path).unwrap();
    let m = db.metadata();
    assert_eq!(
        m.ecosystems["PyPI"],
        EcosystemCounts {
            advisories: 2,
            packages: 2
        }
    );
    assert_eq!(
        m.ecosystems["Debian:12"],
        EcosystemCounts {
            advisories: 1,
            packages: 1
        }
    );
    assert!(m.covers("Debian:12") && !m.covers("Debian:11"));
    assert_eq!(m.sources.len(), 2);
    let ids: Vec<String> = db
        .lookup("PyPI", "requests")
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["A-1", "A-2"]);
    let urllib3 = db.lookup("PyPI", "urllib3").unwrap();
    assert_eq!(urllib3.len(), 1);
    assert_eq!(urllib3[0].affected.len(), 1, "only this package's entries");
    assert_eq!(urllib3[0].affected[0].name, "urllib3");
    assert!(db.lookup("PyPI", "nothing").unwrap().is_empty());
    assert!(db.lookup("Debian:11", "openssl").unwrap().is_empty());
    assert_eq!(db.blocks().count(), 3);
    let age = m.age("2026-11-08T00:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(age.as_hours(), 7 * 24);
}

#[test]
fn later_feeds_replace_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new();
    b.add(source(1), vec![advisory("A-1", &[("PyPI", "x")])]);
    let mut newer = advisory("A-1", &[("PyPI", "x")]);
    newer.summary = "newer".into();
    b.add(source(1), vec![newer]);
    let path = dir.path().join("db");
    b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
    let found = Database::open(&path).unwrap().lookup("PyPI", "x").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].summary, "newer");
}

#[test]
fn damaged_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let good = std::fs::read(&path).unwrap();
    let open = |bytes: Vec<u8>| Database::from_source(bytes, "db".into(), Limits::default());

    assert!(matches!(
        open(b"hello".to_vec()),
        Err(DbError::NotADatabase { .. })
    ));
    assert!(matches!(
        open(Vec::new()),
        Err(DbError::NotADatabase { .. })
    ));
    let mut v = good.clone();
    v[8] = 9;
    assert!(matches!(
        open(v),
        Err(DbError::UnsupportedFormat { found: 9, .. })
    ));
    let mut v = good.clone();
    v[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(open(v).unwrap_err().to_string().contains("metadata length"));
    let mut v = good.clone();
    v[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(open(v).unwrap_err().to_string().contains("index of"));
    let truncated = good[..good.len() - 10].to_vec();
    assert!(
        open(truncated)
            .unwrap_err()
            .to_string()
            .contains("outside the file")
    );
    // A flipped byte inside the last block: the zstd checksum catches it on lookup.
    let mut v = good.clone();
    let n = v.len();
    v[n - 6] ^= 0xff;
    let db = open(v).unwrap();
    let errors = db.blocks().filter(Result::is_err).count();
    assert_eq!(errors, 1);
    let err = db.blocks().find_map(Result::err).unwrap().to_string();
    assert!(err.starts_with("db: corrupt database: block at"), "{err}");
}
