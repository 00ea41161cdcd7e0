//! The deployment files stay true to the binary: every option the Kubernetes manifest passes to
//! `osprey serve` exists, the probes name the health routes, the webhook configuration names the
//! ingest route.

mod common;

use common::{osprey, repo_root};

#[test]
fn the_manifest_uses_real_options_and_routes() {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/server/osprey.yaml")).unwrap();
    let help = osprey().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .collect();
    assert!(flags.len() >= 4, "{flags:?}");
    for f in flags {
        assert!(
            help.contains(&format!("--{f}")),
            "osprey serve has no --{f}"
        );
    }
    assert!(manifest.contains("- serve\n"));
    for probe in ["path: /readyz", "path: /healthz"] {
        assert!(manifest.contains(probe), "{probe}");
    }
    let webhook =
        std::fs::read_to_string(repo_root().join("deploy/server/audit-webhook.yaml")).unwrap();
    assert!(webhook.contains("server: https://OSPREY_ADDRESS/v1/clusters/CLUSTER_ID/audit"));
}
