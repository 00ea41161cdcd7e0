//! Manifests, indexes, configs and docker `manifest.json` files as registries and archives
//! serve them: parsing, validation, platform selection and layer listing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_image::Platform;
use osprey_image::spec::{self, ManifestDoc};

fuzz_target!(|data: &[u8]| {
    match spec::parse_manifest_doc(data, "fuzz") {
        Ok(ManifestDoc::Image(m)) => {
            let _ = spec::check_image_manifest(&m, "fuzz", 1000);
            if let Ok(config) = spec::parse_config(data, "fuzz") {
                let _ = spec::layers_from(m.layers(), &config, "fuzz");
            }
        }
        Ok(ManifestDoc::Index(idx)) => {
            let _ = spec::select_platform(&idx, &Platform::host(), "fuzz");
            let _ = spec::select_platform(&idx, &Platform::new("linux", "arm64", Some("v8")), "fuzz");
        }
        Err(_) => {}
    }
    if let Ok(config) = spec::parse_config(data, "fuzz") {
        let _ = spec::config_platform(&config);
        let _ = spec::parse_diff_ids(&config, 3, "fuzz");
    }
    let _ = spec::parse_docker_manifest(data, "fuzz");
});
