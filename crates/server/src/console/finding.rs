//! The Finding page: what happened and on what evidence (the API call, the audit event ids,
//! the rule, the scanned files, the vulnerable packages), ATT&CK, the entities it names (each
//! a link to its profile), its group, its history and notes; archive, workflow and notes for
//! analysts.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use osprey_model::Finding;
use osprey_store::{FindingUpdate, HistoryEntry, Role, StoredFinding};

use super::findings::{label_text, resource_text};
use super::layout::{Frame, api_error, error_page, render, see_other, severity_class};
use super::session::Signed;
use super::view::{Query, Scope, rfc3339, shown_time};
use crate::App;
use crate::api::findings::{parse_workflow, readable_finding};

/// The longest change form accepted (a 10,000-byte note and the rest, percent-encoded).
const MAX_FORM: usize = 64 * 1024;

/// An entity a page links to.
pub struct EntityLink {
    /// `{type}/{key}`: the `data-entity` attribute.
    pub path: String,
    /// Its console page: a finding's page, else its profile.
    pub href: String,
    pub kind: &'static str,
    pub name: String,
}

impl EntityLink {
    pub fn of(e: &osprey_graph::EntityId) -> EntityLink {
        EntityLink {
            path: e.to_string(),
            href: href_of(e),
            kind: e.kind().as_str(),
            name: e.name(),
        }
    }

    /// The same link, a cluster called by its name (`names`: cluster entity → name).
    pub fn named(mut self, names: &std::collections::HashMap<String, String>) -> EntityLink {
        if let Some(n) = names.get(&self.path) {
            self.name = n.clone();
        }
        self
    }

    /// The same link, its profile opened over `window` (a query string).
    pub fn scoped(mut self, window: &str) -> EntityLink {
        if self.href.starts_with("/console/entities/") && !window.is_empty() {
            self.href = format!("{}?{window}", self.href);
        }
        self
    }
}

/// The names of the clusters the caller sees, by their entity (`cluster/{id}`).
pub async fn cluster_names(
    app: &App,
    signed: &Signed,
) -> std::collections::HashMap<String, String> {
    let own = signed.caller.scope();
    names_of(&app.store.clusters(own.as_deref()).await.unwrap_or_default())
}

/// Clusters' names by their entity (`cluster/{id}`).
pub fn names_of(clusters: &[osprey_store::Cluster]) -> std::collections::HashMap<String, String> {
    clusters
        .iter()
        .map(|c| {
            (
                osprey_graph::EntityId::cluster(&c.id).to_string(),
                c.name.clone(),
            )
        })
        .collect()
}

/// The console page of an entity: a finding's own page, else the entity's profile.
pub fn href_of(id: &osprey_graph::EntityId) -> String {
    match id.kind() {
        osprey_graph::EntityType::Finding => format!(
            "/console/findings/{}",
            form_urlencoded::byte_serialize(id.key().as_bytes()).collect::<String>()
        ),
        _ => format!("/console/entities/{id}"),
    }
}

/// A label and a value of the facts table.
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// One vulnerable package.
pub struct PackageRow {
    pub name: String,
    pub version: String,
    pub fixed: String,
    pub purl: String,
}

/// A file a malware scan found a threat in.
pub struct ThreatRow {
    pub threat: String,
    pub severity: String,
    pub path: String,
    pub layer: String,
}

pub struct HistoryRow {
    pub at: String,
    pub actor: String,
    pub change: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/finding.html")]
struct FindingPage {
    frame: Frame,
    id: String,
    title: String,
    description: String,
    kind: String,
    severity: String,
    severity_class: &'static str,
    score: String,
    state: &'static str,
    workflow: &'static str,
    archived: bool,
    facts: Vec<Fact>,
    action: Vec<Fact>,
    evidence: Vec<Fact>,
    audit_ids: Vec<String>,
    tactic: String,
    technique: String,
    packages: Vec<PackageRow>,
    vulnerability: Vec<Fact>,
    threats: Vec<ThreatRow>,
    entities: Vec<EntityLink>,
    group: Option<String>,
    history: Vec<HistoryRow>,
    analyst: bool,
    notice: Option<String>,
    events: Vec<super::evidence::KeptEvent>,
    events_notice: Option<String>,
}

/// `GET /console/findings/{id}`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let f = match readable_finding(&app, &signed.caller, &id).await {
        Ok(f) => f,
        Err(e) => return api_error(e),
    };
    let history = match app.store.finding_history(&id).await {
        Ok(h) => h,
        Err(e) => return api_error(e.into()),
    };
    let group = group_of(&app, &f).await;
    let actors = actors(&app, &signed, &f.tenant_id).await;
    // The caller reads the finding, so its cluster is among those the caller sees.
    let clusters = cluster_names(&app, &signed).await;
    let cluster = f
        .cluster_id
        .as_ref()
        .and_then(|c| clusters.get(&osprey_graph::EntityId::cluster(c).to_string()))
        .cloned();
    let (events, events_notice) = super::evidence::kept_events(&app, &f).await;
    let first = f.finding.first_seen_ms().unwrap_or(f.created_ms);
    let last = f.finding.last_seen_ms().unwrap_or(f.updated_ms);
    // The scope opens on the hours around the finding; the entity links open in the scope.
    let q = Query::parse(raw.as_deref());
    let notice = q.get("notice").map(str::to_string);
    let q = q
        .without(&["notice"])
        .scoped_or(&super::view::window_around(first, last));
    let scope = match Scope::of(&q, osprey_store::now_ms()) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let window = q.only(&["range", "since", "until"]);
    let frame = Frame::new(
        &signed,
        f.finding.title.clone(),
        "findings",
        format!("/console/findings/{}", f.finding.id),
        q,
        Some(scope),
    );
    render(&FindingPage {
        frame,
        id: f.finding.id.clone(),
        title: f.finding.title.clone(),
        description: f.finding.description.clone(),
        kind: f.finding.kind.clone(),
        severity: label_text(f.finding.severity.label),
        severity_class: severity_class(f.finding.severity.label),
        score: format!("{:.1}", osprey_store::severity_score(&f.finding)),
        state: f.state.as_str(),
        workflow: f.workflow.as_str(),
        archived: f.state == osprey_store::FindingState::Archived,
        facts: facts(&f, cluster),
        action: action(&f.finding),
        evidence: evidence(&f.finding),
        audit_ids: f
            .finding
            .evidence
            .as_ref()
            .map(|e| e.audit_ids.clone())
            .unwrap_or_default(),
        tactic: f
            .finding
            .mitre
            .as_ref()
            .map(|_| super::group::tactic(&f))
            .unwrap_or_default(),
        technique: f
            .finding
            .mitre
            .as_ref()
            .map(|m| m.technique.clone())
            .unwrap_or_default(),
        packages: packages(&f.finding),
        vulnerability: vulnerability(&f.finding),
        threats: threats(&f.finding),
        // The findings an attack sequence names are its group's, listed on the group's page.
        entities: osprey_graph::named_by(&f.finding, f.cluster_id.as_deref())
            .iter()
            .filter(|e| e.kind() != osprey_graph::EntityType::Finding)
            .map(|e| EntityLink::of(e).scoped(&window).named(&clusters))
            .collect(),
        group,
        history: history.iter().map(|h| history_row(h, &actors)).collect(),
        analyst: signed.can(Role::Analyst),
        notice,
        events,
        events_notice,
    })
}

/// The group the finding belongs to, if any: the group an attack sequence was raised for, or
/// the one computed over the tenant's findings of the week before it was first seen.
async fn group_of(app: &App, f: &StoredFinding) -> Option<String> {
    if let Some(g) = f
        .finding
        .evidence
        .as_ref()
        .and_then(|e| e.additional_info.get("group"))
        .filter(|_| f.source == osprey_store::FindingSource::Correlation)
    {
        return Some(g.clone());
    }
    let first = f.finding.first_seen_ms().unwrap_or(0);
    let since = first - crate::sequences::WINDOW_MS;
    let (findings, _) = crate::sequences::findings_of(app, &f.tenant_id, None, since)
        .await
        .ok()?;
    crate::sequences::groups_of(&findings)
        .into_iter()
        .find(|g| g.finding_ids.contains(&f.finding.id))
        .map(|g| format!("group-{}", g.finding_ids[0]))
}

fn facts(f: &StoredFinding, cluster: Option<String>) -> Vec<Fact> {
    let mut out = vec![
        Fact {
            label: "Resource",
            value: resource_text(&f.finding),
        },
        Fact {
            label: "Cluster",
            value: cluster.unwrap_or_default(),
        },
    ];
    if let Some(k) = &f.finding.resource.kubernetes {
        out.push(Fact {
            label: "Namespace",
            value: k.namespace.clone(),
        });
        if let Some(u) = &k.user {
            out.push(Fact {
                label: "User",
                value: u.username.clone(),
            });
            out.push(Fact {
                label: "Groups",
                value: u.groups.join(", "),
            });
        }
        if let Some(w) = &k.workload {
            let images: Vec<&str> = w.containers.iter().map(|c| c.image.as_str()).collect();
            out.push(Fact {
                label: "Images",
                value: images.join(", "),
            });
            let mut host = Vec::new();
            if w.host_network {
                host.push("network".to_string());
            }
            if w.host_pid {
                host.push("PID".to_string());
            }
            if w.host_ipc {
                host.push("IPC".to_string());
            }
            host.extend(w.host_paths.iter().map(|p| format!("path {p}")));
            out.push(Fact {
                label: "Host access",
                value: host.join(", "),
            });
            out.push(Fact {
                label: "Service account",
                value: w.service_account_name.clone(),
            });
        }
    }
    if let Some(i) = &f.finding.resource.image {
        out.push(Fact {
            label: "Image",
            value: i.reference.clone(),
        });
        out.push(Fact {
            label: "Digest",
            value: i.digest.clone().unwrap_or_default(),
        });
        out.push(Fact {
            label: "OS",
            value: i.os.clone().unwrap_or_default(),
        });
    }
    out.extend([
        Fact {
            label: "Occurrences",
            value: f.finding.count.to_string(),
        },
        Fact {
            label: "First seen",
            value: f
                .finding
                .first_seen
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
        },
        Fact {
            label: "Last seen",
            value: f
                .finding
                .last_seen
                .as_deref()
                .map(shown_time)
                .unwrap_or_default(),
        },
        Fact {
            label: "Updated",
            value: shown_time(&rfc3339(f.updated_ms)),
        },
        Fact {
            label: "Source",
            value: f.source.as_str().to_string(),
        },
        Fact {
            label: "Finding id",
            value: f.finding.id.clone(),
        },
    ]);
    if let Some(s) = &f.finding.suppression {
        out.push(Fact {
            label: "Suppressed",
            value: format!("{} by {} ({})", s.status, s.by, s.reason),
        });
    }
    out.retain(|f| !f.value.is_empty());
    out
}

fn action(f: &Finding) -> Vec<Fact> {
    let Some(a) = &f.action else {
        return Vec::new();
    };
    let mut out = vec![
        Fact {
            label: "Verb",
            value: a.verb.clone(),
        },
        Fact {
            label: "Request URI",
            value: a.request_uri.clone(),
        },
        Fact {
            label: "Source IPs",
            value: a.source_ips.join(", "),
        },
        Fact {
            label: "Network owner",
            value: match a.source_asn {
                Some(asn) => format!("AS{asn} {}", a.source_asn_org),
                None => String::new(),
            },
        },
        Fact {
            label: "User agent",
            value: a.user_agent.clone(),
        },
        Fact {
            label: "Status",
            value: a.status_code.map(|c| c.to_string()).unwrap_or_default(),
        },
        Fact {
            label: "Time",
            value: a.time.as_deref().map(shown_time).unwrap_or_default(),
        },
    ];
    out.retain(|f| !f.value.is_empty());
    out
}

fn evidence(f: &Finding) -> Vec<Fact> {
    let Some(e) = &f.evidence else {
        return Vec::new();
    };
    let mut out = vec![
        Fact {
            label: "Rule",
            value: e.rule_id.clone(),
        },
        Fact {
            label: "Catalogue",
            value: e.catalogue.join(", "),
        },
        Fact {
            label: "Threat list",
            value: e.threat_list.clone().unwrap_or_default(),
        },
        Fact {
            label: "Signals",
            value: e.signals.join(", "),
        },
    ];
    out.extend(e.additional_info.iter().map(|(k, v)| Fact {
        // The labels of additional information are the detector's own keys.
        label: "Detail",
        value: format!("{k}: {v}"),
    }));
    out.retain(|f| !f.value.is_empty());
    out
}

fn vulnerability(f: &Finding) -> Vec<Fact> {
    let Some(v) = &f.vulnerability else {
        return Vec::new();
    };
    let mut out = vec![
        Fact {
            label: "Vulnerability",
            value: v.id.clone(),
        },
        Fact {
            label: "Aliases",
            value: v.aliases.join(", "),
        },
        Fact {
            label: "CVSS",
            value: v
                .cvss
                .iter()
                .map(|c| format!("{} {} ({})", c.base_score, c.vector, c.source))
                .collect::<Vec<_>>()
                .join("; "),
        },
        Fact {
            label: "Published",
            value: v.published.as_deref().map(shown_time).unwrap_or_default(),
        },
    ];
    out.extend(v.references.iter().take(5).map(|r| Fact {
        label: "Reference",
        value: r.clone(),
    }));
    out.retain(|f| !f.value.is_empty());
    out
}

fn packages(f: &Finding) -> Vec<PackageRow> {
    let Some(v) = &f.vulnerability else {
        return Vec::new();
    };
    v.packages
        .iter()
        .map(|p| PackageRow {
            name: p.name.clone(),
            version: p.version.clone(),
            fixed: p.fixed_versions.join(", "),
            purl: p.purl.clone(),
        })
        .collect()
}

fn threats(f: &Finding) -> Vec<ThreatRow> {
    let Some(m) = &f.malware else {
        return Vec::new();
    };
    m.threats
        .iter()
        .flat_map(|t| {
            t.files.iter().map(move |file| ThreatRow {
                threat: t.name.clone(),
                severity: label_text(t.severity),
                path: file.path.clone(),
                layer: file.layer.map(|l| l.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The names of the tokens that may appear in a finding's history: its tenant's and the
/// caller's.
async fn actors(
    app: &App,
    signed: &Signed,
    tenant: &str,
) -> std::collections::HashMap<String, String> {
    let mut names = std::collections::HashMap::new();
    for t in [tenant, signed.caller.0.tenant_id.as_str()] {
        for token in app.store.tokens(Some(t)).await.unwrap_or_default() {
            names.insert(
                token.id,
                format!("{} ({})", token.name, token.role.as_str()),
            );
        }
    }
    names
}

fn history_row(h: &HistoryEntry, actors: &std::collections::HashMap<String, String>) -> HistoryRow {
    HistoryRow {
        at: shown_time(&rfc3339(h.at_ms)),
        actor: actors
            .get(&h.actor)
            .cloned()
            .unwrap_or_else(|| h.actor.clone()),
        change: h.change.clone(),
        detail: match &h.detail {
            serde_json::Value::Null => String::new(),
            serde_json::Value::Object(o) if o.is_empty() => String::new(),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    // A severity: its label and score.
                    serde_json::Value::Object(o) if o.contains_key("label") => format!(
                        "{k}: {} {}",
                        o["label"].as_str().unwrap_or_default(),
                        o.get("score").map(|s| s.to_string()).unwrap_or_default()
                    ),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        },
    }
}

/// `POST /console/findings/{id}`: archive or restore, set the workflow, add a note.
pub async fn change(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = match signed.change_form(
        &app,
        &body,
        MAX_FORM,
        "the form is too large: a note holds at most 10,000 bytes",
    ) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let p = match signed.caller.require(Role::Analyst) {
        Ok(p) => p.clone(),
        Err(e) => return api_error(e),
    };
    if let Err(e) = readable_finding(&app, &signed.caller, &id).await {
        return api_error(e);
    }
    let mut update = FindingUpdate::default();
    let notice;
    match form.get("action").unwrap_or_default() {
        "archive" => {
            update.archived = Some(true);
            notice = "Archived.";
        }
        "unarchive" => {
            update.archived = Some(false);
            notice = "Restored.";
        }
        "workflow" => {
            match parse_workflow(form.get("workflow")) {
                Ok(Some(w)) => update.workflow = Some(w),
                Ok(None) => return error_page(StatusCode::BAD_REQUEST, "workflow: choose one"),
                Err(e) => return api_error(e),
            }
            notice = "Workflow changed.";
        }
        "note" => {
            let note = form.get("note").unwrap_or_default().trim();
            if note.is_empty() || note.len() > 10_000 {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "note: expected 1 to 10,000 bytes of text",
                );
            }
            update.note = Some(note.to_string());
            notice = "Note added.";
        }
        other => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("action {other:?}: expected archive, unarchive, workflow or note"),
            );
        }
    }
    if let Err(e) = app.store.update_finding(&id, &update, &p.token_id).await {
        return api_error(e.into());
    }
    let q = Query::default().with(&[("notice", notice)]);
    let path = format!(
        "/console/findings/{}?{q}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    see_other(&path)
}
