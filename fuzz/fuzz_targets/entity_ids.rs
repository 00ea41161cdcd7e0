//! Investigation graph entity ids as they come in URL paths: whatever parses prints back to a
//! canonical id that parses to itself, and every name is derivable without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_graph::EntityId;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    if let Ok(id) = EntityId::parse(path) {
        let canonical = id.to_string();
        let again = EntityId::parse(&canonical).expect("a canonical id parses");
        assert_eq!(again, id);
        let _ = (id.name(), id.cluster_id());
    }
});
