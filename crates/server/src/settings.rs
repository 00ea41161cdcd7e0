//! Detection settings per tenant — trusted and threat IP lists, suppression rules — compiled
//! from the store for the detector. A member's clusters are detected with the member's own
//! settings plus the administrator tenant's, which apply to every member.
//!
//! The API bumps [`App::settings_version`](crate::App) when it changes a list or a rule; the
//! detector compiles the settings again before its next round.

use std::collections::HashMap;

use osprey_audit::intel::ListLimits;
use osprey_audit::rules::SuppressionRule;
use osprey_audit::{IpList, ListKind as EngineListKind, Loader};
use osprey_store::{ListKind, Store, TenantKind};

use crate::error::{ServerError, ServerResult};

/// What the engine uses for one tenant's clusters: the tenant's lists and suppression rules
/// with the administrator tenant's, given to the shared engine per call.
pub type TenantSettings = osprey_audit::TenantOverlay;

/// The engine's kind of a stored list.
pub fn engine_kind(kind: ListKind) -> EngineListKind {
    match kind {
        ListKind::Trusted => EngineListKind::Trusted,
        ListKind::Threat => EngineListKind::Custom,
    }
}

/// Parses a list as uploaded; the error names the list and what is wrong.
pub fn parse_list(name: &str, kind: ListKind, body: &[u8]) -> ServerResult<IpList> {
    IpList::parse(
        name,
        &format!("list {name}"),
        body,
        engine_kind(kind),
        &ListLimits::default(),
    )
    .map_err(|e| ServerError::Invalid(e.to_string()))
}

/// Every tenant's settings. A stored list or rule that no longer compiles (it was checked when
/// stored) is skipped with an error in the log rather than stopping detection.
pub async fn load(store: &Store) -> ServerResult<HashMap<String, TenantSettings>> {
    let tenants = store.tenants().await?;
    let admins: Vec<&str> = tenants
        .iter()
        .filter(|t| t.kind == TenantKind::Administrator)
        .map(|t| t.id.as_str())
        .collect();
    let lists = store.ip_lists(None).await?;
    let rules = store.suppression_rules(None).await?;
    // Each list parsed and each rule compiled once, then given to every tenant it applies to
    // (the administrator's apply to all).
    let lists: Vec<(&str, IpList)> = lists
        .iter()
        .filter_map(|l| match parse_list(&l.name, l.kind, l.body.as_bytes()) {
            Ok(list) => Some((l.tenant_id.as_str(), list)),
            Err(err) => {
                tracing::error!(list = l.id, error = %err, "a stored IP list does not parse; skipped");
                None
            }
        })
        .collect();
    let loader = (!rules.is_empty()).then(Loader::builtin);
    let rules: Vec<(&str, SuppressionRule)> = rules
        .iter()
        .filter_map(|r| {
            let compiled = loader
                .as_ref()?
                .suppression(&r.name, &r.kind, &r.condition, &r.reason);
            match compiled {
                Ok(rule) => Some((r.tenant_id.as_str(), rule)),
                Err(err) => {
                    tracing::error!(rule = r.id, error = %err, "a stored suppression rule does not compile; skipped");
                    None
                }
            }
        })
        .collect();
    let mut out = HashMap::new();
    for t in &tenants {
        let applies = |owner: &str| owner == t.id || admins.contains(&owner);
        let mut s = TenantSettings::default();
        for (_, list) in lists.iter().filter(|(owner, _)| applies(owner)) {
            s.intel.add(list.clone());
        }
        s.suppressions = rules
            .iter()
            .filter(|(owner, _)| applies(owner))
            .map(|(_, rule)| rule.clone())
            .collect();
        out.insert(t.id.clone(), s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_the_first_holding_an_address_names_it() {
        let ip: std::net::IpAddr = "203.0.113.66".parse().unwrap();
        let org = parse_list("org-bad", ListKind::Threat, b"203.0.113.66").unwrap();
        assert!(org.set.contains(ip));
        let own = parse_list(
            "own",
            ListKind::Threat,
            b"# ours\n198.51.100.0/24\n203.0.113.66\n",
        )
        .unwrap();
        let mut intel = osprey_audit::Intel::default();
        intel.add(org);
        intel.add(own);
        assert_eq!(intel.lookup(Some(ip)).custom, Some("org-bad"));
    }
}
