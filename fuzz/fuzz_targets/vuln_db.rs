//! The vulnerability database file (it may come from a download or a shared volume): the
//! reader must refuse damage with an error, never panic or allocate without bound. The input is
//! a valid small database with the fuzzer's bytes written over part of it (so the fuzzer gets
//! past the magic and reaches the index and blocks), or the raw bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use osprey_vuln::advisory::{Advisory, Affected, Event, Range};
use osprey_vuln::db::{Builder, Database, Limits, SourceInfo};

fn valid() -> &'static [u8] {
    static DB: OnceLock<Vec<u8>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut b = Builder::new();
        let advisory = |id: &str, eco: &str, name: &str| Advisory {
            id: id.into(),
            aliases: vec!["CVE-2024-1".into()],
            summary: "s".into(),
            details: String::new(),
            published: None,
            modified: None,
            ratings: vec![],
            references: vec![],
            source: "osv".into(),
            informational: None,
            affected: vec![Affected {
                ecosystem: eco.into(),
                name: name.into(),
                ranges: vec![Range::Ecosystem(vec![Event::Introduced("0".into()), Event::Fixed("2.0".into())])],
                versions: vec!["1.0".into()],
                ratings: vec![],
            }],
        };
        let source = SourceInfo { kind: "osv".into(), location: "fuzz".into(), records: 3, advisories: 3, withdrawn: 0, skipped: 0, problems: 0 };
        b.add(source, vec![advisory("A-1", "PyPI", "a"), advisory("A-2", "Go", "b"), advisory("A-3", "Debian:12", "c")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        b.write(&path, jiff::Timestamp::UNIX_EPOCH).unwrap();
        std::fs::read(path).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut v = valid().to_vec();
        let at = rest.first().map_or(0, |b| *b as usize * v.len() / 256);
        for (i, b) in rest.iter().skip(1).enumerate() {
            if let Some(slot) = v.get_mut(at + i) {
                *slot = *b;
            }
        }
        v
    };
    let limits = Limits { max_metadata_bytes: 1 << 20, max_block_bytes: 1 << 20, max_block_raw_bytes: 4 << 20 };
    let Ok(db) = Database::from_source(bytes, "fuzz.db".into(), limits) else { return };
    for (eco, name) in [("PyPI", "a"), ("Go", "b"), ("Debian:12", "c"), ("npm", "x")] {
        if let Ok(found) = db.lookup(eco, name) {
            for a in found.iter().flat_map(|a| &a.affected) {
                let _ = a.evaluate("1.5");
            }
        }
    }
    for block in db.blocks() {
        let _ = block;
    }
});
