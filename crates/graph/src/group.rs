//! Finding groups: findings of one tenant linked through the entities they share — the same
//! subject, source address, pod or image — within [`LINK_WINDOW_MS`] of each other, and a
//! scan's findings linked to the finding that triggered it. A group reads as one incident:
//! its severity is its worst finding's, its title counts its findings per type namespace,
//! its tactics follow the ATT&CK kill chain, and three tactics or more make it an attack
//! sequence.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use osprey_model::{Finding, SeverityLabel};

use crate::entity::{EntityId, EntityType};
use crate::named::named_by;
use crate::record::rfc3339;

/// Findings further apart than this (between one's last and the other's first sighting) are
/// not linked by what they share.
pub const LINK_WINDOW_MS: i64 = 48 * 3_600_000;
/// A group spanning at least this many tactics is an attack sequence.
pub const SEQUENCE_TACTICS: usize = 3;

/// ATT&CK's tactics in kill-chain order (enterprise and containers matrices): the id
/// findings carry (`TA0004`) and the name a group shows.
pub const KILL_CHAIN: [(&str, &str); 14] = [
    ("TA0043", "Reconnaissance"),
    ("TA0042", "Resource Development"),
    ("TA0001", "Initial Access"),
    ("TA0002", "Execution"),
    ("TA0003", "Persistence"),
    ("TA0004", "Privilege Escalation"),
    ("TA0005", "Defense Evasion"),
    ("TA0006", "Credential Access"),
    ("TA0007", "Discovery"),
    ("TA0008", "Lateral Movement"),
    ("TA0009", "Collection"),
    ("TA0011", "Command and Control"),
    ("TA0010", "Exfiltration"),
    ("TA0040", "Impact"),
];

/// A tactic's place in the kill chain and its name (an unknown one goes last, as it is).
fn tactic(t: &str) -> (usize, String) {
    match KILL_CHAIN
        .iter()
        .position(|(id, name)| id.eq_ignore_ascii_case(t) || name.eq_ignore_ascii_case(t))
    {
        Some(i) => (i, KILL_CHAIN[i].1.to_string()),
        None => (KILL_CHAIN.len(), t.to_string()),
    }
}

/// Entity types that link findings: narrow enough to mean "the same actor or target".
fn links(kind: EntityType) -> bool {
    matches!(
        kind,
        EntityType::Subject | EntityType::Ip | EntityType::Pod | EntityType::Image
    )
}

/// A finding as grouping sees it.
pub struct Member<'a> {
    pub finding: &'a Finding,
    pub cluster_id: Option<&'a str>,
}

/// A group of linked findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub severity_label: SeverityLabel,
    pub severity_score: f64,
    /// Findings per type namespace, most first: `Execution (2), PrivilegeEscalation (1)`.
    pub title: String,
    /// ATT&CK tactic names, in kill-chain order.
    pub tactics: Vec<String>,
    /// Earliest first: the first names the group.
    pub finding_ids: Vec<String>,
    /// The linking entities its findings name, and their clusters.
    pub entities: Vec<EntityId>,
    pub first_ms: i64,
    pub last_ms: i64,
}

impl Group {
    /// Whether the group is an attack sequence (three tactics or more).
    pub fn is_sequence(&self) -> bool {
        self.tactics.len() >= SEQUENCE_TACTICS
    }

    pub fn first_seen(&self) -> String {
        rfc3339(self.first_ms)
    }

    pub fn last_seen(&self) -> String {
        rfc3339(self.last_ms)
    }
}

/// The groups of two findings or more among `members`, most recent first.
pub fn group(members: &[Member<'_>]) -> Vec<Group> {
    let times: Vec<(i64, i64)> = members.iter().map(|m| span(m.finding)).collect();
    let named: Vec<Vec<EntityId>> = members
        .iter()
        .map(|m| named_by(m.finding, m.cluster_id))
        .collect();
    let mut sets = UnionFind::new(members.len());
    link_by_entities(&named, &times, &mut sets);
    link_scans_to_triggers(members, &mut sets);
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..members.len() {
        by_root.entry(sets.find(i)).or_default().push(i);
    }
    let mut out: Vec<Group> = by_root
        .into_values()
        .filter(|ix| ix.len() >= 2)
        .map(|ix| make_group(members, &named, &times, ix))
        .collect();
    out.sort_by(|a, b| {
        b.last_ms
            .cmp(&a.last_ms)
            .then_with(|| a.finding_ids.cmp(&b.finding_ids))
    });
    out
}

/// When a finding was first and last seen (unknown times count as 0).
fn span(f: &Finding) -> (i64, i64) {
    let last = f.last_seen_ms().unwrap_or(0);
    let first = f.first_seen_ms().unwrap_or(last);
    (first.min(last), last)
}

/// Findings naming the same linking entity, within the window of one another.
fn link_by_entities(named: &[Vec<EntityId>], times: &[(i64, i64)], sets: &mut UnionFind) {
    let mut by_entity: HashMap<&EntityId, Vec<usize>> = HashMap::new();
    for (i, ids) in named.iter().enumerate() {
        for id in ids.iter().filter(|id| links(id.kind())) {
            by_entity.entry(id).or_default().push(i);
        }
    }
    for mut ix in by_entity.into_values() {
        ix.sort_by_key(|&i| times[i]);
        // Each finding joins the run before it when it starts within the window of the
        // run's latest sighting.
        let mut run_last = i64::MIN;
        let mut run_head: Option<usize> = None;
        for i in ix {
            let (first, last) = times[i];
            match run_head {
                Some(head) if first.saturating_sub(run_last) <= LINK_WINDOW_MS => {
                    sets.union(head, i);
                    run_last = run_last.max(last);
                }
                _ => {
                    run_head = Some(i);
                    run_last = last;
                }
            }
        }
    }
}

/// A scan triggered by a finding belongs with it.
fn link_scans_to_triggers(members: &[Member<'_>], sets: &mut UnionFind) {
    let index: HashMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.finding.id.as_str(), i))
        .collect();
    for (i, m) in members.iter().enumerate() {
        let trigger = m
            .finding
            .malware
            .as_ref()
            .and_then(|s| s.trigger_finding_id.as_deref());
        if let Some(&t) = trigger.and_then(|t| index.get(t)) {
            sets.union(t, i);
        }
    }
}

fn make_group(
    members: &[Member<'_>],
    named: &[Vec<EntityId>],
    times: &[(i64, i64)],
    mut ix: Vec<usize>,
) -> Group {
    ix.sort_by(|&a, &b| {
        times[a]
            .cmp(&times[b])
            .then_with(|| members[a].finding.id.cmp(&members[b].finding.id))
    });
    let findings: Vec<&Finding> = ix.iter().map(|&i| members[i].finding).collect();
    let worst = findings
        .iter()
        .max_by(|a, b| score(a).total_cmp(&score(b)))
        .expect("a group has findings");
    let mut namespaces: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &findings {
        *namespaces
            .entry(f.kind.split(':').next().unwrap_or(&f.kind))
            .or_default() += 1;
    }
    let mut counted: Vec<(&str, usize)> = namespaces.into_iter().collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let title = counted
        .iter()
        .map(|(ns, n)| format!("{ns} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let tactics: BTreeSet<(usize, String)> = findings
        .iter()
        .filter_map(|f| f.mitre.as_ref().map(|m| m.tactic.as_str()))
        .filter(|t| !t.is_empty())
        .map(tactic)
        .collect();
    let tactics: Vec<String> = tactics.into_iter().map(|(_, name)| name).collect();
    let entities: BTreeSet<EntityId> = ix
        .iter()
        .flat_map(|&i| named[i].iter())
        .filter(|id| links(id.kind()) || id.kind() == EntityType::Cluster)
        .cloned()
        .collect();
    Group {
        severity_label: worst.severity.label,
        severity_score: score(worst),
        title,
        tactics,
        finding_ids: findings.iter().map(|f| f.id.clone()).collect(),
        entities: entities.into_iter().collect(),
        first_ms: ix.iter().map(|&i| times[i].0).min().unwrap_or(0),
        last_ms: ix.iter().map(|&i| times[i].1).max().unwrap_or(0),
    }
}

fn score(f: &Finding) -> f64 {
    f.severity.score.unwrap_or(match f.severity.label {
        SeverityLabel::Critical => 9.0,
        SeverityLabel::High => 7.0,
        SeverityLabel::Medium => 4.0,
        SeverityLabel::Low => 1.0,
        _ => 0.0,
    })
}

/// Disjoint sets over 0..n (path halving, union by size).
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_model::{Action, KubernetesResource, KubernetesUser, MalwareScan, Mitre, Severity};

    fn finding(
        id: &str,
        kind: &str,
        tactic: &str,
        user: &str,
        ip: &str,
        hour: i64,
        score: f64,
    ) -> Finding {
        let t = rfc3339(hour * 3_600_000);
        Finding {
            id: id.into(),
            kind: kind.into(),
            severity: Severity {
                label: if score >= 7.0 {
                    SeverityLabel::High
                } else {
                    SeverityLabel::Medium
                },
                score: Some(score),
            },
            first_seen: Some(t.clone()),
            last_seen: Some(t),
            mitre: Some(Mitre {
                tactic: tactic.into(),
                ..Default::default()
            }),
            action: Some(Action {
                source_ips: vec![ip.into()],
                ..Default::default()
            }),
            resource: osprey_model::Resource {
                kubernetes: Some(KubernetesResource {
                    user: Some(KubernetesUser {
                        username: user.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn shared_actors_within_two_days_make_one_group_in_kill_chain_order() {
        let fs = [
            finding(
                "a",
                "PrivilegeEscalation:Kubernetes/X",
                "TA0004",
                "anon",
                "203.0.113.66",
                10,
                7.5,
            ),
            finding(
                "b",
                "Execution:Kubernetes/Y",
                "TA0002",
                "anon",
                "198.51.100.1",
                11,
                5.0,
            ),
            finding(
                "c",
                "Discovery:Kubernetes/Z",
                "TA0007",
                "other",
                "198.51.100.1",
                12,
                2.0,
            ),
            finding(
                "d",
                "Execution:Kubernetes/W",
                "Execution",
                "other",
                "198.51.100.1",
                12,
                5.0,
            ),
            // The same subject, but four days later: another incident.
            finding(
                "e",
                "Discovery:Kubernetes/Z",
                "TA0007",
                "anon",
                "192.0.2.9",
                110,
                2.0,
            ),
            finding(
                "f",
                "Impact:Kubernetes/V",
                "TA0040",
                "late",
                "192.0.2.9",
                111,
                4.0,
            ),
            // Alone.
            finding(
                "g",
                "Policy:Kubernetes/U",
                "",
                "solo",
                "192.0.2.200",
                5,
                1.0,
            ),
        ];
        let members: Vec<Member<'_>> = fs
            .iter()
            .map(|f| Member {
                finding: f,
                cluster_id: Some("c1"),
            })
            .collect();
        let groups = group(&members);
        assert_eq!(groups.len(), 2, "{groups:#?}");
        let early = &groups[1];
        assert_eq!(early.finding_ids, ["a", "b", "c", "d"]);
        assert_eq!(
            early.tactics,
            ["Execution", "Privilege Escalation", "Discovery"]
        );
        assert!(early.is_sequence());
        assert_eq!(
            early.title,
            "Execution (2), Discovery (1), PrivilegeEscalation (1)"
        );
        assert_eq!(
            (early.severity_label, early.severity_score),
            (SeverityLabel::High, 7.5)
        );
        assert!(
            early
                .entities
                .iter()
                .any(|e| e.to_string() == "ip/198.51.100.1")
        );
        assert!(early.entities.iter().any(|e| e.to_string() == "cluster/c1"));
        let late = &groups[0];
        assert_eq!(late.finding_ids, ["e", "f"]);
        assert!(!late.is_sequence());
    }

    #[test]
    fn a_scan_joins_the_finding_that_triggered_it() {
        let audit = finding(
            "t",
            "PrivilegeEscalation:Kubernetes/Priv",
            "Privilege Escalation",
            "anon",
            "203.0.113.66",
            10,
            7.0,
        );
        let mut scan = Finding {
            id: "m".into(),
            kind: "Execution:Container/MaliciousFile".into(),
            last_seen: Some(rfc3339(500 * 3_600_000)),
            ..Default::default()
        };
        scan.malware = Some(MalwareScan {
            trigger_finding_id: Some("t".into()),
            ..Default::default()
        });
        let fs = [audit, scan];
        let members: Vec<Member<'_>> = fs
            .iter()
            .map(|f| Member {
                finding: f,
                cluster_id: None,
            })
            .collect();
        let groups = group(&members);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].finding_ids, ["t", "m"]);
    }
}
