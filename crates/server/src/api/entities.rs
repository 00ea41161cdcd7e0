//! The investigation graph's entities: search (`GET /v1/entities`) and profiles
//! (`GET /v1/entities/{type}/{id...}`). An entity of a cluster (cluster, namespace, pod,
//! subject, node) belongs to the cluster's tenant; one that is not (an IP, a user agent, an
//! image) exists once per tenant, and the organization's administrator sees it across its
//! tenants (or one, with `tenant`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use osprey_graph::{EntityId, EntityType};
use osprey_store::{EntityRow, Role};
use serde::{Deserialize, Serialize};

use super::{BadInput, NotFound, Params, Refused};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::impact::{self, ImpactView};
use crate::profiles::{self, Entity, Profile, merge_rows};

const DEFAULT_RELATED: usize = 100;
const MAX_RELATED: usize = 1000;
const DEFAULT_SEARCH: i64 = 50;
const MAX_SEARCH: i64 = 500;
/// Rows a search reads at most per request (it filters by name in memory).
const SEARCH_SCAN: usize = 100_000;
const SEARCH_PAGE: i64 = 5_000;

/// Query parameters of a profile.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// RFC 3339, on an hour (default: 24 hours before `end`).
    start: Option<String>,
    /// RFC 3339, on an hour (default: the end of the current hour).
    end: Option<String>,
    /// Related entities per page (default 100, at most 1000).
    related_limit: Option<usize>,
    related_offset: Option<usize>,
    /// For the organization's administrator: one member's view of an entity of no cluster.
    tenant: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities/{type}/{id}", tag = "graph",
    params(("type" = String, Path, description = "cluster, namespace, pod, subject, ip, user-agent, image, node, finding, vulnerability or package"),
           ("id" = String, Path, description = "The rest of the entity id, slashes included (pod/{cluster}/{namespace}/{name})"),
           ProfileQuery),
    responses((status = 200, description = "The entity's profile over the scope", body = Profile), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn get_entity(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((kind, decoded)): Path<(String, String)>,
    uri: axum::http::Uri,
    Params(q): Params<ProfileQuery>,
) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    let started = std::time::Instant::now();
    // The id as sent: its parts are percent-encoded, and a decoded `%2F` (a user agent's
    // slash) would read as a separator.
    let key = uri
        .path()
        .strip_prefix("/v1/entities/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(decoded, |(_, raw)| raw.to_string());
    let kind = EntityType::parse(&kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "entity type {kind:?}: expected one of {}",
            EntityType::names()
        ))
    })?;
    // `…/impact` asks for an entity's impact, unless the whole path is an entity's id (a pod
    // named `impact`).
    let impact_of = EntityId::parse_key(kind, &key)
        .is_err()
        .then(|| key.strip_suffix("/impact"))
        .flatten();
    if let Some(key) = impact_of {
        return entity_impact(&app, &caller, kind, key, q).await;
    }
    let id = EntityId::parse_key(kind, &key)
        .map_err(|e| ApiError::bad_request(format!("entity {kind}/{key}: {e}")))?;
    let tenants = tenants_of(&app, &caller, &id, q.tenant.as_deref()).await?;
    let time = |name: &str, text: Option<&str>| {
        text.map(|t| super::findings::time_value(name, t))
            .transpose()
    };
    let scope = profiles::scope_of(
        time("start", q.start.as_deref())?,
        time("end", q.end.as_deref())?,
    )
    .map_err(ApiError::bad_request)?;
    let limit = q
        .related_limit
        .unwrap_or(DEFAULT_RELATED)
        .clamp(1, MAX_RELATED);
    let offset = q.related_offset.unwrap_or(0);
    let profile = profiles::profile(&app.store, &tenants, &id, scope, limit, offset)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("entity {id}")))?;
    app.metrics
        .graph_profile_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(Json(profile).into_response())
}

/// Query parameters of an impact.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents what `get_entity` reads for an impact
pub struct ImpactQuery {
    /// For the organization's administrator: one member's view of an image or a
    /// vulnerability.
    tenant: Option<String>,
}

/// Served by [`get_entity`] (one route takes every entity path).
#[utoipa::path(get, path = "/v1/entities/{type}/{id}/impact", tag = "graph",
    params(("type" = String, Path, description = "image, vulnerability, subject or pod"),
           ("id" = String, Path, description = "The rest of the entity id, slashes included (image/sha256:…, vulnerability/CVE-…)"),
           ImpactQuery),
    responses((status = 200, description = "The running pods the entity concerns and why, their namespaces and nodes, who can exec into, attach to, patch them or read their secrets (from RBAC), and for a subject the secrets it can read", body = ImpactView), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn entity_impact(
    app: &App,
    caller: &Caller,
    kind: EntityType,
    key: &str,
    q: ProfileQuery,
) -> ApiResult<Response> {
    if q.start.is_some()
        || q.end.is_some()
        || q.related_limit.is_some()
        || q.related_offset.is_some()
    {
        return Err(ApiError::bad_request(
            "an impact has no scope or pages: it takes only tenant",
        ));
    }
    if !impact::applies_to(kind) {
        return Err(ApiError::bad_request(format!(
            "impact is for images, vulnerabilities, subjects and pods, not {kind}"
        )));
    }
    let id = EntityId::parse_key(kind, key)
        .map_err(|e| ApiError::bad_request(format!("entity {kind}/{key}: {e}")))?;
    let tenants = tenants_of(app, caller, &id, q.tenant.as_deref()).await?;
    let view = impact::impact(&app.store, &tenants, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("entity {id}")))?;
    Ok(Json(view).into_response())
}

/// The tenants whose rows make the entity for this caller: a cluster's entity, its
/// cluster's tenant (when the caller owns it); another, the caller's tenant, or for the
/// organization's administrator every tenant (or the one named).
pub(crate) async fn tenants_of(
    app: &App,
    caller: &Caller,
    id: &EntityId,
    tenant: Option<&str>,
) -> ApiResult<Vec<String>> {
    if let Some(cluster_id) = id.cluster_id() {
        return match app.store.cluster(cluster_id).await? {
            Some(c) if caller.owns(&c.tenant_id) => Ok(vec![c.tenant_id]),
            _ => Err(ApiError::not_found(format!("entity {id}"))),
        };
    }
    tenant_scope(app, caller, tenant).await
}

/// The tenants a caller's view covers: its own; for the organization's administrator every
/// tenant, or the one it names.
pub(super) async fn tenant_scope(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
) -> ApiResult<Vec<String>> {
    match (caller.scope(), tenant) {
        (Some(own), None) => Ok(vec![own]),
        (own, Some(t)) => {
            let found = match app.store.tenant_by_name(t).await? {
                Some(t) => Some(t),
                None => app.store.tenant(t).await?,
            };
            // A member names only itself: another tenant is absent to it.
            match found {
                Some(found) if own.as_ref().is_none_or(|o| *o == found.id) => Ok(vec![found.id]),
                _ => Err(ApiError::not_found(format!("tenant {t:?}"))),
            }
        }
        (None, None) => Ok(app
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect()),
    }
}

/// Query parameters of `GET /v1/entities`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The entity type.
    #[serde(rename = "type")]
    kind: String,
    /// A prefix of the id after the type (`c1/prod/` lists a namespace's pods) or of the
    /// name (a username, an address, a pod's `namespace/name`).
    q: Option<String>,
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
    page_token: Option<String>,
    /// For the organization's administrator: one member's entities.
    tenant: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntityList {
    entities: Vec<Entity>,
    /// More: pass as `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities", tag = "graph", params(SearchQuery),
    responses((status = 200, description = "Entities of the type whose id or name starts with q, in id order", body = EntityList), BadInput, NotFound, Refused),
    security(("bearer" = [])))]
pub async fn search_entities(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<SearchQuery>,
) -> ApiResult<Json<EntityList>> {
    caller.require(Role::Viewer)?;
    let kind = EntityType::parse(&q.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "type {:?}: expected one of {}",
            q.kind,
            EntityType::names()
        ))
    })?;
    let limit =
        usize::try_from(q.limit.unwrap_or(DEFAULT_SEARCH).clamp(1, MAX_SEARCH)).unwrap_or(1);
    let prefix = q.q.unwrap_or_default();
    // The page token is the last id read: the next page reads after it.
    let mut after = q.page_token.clone();
    let tenants = tenant_scope(&app, &caller, q.tenant.as_deref()).await?;
    let type_prefix = format!("{kind}/");
    // Rows of one id in several tenants are one entity: rows come in id order.
    let mut found: Vec<(EntityId, Vec<EntityRow>)> = Vec::new();
    let mut scanned = 0usize;
    let mut exhausted = true;
    'pages: loop {
        let mut page: Vec<EntityRow> = Vec::new();
        for t in &tenants {
            page.extend(
                app.store
                    .search_graph_entities(
                        t,
                        Some(kind.as_str()),
                        &type_prefix,
                        after.as_deref(),
                        SEARCH_PAGE,
                    )
                    .await?,
            );
        }
        page.sort_by(|a, b| a.id.cmp(&b.id));
        page.truncate(SEARCH_PAGE as usize);
        if page.is_empty() {
            break;
        }
        let full = page.len() == SEARCH_PAGE as usize;
        for row in page {
            scanned += 1;
            after = Some(row.id.clone());
            let Ok(id) = EntityId::parse(&row.id) else {
                continue;
            };
            if !(id.key().starts_with(&prefix) || id.name().starts_with(&prefix)) {
                continue;
            }
            if let Some((last, rows)) = found.last_mut()
                && *last == id
            {
                rows.push(row);
                continue;
            }
            if found.len() == limit {
                exhausted = false;
                break 'pages;
            }
            found.push((id, vec![row]));
        }
        if !full {
            break;
        }
        if scanned >= SEARCH_SCAN {
            exhausted = false;
            break;
        }
    }
    if !exhausted {
        // The next page starts after the last entity listed.
        after = found.last().map(|(id, _)| id.to_string());
    }
    Ok(Json(EntityList {
        entities: found
            .iter()
            .filter_map(|(id, rows)| merge_rows(id, rows))
            .collect(),
        next_page_token: if exhausted { None } else { after },
    }))
}
