//! Simulated traffic: a benign day of a 50-node cluster raises nothing High (nothing at all at
//! Low or above), and each injected attack story raises its findings.

use std::io::Write;

use osprey_audit::event::reader::{Reader, ReaderLimits};
use osprey_audit::event::{Decoder, Event};
use osprey_audit::{Engine, EngineOptions, Findings, Intel, RuleSet};
use osprey_model::{Finding, SeverityLabel};
use osprey_simulate::{Attack, SimConfig, simulate};

/// Feeds what the simulator writes straight into the engine, without a file in between.
struct Analyzer {
    reader: Reader,
    engine: Engine,
    findings: Findings,
}

impl Write for Analyzer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (engine, findings) = (&mut self.engine, &mut self.findings);
        self.reader
            .push(buf, &mut |e: Event<'_>| engine.process(&e, findings));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(config: &SimConfig, options: EngineOptions) -> (u64, Vec<Finding>) {
    let mut a = Analyzer {
        reader: Reader::new(Decoder::default(), ReaderLimits::default()),
        engine: Engine::new(RuleSet::builtin(), Intel::default(), options),
        findings: Findings::default(),
    };
    let n = simulate(config, &mut a).unwrap();
    let (engine, findings) = (&mut a.engine, &mut a.findings);
    a.reader
        .finish(&mut |e: Event<'_>| engine.process(&e, findings));
    assert_eq!(a.reader.stats.events, n);
    assert_eq!(a.reader.stats.malformed, 0);
    (n, a.findings.into_list())
}

#[test]
fn a_benign_day_of_a_50_node_cluster_raises_nothing() {
    let config = SimConfig {
        nodes: 50,
        duration_s: 86_400,
        ..SimConfig::default()
    };
    let (n, findings) = run(&config, EngineOptions::default());
    assert!(n > 500_000, "{n} events");
    let loud: Vec<_> = findings
        .iter()
        .filter(|f| f.severity.label >= SeverityLabel::Low)
        .map(|f| format!("{} {} x{}", f.severity.label, f.kind, f.count))
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

#[test]
fn attack_stories_are_found_in_benign_traffic() {
    for (attack, expected) in [
        (
            Attack::AnonymousAdmin,
            &[
                "Policy:Kubernetes/AnonymousAccessGranted",
                "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched",
                "Execution:Kubernetes/SuspiciousExecCommand",
                "CredentialAccess:Kubernetes/SecretsDump",
            ][..],
        ),
        (
            Attack::TokenTheft,
            &[
                "CredentialAccess:Kubernetes/TokenRequest",
                "CredentialAccess:Kubernetes/SecretReadByWorkloadIdentity",
                "PrivilegeEscalation:Kubernetes/AdminRoleBinding",
                "PrivilegeEscalation:Kubernetes/ServiceAccountModifiedRBAC",
            ][..],
        ),
        (
            Attack::CryptoMiner,
            &[
                "PrivilegeEscalation:Kubernetes/PrivilegedContainerLaunched",
                "Execution:Kubernetes/SuspiciousImageOrCommand",
                "Persistence:Kubernetes/CronJobChanged",
                "Execution:Kubernetes/DaemonSetCreated",
            ][..],
        ),
    ] {
        let config = SimConfig {
            nodes: 5,
            duration_s: 1800,
            attacks: vec![attack],
            ..SimConfig::default()
        };
        let (_, findings) = run(&config, EngineOptions::default());
        for kind in expected {
            assert!(
                findings.iter().any(|f| f.kind == *kind),
                "{attack:?}: no {kind}; got {:?}",
                findings.iter().map(|f| &f.kind).collect::<Vec<_>>()
            );
        }
        // Everything found is about the attacker, not the cluster's own traffic.
        for f in findings
            .iter()
            .filter(|f| f.severity.label >= SeverityLabel::Low)
        {
            let user = &f
                .resource
                .kubernetes
                .as_ref()
                .unwrap()
                .user
                .as_ref()
                .unwrap()
                .username;
            assert!(
                [
                    "system:anonymous",
                    "dev-admin",
                    "system:serviceaccount:shop:web",
                    "mallory@example.com"
                ]
                .contains(&user.as_str()),
                "{attack:?}: {} by {user}",
                f.kind
            );
        }
    }
}
