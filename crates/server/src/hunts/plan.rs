//! What a retro-hunt runs: its rules compiled against the built-in catalogue's lists and
//! macros, and the IP lists and suppression rules it runs with. The API compiles a hunt when it
//! is asked for (a hunt that cannot run is refused then) and the hunter again when it starts
//! (with the tenant's settings of that moment).

use osprey_audit::{IpList, ListKind, Loader, RuleSet, TenantOverlay};

/// The rule file name a hunt's rules are read under (errors name it).
pub const HUNT_FILE: &str = "rules";
/// The largest rule text a hunt takes.
pub const MAX_RULES_BYTES: usize = 256 * 1024;

/// The rules a threat-list hunt runs: the catalogue's five customer-list types, and any other
/// call from a listed address (a hunt looks for everything the address did, not only the
/// API classes the live types watch; anonymous calls included).
const THREAT_LIST_RULES: &str = r#"
enable:
  - osprey.credentialaccess-malicious-ip-custom
  - osprey.defenseevasion-malicious-ip-custom
  - osprey.discovery-malicious-ip-custom
  - osprey.impact-malicious-ip-custom
  - osprey.persistence-malicious-ip-custom
rules:
  - id: osprey.retro-hunt-threat-list-caller
    title: "UnauthorizedAccess: Caller on a hunted threat list"
    description: "An API call was made from an address on the threat list a retro-hunt looked for; the list is named in the evidence."
    type: UnauthorizedAccess:Kubernetes/MaliciousIPCaller.Custom
    severity: Medium
    mitre: {tactic: TA0001, technique: T1078}
    condition: intel.custom exists and (anonymous or not ((credential_api) or (evasion_api) or (discovery_api) or (impact_api) or (persistence_api)))
    group_by: [cluster, user.name, source.ip, verb, resource]
"#;

/// A hunt ready to run.
pub struct Plan {
    pub rules: RuleSet,
    pub overlay: TenantOverlay,
    /// The ids of the rules it runs.
    pub rule_ids: Vec<String>,
}

/// Compiles a hunt: `rules` (rule YAML as in `--rules`: the rules it defines and the built-in
/// ones it names under `enable:`), `threat_list` (a customer threat list: every call from its
/// addresses), or both, with the tenant's `settings`. A threat-list hunt looks at that list
/// only, in place of the tenant's other threat lists. The error is one line naming what is
/// wrong.
pub fn compile(
    rules: Option<&str>,
    threat_list: Option<IpList>,
    settings: &TenantOverlay,
) -> Result<Plan, String> {
    if rules.is_none() && threat_list.is_none() {
        return Err("a retro-hunt needs rules, a threat_list, or both".into());
    }
    let mut loader = Loader::builtin();
    if let Some(text) = rules {
        if text.len() > MAX_RULES_BYTES {
            return Err(format!(
                "rules: larger than the limit of {MAX_RULES_BYTES} bytes"
            ));
        }
        loader
            .add_text(HUNT_FILE, text)
            .map_err(|e| e.to_string())?;
    }
    if threat_list.is_some() {
        loader
            .add_text(HUNT_FILE, THREAT_LIST_RULES)
            .map_err(|e| format!("the threat-list rules: {e}"))?;
    }
    let rule_ids = loader.select_file(HUNT_FILE).map_err(|e| e.to_string())?;
    if rule_ids.is_empty() {
        return Err(
            "rules: no rule to run (define rules, or name built-in ones under enable:)".into(),
        );
    }
    let compiled = loader.compile().map_err(|e| e.to_string())?;
    let mut overlay = TenantOverlay::default();
    for l in settings.intel.lists() {
        if threat_list.is_some() && l.kind == ListKind::Custom {
            continue;
        }
        overlay.intel.add(l.clone());
    }
    if let Some(l) = threat_list {
        overlay.intel.add(l);
    }
    overlay.suppressions = settings.suppressions.clone();
    overlay
        .suppressions
        .extend(compiled.suppressions.iter().cloned());
    Ok(Plan {
        rules: compiled,
        overlay,
        rule_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_audit::intel::ListLimits;

    fn list(name: &str, text: &str) -> IpList {
        IpList::parse(
            name,
            name,
            text.as_bytes(),
            ListKind::Custom,
            &ListLimits::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_hunt_runs_its_own_rules_and_those_it_enables_only() {
        let rules = r#"
enable: [osprey.exec-in-kube-system-pod]
rules:
  - id: hunt.secret-reader
    title: "Discovery: secrets read by jane"
    type: Discovery:Kubernetes/SecretsRead
    severity: Low
    condition: resource = secrets and verb = get and user.name = jane
"#;
        let plan = compile(Some(rules), None, &TenantOverlay::default()).unwrap();
        let mut ids = plan.rule_ids.clone();
        ids.sort();
        assert_eq!(
            ids,
            ["hunt.secret-reader", "osprey.exec-in-kube-system-pod"]
        );
        assert_eq!(plan.rules.rules.len(), 2);
    }

    #[test]
    fn a_threat_list_hunt_looks_at_that_list_instead_of_the_others() {
        let mut settings = TenantOverlay::default();
        settings.intel.add(list("old", "198.51.100.1"));
        let plan = compile(None, Some(list("new", "203.0.113.66")), &settings).unwrap();
        assert_eq!(plan.rule_ids.len(), 6, "{:?}", plan.rule_ids);
        let names: Vec<&str> = plan
            .overlay
            .intel
            .lists()
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["new"]);
    }

    #[test]
    fn what_cannot_run_is_refused_in_one_line() {
        let none = TenantOverlay::default();
        for (rules, expected) in [
            (None, "needs rules, a threat_list, or both"),
            (Some("rules: ["), "rules"),
            (Some("enable: [no.such-rule]"), "no rule \"no.such-rule\""),
            (Some("lists: []"), "no rule to run"),
            (
                Some(
                    "rules:\n  - {id: x, title: t, type: 'A:B/C', severity: Low, condition: 'verb ='}",
                ),
                "x",
            ),
        ] {
            let err = compile(rules, None, &none).err().unwrap();
            assert!(err.contains(expected), "{rules:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let big = "#".repeat(MAX_RULES_BYTES + 1);
        assert!(
            compile(Some(&big), None, &none)
                .err()
                .unwrap()
                .contains("limit")
        );
    }
}
