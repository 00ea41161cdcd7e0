//! Advisory feeds and the scan's policy inputs, all untrusted text: the first byte picks the
//! parser (OSV JSON, Alpine secdb YAML/JSON, Debian tracker JSON, a DSA list, a RubySec
//! advisory, an ignore file, an OpenVEX document, a CycloneDX/SPDX SBOM), the rest is the input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use osprey_vuln::feeds::{self, Ingest, Limits};
use osprey_vuln::policy::{ignore::IgnoreFile, vex::Vex};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let limits = Limits { max_list_len: 10_000, ..Limits::default() };
    match pick % 8 {
        0 => {
            if let Ok(Some(a)) = feeds::osv::parse_json(rest, &limits) {
                // Whatever parses must evaluate without panicking.
                for x in &a.affected {
                    let _ = x.evaluate("1.0.0");
                    let _ = x.evaluate("0:1.2-3");
                }
            }
        }
        1 => {
            let ingest = feeds::alpine::parse_document("secdb", rest);
            for a in ingest.advisories.iter().flat_map(|a| &a.affected) {
                let _ = a.evaluate("1.2.3-r4");
            }
        }
        2 => feeds::debian::tracker_json("tracker.json", rest, &limits, &mut Ingest::default()),
        3 => feeds::debian::advisory_list("DSA.list", rest, &limits, &mut Ingest::default()),
        4 => {
            if let Ok(Some(a)) = feeds::rubysec::parse(rest, Path::new("x.yml"), &limits) {
                for x in &a.affected {
                    let _ = x.evaluate("2.2.8");
                }
            }
        }
        5 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = IgnoreFile::parse("ignore.yaml", text, jiff::civil::date(2026, 1, 1));
            }
        }
        6 => {
            let _ = Vex::new(vec!["sha256:00".into()]).add("vex.json", rest);
        }
        _ => {
            let _ = osprey_inventory::sbom::decode::decode("sbom.json", rest, &Default::default());
        }
    }
});
