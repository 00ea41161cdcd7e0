//! Detection settings through the API: trusted and threat IP lists (upload, replace, delete)
//! and suppression rules. A member's apply to its own clusters; the administrator tenant's to
//! every member's. Changes reach detection before its next round.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{IpList, ListKind, Role, SuppressionRuleRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BadInput, Body, ErrorBody, NotFound, Params, Refused, log, managed_tenant};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ServerError};
use crate::settings;

fn changed(app: &App) {
    app.settings_version.fetch_add(1, Ordering::Relaxed);
    app.detector_wake.notify_one();
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// trusted (never reported by the threat-intelligence rules) or threat (the tenant's own
    /// threat list: `….MaliciousIPCaller.Custom` findings name it).
    kind: String,
    /// Tenant name or id; the caller's own when absent.
    tenant: Option<String>,
}

#[utoipa::path(put, path = "/v1/ip-lists/{name}", tag = "detection settings", params(("name" = String, Path, description = "List name"), ListQuery), request_body(content = String, description = "One address or CIDR range per line (# comments), or STIX 2.1 JSON with ipv4-addr/ipv6-addr objects or indicators", content_type = "text/plain"), responses((status = 201, description = "The new list: id, name, kind, entries", body = IpList), (status = 200, description = "The list, replaced", body = IpList), (status = 400, description = "Bad input, naming the line", body = ErrorBody), NotFound, Refused), security(("bearer" = [])))]
pub async fn put_ip_list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Params(q): Params<ListQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IpList>)> {
    let tenant_id = managed_tenant(&app, &caller, q.tenant.as_deref()).await?;
    let kind = ListKind::parse(&q.kind).ok_or_else(|| {
        ApiError::bad_request(format!("kind {:?}: expected trusted or threat", q.kind))
    })?;
    let (list, text) = {
        let name = name.clone();
        crate::error::blocking(move || {
            let list = settings::parse_list(&name, kind, &body)?;
            let text = String::from_utf8(body.to_vec())
                .map_err(|_| ServerError::Invalid(format!("list {name}: not UTF-8 text")))?;
            Ok::<_, ServerError>((list, text))
        })
        .await??
    };
    if list.entries == 0 {
        return Err(ApiError::bad_request(format!(
            "list {name}: no addresses or ranges in it"
        )));
    }
    let (stored, created) = app
        .store
        .put_ip_list(&tenant_id, &name, kind, &text, list.entries as i64)
        .await?;
    log(
        &app,
        &caller.0,
        if created {
            "ip-list.create"
        } else {
            "ip-list.replace"
        },
        &stored.id,
        json!({ "tenant": tenant_id, "name": name, "kind": kind, "entries": stored.entries }),
    )
    .await?;
    changed(&app);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IpLists {
    ip_lists: Vec<IpList>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SuppressionRules {
    suppression_rules: Vec<SuppressionRuleRecord>,
}

#[utoipa::path(get, path = "/v1/ip-lists", tag = "detection settings", responses((status = 200, description = "The lists: name, kind, entries (not the contents)", body = IpLists), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_ip_lists(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<IpLists>> {
    caller.require(Role::Viewer)?;
    let lists = app.store.ip_lists(caller.scope().as_deref()).await?;
    Ok(Json(IpLists { ip_lists: lists }))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    /// Tenant name or id; the caller's own when absent.
    tenant: Option<String>,
}

#[utoipa::path(delete, path = "/v1/ip-lists/{name}", tag = "detection settings", params(("name" = String, Path, description = "List name"), TenantQuery), responses((status = 204, description = "Removed"), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn delete_ip_list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Params(q): Params<TenantQuery>,
) -> ApiResult<StatusCode> {
    let tenant_id = managed_tenant(&app, &caller, q.tenant.as_deref()).await?;
    let l = app
        .store
        .ip_list_by_name(&tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("list {name}")))?;
    app.store.delete_ip_list(&l.id).await?;
    log(
        &app,
        &caller.0,
        "ip-list.delete",
        &l.id,
        json!({ "tenant": l.tenant_id, "name": l.name }),
    )
    .await?;
    changed(&app);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressionRule {
    name: String,
    /// A glob over finding types (`PrivilegeEscalation:Kubernetes/*`); every type when absent.
    #[serde(default, rename = "type")]
    kind: String,
    /// A condition in the rule language over the event (`user.name == "ci-bot"`,
    /// `any(pod.containers, it.image startswith "registry.k8s.io/debug")`).
    condition: String,
    #[serde(default)]
    reason: String,
    /// Tenant name or id; the caller's own when absent.
    #[serde(default)]
    tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/suppression-rules", tag = "detection settings", request_body = NewSuppressionRule, responses((status = 201, description = "The rule", body = SuppressionRuleRecord), (status = 409, description = "The tenant has a rule of this name", body = ErrorBody), (status = 400, description = "Bad input: what does not compile", body = ErrorBody), NotFound, Refused), security(("bearer" = [])))]
pub async fn create_suppression_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewSuppressionRule>,
) -> ApiResult<(StatusCode, Json<SuppressionRuleRecord>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    {
        let (name, kind, condition, reason) = (
            body.name.clone(),
            body.kind.clone(),
            body.condition.clone(),
            body.reason.clone(),
        );
        crate::error::blocking(move || {
            let loader = osprey_audit::Loader::builtin();
            loader
                .suppression(&name, &kind, &condition, &reason)
                .map(|_| ())
                .map_err(|e| format!("suppression rule {name}: {e}"))
        })
        .await?
        .map_err(ApiError::bad_request)?;
    }
    let r = app
        .store
        .create_suppression_rule(
            &tenant_id,
            &body.name,
            &body.kind,
            &body.condition,
            &body.reason,
        )
        .await?;
    log(
        &app,
        &caller.0,
        "suppression-rule.create",
        &r.id,
        json!({ "tenant": tenant_id, "name": r.name, "type": r.kind, "condition": r.condition }),
    )
    .await?;
    changed(&app);
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/v1/suppression-rules", tag = "detection settings", responses((status = 200, description = "The tenant's rules", body = SuppressionRules), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_suppression_rules(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<SuppressionRules>> {
    caller.require(Role::Viewer)?;
    let rules = app
        .store
        .suppression_rules(caller.scope().as_deref())
        .await?;
    Ok(Json(SuppressionRules {
        suppression_rules: rules,
    }))
}

#[utoipa::path(delete, path = "/v1/suppression-rules/{id}", tag = "detection settings", params(("id" = String, Path, description = "Rule id")), responses((status = 204, description = "Removed"), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn delete_suppression_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let r = match app.store.suppression_rule(&id).await? {
        Some(r) if caller.owns(&r.tenant_id) => r,
        _ => return Err(ApiError::not_found(format!("suppression rule {id}"))),
    };
    app.store.delete_suppression_rule(&id).await?;
    log(
        &app,
        &caller.0,
        "suppression-rule.delete",
        &id,
        json!({ "tenant": r.tenant_id, "name": r.name }),
    )
    .await?;
    changed(&app);
    Ok(StatusCode::NO_CONTENT)
}
