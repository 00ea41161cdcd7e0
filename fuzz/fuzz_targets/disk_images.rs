//! Disk images from snapshots: the qcow2 reader, the MBR/GPT partition tables and ext2/3/4
//! through ext4-view, walked and scanned. Nothing may panic, hang or allocate beyond the
//! limits; a damaged image is an error or counted skips.
#![no_main]

#[path = "shared/malware_engine.rs"]
mod malware_engine;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use osprey_malware::disk::scan_disk;

fuzz_target!(|data: &[u8]| {
    let _ = scan_disk(malware_engine::engine(), Arc::new(data.to_vec()), "fuzz");
});
