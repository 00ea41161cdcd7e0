//! The Settings page, for administrators: clusters (with the kube-apiserver webhook
//! kubeconfig of a new cluster's ingest token), tokens, outputs, registries, IP lists and
//! suppression rules — listed, added and removed. Every read and change is a call of the API's
//! own handler with the body the API takes, so validation, tenancy, the administrative log and
//! the detector's reload are the API's; a secret (an ingest token, a token, a generated webhook
//! key) is shown once, on the page that created it, never in a URL.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use osprey_store::Role;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::layout::{Frame, api_error, render, see_other};
use super::session::Signed;
use super::table::{Column, List, Table};
use super::view::{Query, Scope, rfc3339, shown_time};
use crate::App;
use crate::api::{self, Body, Params};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The longest settings form accepted (an IP list of a few thousand lines).
const MAX_FORM: usize = 1 << 20;

/// One listed item: its cells and, when it can be removed, the action and id that remove it.
pub struct Row {
    pub cells: Vec<String>,
    pub remove: Option<(&'static str, String)>,
}

/// One section of the page.
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    pub headers: &'static [&'static str],
    pub rows: Vec<Row>,
}

/// A secret just created, shown once.
pub struct Created {
    pub what: String,
    pub secret: String,
    /// For a cluster: the kube-apiserver's audit webhook kubeconfig.
    pub kubeconfig: Option<String>,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    frame: Frame,
    sections: Vec<Section>,
    /// Member tenants the organization's administrator may act for (empty for a member).
    tenants: Vec<(String, String)>,
    created: Option<Created>,
    notice: Option<String>,
    /// The administrative log of the scope.
    log: Table<LogRow>,
    /// More entries are in the scope than the log shows.
    log_capped: bool,
}

fn caller(signed: &Signed) -> Caller {
    Caller(signed.caller.0.clone())
}

/// An API answer as JSON.
fn value<T: Serialize>(answer: ApiResult<Json<T>>) -> ApiResult<Value> {
    let Json(v) = answer?;
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// A request body the API takes, from JSON built here.
fn body<T: DeserializeOwned>(v: Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("form: {e}")))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn time(v: &Value) -> String {
    v.as_i64()
        .map(|ms| shown_time(&rfc3339(ms)))
        .unwrap_or_default()
}

/// What the settings page lists, read through the API's handlers.
struct Listed {
    sections: Vec<Section>,
    /// Member tenants the organization's administrator may act for (empty for a member).
    members: Vec<(String, String)>,
    /// Tenant and token names by id.
    names: HashMap<String, String>,
}

/// The page's sections, read through the API's handlers.
async fn sections(app: &Arc<App>, signed: &Signed) -> ApiResult<Listed> {
    let s = || State(Arc::clone(app));
    let c = || caller(signed);
    let (clusters, tokens, outputs, registries, lists, rules, tenants) = tokio::try_join!(
        async { value(api::clusters::list_clusters(s(), c()).await) },
        async { value(api::tenants::list_tokens(s(), c()).await) },
        async { value(api::outputs::list_outputs(s(), c()).await) },
        async { value(api::scans::list_registries(s(), c()).await) },
        async { value(api::settings::list_ip_lists(s(), c()).await) },
        async { value(api::settings::list_suppression_rules(s(), c()).await) },
        async { value(api::tenants::list_tenants(s(), c()).await) },
    )?;
    let names: HashMap<String, String> = tenants["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (text(&t["id"]), text(&t["name"])))
        .collect();
    let tenant = |v: &Value| {
        let id = text(&v["tenant_id"]);
        names.get(&id).cloned().unwrap_or(id)
    };
    let items = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    let sections = vec![
        Section {
            id: "clusters",
            title: "Clusters",
            headers: &["Name", "Tenant", "Id", "Created"],
            rows: items(&clusters, "clusters")
                .iter()
                .map(|v| Row {
                    cells: vec![
                        text(&v["name"]),
                        tenant(v),
                        text(&v["id"]),
                        time(&v["created_ms"]),
                    ],
                    remove: None,
                })
                .collect(),
        },
        Section {
            id: "tokens",
            title: "Tokens",
            headers: &[
                "Name",
                "Tenant",
                "Role",
                "Created",
                "Last used",
                "Expires",
                "Revoked",
            ],
            rows: items(&tokens, "tokens")
                .iter()
                .map(|v| Row {
                    cells: vec![
                        text(&v["name"]),
                        tenant(v),
                        text(&v["role"]),
                        time(&v["created_ms"]),
                        time(&v["last_used_ms"]),
                        time(&v["expires_ms"]),
                        time(&v["revoked_ms"]),
                    ],
                    remove: v["revoked_ms"]
                        .is_null()
                        .then(|| ("token.revoke", text(&v["id"]))),
                })
                .collect(),
        },
        Section {
            id: "outputs",
            title: "Outputs",
            headers: &["Name", "Tenant", "Kind", "URL", "Lowest severity sent"],
            rows: items(&outputs, "outputs")
                .iter()
                .map(|v| Row {
                    cells: vec![
                        text(&v["name"]),
                        tenant(v),
                        text(&v["kind"]),
                        text(&v["url"]),
                        text(&v["severity_min"]),
                    ],
                    remove: Some(("output.delete", text(&v["id"]))),
                })
                .collect(),
        },
        Section {
            id: "registries",
            title: "Registries",
            headers: &["Host", "Tenant", "User"],
            rows: items(&registries, "registries")
                .iter()
                .map(|v| Row {
                    cells: vec![text(&v["host"]), tenant(v), text(&v["username"])],
                    remove: Some(("registry.delete", text(&v["id"]))),
                })
                .collect(),
        },
        Section {
            id: "ip-lists",
            title: "IP lists",
            headers: &["Name", "Tenant", "Kind", "Entries", "Updated"],
            rows: items(&lists, "ip_lists")
                .iter()
                .map(|v| Row {
                    cells: vec![
                        text(&v["name"]),
                        tenant(v),
                        text(&v["kind"]),
                        text(&v["entries"]),
                        time(&v["updated_ms"]),
                    ],
                    remove: Some((
                        "ip-list.delete",
                        format!("{}/{}", text(&v["tenant_id"]), text(&v["name"])),
                    )),
                })
                .collect(),
        },
        Section {
            id: "rules",
            title: "Suppression rules",
            headers: &["Name", "Tenant", "Finding type", "Condition", "Reason"],
            rows: items(&rules, "suppression_rules")
                .iter()
                .map(|v| Row {
                    cells: vec![
                        text(&v["name"]),
                        tenant(v),
                        text(&v["type"]),
                        text(&v["condition"]),
                        text(&v["reason"]),
                    ],
                    remove: Some(("rule.delete", text(&v["id"]))),
                })
                .collect(),
        },
    ];
    let mut members: Vec<(String, String)> = if signed.caller.0.is_org_admin() {
        names.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    } else {
        Vec::new()
    };
    members.sort_by(|a, b| a.1.cmp(&b.1));
    let mut names = names;
    for t in items(&tokens, "tokens") {
        names.insert(
            text(&t["id"]),
            format!("{} ({})", text(&t["name"]), text(&t["role"])),
        );
    }
    Ok(Listed {
        sections,
        members,
        names,
    })
}

/// One entry of the administrative log.
pub struct LogRow {
    pub seq: i64,
    pub at: String,
    pub tenant: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The longest detail the log shows of an entry.
const DETAIL_SHOWN: usize = 240;

/// The columns the administrative log sorts by.
fn log_columns() -> [Column<LogRow>; 4] {
    [
        Column::new("time", "Time", |a, b| a.seq.cmp(&b.seq)),
        Column::new("actor", "Who", |a, b| a.actor.cmp(&b.actor)),
        Column::new("action", "Action", |a, b| a.action.cmp(&b.action)),
        Column::new("target", "Target", |a, b| a.target.cmp(&b.target)),
    ]
}

/// The administrative log of the scope (the API's, its newest entries at most), sorted and
/// paged as the URL asks; whether more entries are in the scope than were read.
async fn admin_log(
    app: &Arc<App>,
    signed: &Signed,
    scope: &Scope,
    q: &Query,
    names: &HashMap<String, String>,
) -> Result<(Table<LogRow>, bool), ApiError> {
    let Json(log) = api::admin::admin_log(
        State(Arc::clone(app)),
        caller(signed),
        Params(api::admin::LogQuery {
            before: None,
            since: scope.since(),
            until: scope.until(),
            limit: Some(api::admin::MAX_ENTRIES),
        }),
    )
    .await?;
    let capped = log.entries.len() as i64 >= api::admin::MAX_ENTRIES;
    let named = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let rows = log
        .entries
        .into_iter()
        .map(|e| {
            let mut detail = if e.detail.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.detail.to_string()
            };
            if detail.len() > DETAIL_SHOWN {
                let cut = (0..=DETAIL_SHOWN)
                    .rev()
                    .find(|i| detail.is_char_boundary(*i))
                    .unwrap_or(0);
                detail.truncate(cut);
                detail.push('…');
            }
            LogRow {
                seq: e.seq,
                at: shown_time(&rfc3339(e.at_ms)),
                tenant: named(&e.tenant_id),
                actor: named(&e.actor),
                action: e.action,
                target: e.target,
                detail,
            }
        })
        .collect();
    let list = List {
        name: "log",
        path: "/console/settings",
        query: q,
        size: 50,
        default: ("time", "desc"),
    };
    let table = list
        .page(rows, &log_columns())
        .map_err(ApiError::bad_request)?;
    Ok((table, capped))
}

async fn show(
    app: &Arc<App>,
    signed: &Signed,
    created: Option<Created>,
    notice: Option<String>,
    q: Query,
) -> Response {
    let scope = match Scope::of(&q, osprey_store::now_ms()) {
        Ok(s) => s,
        Err(e) => return api_error(ApiError::bad_request(e)),
    };
    let listed = match sections(app, signed).await {
        Ok(s) => s,
        Err(e) => return api_error(e),
    };
    let (log, log_capped) = match admin_log(app, signed, &scope, &q, &listed.names).await {
        Ok(l) => l,
        Err(e) => return api_error(e),
    };
    let frame = Frame::new(
        signed,
        "Settings",
        "settings",
        "/console/settings",
        q,
        Some(scope),
    );
    render(&SettingsPage {
        frame,
        sections: listed.sections,
        tenants: listed.members,
        created,
        notice,
        log,
        log_capped,
    })
}

/// `GET /console/settings`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = signed.caller.require(Role::Admin) {
        return api_error(e);
    }
    let q = Query::parse(raw.as_deref());
    let notice = q.get("notice").map(str::to_string);
    show(&app, &signed, None, notice, q.without(&["notice"])).await
}

/// The kube-apiserver's audit webhook configuration for a cluster: a kubeconfig whose server
/// is the cluster's ingest URL on the address the browser reached this server at.
fn kubeconfig(https: bool, host: &str, cluster: &str, token: &str) -> String {
    let scheme = if https { "https" } else { "http" };
    let ca = if https {
        "\n      certificate-authority: /etc/kubernetes/osprey/ca.crt"
    } else {
        ""
    };
    format!(
        "# --audit-webhook-config-file of the kube-apiserver (with --audit-policy-file);\n\
         # keep it readable by the API server only. docs/deploy.md.\n\
         apiVersion: v1\nkind: Config\nclusters:\n  - name: osprey\n    cluster:\n      \
         server: {scheme}://{host}/v1/clusters/{cluster}/audit{ca}\nusers:\n  - name: kube-apiserver\n    \
         user:\n      token: {token}\ncontexts:\n  - name: osprey\n    context:\n      cluster: osprey\n      \
         user: kube-apiserver\ncurrent-context: osprey\n"
    )
}

/// `POST /console/settings`: one change, named by `action`.
pub async fn change(
    State(app): State<Arc<App>>,
    signed: Signed,
    headers: HeaderMap,
    body_bytes: Bytes,
) -> Response {
    let form =
        match signed.change_form(&app, &body_bytes, MAX_FORM, "the form is larger than 1 MiB") {
            Ok(f) => f,
            Err(refused) => return *refused,
        };
    if let Err(e) = signed.caller.require(Role::Admin) {
        return api_error(e);
    }
    let field = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty());
    let tenant = field("tenant").map(str::to_string);
    let done = |notice: &str| {
        see_other(&format!(
            "/console/settings?{}",
            Query::default().with(&[("notice", notice)])
        ))
    };
    let s = || State(Arc::clone(&app));
    let c = || caller(&signed);
    let outcome: ApiResult<Response> = async {
        match form.get("action").unwrap_or_default() {
            "cluster.create" => {
                let b =
                    body(json!({ "name": field("name").unwrap_or_default(), "tenant": tenant }))?;
                let created = value(
                    api::clusters::create_cluster(s(), c(), Body(b))
                        .await
                        .map(|(_, j)| j),
                )?;
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("OSPREY_ADDRESS");
                let (id, token) = (text(&created["id"]), text(&created["ingest_token"]));
                Ok(show(
                    &app,
                    &signed,
                    Some(Created {
                        what: format!(
                            "Cluster {} created. Its ingest token:",
                            text(&created["name"])
                        ),
                        kubeconfig: Some(kubeconfig(app.options.https, host, &id, &token)),
                        secret: token,
                    }),
                    None,
                    Query::default(),
                )
                .await)
            }
            "token.create" => {
                let b = body(json!({
                    "name": field("name").unwrap_or_default(),
                    "role": field("role").unwrap_or_default(),
                    "tenant": tenant,
                }))?;
                let created = value(
                    api::tenants::create_token(s(), c(), Body(b))
                        .await
                        .map(|(_, j)| j),
                )?;
                Ok(show(
                    &app,
                    &signed,
                    Some(Created {
                        what: format!(
                            "Token {} ({}) created:",
                            field("name").unwrap_or_default(),
                            text(&created["role"])
                        ),
                        secret: text(&created["token"]),
                        kubeconfig: None,
                    }),
                    None,
                    Query::default(),
                )
                .await)
            }
            "token.revoke" => {
                api::tenants::revoke_token(
                    s(),
                    c(),
                    Path(field("id").unwrap_or_default().to_string()),
                )
                .await?;
                Ok(done("Token revoked."))
            }
            "output.create" => {
                let b = body(json!({
                    "name": field("name").unwrap_or_default(),
                    "kind": field("kind").unwrap_or_default(),
                    "url": field("url").unwrap_or_default(),
                    "secret": field("secret"),
                    "severity_min": field("severity_min"),
                    "tenant": tenant,
                }))?;
                let created = value(
                    api::outputs::create_output(s(), c(), Body(b))
                        .await
                        .map(|(_, j)| j),
                )?;
                match created.get("secret").map(text).filter(|s| !s.is_empty()) {
                    Some(secret) => Ok(show(
                        &app,
                        &signed,
                        Some(Created {
                            what: format!(
                                "Output {} created. Its HMAC key:",
                                text(&created["name"])
                            ),
                            secret,
                            kubeconfig: None,
                        }),
                        None,
                        Query::default(),
                    )
                    .await),
                    None => Ok(done("Output created.")),
                }
            }
            "output.delete" => {
                api::outputs::delete_output(
                    s(),
                    c(),
                    Path(field("id").unwrap_or_default().to_string()),
                )
                .await?;
                Ok(done("Output removed."))
            }
            "registry.create" => {
                let b = body(json!({
                    "host": field("host").unwrap_or_default(),
                    "username": field("username"),
                    "password": form.get("password").filter(|p| !p.is_empty()),
                    "tenant": tenant,
                }))?;
                let _created = api::scans::create_registry(s(), c(), Body(b)).await?;
                Ok(done("Registry added."))
            }
            "registry.delete" => {
                api::scans::delete_registry(
                    s(),
                    c(),
                    Path(field("id").unwrap_or_default().to_string()),
                )
                .await?;
                Ok(done("Registry removed."))
            }
            "ip-list.put" => {
                let name = field("name").unwrap_or_default().to_string();
                let q =
                    body(json!({ "kind": field("kind").unwrap_or_default(), "tenant": tenant }))?;
                let entries = Bytes::from(form.get("entries").unwrap_or_default().to_string());
                let _saved =
                    api::settings::put_ip_list(s(), c(), Path(name), Params(q), entries).await?;
                Ok(done("IP list saved."))
            }
            "ip-list.delete" => {
                let (tenant_id, name) =
                    field("id").and_then(|v| v.split_once('/')).ok_or_else(|| {
                        ApiError::bad_request("id: expected a tenant and a list name")
                    })?;
                let q = body(json!({ "tenant": tenant_id }))?;
                api::settings::delete_ip_list(s(), c(), Path(name.to_string()), Params(q)).await?;
                Ok(done("IP list removed."))
            }
            "rule.create" => {
                let b = body(json!({
                    "name": field("name").unwrap_or_default(),
                    "type": field("type").unwrap_or_default(),
                    "condition": field("condition").unwrap_or_default(),
                    "reason": field("reason").unwrap_or_default(),
                    "tenant": tenant,
                }))?;
                let _created = api::settings::create_suppression_rule(s(), c(), Body(b)).await?;
                Ok(done("Suppression rule added."))
            }
            "rule.delete" => {
                api::settings::delete_suppression_rule(
                    s(),
                    c(),
                    Path(field("id").unwrap_or_default().to_string()),
                )
                .await?;
                Ok(done("Suppression rule removed."))
            }
            other => Err(ApiError::bad_request(format!(
                "action {other:?}: not a settings change"
            ))),
        }
    }
    .await;
    outcome.unwrap_or_else(api_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_points_the_api_server_at_the_clusters_ingest_url() {
        let k = kubeconfig(true, "osprey.example:8443", "c1", "osi_secret");
        assert!(
            k.contains("server: https://osprey.example:8443/v1/clusters/c1/audit"),
            "{k}"
        );
        assert!(k.contains("certificate-authority:"));
        assert!(k.contains("token: osi_secret"));
        let plain = kubeconfig(false, "127.0.0.1:8080", "c1", "t");
        assert!(
            plain.contains("server: http://127.0.0.1:8080/")
                && !plain.contains("certificate-authority")
        );
    }
}
