//! The deployment files stay true to the binary: every option the Kubernetes manifest passes to
//! `osprey serve` exists, the probes name the health routes, the webhook configuration names the
//! ingest route.

mod common;

use common::{osprey, repo_root};

#[test]
fn the_manifest_uses_real_options_and_routes() {
    let help = osprey().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for file in ["osprey.yaml", "osprey-scale-out.yaml"] {
        let manifest =
            std::fs::read_to_string(repo_root().join("deploy/server").join(file)).unwrap();
        let flags: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- --"))
            .collect();
        assert!(flags.len() >= 4, "{file}: {flags:?}");
        for f in flags {
            assert!(
                help.contains(&format!("--{f}")),
                "{file}: osprey serve has no --{f}"
            );
        }
        assert!(manifest.contains("- serve\n"), "{file}");
        for probe in ["path: /readyz", "path: /healthz"] {
            assert!(manifest.contains(probe), "{file}: {probe}");
        }
    }
    // The scale-out's shared settings come from the environment variables the options read.
    let scale_out =
        std::fs::read_to_string(repo_root().join("deploy/server/osprey-scale-out.yaml")).unwrap();
    for var in ["OSPREY_DATABASE_URL", "OSPREY_BUS_URL", "OSPREY_SECRET_KEY"] {
        assert!(scale_out.contains(&format!("name: {var}")), "{var}");
    }
    for var in ["OSPREY_DATABASE_URL", "OSPREY_BUS_URL"] {
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} not read by osprey serve"
        );
    }
    let webhook =
        std::fs::read_to_string(repo_root().join("deploy/server/audit-webhook.yaml")).unwrap();
    assert!(webhook.contains("server: https://OSPREY_ADDRESS/v1/clusters/CLUSTER_ID/audit"));
}
