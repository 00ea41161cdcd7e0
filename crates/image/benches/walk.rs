//! The layer pipeline (digest + gunzip + diff-id + tar walk) and the merged tree, on a
//! synthetic layer shaped like a distribution's /usr: many small files, some large ones.

use std::hint::black_box;
use std::io::{Cursor, Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use osprey_image::{
    Digest, FileTree, ImageError, LayerChanges, LayerStream, Limits, WalkBudget, walk_tar,
};

fn synthetic_layer() -> (Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Text-like, compressible content.
                if i % 7 == 0 {
                    b' '
                } else {
                    b'a' + (seed % 26) as u8
                }
            })
            .collect()
    };
    for d in 0..200 {
        for f in 0..100 {
            let size = if f == 0 { 200_000 } else { 2_000 };
            let data = bytes(size);
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("usr/share/pkg{d}/file{f}.txt"), &data[..])
                .unwrap();
        }
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (tar, gz.finish().unwrap())
}

/// Streams `blob` through the layer pipeline and walks it, handing every entry to `visit`.
fn walk(
    blob: &[u8],
    digests: Option<(&Digest, &Digest)>,
    limits: &Limits,
    visit: impl FnMut(&mut osprey_image::Entry<'_>) -> Result<(), ImageError>,
) {
    let (b, d) = digests.map_or((None, None), |(b, d)| (Some(b.clone()), Some(d.clone())));
    let stream = LayerStream::new(
        Box::new(Cursor::new(blob.to_vec())),
        b,
        d,
        "bench".into(),
        u64::MAX,
    )
    .unwrap();
    walk_tar(stream, 0, "bench", limits, &WalkBudget::new(), visit).unwrap();
}

fn bench(c: &mut Criterion) {
    let (tar, gz) = synthetic_layer();
    let blob = Digest::sha256_of(&gz);
    let diff_id = Digest::sha256_of(&tar);
    let verified = Some((&blob, &diff_id));
    let limits = Limits::default();
    let mut g = c.benchmark_group("layer");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(tar.len() as u64));
    g.bench_function("walk_gzip_verified_read_all", |b| {
        let mut buf = vec![0u8; 64 * 1024];
        b.iter(|| {
            let mut total = 0usize;
            walk(&gz, verified, &limits, |e| {
                while let Ok(n) = e.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                Ok(())
            });
            black_box(total)
        })
    });
    g.bench_function("walk_gzip_verified_headers_only", |b| {
        b.iter(|| {
            let mut changes = LayerChanges::new();
            walk(&gz, verified, &limits, |e| {
                changes.record(e, 0);
                Ok(())
            });
            black_box(changes)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("tree");
    g.sample_size(10);
    g.bench_function("apply_20000_entries_and_resolve", |b| {
        b.iter(|| {
            let mut changes = LayerChanges::new();
            walk(&tar, None, &limits, |e| {
                changes.record(e, 0);
                Ok(())
            });
            let mut tree = FileTree::new(40);
            tree.apply(0, None, changes);
            black_box(
                tree.resolve("usr/share/pkg199/file99.txt")
                    .unwrap()
                    .node
                    .is_some(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
