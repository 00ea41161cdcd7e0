//! The Graph page: an entity's neighbourhood (depth 1 or 2) drawn by cytoscape.js in the
//! browser, each node expandable by a click (or from the list beside it, by keyboard); nodes
//! coloured by type and outlined by the worst severity of the active findings naming them.
//! The page is HTML; the nodes and edges come from `GET /console/graph.json`, which reads the
//! same profiles as the API (so the same tenancy), and also draws a finding group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use osprey_graph::EntityId;
use osprey_model::SeverityLabel;
use osprey_store::{FindingFilter, FindingSort, FindingState};
use serde::Serialize;

use super::entity::entity_of_path;
use super::finding::{EntityLink, href_of};
use super::layout::{Frame, error_page, render};
use super::session::Signed;
use super::view::{Query, Scope};
use crate::App;
use crate::api::entities::tenants_of;

/// Neighbours of one entity drawn at most (its most related first).
const MAX_NEIGHBOURS: usize = 40;
/// Neighbours whose own neighbours a depth-2 graph adds.
const MAX_SECOND: usize = 12;
/// Findings read to outline nodes by severity (the most severe first).
const SEVERITY_FINDINGS: i64 = 1000;

#[derive(Serialize, Default)]
pub struct GraphData {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Neighbours left out because an entity had more than are drawn.
    pub truncated: bool,
}

#[derive(Serialize, Clone)]
pub struct Node {
    /// `{type}/{key}`.
    pub id: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The worst severity of the active findings naming it (lower case), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The console page of the node.
    pub href: String,
}

#[derive(Serialize, Clone)]
pub struct Edge {
    pub id: String,
    pub source: String,
    pub target: String,
    pub relation: &'static str,
    pub count: u64,
}

impl GraphData {
    /// Entity pages opened from the graph keep the graph's scope.
    fn scope_links(&mut self, q: &Query) {
        let scope = q.only(&["range", "since", "until"]);
        if scope.is_empty() {
            return;
        }
        for n in &mut self.nodes {
            if n.kind != "finding" {
                n.href = format!("{}?{scope}", n.href);
            }
        }
    }

    fn node(&mut self, seen: &mut HashSet<String>, id: &EntityId) {
        let key = id.to_string();
        if seen.insert(key.clone()) {
            self.nodes.push(Node {
                href: href_of(id),
                label: short(&id.name()),
                kind: id.kind().as_str(),
                severity: None,
                id: key,
            });
        }
    }

    fn edge(
        &mut self,
        seen: &mut HashSet<String>,
        from: &str,
        relation: &'static str,
        to: &str,
        count: u64,
    ) {
        let id = format!("{from}|{relation}|{to}");
        if seen.insert(id.clone()) {
            self.edges.push(Edge {
                id,
                source: from.to_string(),
                target: to.to_string(),
                relation,
                count,
            });
        }
    }
}

/// A label that fits a node: long names keep their start and end.
fn short(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= 32 {
        return name.to_string();
    }
    let head: String = chars[..18].iter().collect();
    let tail: String = chars[chars.len() - 10..].iter().collect();
    format!("{head}…{tail}")
}

/// The neighbourhood of `center` to `depth` (1 or 2) over the scope.
async fn neighbourhood(
    app: &App,
    tenants: &[String],
    center: &EntityId,
    depth: u8,
    scope: osprey_graph::profile::Scope,
) -> Result<Option<GraphData>, crate::error::ApiError> {
    let mut g = GraphData::default();
    let (mut nodes, mut edges) = (HashSet::new(), HashSet::new());
    let Some(first) = neighbours(app, tenants, center, scope).await? else {
        return Ok(None);
    };
    g.node(&mut nodes, center);
    let mut next = Vec::new();
    g.truncated |= first.1;
    for (other, relation, out, count) in first.0 {
        g.node(&mut nodes, &other);
        add_edge(&mut g, &mut edges, center, &other, relation, out, count);
        next.push(other);
    }
    if depth >= 2 {
        let reads = next
            .iter()
            .take(MAX_SECOND)
            .map(|n| async move { (n.clone(), neighbours(app, tenants, n, scope).await) });
        for (from, found) in futures_util::future::join_all(reads).await {
            let Some((list, cut)) = found? else { continue };
            g.truncated |= cut;
            for (other, relation, out, count) in list {
                g.node(&mut nodes, &other);
                add_edge(&mut g, &mut edges, &from, &other, relation, out, count);
            }
        }
    }
    Ok(Some(g))
}

fn add_edge(
    g: &mut GraphData,
    seen: &mut HashSet<String>,
    a: &EntityId,
    b: &EntityId,
    relation: &'static str,
    out: bool,
    count: u64,
) {
    let (from, to) = if out { (a, b) } else { (b, a) };
    g.edge(seen, &from.to_string(), relation, &to.to_string(), count);
}

type Neighbours = (Vec<(EntityId, &'static str, bool, u64)>, bool);

/// An entity's related entities over the scope, most related first (its findings among
/// them), and whether some were left out.
async fn neighbours(
    app: &App,
    tenants: &[String],
    id: &EntityId,
    scope: osprey_graph::profile::Scope,
) -> Result<Option<Neighbours>, crate::error::ApiError> {
    let Some(p) =
        crate::profiles::profile(&app.store, tenants, id, scope, MAX_NEIGHBOURS, 0).await?
    else {
        return Ok(None);
    };
    let mut out: Vec<(EntityId, &'static str, bool, u64)> = p
        .activity
        .related
        .iter()
        .filter_map(|r| {
            Some((
                EntityId::parse(&r.id).ok()?,
                r.relation.as_str(),
                r.direction == osprey_graph::profile::Direction::Out,
                r.count,
            ))
        })
        .collect();
    // The findings naming it are nodes too (a finding names the entity).
    for f in p.findings.iter().take(MAX_NEIGHBOURS) {
        out.push((EntityId::finding(f), "names", false, 1));
    }
    Ok(Some((out, p.related_next.is_some())))
}

/// Outlines each node by the worst severity of the active findings (of the scope) naming it,
/// finding nodes by their own; labels findings with their titles and clusters with their
/// names.
async fn outline(
    app: &App,
    signed: &Signed,
    g: &mut GraphData,
    since_ms: Option<i64>,
) -> Result<(), crate::error::ApiError> {
    let filter = FindingFilter {
        tenant_id: signed.caller.scope(),
        state: Some(FindingState::Active),
        since_ms,
        sort: FindingSort::Severity,
        limit: SEVERITY_FINDINGS,
        ..FindingFilter::default()
    };
    let own = signed.caller.scope();
    let (page, clusters) = tokio::try_join!(
        app.store.findings(&filter),
        app.store.clusters(own.as_deref())
    )?;
    let mut names = super::finding::names_of(&clusters);
    let mut worst: HashMap<String, SeverityLabel> = HashMap::new();
    let mut raise = |key: String, label: SeverityLabel| {
        let w = worst.entry(key).or_insert(label);
        if label > *w {
            *w = label;
        }
    };
    for f in &page.findings {
        let label = f.finding.severity.label;
        let fid = EntityId::finding(&f.finding.id).to_string();
        names.insert(fid.clone(), f.finding.title.clone());
        raise(fid, label);
        // A finding is outlined by its own severity (an attack sequence names its members).
        for e in osprey_graph::named_by(&f.finding, f.cluster_id.as_deref())
            .into_iter()
            .filter(|e| e.kind() != osprey_graph::EntityType::Finding)
        {
            raise(e.to_string(), label);
        }
    }
    for n in &mut g.nodes {
        if let Some(name) = names.get(&n.id) {
            n.label = short(name);
        }
        n.severity = worst
            .get(&n.id)
            .filter(|l| **l >= SeverityLabel::Low)
            .map(|l| l.as_str().to_ascii_lowercase());
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "console/graph.html")]
struct GraphPage {
    frame: Frame,
    center: EntityLink,
    depth: u8,
    data: String,
    depth_links: Vec<(u8, String, bool)>,
}

fn depth_of(q: &Query) -> Result<u8, String> {
    match q.get("depth").unwrap_or("1") {
        "1" => Ok(1),
        "2" => Ok(2),
        d => Err(format!("depth {d:?}: expected 1 or 2")),
    }
}

/// `GET /console/graph/{type}/{id}`.
pub async fn page(signed: Signed, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let id = match entity_of_path(&uri, "/console/graph/") {
        Ok(id) => id,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let q = Query::parse(raw.as_deref());
    let (scope, depth) = match (Scope::of(&q, osprey_store::now_ms()), depth_of(&q)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let data = format!(
        "/console/graph.json?{}",
        Query::parse(Some(&q.only(&["range", "since", "until"])))
            .with(&[("entity", &id.to_string()), ("depth", &depth.to_string())])
    );
    let path = format!("/console/graph/{id}");
    let frame = Frame::new(
        &signed,
        format!("Graph of {} {}", id.kind(), id.name()),
        "graph",
        path,
        q,
        Some(scope),
    );
    let depth_links = [1u8, 2]
        .iter()
        .map(|d| (*d, frame.link(&[("depth", &d.to_string())]), *d == depth))
        .collect();
    render(&GraphPage {
        center: EntityLink::of(&id),
        depth,
        data,
        depth_links,
        frame,
    })
}

/// `GET /console/graph.json?entity={type}/{id}&depth=1|2` (with the scope's parameters), or
/// `?group={group id}`: nodes and edges for the graph view.
pub async fn data(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let now = osprey_store::now_ms();
    let scope = match Scope::of(&q, now) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    if let Some(group) = q.get("group") {
        return match group_graph(&app, &signed, group).await {
            Ok(mut g) => match outline(&app, &signed, &mut g, None).await {
                Ok(()) => {
                    g.scope_links(&q);
                    Json(g).into_response()
                }
                Err(e) => e.into_response(),
            },
            Err(e) => e.into_response(),
        };
    }
    let Some(entity) = q.get("entity") else {
        return (StatusCode::BAD_REQUEST, "give entity or group").into_response();
    };
    let id = match EntityId::parse(entity) {
        Ok(id) => id,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("entity {entity:?}: {e}")).into_response();
        }
    };
    let depth = match depth_of(&q) {
        Ok(d) => d,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let pscope = match super::entity::profile_scope(&scope, now) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let tenants = match tenants_of(&app, &signed.caller, &id, None).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut g = match neighbourhood(&app, &tenants, &id, depth, pscope).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return crate::error::ApiError::not_found(format!("entity {id}")).into_response();
        }
        Err(e) => return e.into_response(),
    };
    if let Err(e) = outline(&app, &signed, &mut g, scope.since_ms).await {
        return e.into_response();
    }
    g.scope_links(&q);
    Json(g).into_response()
}

/// A group's entities and findings, each finding linked to the entities it names.
async fn group_graph(
    app: &App,
    signed: &Signed,
    id: &str,
) -> Result<GraphData, crate::error::ApiError> {
    let (group, findings) =
        crate::api::groups::group_with_findings(app, &signed.caller, id).await?;
    let members: HashSet<&str> = group.finding_ids.iter().map(String::as_str).collect();
    let mut g = GraphData::default();
    let (mut nodes, mut edges) = (HashSet::new(), HashSet::new());
    for f in findings
        .iter()
        .filter(|f| members.contains(f.finding.id.as_str()))
    {
        let fid = EntityId::finding(&f.finding.id);
        g.node(&mut nodes, &fid);
        if let Some(n) = g.nodes.last_mut()
            && n.id == fid.to_string()
        {
            n.label = short(&f.finding.title);
        }
        for e in osprey_graph::named_by(&f.finding, f.cluster_id.as_deref()) {
            g.node(&mut nodes, &e);
            g.edge(&mut edges, &fid.to_string(), "names", &e.to_string(), 1);
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_shortened_in_the_middle() {
        assert_eq!(short("kube-proxy"), "kube-proxy");
        let long = "system:serviceaccount:kube-system:replicaset-controller";
        let s = short(long);
        assert!(
            s.starts_with("system:serviceacco") && s.ends_with("controller"),
            "{s}"
        );
        assert_eq!(s.chars().count(), 29);
    }

    #[test]
    fn edges_and_nodes_are_added_once() {
        let mut g = GraphData::default();
        let (mut n, mut e) = (HashSet::new(), HashSet::new());
        let a = EntityId::cluster("c1");
        let b = EntityId::finding("f1");
        g.node(&mut n, &a);
        g.node(&mut n, &a);
        g.node(&mut n, &b);
        add_edge(&mut g, &mut e, &a, &b, "names", false, 1);
        add_edge(&mut g, &mut e, &b, &a, "names", true, 1);
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.edges.len(), 1);
        assert_eq!(g.edges[0].source, "finding/f1");
        assert_eq!(g.nodes[1].href, "/console/findings/f1");
        assert_eq!(g.nodes[0].href, "/console/entities/cluster/c1");
    }
}
