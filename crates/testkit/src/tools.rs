//! External tools (umoci, skopeo) and the repository's test data.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of a tool the tests need; panics with the Debian package to install.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: apt-get install -y {package} (scripts/test.sh installs it)");
}

/// A path under the repository's `testdata/` (sources and licences in `testdata/NOTICE`), which
/// must exist.
pub fn testdata(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel);
    assert!(p.exists(), "test data missing: {}", p.display());
    p
}

/// The images of `scripts/build-bench-images.sh` (OSPREY_BENCH_IMAGES, default
/// `~/.cache/osprey-bench`). `None` when they were not built, unless OSPREY_REQUIRE_BENCH_IMAGES=1
/// (set by scripts/test.sh, which always builds them), where their absence fails the test.
pub fn bench_images() -> Option<PathBuf> {
    let dir = std::env::var_os("OSPREY_BENCH_IMAGES")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/osprey-bench")));
    let required = std::env::var("OSPREY_REQUIRE_BENCH_IMAGES").as_deref() == Ok("1");
    let Some(dir) = dir else {
        assert!(
            !required,
            "bench images required but neither OSPREY_BENCH_IMAGES nor HOME is set"
        );
        return None;
    };
    if dir.join("app/index.json").is_file() && dir.join("app.tar").is_file() {
        return Some(dir);
    }
    assert!(
        !required,
        "bench images missing in {0}: run scripts/build-bench-images.sh {0}",
        dir.display()
    );
    eprintln!(
        "bench images not built in {0}; skipping (build them with scripts/build-bench-images.sh {0})",
        dir.display()
    );
    None
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `skopeo copy` to or from a plain-HTTP registry, optionally with credentials.
pub fn skopeo_copy(src: &str, dst: &str, creds: Option<(&str, &str)>, all: bool) {
    let bin = require_tool("skopeo", "skopeo");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--insecure-policy",
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ]);
    if all {
        cmd.arg("--all");
    }
    if let Some((u, p)) = creds {
        cmd.arg(format!("--dest-creds={u}:{p}"));
    }
    cmd.args([src, dst]);
    run(&mut cmd);
}

/// Builds an OCI layout `dir:tag` with umoci, one layer per step; each step writes into the
/// rootfs directory it is given (the state after the previous steps).
pub fn umoci_layout(dir: &Path, tag: &str, steps: &[&dyn Fn(&Path)]) {
    let bin = require_tool("umoci", "umoci");
    let image = format!("{}:{tag}", dir.display());
    if !dir.join("oci-layout").exists() {
        run(Command::new(&bin).args(["init", "--layout"]).arg(dir));
    }
    run(Command::new(&bin).args(["new", "--image", &image]));
    for step in steps {
        let bundle = tempfile::tempdir().unwrap();
        let b = bundle.path().join("b");
        run(Command::new(&bin)
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&b));
        step(&b.join("rootfs"));
        run(Command::new(&bin)
            .args(["repack", "--image", &image])
            .arg(&b));
    }
    run(Command::new(&bin).args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/bin/app",
        "--config.label",
        "org.osprey.test=umoci",
    ]));
}

/// One row of the vulnerability oracle's expectations (`crates/vuln/tests/expected/*.tsv`,
/// written by `crates/vuln/tests/oracle/osv_oracle.py`): ecosystem, package, version and the
/// advisories that affect it.
pub type Expectation = (String, String, String, std::collections::BTreeSet<String>);

/// The rows of one expectation file.
pub fn vuln_expectations(file: &str) -> Vec<Expectation> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vuln/tests/expected")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let ids = f[3]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string(), ids)
        })
        .collect()
}
