//! Disk images from snapshots: the qcow2 reader, the MBR/GPT partition tables and ext2/3/4
//! through ext4-view, walked and scanned. Nothing may panic, hang or allocate beyond the
//! limits; a damaged image is an error or counted skips.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use osprey_malware::disk::scan_disk;
use osprey_malware::{Engine, HashIocs, Limits, RuleLoader};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine {
        rules: Some(RuleLoader::with_builtin().compile().unwrap()),
        hashes: HashIocs::default(),
        limits: Limits {
            max_file_bytes: 8 << 20,
            max_archive_bytes: 16 << 20,
            max_scan_extracted_bytes: 32 << 20,
            file_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = scan_disk(engine(), Arc::new(data.to_vec()), "fuzz");
});
