//! The Summary page, where the console opens: over the scope time, the active findings by
//! severity and by type, the newest High and Critical groups, the subjects and addresses with
//! the most API calls and the addresses and clients newly observed (from the clusters'
//! profiles), and each cluster with its last event and ingest health.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use osprey_graph::{EntityId, EntityType};
use osprey_model::SeverityLabel;
use osprey_store::{FindingFilter, FindingState, StatsGroup};

use super::finding::EntityLink;
use super::findings::label_text;
use super::group::GroupRow;
use super::layout::{Frame, api_error, error_page, render, severity_class};
use super::session::Signed;
use super::view::{Query, Scope, rfc3339, shown_time};
use crate::App;

/// Rows of each ranked list.
const TOP: usize = 10;
/// A cluster whose last event is older than this is quiet.
const QUIET_MS: i64 = 3_600_000;

/// A severity's count, linking to the findings of that severity.
pub struct SeverityCount {
    pub label: String,
    pub class: &'static str,
    pub count: i64,
    pub href: String,
}

/// A finding type's count, with its bar's share of the largest.
pub struct TypeCount {
    pub kind: String,
    pub count: i64,
    pub percent: f64,
    pub href: String,
}

/// An entity and how many calls it made in the scope.
pub struct Ranked {
    pub link: EntityLink,
    pub calls: u64,
}

pub struct NewValue {
    pub kind: &'static str,
    pub link: Option<EntityLink>,
    pub value: String,
    pub cluster: String,
    pub first_seen: String,
}

pub struct ClusterRow {
    pub link: EntityLink,
    pub last_event: String,
    pub events_kept: i64,
    pub calls: u64,
    /// `receiving`, `quiet` or `no events`.
    pub health: &'static str,
    pub health_class: &'static str,
}

#[derive(Template)]
#[template(path = "console/summary.html")]
struct SummaryPage {
    frame: Frame,
    total: i64,
    severities: Vec<SeverityCount>,
    types: Vec<TypeCount>,
    groups: Vec<GroupRow>,
    subjects: Vec<Ranked>,
    addresses: Vec<Ranked>,
    newly: Vec<NewValue>,
    clusters: Vec<ClusterRow>,
    backlog: i64,
    detection_failing: Option<String>,
}

/// `GET /console/summary`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let now = osprey_store::now_ms();
    let scope = match Scope::of(&q, now) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let pscope = match super::entity::profile_scope(&scope, now) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let scope_q = q.only(&["range", "since", "until"]);
    let filter = FindingFilter {
        tenant_id: signed.caller.scope(),
        state: Some(FindingState::Active),
        since_ms: scope.since_ms,
        until_ms: scope.until_ms,
        ..FindingFilter::default()
    };
    let own = signed.caller.scope();
    let (by_severity, by_type, clusters) = match tokio::try_join!(
        app.store.finding_stats(&filter, StatsGroup::Severity),
        app.store.finding_stats(&filter, StatsGroup::Type),
        app.store.clusters(own.as_deref()),
    ) {
        Ok(r) => r,
        Err(e) => return api_error(e.into()),
    };
    let names = super::finding::names_of(&clusters);
    let findings_link = |extra: &[(&str, &str)]| {
        format!(
            "/console/findings?{}",
            Query::parse(Some(&scope_q)).with(extra)
        )
    };
    let severities = [
        SeverityLabel::Critical,
        SeverityLabel::High,
        SeverityLabel::Medium,
        SeverityLabel::Low,
    ]
    .into_iter()
    .map(|l| {
        let key = l.as_str().to_ascii_lowercase();
        SeverityCount {
            label: label_text(l),
            class: severity_class(l),
            count: by_severity
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map_or(0, |(_, n)| *n),
            href: findings_link(&[("severity", &key)]),
        }
    })
    .collect();
    let total = by_severity.iter().map(|(_, n)| n).sum();
    let mut types = by_type;
    types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let largest = types.first().map_or(1, |t| t.1.max(1));
    let types = types
        .into_iter()
        .take(TOP)
        .map(|(kind, count)| TypeCount {
            href: findings_link(&[("type", &kind)]),
            percent: 100.0 * count as f64 / largest as f64,
            kind,
            count,
        })
        .collect();
    let groups = groups(&app, &signed, &scope).await;
    let (subjects, addresses, newly, cluster_rows) =
        activity(&app, &clusters, &names, pscope, &scope_q, now).await;
    let failing = app.detection_failing.lock().ok().and_then(|f| {
        f.as_ref()
            .map(|(n, e)| format!("{n} detection rounds failed: {e}"))
    });
    let frame = Frame::new(
        &signed,
        "Summary",
        "summary",
        "/console/summary",
        q,
        Some(scope),
    );
    render(&SummaryPage {
        frame,
        total,
        severities,
        types,
        groups,
        subjects,
        addresses,
        newly,
        clusters: cluster_rows,
        backlog: app
            .pending_events
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
        detection_failing: failing,
    })
}

/// The newest High and Critical groups of the scope.
async fn groups(app: &Arc<App>, signed: &Signed, scope: &Scope) -> Vec<GroupRow> {
    let Ok(groups) = super::group::groups_in(app, signed, scope, None).await else {
        return Vec::new();
    };
    groups
        .groups
        .iter()
        .filter(|g| g.severity.label >= SeverityLabel::High)
        .take(5)
        .map(GroupRow::of)
        .collect()
}

type Activity = (Vec<Ranked>, Vec<Ranked>, Vec<NewValue>, Vec<ClusterRow>);

/// From each cluster's profile over the scope: the subjects and addresses calling it most,
/// the addresses and clients newly observed, and the cluster's own activity.
async fn activity(
    app: &App,
    clusters: &[osprey_store::Cluster],
    names: &HashMap<String, String>,
    pscope: osprey_graph::profile::Scope,
    scope_q: &str,
    now: i64,
) -> Activity {
    let reads = clusters.iter().map(|c| async move {
        let id = EntityId::cluster(&c.id);
        let tenants = vec![c.tenant_id.clone()];
        let (profile, kept) = tokio::join!(
            crate::profiles::profile(&app.store, &tenants, &id, pscope, 1000, 0),
            app.store.audit_batch_count(Some(&c.id)),
        );
        (id, profile.ok().flatten(), kept.map_or(0, |k| k.1))
    });
    let read = futures_util::future::join_all(reads).await;
    let mut subjects: HashMap<String, u64> = HashMap::new();
    let mut addresses: HashMap<String, u64> = HashMap::new();
    let mut newly = Vec::new();
    let mut rows = Vec::new();
    for (id, profile, events_kept) in read {
        let link = EntityLink::of(&id).named(names).scoped(scope_q);
        let cluster_name = link.name.clone();
        let Some(p) = profile else {
            rows.push(ClusterRow {
                link,
                last_event: String::new(),
                events_kept,
                calls: 0,
                health: "no events",
                health_class: "sev-info",
            });
            continue;
        };
        for r in &p.activity.related {
            let table = match r.kind {
                EntityType::Subject => &mut subjects,
                EntityType::Ip => &mut addresses,
                _ => continue,
            };
            *table.entry(r.id.clone()).or_default() += r.count;
        }
        for n in p
            .activity
            .newly_observed
            .iter()
            .filter(|n| matches!(n.kind, "ip" | "user_agent"))
        {
            newly.push(NewValue {
                kind: if n.kind == "ip" { "address" } else { "client" },
                link: n
                    .id
                    .as_deref()
                    .and_then(|i| EntityId::parse(i).ok())
                    .map(|e| EntityLink::of(&e).scoped(scope_q)),
                value: n.value.clone(),
                cluster: cluster_name.clone(),
                first_seen: shown_time(&n.first_seen),
            });
        }
        let last = p
            .entity
            .last_seen
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .ok();
        let (health, health_class) = match last {
            Some(l) if now - l <= QUIET_MS => ("receiving", "sev-low"),
            Some(_) => ("quiet", "sev-medium"),
            None => ("no events", "sev-info"),
        };
        rows.push(ClusterRow {
            link,
            last_event: last.map(|l| shown_time(&rfc3339(l))).unwrap_or_default(),
            events_kept,
            calls: p.activity.api_calls.total,
            health,
            health_class,
        });
    }
    newly.sort_by(|a, b| b.first_seen.cmp(&a.first_seen));
    newly.truncate(2 * TOP);
    (
        ranked(subjects, names, scope_q),
        ranked(addresses, names, scope_q),
        newly,
        rows,
    )
}

fn ranked(
    counts: HashMap<String, u64>,
    names: &HashMap<String, String>,
    scope_q: &str,
) -> Vec<Ranked> {
    let mut list: Vec<(String, u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.into_iter()
        .take(TOP)
        .filter_map(|(id, calls)| {
            let e = EntityId::parse(&id).ok()?;
            Some(Ranked {
                link: EntityLink::of(&e).named(names).scoped(scope_q),
                calls,
            })
        })
        .collect()
}
