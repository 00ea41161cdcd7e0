//! Finding groups read from the store, and the attack sequences they raise: a group spanning
//! three ATT&CK tactics or more becomes one `AttackSequence:Kubernetes/CompromisedCluster`
//! finding (Critical) listing its findings as signals, stored and sent to outputs like any
//! other. The detector raises them after a round that created findings, a retro-hunt after it
//! stored its findings; the API shows the groups (`api::groups`).

use std::collections::HashMap;

use osprey_graph::group::{Group, Member, group};
use osprey_model::{Evidence, Finding, KubernetesResource, Resource, Severity, SeverityLabel};
use osprey_store::{
    FindingFilter, FindingRecord, FindingSource, FindingState, StoredFinding, now_ms,
};
use sha2::{Digest, Sha256};

use crate::App;
use crate::detector::graph::GraphFeed;
use crate::error::{ServerError, ServerResult};

/// The type of the finding an attack sequence raises.
pub const SEQUENCE_KIND: &str = "AttackSequence:Kubernetes/CompromisedCluster";
/// Findings read per tenant at most (the most recently seen first).
pub const MAX_FINDINGS: usize = 20_000;
/// The window groups are made over: findings last seen in the 7 days before (the API's
/// default: before now; the detector's: before the earliest finding it just created).
pub const WINDOW_MS: i64 = 7 * 86_400_000;

/// A tenant's active findings last seen since `since_ms` (of one cluster when given), the
/// most recent first, at most [`MAX_FINDINGS`]; and whether there were more.
pub async fn findings_of(
    app: &App,
    tenant: &str,
    cluster: Option<&str>,
    since_ms: i64,
) -> ServerResult<(Vec<StoredFinding>, bool)> {
    let mut filter = FindingFilter {
        tenant_id: Some(tenant.to_string()),
        cluster_id: cluster.map(str::to_string),
        state: Some(FindingState::Active),
        sample: Some(false),
        since_ms: Some(since_ms),
        sort: osprey_store::FindingSort::LastSeen,
        limit: 1000,
        ..FindingFilter::default()
    };
    let mut out = Vec::new();
    loop {
        let page = app.store.findings(&filter).await?;
        out.extend(page.findings);
        if out.len() >= MAX_FINDINGS {
            out.truncate(MAX_FINDINGS);
            return Ok((out, page.next_page_token.is_some()));
        }
        match page.next_page_token {
            Some(t) => filter.page_token = Some(t),
            None => return Ok((out, false)),
        }
    }
}

/// The groups among a tenant's findings (attack sequences themselves are not grouped).
pub fn groups_of(findings: &[StoredFinding]) -> Vec<Group> {
    let members: Vec<Member<'_>> = findings
        .iter()
        .filter(|f| f.source != FindingSource::Correlation)
        .map(|f| Member {
            finding: &f.finding,
            cluster_id: f.cluster_id.as_deref(),
        })
        .collect();
    group(&members)
}

/// The id of the attack sequence a group of a tenant raises (named by its earliest finding).
pub fn sequence_id(tenant: &str, g: &Group) -> String {
    hex::encode(
        &Sha256::digest(format!("attack-sequence\0{tenant}\0{}", g.finding_ids[0]).as_bytes())
            [..16],
    )
}

/// The attack-sequence finding of a group, under `id`.
pub fn sequence_finding(
    id: String,
    tenant: &str,
    g: &Group,
    findings: &[StoredFinding],
) -> FindingRecord {
    let by_id: HashMap<&str, &StoredFinding> = findings
        .iter()
        .map(|f| (f.finding.id.as_str(), f))
        .collect();
    let members: Vec<&StoredFinding> = g
        .finding_ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect();
    let mut clusters: Vec<&str> = members
        .iter()
        .filter_map(|f| f.cluster_id.as_deref())
        .collect();
    clusters.sort_unstable();
    clusters.dedup();
    let cluster_name = members
        .iter()
        .filter_map(|f| f.finding.resource.kubernetes.as_ref())
        .map(|k| k.cluster.clone())
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    let shown: Vec<String> = g
        .entities
        .iter()
        .filter(|e| e.kind() != osprey_graph::EntityType::Cluster)
        .take(6)
        .map(|e| e.to_string())
        .collect();
    let earliest = members
        .first()
        .map(|f| f.finding.title.as_str())
        .unwrap_or_default();
    let description = format!(
        "{} findings linked through {} between {} and {}: {}. It began with: {earliest}.",
        g.finding_ids.len(),
        shown.join(", "),
        g.first_seen(),
        g.last_seen(),
        g.title,
    );
    let mut info = std::collections::BTreeMap::new();
    info.insert("group".to_string(), format!("group-{}", g.finding_ids[0]));
    info.insert("tactics".to_string(), g.tactics.join(", "));
    FindingRecord {
        finding: Finding {
            id,
            kind: SEQUENCE_KIND.into(),
            title: format!("Attack sequence: {}", g.tactics.join(" → ")),
            description,
            severity: Severity::from_score(9.0),
            resource: Resource {
                kubernetes: Some(KubernetesResource {
                    cluster: cluster_name,
                    ..KubernetesResource::default()
                }),
                ..Resource::default()
            },
            count: 1,
            first_seen: Some(g.first_seen()),
            last_seen: Some(g.last_seen()),
            evidence: Some(Evidence {
                rule_id: "osprey.attack-sequence".into(),
                signals: g.finding_ids.clone(),
                additional_info: info,
                ..Evidence::default()
            }),
            ..Finding::default()
        },
        tenant_id: tenant.to_string(),
        cluster_id: (clusters.len() == 1).then(|| clusters[0].to_string()),
        source: FindingSource::Correlation,
        sample: false,
    }
}

/// The attack sequences of a tenant's recent groups that are new, or grew since `raised`
/// (sequence id → signals stored) last saw them, as records to store.
pub async fn due_sequences(
    app: &App,
    tenant: &str,
    since_ms: i64,
    raised: &HashMap<String, usize>,
) -> ServerResult<Vec<FindingRecord>> {
    let (findings, _) = findings_of(app, tenant, None, since_ms).await?;
    let existing = Raised::of(&findings);
    // Signals of the sequences stored: one that lists as many as its group holds is up to
    // date (the caller's own record says the same faster).
    let stored: HashMap<&str, usize> = findings
        .iter()
        .filter(|f| f.source == FindingSource::Correlation)
        .map(|f| (f.finding.id.as_str(), signals(&f.finding)))
        .collect();
    Ok(groups_of(&findings)
        .iter()
        .filter(|g| g.is_sequence())
        .map(|g| (existing.raised_as(tenant, g), g))
        .filter(|(id, g)| {
            let had = raised.get(id).or_else(|| stored.get(id.as_str()));
            had != Some(&g.finding_ids.len())
        })
        .map(|(id, g)| sequence_finding(id, tenant, g, &findings))
        .collect())
}

/// The attack sequences stored among a tenant's findings: finding id → the oldest sequence
/// listing it as a signal (created time, id).
pub struct Raised<'a>(HashMap<&'a str, (i64, &'a str)>);

impl<'a> Raised<'a> {
    pub fn of(findings: &'a [StoredFinding]) -> Raised<'a> {
        let mut oldest: HashMap<&str, (i64, &str)> = HashMap::new();
        for f in findings
            .iter()
            .filter(|f| f.source == FindingSource::Correlation)
        {
            let this = (f.created_ms, f.finding.id.as_str());
            for signal in f.finding.evidence.iter().flat_map(|e| e.signals.iter()) {
                let slot = oldest.entry(signal.as_str()).or_insert(this);
                *slot = (*slot).min(this);
            }
        }
        Raised(oldest)
    }

    /// The attack sequence raised for a group, if any (the oldest one listing its findings).
    pub fn raised_for(&self, g: &Group) -> Option<String> {
        g.finding_ids
            .iter()
            .filter_map(|id| self.0.get(id.as_str()))
            .min()
            .map(|(_, id)| id.to_string())
    }

    /// The sequence a group continues: the one raised for it (a group that grew, or merged
    /// with another, keeps the sequence it had), else a new one named by its earliest finding.
    fn raised_as(&self, tenant: &str, g: &Group) -> String {
        self.raised_for(g).unwrap_or_else(|| sequence_id(tenant, g))
    }
}

/// Stores the attack sequences of a tenant's groups (findings last seen since `since_ms`) that
/// are new or grew, in their own transaction (they are derived: a failure is logged and tried
/// again with the next new finding). `raised` keeps what was stored (finding id → signals);
/// `graph` links the sequences to their signals.
pub async fn raise(
    app: &App,
    tenant: &str,
    since_ms: i64,
    raised: &mut HashMap<String, usize>,
    graph: Option<&mut GraphFeed>,
) {
    let due = match due_sequences(app, tenant, since_ms, raised).await {
        Ok(due) if due.is_empty() => return,
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(tenant, error = %e, "grouping findings failed");
            return;
        }
    };
    let made: Vec<(String, usize, SeverityLabel)> = due
        .iter()
        .map(|r| {
            let label = r.finding.severity.label;
            (r.finding.id.clone(), signals(&r.finding), label)
        })
        .collect();
    // The sequences are findings of the graph too, naming their signals.
    let now = now_ms();
    let deltas = match graph {
        Some(g) => {
            g.findings(&due, now);
            g.take(now)
        }
        None => Vec::new(),
    };
    let stored = async {
        let mut round = app.store.begin_round().await?;
        crate::detector::graph::write(&mut round, deltas).await?;
        let upserted = round.upsert_findings(due, "detector").await?;
        round.commit().await?;
        Ok::<_, ServerError>(upserted)
    }
    .await;
    match stored {
        Ok(upserted) => {
            let labels: HashMap<String, SeverityLabel> = made
                .iter()
                .map(|(id, _, label)| (id.clone(), *label))
                .collect();
            for (id, signals, _) in made {
                tracing::info!(tenant, finding = %id, signals, "attack sequence raised");
                raised.insert(id, signals);
            }
            app.metrics.count_created(&upserted, &labels);
            app.outputs_wake.notify_one();
        }
        Err(e) => tracing::warn!(tenant, error = %e, "storing attack sequences failed"),
    }
}

/// How many signals a sequence finding lists.
pub fn signals(f: &Finding) -> usize {
    f.evidence.as_ref().map_or(0, |e| e.signals.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::SeverityLabel;
    use osprey_store::Workflow;

    fn stored(id: &str, source: FindingSource, signals: &[&str], created_ms: i64) -> StoredFinding {
        StoredFinding {
            finding: Finding {
                id: id.into(),
                evidence: Some(Evidence {
                    signals: signals.iter().map(|s| s.to_string()).collect(),
                    ..Evidence::default()
                }),
                ..Finding::default()
            },
            tenant_id: "t".into(),
            cluster_id: None,
            source,
            state: FindingState::Active,
            workflow: Workflow::New,
            sample: false,
            created_ms,
            updated_ms: created_ms,
        }
    }

    #[test]
    fn a_group_that_grows_or_merges_keeps_the_sequence_it_had() {
        let findings = [
            stored("seq-new", FindingSource::Correlation, &["d"], 20),
            stored("seq-old", FindingSource::Correlation, &["b", "c"], 10),
        ];
        let existing = Raised::of(&findings);
        let grown = Group {
            severity_label: SeverityLabel::High,
            severity_score: 7.0,
            title: String::new(),
            tactics: Vec::new(),
            // An earlier finding joined: the group's name changed, its sequence did not.
            finding_ids: ["a", "b", "c", "d"].map(String::from).to_vec(),
            entities: Vec::new(),
            first_ms: 0,
            last_ms: 0,
        };
        assert_eq!(existing.raised_as("t", &grown), "seq-old");
        assert_eq!(existing.raised_for(&grown).as_deref(), Some("seq-old"));
        let fresh = Group {
            finding_ids: vec!["x".into(), "y".into()],
            ..grown
        };
        assert_eq!(existing.raised_as("t", &fresh), sequence_id("t", &fresh));
        assert_eq!(existing.raised_for(&fresh), None);
    }
}
