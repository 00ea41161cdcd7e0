//! Audit detection throughput on one core: simulated traffic of a 50-node cluster (the
//! cluster's own chatter topped up with controller reads, as in `osprey audit simulate`),
//! parsed only (the floor), and parsed and run through the full built-in catalogue.
//! Targets (issue 5): ≥ 300,000 events/s and ≥ 50 % of the parse-only rate.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use osprey_audit::event::reader::{Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, RuleSet};
use osprey_simulate::{SimConfig, simulate};

fn traffic() -> (Vec<u8>, u64) {
    let config = SimConfig {
        nodes: 50,
        duration_s: 600,
        rate: Some(500.0),
        ..SimConfig::default()
    };
    let mut out = Vec::new();
    let n = simulate(&config, &mut out).unwrap();
    (out, n)
}

fn bench(c: &mut Criterion) {
    let (input, events) = traffic();
    let mut g = c.benchmark_group(format!("audit {events} events"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function("parse only", |b| {
        b.iter(|| {
            let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
            let mut n = 0u64;
            reader.push(&input, &mut |e: Event<'_>| {
                n += black_box(e.verb.len()) as u64;
            });
            reader.finish(&mut |_| {});
            black_box(n)
        })
    });
    let rules = RuleSet::builtin();
    let detect = || {
        let mut reader = Reader::new(Decoder::default(), ReaderLimits::default());
        let mut engine = Engine::new(rules.clone(), Intel::default(), EngineOptions::default());
        let mut findings = Findings::default();
        reader.push(&input, &mut |e: Event<'_>| {
            engine.process(&e, &mut findings)
        });
        reader.finish(&mut |_| {});
        black_box(findings.len())
    };
    g.bench_function("parse + full catalogue", |b| b.iter(detect));
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("parse + full catalogue (bytes)", |b| b.iter(detect));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
