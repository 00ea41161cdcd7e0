//! The Findings page: the API's filters over the scope time, sorted and paged by the store,
//! bulk archive and workflow changes for analysts, and CSV export of the filtered list.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use osprey_model::{Finding, SeverityLabel};
use osprey_store::{FindingUpdate, Role, StoredFinding};

use super::layout::{Frame, api_error, error_page, render, see_other, severity_class};
use super::session::Signed;
use super::table::SortLink;
use super::view::{Query, Scope, shown_time};
use crate::App;
use crate::api::Params;
use crate::api::findings::{FindingsQuery, parse_workflow, readable_finding};

/// Rows per page the console offers.
const PAGE_SIZES: [i64; 4] = [25, 50, 100, 200];
/// Findings one bulk change may name.
const MAX_BULK: usize = 500;
/// The longest bulk form accepted (500 ids and the rest).
const MAX_FORM: usize = 64 * 1024;

/// The severity filter's choices: a label's band of scores.
const SEVERITIES: &[(&str, &str, &str)] = &[
    ("critical", "9", "10"),
    ("high", "7", "8.999"),
    ("medium", "4", "6.999"),
    ("low", "0.001", "3.999"),
];

/// The API query a console URL means.
pub(crate) fn api_query(q: &Query, scope: &Scope) -> Result<FindingsQuery, String> {
    let (severity_min, severity_max) = match q.get("severity") {
        None => (None, None),
        Some(s) => {
            let (_, min, max) = SEVERITIES
                .iter()
                .find(|(n, _, _)| *n == s)
                .ok_or_else(|| format!("severity {s:?}: expected critical, high, medium or low"))?;
            (Some(min.to_string()), Some(max.to_string()))
        }
    };
    let state = match q.get("state").unwrap_or("active") {
        "all" => None,
        s => Some(s.to_string()),
    };
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| PAGE_SIZES.contains(l))
            .ok_or_else(|| format!("limit {l:?}: expected 25, 50, 100 or 200"))?,
    };
    Ok(FindingsQuery {
        cluster: q.get("cluster").map(str::to_string),
        kind: q.get("type").map(str::to_string),
        severity_min,
        severity_max,
        state,
        workflow: q.get("workflow").map(str::to_string),
        since: scope.since(),
        until: scope.until(),
        q: q.get("q").map(str::to_string),
        sort: q.get("sort").map(str::to_string),
        order: q.get("order").map(str::to_string),
        limit: Some(limit),
        page_token: q.get("page_token").map(str::to_string),
        ..FindingsQuery::default()
    })
}

/// What a findings URL asks for: its parameters, its scope and the API query they mean.
fn requested(raw: Option<&str>) -> Result<(Query, Scope, FindingsQuery), String> {
    let q = Query::parse(raw);
    let scope = Scope::of(&q, osprey_store::now_ms())?;
    let api = api_query(&q, &scope)?;
    Ok((q, scope, api))
}

/// One row of the list.
pub struct Row {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub score: String,
    pub cluster: String,
    pub resource: String,
    pub count: u64,
    pub last_seen: String,
    pub workflow: &'static str,
    pub archived: bool,
}

impl Row {
    pub fn of(f: &StoredFinding, clusters: &HashMap<String, String>) -> Row {
        let label = f.finding.severity.label;
        Row {
            id: f.finding.id.clone(),
            title: f.finding.title.clone(),
            kind: f.finding.kind.clone(),
            severity: label_text(label),
            severity_class: severity_class(label),
            score: format!("{:.1}", osprey_store::severity_score(&f.finding)),
            cluster: f
                .cluster_id
                .as_ref()
                .map(|c| clusters.get(c).cloned().unwrap_or_else(|| c.clone()))
                .unwrap_or_default(),
            resource: resource_text(&f.finding),
            count: f.finding.count,
            last_seen: f
                .finding
                .last_seen
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
            workflow: f.workflow.as_str(),
            archived: f.state == osprey_store::FindingState::Archived,
        }
    }
}

/// `High` for HIGH.
pub fn label_text(label: SeverityLabel) -> String {
    let s = label.as_str();
    format!("{}{}", &s[..1], s[1..].to_ascii_lowercase())
}

/// What a finding is about, in a few words: the workload, the user, or the image.
pub fn resource_text(f: &Finding) -> String {
    if let Some(k) = &f.resource.kubernetes {
        let ns = if k.namespace.is_empty() {
            String::new()
        } else {
            format!("{}/", k.namespace)
        };
        if let Some(w) = &k.workload {
            return format!("{ns}{} {}", w.kind, w.name);
        }
        if let Some(a) = &f.action
            && !a.resource.is_empty()
        {
            let name = if a.resource_name.is_empty() {
                String::new()
            } else {
                format!(" {}", a.resource_name)
            };
            return format!("{ns}{}{name}", a.resource);
        }
        if let Some(u) = &k.user {
            return u.username.clone();
        }
        return k.cluster.clone();
    }
    f.resource
        .image
        .as_ref()
        .map(|i| i.reference.clone())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/findings.html")]
struct FindingsPage {
    frame: Frame,
    rows: Vec<Row>,
    total: i64,
    clusters: Vec<(String, String)>,
    /// The filters as given, for the form.
    cluster: String,
    severity: String,
    kind: String,
    state: String,
    workflow: String,
    text: String,
    limit: i64,
    sorts: Vec<SortLink>,
    next: Option<String>,
    first: Option<String>,
    export: String,
    analyst: bool,
    notice: Option<String>,
}

/// `GET /console/findings`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let (q, scope, api) = match requested(raw.as_deref()) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let filter = match api.filter(&signed.caller) {
        Ok(f) => f,
        Err(e) => return api_error(e),
    };
    let own = signed.caller.scope();
    let (page, total, clusters) = match tokio::try_join!(
        app.store.findings(&filter),
        app.store.count_findings(&filter),
        app.store.clusters(own.as_deref()),
    ) {
        Ok(r) => r,
        Err(e) => return api_error(e.into()),
    };
    let names: HashMap<String, String> = clusters
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    let frame = Frame::new(
        &signed,
        "Findings",
        "findings",
        "/console/findings",
        q.clone(),
        Some(scope),
    );
    let sort = q.get("sort").unwrap_or("updated");
    let order = q.get("order").unwrap_or("desc");
    let sorts = [
        ("Severity", "severity"),
        ("Count", "count"),
        ("First seen", "first_seen"),
        ("Last seen", "last_seen"),
        ("Updated", "updated"),
    ]
    .into_iter()
    .map(|(label, key)| {
        SortLink::new(key, label, (sort, order), |next| {
            frame.link(&[("sort", key), ("order", next), ("page_token", "")])
        })
    })
    .collect();
    let next = page
        .next_page_token
        .as_ref()
        .map(|t| frame.link(&[("page_token", t)]));
    let first = q
        .get("page_token")
        .map(|_| frame.link(&[("page_token", "")]));
    let export = format!(
        "/console/findings/export.csv?{}",
        q.with(&[("page_token", ""), ("limit", "")])
    );
    render(&FindingsPage {
        rows: page.findings.iter().map(|f| Row::of(f, &names)).collect(),
        total,
        clusters: clusters.into_iter().map(|c| (c.id, c.name)).collect(),
        cluster: q.get("cluster").unwrap_or_default().to_string(),
        severity: q.get("severity").unwrap_or_default().to_string(),
        kind: q.get("type").unwrap_or_default().to_string(),
        state: q.get("state").unwrap_or("active").to_string(),
        workflow: q.get("workflow").unwrap_or_default().to_string(),
        text: q.get("q").unwrap_or_default().to_string(),
        limit: api.limit.unwrap_or(50),
        sorts,
        next,
        first,
        export,
        analyst: signed.can(Role::Analyst),
        notice: q.get("notice").map(str::to_string),
        frame,
    })
}

/// `GET /console/findings/export.csv`: every finding the page's filters match, as the API's
/// CSV export writes it.
pub async fn export(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let (_, _, mut api) = match requested(raw.as_deref()) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    api.format = Some("csv".into());
    api.limit = None;
    api.page_token = None;
    match crate::api::export::export_findings(State(app), signed.caller, Params(api)).await {
        Ok(mut resp) => {
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"osprey-findings.csv\""),
            );
            resp
        }
        Err(e) => api_error(e),
    }
}

/// `POST /console/findings/bulk`: archive, restore or set the workflow of the checked
/// findings (analysts), then back to the list.
pub async fn bulk(State(app): State<Arc<App>>, signed: Signed, body: Bytes) -> Response {
    let form = match signed.change_form(
        &app,
        &body,
        MAX_FORM,
        "the form is too large: change at most 500 findings at once",
    ) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let p = match signed.caller.require(Role::Analyst) {
        Ok(p) => p.clone(),
        Err(e) => return api_error(e),
    };
    let back = form
        .get("back")
        .filter(|b| b.starts_with("/console/findings?") || *b == "/console/findings")
        .unwrap_or("/console/findings")
        .to_string();
    let ids: Vec<&str> = form.all("id").filter(|i| !i.is_empty()).collect();
    if ids.is_empty() {
        return see_other(&with_notice(&back, "Select findings first."));
    }
    if ids.len() > MAX_BULK {
        return error_page(
            StatusCode::BAD_REQUEST,
            "change at most 500 findings at once",
        );
    }
    let action = form.get("action").unwrap_or_default();
    let update = match action {
        "archive" => FindingUpdate {
            archived: Some(true),
            ..FindingUpdate::default()
        },
        "unarchive" => FindingUpdate {
            archived: Some(false),
            ..FindingUpdate::default()
        },
        w => match parse_workflow(Some(w)) {
            Ok(Some(workflow)) => FindingUpdate {
                workflow: Some(workflow),
                ..FindingUpdate::default()
            },
            _ => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "action {w:?}: expected archive, unarchive, new, acknowledged or resolved"
                    ),
                );
            }
        },
    };
    for id in &ids {
        if let Err(e) = readable_finding(&app, &signed.caller, id).await {
            return api_error(e);
        }
    }
    for id in &ids {
        if let Err(e) = app.store.update_finding(id, &update, &p.token_id).await {
            return api_error(e.into());
        }
    }
    let done = match action {
        "archive" => "archived",
        "unarchive" => "restored",
        _ => "updated",
    };
    let n = ids.len();
    let s = if n == 1 { "" } else { "s" };
    see_other(&with_notice(&back, &format!("{n} finding{s} {done}.")))
}

fn with_notice(back: &str, notice: &str) -> String {
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let q = Query::parse(Some(query)).with(&[("notice", notice)]);
    format!("{path}?{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_filters_become_the_apis() {
        let q = Query::parse(Some(
            "severity=high&state=all&type=Execution:*&q=nginx&limit=100&cluster=c1",
        ));
        let scope = Scope::of(&Query::parse(Some("range=all")), 0).unwrap();
        let a = api_query(&q, &scope).unwrap();
        assert_eq!(a.severity_min.as_deref(), Some("7"));
        assert_eq!(a.severity_max.as_deref(), Some("8.999"));
        assert_eq!(a.state, None);
        assert_eq!(a.kind.as_deref(), Some("Execution:*"));
        assert_eq!(a.limit, Some(100));
        assert_eq!(a.cluster.as_deref(), Some("c1"));
        let d = api_query(&Query::default(), &scope).unwrap();
        assert_eq!(d.state.as_deref(), Some("active"));
        assert_eq!(d.limit, Some(50));
        for bad in ["severity=severe", "limit=7"] {
            let e = api_query(&Query::parse(Some(bad)), &scope).unwrap_err();
            assert!(e.starts_with(bad.split('=').next().unwrap()), "{e}");
        }
    }

    #[test]
    fn a_notice_replaces_the_last() {
        assert_eq!(
            with_notice(
                "/console/findings?severity=high&notice=old",
                "2 findings archived."
            ),
            "/console/findings?severity=high&notice=2+findings+archived."
        );
        assert_eq!(
            with_notice("/console/findings", "x"),
            "/console/findings?notice=x"
        );
    }
}
