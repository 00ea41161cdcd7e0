//! The Group page: a group's findings on a timeline (one lane per ATT&CK tactic, drawn
//! server-side as SVG), the tactic chain, the entities its findings name, and the list of its
//! findings; and the Groups page listing the groups of the scope.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use osprey_store::StoredFinding;

use super::finding::EntityLink;
use super::findings::{label_text, resource_text};
use super::layout::{Frame, api_error, error_page, render, severity_class};
use super::session::Signed;
use super::table::{Column, List, Table};
use super::view::{Query, Scope, shown_time};
use crate::App;
use crate::api::groups::{FindingGroup, FindingGroups, group_with_findings};

/// One finding of a group, in time order.
pub struct Member {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub tactic: String,
    pub first_seen: String,
    pub resource: String,
}

/// A finding's mark on the timeline.
pub struct Mark {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub class: &'static str,
    pub tip: String,
}

/// A tactic's lane.
pub struct Lane {
    pub name: String,
    pub y: f64,
}

/// The timeline's geometry: marks placed by first-seen time, one lane per tactic.
pub struct Timeline {
    pub width: f64,
    pub height: f64,
    pub lanes: Vec<Lane>,
    pub marks: Vec<Mark>,
    pub start: String,
    pub end: String,
    /// Where the plot starts (after the lane names).
    pub left: f64,
}

const LANE_HEIGHT: f64 = 28.0;
const WIDTH: f64 = 960.0;
const LEFT: f64 = 215.0;

impl Timeline {
    fn of(tactics: &[String], members: &[(i64, &StoredFinding)]) -> Timeline {
        let mut lanes: Vec<String> = tactics
            .iter()
            .map(|t| {
                osprey_graph::group::KILL_CHAIN
                    .iter()
                    .find(|(_, name)| name == t)
                    .map(|(id, name)| format!("{name} ({id})"))
                    .unwrap_or_else(|| t.clone())
            })
            .collect();
        for (_, f) in members {
            let t = tactic(f);
            if !lanes.contains(&t) {
                lanes.push(t);
            }
        }
        let lane_y: HashMap<String, f64> = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), 20.0 + i as f64 * LANE_HEIGHT))
            .collect();
        let first = members.iter().map(|m| m.0).min().unwrap_or(0);
        let last = members.iter().map(|m| m.0).max().unwrap_or(0);
        let span = (last - first).max(1) as f64;
        let plot = WIDTH - LEFT - 40.0;
        let marks = members
            .iter()
            .map(|(ms, f)| {
                let t = tactic(f);
                Mark {
                    id: f.finding.id.clone(),
                    x: LEFT + 10.0 + plot * ((ms - first) as f64 / span),
                    y: lane_y.get(&t).copied().unwrap_or(20.0),
                    class: severity_class(f.finding.severity.label),
                    tip: format!(
                        "{} — {} ({})",
                        f.finding
                            .first_seen
                            .as_deref()
                            .map(shown_time)
                            .unwrap_or_default(),
                        f.finding.title,
                        label_text(f.finding.severity.label)
                    ),
                }
            })
            .collect();
        Timeline {
            width: WIDTH,
            height: 30.0 + lanes.len() as f64 * LANE_HEIGHT,
            lanes: lanes
                .into_iter()
                .map(|name| {
                    let y = lane_y.get(&name).copied().unwrap_or(20.0);
                    Lane { name, y }
                })
                .collect(),
            marks,
            start: shown_time(&super::view::rfc3339(first)),
            end: shown_time(&super::view::rfc3339(last)),
            left: LEFT,
        }
    }
}

/// A finding's ATT&CK tactic by name (`TA0006` reads Credential Access), or `Other`.
pub fn tactic(f: &StoredFinding) -> String {
    let Some(t) = f.finding.mitre.as_ref().map(|m| m.tactic.as_str()) else {
        return "Other".into();
    };
    match osprey_graph::group::KILL_CHAIN
        .iter()
        .find(|(id, name)| id.eq_ignore_ascii_case(t) || name.eq_ignore_ascii_case(t))
    {
        Some((id, name)) => format!("{name} ({id})"),
        None if t.is_empty() => "Other".into(),
        None => t.to_string(),
    }
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    frame: Frame,
    group: FindingGroup,
    severity: String,
    severity_class: &'static str,
    first_seen: String,
    last_seen: String,
    members: Vec<Member>,
    timeline: Timeline,
    entities: Vec<EntityLink>,
    /// The graph's data: the group, expanded over the window around it.
    graph_src: String,
}

/// `GET /console/groups/{id}`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (group, findings) = match group_with_findings(&app, &signed.caller, &id).await {
        Ok(g) => g,
        Err(e) => return api_error(e),
    };
    let by_id: HashMap<&str, &StoredFinding> = findings
        .iter()
        .map(|f| (f.finding.id.as_str(), f))
        .collect();
    let mut ordered: Vec<(i64, &StoredFinding)> = group
        .finding_ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .map(|f| (f.finding.first_seen_ms().unwrap_or(f.created_ms), f))
        .collect();
    ordered.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.finding.id.cmp(&b.1.finding.id))
    });
    let members = ordered
        .iter()
        .map(|(_, f)| Member {
            id: f.finding.id.clone(),
            title: f.finding.title.clone(),
            kind: f.finding.kind.clone(),
            severity: label_text(f.finding.severity.label),
            severity_class: severity_class(f.finding.severity.label),
            tactic: tactic(f),
            first_seen: f
                .finding
                .first_seen
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
            resource: resource_text(&f.finding),
        })
        .collect();
    let timeline = Timeline::of(&group.tactics, &ordered);
    let first = ordered.first().map(|m| m.0).unwrap_or(0);
    let last = ordered
        .iter()
        .filter_map(|(_, f)| f.finding.last_seen_ms())
        .max()
        .unwrap_or(first);
    // The scope opens on the hours around the group; its graph and entity links use it.
    let q = Query::parse(raw.as_deref()).scoped_or(&super::view::window_around(first, last));
    let scope = match Scope::of(&q, osprey_store::now_ms()) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let window = q.only(&["range", "since", "until"]);
    let clusters = super::finding::cluster_names(&app, &signed).await;
    let entities = group
        .entities
        .iter()
        .filter_map(|e| osprey_graph::EntityId::parse(&e.id).ok())
        .map(|e| EntityLink::of(&e).scoped(&window).named(&clusters))
        .collect();
    let frame = Frame::new(
        &signed,
        format!("Group: {}", group.title),
        "groups",
        format!("/console/groups/{id}"),
        q,
        Some(scope),
    );
    render(&GroupPage {
        frame,
        severity: label_text(group.severity.label),
        severity_class: severity_class(group.severity.label),
        first_seen: shown_time(&group.first_seen),
        last_seen: shown_time(&group.last_seen),
        graph_src: format!(
            "/console/graph.json?{}&{window}",
            Query::default().with(&[("group", &id)])
        ),
        members,
        timeline,
        entities,
        group,
    })
}

/// The groups of findings last seen in the scope, the most recently seen first (the API's
/// list, without those that began after the scope's end), of one cluster when given.
pub(crate) async fn groups_in(
    app: &Arc<App>,
    signed: &Signed,
    scope: &Scope,
    cluster: Option<&str>,
) -> crate::error::ApiResult<FindingGroups> {
    let since = scope
        .since()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let axum::Json(mut groups) = crate::api::groups::list_groups(
        State(Arc::clone(app)),
        crate::auth::Caller(signed.caller.0.clone()),
        crate::api::Params(crate::api::groups::GroupsQuery {
            cluster: cluster.map(str::to_string),
            since: Some(since),
        }),
    )
    .await?;
    if let Some(until) = scope.until_ms {
        groups
            .groups
            .retain(|g| ms_of(&g.first_seen).is_none_or(|first| first < until));
    }
    Ok(groups)
}

/// One group in a list.
pub struct GroupRow {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub tactics: String,
    pub sequence: bool,
    pub findings: usize,
    pub entities: usize,
    pub last_seen: String,
}

impl GroupRow {
    pub fn of(g: &FindingGroup) -> GroupRow {
        GroupRow {
            id: g.id.clone(),
            title: g.title.clone(),
            severity: label_text(g.severity.label),
            severity_class: severity_class(g.severity.label),
            tactics: g.tactics.join(" → "),
            sequence: g.attack_sequence,
            findings: g.finding_ids.len(),
            entities: g.entities.len(),
            last_seen: shown_time(&g.last_seen),
        }
    }
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage {
    frame: Frame,
    table: Table<GroupRow>,
    truncated: bool,
}

/// Groups a page lists at once.
const GROUPS_PER_PAGE: usize = 50;

/// The columns the groups list sorts by.
fn group_columns() -> [Column<FindingGroup>; 5] {
    [
        Column::new("severity", "Severity", |a, b| {
            (a.severity.label, a.severity.score.unwrap_or(0.0))
                .partial_cmp(&(b.severity.label, b.severity.score.unwrap_or(0.0)))
                .unwrap_or(std::cmp::Ordering::Equal)
        }),
        Column::new("tactics", "Tactics", |a, b| {
            a.tactics.len().cmp(&b.tactics.len())
        }),
        Column::new("findings", "Findings", |a, b| {
            a.finding_ids.len().cmp(&b.finding_ids.len())
        }),
        Column::new("entities", "Entities", |a, b| {
            a.entities.len().cmp(&b.entities.len())
        }),
        Column::new("last_seen", "Last seen", |a, b| {
            ms_of(&a.last_seen).cmp(&ms_of(&b.last_seen))
        }),
    ]
}

/// `GET /console/groups`: the groups of findings last seen in the scope (the API's list),
/// sorted and paged on the server.
pub async fn list(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let scope = match Scope::of(&q, osprey_store::now_ms()) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let groups = match groups_in(&app, &signed, &scope, q.get("cluster")).await {
        Ok(g) => g,
        Err(e) => return api_error(e),
    };
    let list = List {
        name: "groups",
        path: "/console/groups",
        query: &q,
        size: GROUPS_PER_PAGE,
        default: ("last_seen", "desc"),
    };
    let table = match list.page(groups.groups, &group_columns()) {
        Ok(t) => t.map(|g| GroupRow::of(&g)),
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let frame = Frame::new(
        &signed,
        "Groups",
        "groups",
        "/console/groups",
        q,
        Some(scope),
    );
    render(&GroupsPage {
        frame,
        table,
        truncated: groups.truncated,
    })
}

/// An RFC 3339 time as Unix milliseconds.
fn ms_of(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}
