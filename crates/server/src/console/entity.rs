//! The Entity profile page (cluster, namespace, pod, subject, IP, user agent, image, node,
//! vulnerability, package): the profile panels of the API over the scope time — API calls
//! over time stacked by result, by verb and resource, newly observed values, related
//! entities, findings — and for images their packages, vulnerabilities and scans; the impact
//! of images, vulnerabilities, subjects and pods.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use osprey_graph::profile::{Direction, Related};
use osprey_graph::{EntityId, EntityType};
use osprey_store::{Role, ScanState};

use super::chart::{Bars, RESULTS};
use super::finding::EntityLink;
use super::findings::label_text;
use super::layout::{Frame, api_error, error_page, render, severity_class};
use super::session::Signed;
use super::table::{Column, List, Table};
use super::view::{Query, Scope, rfc3339, shown_time};
use crate::App;
use crate::api::entities::tenants_of;
use crate::impact::ImpactView;
use crate::profiles::{self, Profile};

const HOUR_MS: i64 = 3_600_000;
/// Rows per page of the profile's lists.
const PER_PAGE: usize = 50;
/// Packages per page (an image has hundreds).
const PACKAGES_PER_PAGE: usize = 150;

/// A related entity's row.
pub struct RelatedRow {
    pub link: EntityLink,
    pub relation: &'static str,
    /// `→` (the entity made the edge) or `←`.
    pub arrow: &'static str,
    pub count: u64,
    pub last_seen: String,
    /// `last_seen` as stored (RFC 3339, sorts as text).
    seen: String,
}

impl RelatedRow {
    fn of(r: &Related, clusters: &HashMap<String, String>) -> Option<RelatedRow> {
        let id = EntityId::parse(&r.id).ok()?;
        Some(RelatedRow {
            link: EntityLink::of(&id).named(clusters),
            relation: r.relation.as_str(),
            arrow: match r.direction {
                Direction::Out => "→",
                Direction::In => "←",
            },
            count: r.count,
            last_seen: shown_time(&r.last_seen),
            seen: r.last_seen.clone(),
        })
    }
}

pub struct FindingRow {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub last_seen: String,
    score: f64,
    /// `last_seen` as stored (RFC 3339).
    seen: String,
}

pub struct VerbRow {
    pub verb: String,
    pub resource: String,
    pub total: u64,
    pub denied: u64,
}

pub struct NewRow {
    pub kind: &'static str,
    pub value: String,
    pub link: Option<String>,
    pub first_seen: String,
}

pub struct ScanRow {
    pub id: String,
    pub kind: String,
    pub state: &'static str,
    pub image: String,
    pub packages: i64,
    pub vulnerabilities: i64,
    pub threats: i64,
    pub finished: String,
}

/// The impact panel.
pub struct ImpactPanel {
    pub pods_total: usize,
    pub pods: Table<ImpactPod>,
    pub namespaces: Vec<(EntityLink, usize)>,
    pub nodes: Vec<(EntityLink, usize)>,
    pub subjects: Table<(String, Option<String>, String, usize)>,
    pub secrets: Vec<String>,
    pub notices: Vec<String>,
}

pub struct ImpactPod {
    pub link: Option<EntityLink>,
    pub id: String,
    pub reasons: String,
    pub host: bool,
}

impl ImpactPanel {
    fn of(v: &ImpactView, lists: &Lists) -> Result<ImpactPanel, String> {
        let link = |id: &str| EntityId::parse(id).ok().map(|e| EntityLink::of(&e));
        let pods = v
            .impact
            .pods
            .iter()
            .map(|p| ImpactPod {
                link: link(&p.id),
                id: p.id.clone(),
                reasons: p.reasons.join(", "),
                host: p.reaches_host,
            })
            .collect();
        let subjects = v
            .impact
            .subjects
            .iter()
            .map(|r| {
                let name = if r.subject.namespace.is_empty() {
                    format!("{} {}", r.subject.kind, r.subject.name)
                } else {
                    format!(
                        "{} {}/{}",
                        r.subject.kind, r.subject.namespace, r.subject.name
                    )
                };
                let can: Vec<&str> = r.can.iter().map(|c| c.as_str()).collect();
                (name, r.subject.id.clone(), can.join(", "), r.pods)
            })
            .collect();
        Ok(ImpactPanel {
            pods_total: v.impact.pods_total,
            pods: lists.of("pods", PER_PAGE, ("", "asc")).page(pods, &[])?,
            namespaces: v
                .impact
                .namespaces
                .iter()
                .filter_map(|t| Some((link(&t.id)?, t.pods)))
                .collect(),
            nodes: v
                .impact
                .nodes
                .iter()
                .filter_map(|t| Some((link(&t.id)?, t.pods)))
                .collect(),
            subjects: lists
                .of("reach", PER_PAGE, ("", "asc"))
                .page(subjects, &[])?,
            secrets: v
                .impact
                .secrets
                .iter()
                .map(|s| format!("{}: {} (via {})", s.namespace, s.names.join(", "), s.via))
                .collect(),
            notices: v.notices.clone(),
        })
    }
}

/// The lists of a profile page: its path and query, which name each list's sort and page.
struct Lists<'a> {
    path: &'a str,
    query: &'a Query,
}

impl<'a> Lists<'a> {
    fn of(
        &self,
        name: &'static str,
        size: usize,
        default: (&'static str, &'static str),
    ) -> List<'a> {
        List {
            name,
            path: self.path,
            query: self.query,
            size,
            default,
        }
    }
}

/// The columns a list of related entities sorts by.
fn related_columns() -> [Column<RelatedRow>; 5] {
    [
        Column::new("type", "Type", |a, b| a.link.kind.cmp(b.link.kind)),
        Column::new("name", "Entity", |a, b| a.link.name.cmp(&b.link.name)),
        Column::new("relation", "Relation", |a, b| a.relation.cmp(b.relation)),
        Column::new("count", "Count", |a, b| a.count.cmp(&b.count)),
        Column::new("last_seen", "Last seen", |a, b| a.seen.cmp(&b.seen)),
    ]
}

/// The columns of the API calls by verb and resource.
fn verb_columns() -> [Column<VerbRow>; 4] {
    [
        Column::new("verb", "Verb", |a, b| a.verb.cmp(&b.verb)),
        Column::new("resource", "Resource", |a, b| a.resource.cmp(&b.resource)),
        Column::new("total", "Calls", |a, b| a.total.cmp(&b.total)),
        Column::new("denied", "Denied", |a, b| a.denied.cmp(&b.denied)),
    ]
}

#[derive(Template)]
#[template(path = "console/entity.html")]
struct EntityPage {
    frame: Frame,
    kind: &'static str,
    name: String,
    path: String,
    properties: Vec<(String, String)>,
    first_seen: String,
    last_seen: String,
    notices: Vec<String>,
    total: u64,
    by_result: Vec<(&'static str, &'static str, u64)>,
    bars: Bars,
    verbs: Table<VerbRow>,
    newly: Table<NewRow>,
    packages: Table<RelatedRow>,
    vulnerabilities: Table<RelatedRow>,
    related: Table<RelatedRow>,
    findings: Table<FindingRow>,
    scans: Vec<ScanRow>,
    impact: Option<ImpactPanel>,
    impact_error: Option<String>,
    graph: String,
}

/// The entity a console path names: `/console/entities/{type}/{key}` (the key as sent, its
/// parts percent-encoded).
pub fn entity_of_path(uri: &Uri, prefix: &str) -> Result<EntityId, String> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or_default();
    let (kind, key) = rest
        .split_once('/')
        .ok_or_else(|| format!("{rest:?}: expected {{type}}/{{id}}"))?;
    let kind = EntityType::parse(kind).ok_or_else(|| {
        format!(
            "entity type {kind:?}: expected one of {}",
            EntityType::names()
        )
    })?;
    EntityId::parse_key(kind, key).map_err(|e| format!("entity {kind}/{key}: {e}"))
}

/// The profile scope of a console scope: whole hours, at most the year a profile covers.
pub(crate) fn profile_scope(
    scope: &Scope,
    now_ms: i64,
) -> Result<osprey_graph::profile::Scope, String> {
    let end = match scope.until_ms {
        Some(u) => (u + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS,
        None => (now_ms.div_euclid(HOUR_MS) + 1) * HOUR_MS,
    };
    let longest = end - osprey_graph::profile::MAX_SCOPE_HOURS * HOUR_MS;
    let start = scope
        .since_ms
        .map(|s| s.div_euclid(HOUR_MS) * HOUR_MS)
        .unwrap_or(longest)
        .max(longest);
    profiles::scope_of(Some(start), Some(end))
}

/// `GET /console/entities/{type}/{id}`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = match entity_of_path(&uri, "/console/entities/") {
        Ok(id) => id,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let q = Query::parse(raw.as_deref());
    let now = osprey_store::now_ms();
    let scope = match Scope::of(&q, now) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let pscope = match profile_scope(&scope, now) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let tenants = match tenants_of(&app, &signed.caller, &id, None).await {
        Ok(t) => t,
        Err(e) => return api_error(e),
    };
    // Every related entity: the page sorts and pages them itself.
    let profile = match profiles::profile(&app.store, &tenants, &id, pscope, usize::MAX, 0).await {
        Ok(Some(p)) => p,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, &format!("entity {id} not found")),
        Err(e) => return api_error(e.into()),
    };
    let path = format!("/console/entities/{id}");
    let lists = Lists {
        path: &path,
        query: &q,
    };
    let impact = if crate::impact::applies_to(id.kind()) {
        match crate::impact::impact(&app.store, &tenants, &id).await {
            Ok(Some(v)) => match ImpactPanel::of(&v, &lists) {
                Ok(panel) => Ok(Some(panel)),
                Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(crate::error::ApiError::from(e).message),
        }
    } else {
        Ok(None)
    };
    let findings = match findings_of(
        &app,
        &signed,
        &profile.findings,
        lists.of("findings", PER_PAGE, ("last_seen", "desc")),
    )
    .await
    {
        Ok(table) => table,
        Err(page) => return page,
    };
    let scans = if id.kind() == EntityType::Image {
        scans_of(&app, &signed, id.key()).await
    } else {
        Vec::new()
    };
    let clusters = super::finding::cluster_names(&app, &signed).await;
    let read = Read {
        profile,
        pscope,
        findings,
        scans,
        impact,
        clusters,
    };
    let frame = Frame::new(
        &signed,
        format!("{} {}", id.kind(), id.name()),
        "entities",
        path.clone(),
        q.clone(),
        Some(scope),
    );
    match build(frame, &id, read, &lists) {
        Ok(page) => render(&page),
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e),
    }
}

/// What a profile page shows, as read.
struct Read {
    profile: Profile,
    pscope: osprey_graph::profile::Scope,
    findings: Table<FindingRow>,
    scans: Vec<ScanRow>,
    /// The impact panel, none for an entity without one, or why it could not be worked out.
    impact: Result<Option<ImpactPanel>, String>,
    clusters: HashMap<String, String>,
}

/// The page out of what was read, each list sorted and paged as the URL asks.
fn build(frame: Frame, id: &EntityId, read: Read, lists: &Lists) -> Result<EntityPage, String> {
    let scope_q = lists.query.only(&["range", "since", "until"]);
    let graph = if scope_q.is_empty() {
        format!("/console/graph/{id}")
    } else {
        format!("/console/graph/{id}?{scope_q}")
    };
    let Read {
        profile,
        pscope,
        findings,
        scans,
        impact,
        clusters,
    } = read;
    let a = &profile.activity;
    let hourly: Vec<(i64, osprey_graph::Counts)> = a
        .api_calls
        .hourly
        .iter()
        .filter_map(|h| {
            let ms = h.hour.parse::<jiff::Timestamp>().ok()?.as_millisecond();
            Some((ms, h.counts))
        })
        .collect();
    let bars = Bars::of(pscope.start.start_ms(), pscope.end.start_ms(), &hourly);
    let r = &a.api_calls.by_result;
    let by_result = RESULTS
        .iter()
        .zip([r.success, r.failed, r.unauthorized, r.forbidden])
        .map(|((class, label), n)| (*class, *label, n))
        .collect();
    let mut packages = Vec::new();
    let mut vulnerabilities = Vec::new();
    let mut related = Vec::new();
    for row in a
        .related
        .iter()
        .filter_map(|r| RelatedRow::of(r, &clusters))
    {
        match row.link.kind {
            "package" if id.kind() == EntityType::Image => packages.push(row),
            "vulnerability" => vulnerabilities.push(row),
            _ => related.push(row),
        }
    }
    let verbs = a
        .api_calls
        .by_verb_resource
        .iter()
        .map(|v| VerbRow {
            verb: v.verb.clone(),
            resource: v.resource.clone(),
            total: v.counts.total(),
            denied: v.counts.unauthorized + v.counts.forbidden,
        })
        .collect();
    let newly = a
        .newly_observed
        .iter()
        .map(|n| NewRow {
            kind: n.kind,
            value: n.value.clone(),
            link: n.id.clone(),
            first_seen: shown_time(&n.first_seen),
        })
        .collect();
    let (impact, impact_error) = match impact {
        Ok(panel) => (panel, None),
        Err(e) => (None, Some(e)),
    };
    Ok(EntityPage {
        kind: id.kind().as_str(),
        name: clusters
            .get(&id.to_string())
            .cloned()
            .unwrap_or_else(|| id.name()),
        path: id.to_string(),
        properties: properties(&profile.entity.properties),
        first_seen: shown_time(&profile.entity.first_seen),
        last_seen: shown_time(&profile.entity.last_seen),
        notices: a.notices.iter().map(|n| n.message.clone()).collect(),
        total: a.api_calls.total,
        by_result,
        bars,
        verbs: lists
            .of("verbs", 25, ("total", "desc"))
            .page(verbs, &verb_columns())?,
        newly: lists.of("new", PER_PAGE, ("", "asc")).page(newly, &[])?,
        packages: lists
            .of("packages", PACKAGES_PER_PAGE, ("name", "asc"))
            .page(packages, &related_columns())?,
        vulnerabilities: lists
            .of("vulns", PER_PAGE, ("name", "desc"))
            .page(vulnerabilities, &related_columns())?,
        related: lists
            .of("related", PER_PAGE, ("count", "desc"))
            .page(related, &related_columns())?,
        findings,
        scans,
        impact,
        impact_error,
        graph,
        frame,
    })
}

/// A profile's properties as names and values (nested values as compact JSON).
fn properties(v: &serde_json::Value) -> Vec<(String, String)> {
    let Some(map) = v.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k.replace('_', " "), value)
        })
        .collect()
}

/// Findings a profile reads at most (the most recently named).
const FINDINGS_READ: usize = 2000;

/// The findings naming the entity that the caller may see, in one read, sorted and paged as
/// the URL asks (newest last seen first by default).
async fn findings_of(
    app: &App,
    signed: &Signed,
    ids: &[String],
    list: List<'_>,
) -> Result<Table<FindingRow>, Response> {
    let ids: Vec<String> = ids.iter().take(FINDINGS_READ).cloned().collect();
    let found = app
        .store
        .findings_by_id(&ids)
        .await
        .map_err(|e| api_error(e.into()))?;
    let rows = found
        .iter()
        .filter(|f| signed.caller.owns(&f.tenant_id))
        .map(|f| {
            let seen = f.finding.last_seen.clone().unwrap_or_default();
            FindingRow {
                id: f.finding.id.clone(),
                title: f.finding.title.clone(),
                severity: label_text(f.finding.severity.label),
                severity_class: severity_class(f.finding.severity.label),
                score: osprey_store::severity_score(&f.finding),
                last_seen: shown_time(&seen),
                seen,
            }
        })
        .collect();
    list.page(rows, &finding_columns())
        .map_err(|e| error_page(StatusCode::BAD_REQUEST, &e))
}

/// The columns a profile's findings sort by.
fn finding_columns() -> [Column<FindingRow>; 3] {
    [
        Column::new("severity", "Severity", |a, b| a.score.total_cmp(&b.score)),
        Column::new("title", "Finding", |a, b| a.title.cmp(&b.title)),
        Column::new("last_seen", "Last seen", |a, b| {
            a.seen.cmp(&b.seen).then_with(|| b.id.cmp(&a.id))
        }),
    ]
}

/// The latest scans of an image (by digest) the caller sees.
async fn scans_of(app: &App, signed: &Signed, digest: &str) -> Vec<ScanRow> {
    if !signed.can(Role::Viewer) {
        return Vec::new();
    }
    let jobs = app
        .store
        .scan_jobs(signed.caller.scope().as_deref(), None, None, 500)
        .await
        .unwrap_or_default();
    jobs.into_iter()
        .filter(|j| j.image_digest.as_deref() == Some(digest))
        .take(20)
        .map(|j| ScanRow {
            id: j.id,
            kind: j.kind.as_str().replace('_', "-"),
            state: j.state.as_str(),
            image: j.image,
            packages: j.packages,
            vulnerabilities: j.vulnerabilities,
            threats: j.threats,
            finished: match (j.state, j.finished_ms) {
                (ScanState::Done | ScanState::Failed, Some(ms)) => shown_time(&rfc3339(ms)),
                _ => String::new(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths_name_entities() {
        let uri: Uri = "/console/entities/pod/c1/prod/web-1?range=24h"
            .parse()
            .unwrap();
        let id = entity_of_path(&uri, "/console/entities/").unwrap();
        assert_eq!(id.to_string(), "pod/c1/prod/web-1");
        let bad: Uri = "/console/entities/planet/earth".parse().unwrap();
        assert!(
            entity_of_path(&bad, "/console/entities/")
                .unwrap_err()
                .starts_with("entity type \"planet\"")
        );
        let none: Uri = "/console/entities/ip".parse().unwrap();
        assert!(entity_of_path(&none, "/console/entities/").is_err());
    }

    #[test]
    fn profile_scopes_are_whole_hours_within_a_year() {
        let now = 1_796_000_123_456;
        let s = Scope::of(&Query::parse(Some("range=24h")), now).unwrap();
        let p = profile_scope(&s, now).unwrap();
        assert_eq!(p.end.start_ms() % HOUR_MS, 0);
        assert!(p.end.start_ms() > now && p.end.start_ms() - now <= HOUR_MS);
        assert_eq!(p.end.0 - p.start.0, 25, "24 hours and the current one");
        let all = Scope::of(&Query::parse(Some("range=all")), now).unwrap();
        let p = profile_scope(&all, now).unwrap();
        assert_eq!(p.end.0 - p.start.0, osprey_graph::profile::MAX_SCOPE_HOURS);
    }
}
