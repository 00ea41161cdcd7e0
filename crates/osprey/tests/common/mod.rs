//! What the binary's end-to-end tests share.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

use assert_cmd::Command;

/// The binary under test, isolated from the user's environment: no log filter, no database,
/// no docker credentials, a layer cache under the target directory.
pub fn osprey() -> Command {
    let mut c = Command::cargo_bin("osprey").unwrap();
    c.env_remove("OSPREY_LOG")
        .env_remove("OSPREY_DB")
        .env(
            "OSPREY_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("osprey-cache"),
        )
        .env("DOCKER_CONFIG", "/nonexistent-osprey-test");
    c
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}
