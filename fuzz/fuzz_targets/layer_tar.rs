//! A layer blob from an untrusted image: compression detection, gzip/zstd decoding, the tar
//! walk with whiteouts and limits, and the merged file tree with link resolution.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use osprey_image::{FileTree, ImageError, LayerChanges, LayerStream, Limits, WalkBudget, walk_tar};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_files: 10_000,
        max_file_read: 1 << 20,
        max_layer_bytes: 64 << 20,
        ..Limits::default()
    };
    let Ok(stream) = LayerStream::new(
        Box::new(std::io::Cursor::new(data.to_vec())),
        None,
        None,
        "fuzz".into(),
        limits.max_layer_bytes,
    ) else {
        return;
    };
    let mut changes = LayerChanges::new();
    let budget = WalkBudget::new();
    let walked = walk_tar::<_, ImageError>(stream, 0, "fuzz", &limits, &budget, |e| {
        let mut buf = [0u8; 4096];
        while e.read(&mut buf).map_err(|err| ImageError::Internal(err.to_string()))? > 0 {}
        changes.record(e, 0);
        Ok(())
    });
    if walked.is_ok() {
        let mut tree = FileTree::new(limits.max_link_depth);
        tree.apply(0, None, changes);
        let paths: Vec<String> = tree.iter().map(|(p, _)| p.to_string()).collect();
        for p in paths {
            let _ = tree.resolve(&p);
        }
    }
});
