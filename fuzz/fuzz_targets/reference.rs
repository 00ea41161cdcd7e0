//! Image references typed by users and `WWW-Authenticate` headers sent by registries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_image::Reference;
use osprey_image::sources::registry::challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = s.parse::<Reference>() {
        let again: Reference = r.to_string().parse().expect("a printed reference parses again");
        assert_eq!(again, r);
        let _ = (r.api_host(), r.credential_key(), r.manifest_ref(), r.is_loopback());
    }
    let _ = challenge::parse(s);
    let _ = s.parse::<osprey_image::Platform>();
    let _ = osprey_image::path::clean_path(s);
});
