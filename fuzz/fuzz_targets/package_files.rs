//! Package databases and manifests from untrusted images: the first byte picks the path the
//! bytes are offered at (and so the cataloger), the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_inventory::{InventoryLimits, parse_file};

const PATHS: &[(&str, u32)] = &[
    ("var/lib/dpkg/status", 0o644),
    ("var/lib/dpkg/status.d/libc6", 0o644),
    ("usr/share/doc/libc6/copyright", 0o644),
    ("lib/apk/db/installed", 0o644),
    ("var/lib/rpm/Packages", 0o644),
    ("var/lib/rpm/rpmdb.sqlite", 0o644),
    ("usr/lib/sysimage/rpm/Packages.db", 0o644),
    ("usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA", 0o644),
    ("usr/lib/python3/dist-packages/x-1.0.egg-info/PKG-INFO", 0o644),
    ("usr/lib/python3/dist-packages/x-1.0.egg", 0o644),
    ("app/node_modules/x/package.json", 0o644),
    ("app/package-lock.json", 0o644),
    ("app/yarn.lock", 0o644),
    ("app/lib/x.jar", 0o644),
    ("usr/bin/tool", 0o755),
    ("app/Cargo.lock", 0o644),
    ("app/x.deps.json", 0o644),
    ("app/vendor/composer/installed.json", 0o644),
    ("usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec", 0o644),
    ("app/Gemfile.lock", 0o644),
    ("etc/os-release", 0o644),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (path, mode) = PATHS[pick as usize % PATHS.len()];
    let limits = InventoryLimits { max_nested_bytes: 16 << 20, max_archive_depth: 4, ..InventoryLimits::default() };
    let _ = parse_file(path, mode, rest, &limits);
});
