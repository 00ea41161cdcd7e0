//! Audit events from the network and from files: every shape (Event, EventList, CloudWatch,
//! AKS, GKE), framed in chunks of any size, then run through the whole built-in catalogue and
//! written back as Kubernetes events (what `osprey audit import` sends); the condition language,
//! rule files and suppression rules; IP lists as uploaded to the server. Nothing may panic,
//! hang or grow without bound.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use osprey_audit::event::reader::{Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};
use osprey_audit::intel::{IpList, ListKind, ListLimits};
use osprey_audit::rules::lang;
use osprey_audit::{Engine, EngineOptions, Findings, Intel, Loader, RuleSet};

fn rules() -> &'static RuleSet {
    static R: OnceLock<RuleSet> = OnceLock::new();
    R.get_or_init(RuleSet::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limits = ReaderLimits {
        max_line: 1 << 20,
        max_document: 4 << 20,
        max_examples: 10,
    };
    let mut reader = Reader::new(Decoder::default(), limits);
    let mut engine = Engine::new(
        rules().clone(),
        Intel::default(),
        EngineOptions {
            learning_period_us: 0,
            max_keys_per_rule: 1000,
        },
    );
    let mut findings = Findings::default();
    let chunk = usize::from(first).max(1);
    let mut sink = |e: Event<'_>| {
        engine.process(&e, &mut findings);
        let _ = e.to_kubernetes().to_string();
    };
    // What the webhook counts is what detection decodes, except members the typed pass
    // refuses (a duplicate key), which counting does not look for.
    let counted = Decoder::default().count(rest);
    let decoded = Decoder::default().decode(rest, &mut |_| {});
    if !decoded
        .errors
        .iter()
        .any(|e| matches!(e, osprey_audit::event::DecodeError::Json(_)))
    {
        assert_eq!(counted.events, decoded.events);
        assert_eq!(counted.errors.len(), decoded.errors.len());
    }
    for c in rest.chunks(chunk) {
        reader.push(c, &mut sink);
    }
    reader.finish(&mut sink);

    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = lang::parse(text);
        let mut loader = Loader::default();
        if loader.add_text("fuzz.yaml", text).is_ok() {
            let _ = loader.compile();
        }
        let _ = Loader::default().suppression("fuzz", "*", text, "");
    }
    let limits = ListLimits {
        max_bytes: 1 << 20,
        max_entries: 10_000,
    };
    let _ = IpList::parse("fuzz", "fuzz", rest, ListKind::Custom, &limits);
});
