//! The image-scanning routes: scans on request, the scan jobs, the SBOM of each scanned digest,
//! and the registries scans pull from. Tenancy as everywhere: a member sees its own; the
//! administrator tenant sees all, and its registries apply to every member.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use osprey_image::Source;
use osprey_store::{NewScan, Registry, Role, SbomInfo, ScanJob, ScanKind, ScanState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BadInput, Body, ErrorBody, NotFound, Params, Refused, log, managed_tenant};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ServerError, ServerResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// A registry reference (`registry.example/team/app:1.4`, `…@sha256:…`).
    image: String,
    /// The cluster the image runs in (id), when it is a cluster's.
    #[serde(default)]
    cluster: Option<String>,
    /// Tenant name or id (the administrator tenant's callers only); the caller's own when absent.
    #[serde(default)]
    tenant: Option<String>,
}

/// The tenant a scan is for: the caller's own (analyst and up), or one the organization's
/// administrator names.
pub(super) async fn scan_tenant(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
) -> ApiResult<String> {
    match tenant {
        Some(_) => managed_tenant(app, caller, tenant).await,
        None => Ok(caller.require(Role::Analyst)?.tenant_id.clone()),
    }
}

/// Checks what a request names as the image, without touching the file system unless the
/// server allows local sources.
fn checked_image(app: &App, text: &str) -> ApiResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request("image: empty"));
    }
    if app.options.allow_local_images {
        Source::parse(text).map_err(|e| ApiError::bad_request(format!("image: {e}")))?;
        return Ok(text.to_string());
    }
    let (bare, _) = crate::scanner::registry_reference(text).map_err(|e| {
        ApiError::bad_request(format!(
            "image {text:?}: not a registry reference ({e}); this server scans registry images only"
        ))
    })?;
    Ok(bare.to_string())
}

/// A page of scan jobs, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanPage {
    scans: Vec<ScanJob>,
    /// Pass as `page_token` for the next page; absent on the last.
    next_page_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Sboms {
    sboms: Vec<SbomInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Registries {
    registries: Vec<Registry>,
}

#[utoipa::path(post, path = "/v1/images/scan", tag = "scans", request_body = ScanRequest, responses((status = 202, description = "The queued scan job", body = ScanJob), (status = 404, description = "Cluster or tenant absent or not the caller's", body = ErrorBody), (status = 429, description = "The tenant has as many scans waiting as it may queue", body = ErrorBody), (status = 503, description = "Scanning is off on this server", body = ErrorBody), BadInput, Refused), security(("bearer" = [])))]
pub async fn scan_image(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<ScanRequest>,
) -> ApiResult<(StatusCode, Json<ScanJob>)> {
    let tenant_id = scan_tenant(&app, &caller, body.tenant.as_deref()).await?;
    if app.options.scan_workers == 0 {
        return Err(ApiError::unavailable(
            "image scanning is off on this server (--scan-workers 0)",
            60,
        ));
    }
    let image = checked_image(&app, &body.image)?;
    if let Some(c) = &body.cluster {
        match app.store.cluster(c).await? {
            Some(cluster) if cluster.tenant_id == tenant_id => {}
            _ => return Err(ApiError::not_found(format!("cluster {c:?}"))),
        }
    }
    let waiting = app.store.queued_scans(&tenant_id).await?;
    if waiting >= app.options.scan_queue_per_tenant {
        return Err(ApiError::busy(
            format!(
                "the tenant has {waiting} scans waiting, the most it may queue; try again when some have run"
            ),
            30,
        ));
    }
    let job = app
        .store
        .enqueue_scan(&NewScan {
            tenant_id,
            cluster_id: body.cluster,
            image,
            kind: ScanKind::OnDemand,
            trigger_finding_id: None,
            workload: None,
        })
        .await?;
    app.scan_queued(&job.id);
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScansQuery {
    /// queued, running, done, failed or skipped.
    state: Option<String>,
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
    /// The previous page's `next_page_token`.
    page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/scans", tag = "scans", params(ScansQuery), responses((status = 200, description = "Scan jobs, newest first", body = ScanPage), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_scans(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<ScansQuery>,
) -> ApiResult<Json<ScanPage>> {
    caller.require(Role::Viewer)?;
    let state = q
        .state
        .as_deref()
        .map(|s| {
            ScanState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "state {s:?}: expected queued, running, done, failed or skipped"
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = super::page_after(q.page_token.as_deref())?;
    let scans = app
        .store
        .scan_jobs(caller.scope().as_deref(), state, after, limit)
        .await?;
    let next_page_token = super::next_page(&scans, limit, |s| (s.created_ms, &s.id));
    Ok(Json(ScanPage {
        scans,
        next_page_token,
    }))
}

#[utoipa::path(get, path = "/v1/scans/{id}", tag = "scans", params(("id" = String, Path, description = "Scan job id")), responses((status = 200, description = "The job: state, image digest, counts, the findings it stored", body = ScanJob), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn get_scan(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScanJob>> {
    caller.require(Role::Viewer)?;
    match app.store.scan_job(&id).await? {
        Some(job) if caller.owns(&job.tenant_id) => Ok(Json(job)),
        _ => Err(ApiError::not_found(format!("scan {id}"))),
    }
}

#[utoipa::path(get, path = "/v1/sboms", tag = "scans", responses((status = 200, description = "Each scanned image digest with its OS, package and open vulnerability counts", body = Sboms), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_sboms(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Sboms>> {
    caller.require(Role::Viewer)?;
    let sboms = app.store.sboms(caller.scope().as_deref()).await?;
    Ok(Json(Sboms { sboms }))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SbomQuery {
    /// cyclonedx (CycloneDX 1.6 JSON, the default), spdx (SPDX 2.3 JSON) or inventory
    /// (Osprey's own: OS, packages, notices).
    format: Option<String>,
    /// The tenant (id) whose image it is; the caller's own when absent.
    tenant: Option<String>,
}

#[utoipa::path(get, path = "/v1/sboms/{digest}", tag = "scans", params(("digest" = String, Path, description = "Image manifest digest (sha256:…)"), SbomQuery), responses((status = 200, description = "The SBOM document: CycloneDX 1.6 or SPDX 2.3 JSON (each valid against its published schema), or Osprey's inventory", body = serde_json::Value), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn get_sbom(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(digest): Path<String>,
    Params(q): Params<SbomQuery>,
) -> ApiResult<impl IntoResponse> {
    let p = caller.require(Role::Viewer)?;
    let format = q.format.as_deref().unwrap_or("cyclonedx");
    if !matches!(format, "cyclonedx" | "spdx" | "inventory") {
        return Err(ApiError::bad_request(format!(
            "format {format:?}: expected cyclonedx, spdx or inventory"
        )));
    }
    let tenant = q.tenant.clone().unwrap_or_else(|| p.tenant_id.clone());
    let not_found = || ApiError::not_found(format!("SBOM of {digest}"));
    if !caller.owns(&tenant) {
        return Err(not_found());
    }
    let sbom = app
        .store
        .sbom(&tenant, &digest)
        .await?
        .ok_or_else(not_found)?;
    let format = format.to_string();
    // A stored SBOM that does not decode is the store's fault, not the caller's: a 500.
    let what = format!("SBOM of {digest}");
    let corrupt = move |e: &dyn std::fmt::Display| {
        ServerError::Store(osprey_store::StoreError::Corrupt {
            what: what.clone(),
            error: e.to_string(),
        })
    };
    let body = crate::error::blocking(move || -> ServerResult<Vec<u8>> {
        let json = zstd::bulk::decompress(&sbom.inventory, 256 << 20).map_err(|e| corrupt(&e))?;
        if format == "inventory" {
            return Ok(json);
        }
        let inventory: osprey_inventory::Inventory =
            serde_json::from_slice(&json).map_err(|e| corrupt(&e))?;
        let subject = osprey_inventory::sbom::Subject {
            name: sbom.reference.clone(),
            version: Some(sbom.image_digest.clone()),
            is_image: true,
            purl: None,
            properties: Vec::new(),
        };
        let doc =
            osprey_inventory::sbom::Document::new(&subject, &inventory, env!("CARGO_PKG_VERSION"));
        let mut out = Vec::new();
        match format.as_str() {
            "spdx" => osprey_inventory::sbom::spdx::write(&doc, &mut out),
            _ => osprey_inventory::sbom::cyclonedx::write(&doc, &mut out),
        }
        .map_err(|e| corrupt(&e))?;
        Ok(out)
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegistry {
    /// `host[:port]` as image references name it.
    host: String,
    #[serde(default)]
    username: Option<String>,
    /// Sealed with the server's secret key before it is stored; never shown again.
    #[serde(default)]
    password: Option<String>,
    /// Plain HTTP to a loopback registry, or TLS without certificate checks; the
    /// organization's administrator only.
    #[serde(default)]
    insecure: bool,
    /// Tenant name or id; the caller's own when absent. The administrator tenant's registries
    /// apply to every member that has none of its own for the host.
    #[serde(default)]
    tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/registries", tag = "scans", request_body = NewRegistry, responses((status = 201, description = "The registry, without its password", body = Registry), (status = 409, description = "The tenant has this host already", body = ErrorBody), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn create_registry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewRegistry>,
) -> ApiResult<(StatusCode, Json<Registry>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    if body.insecure && !caller.0.is_org_admin() {
        return Err(ApiError::forbidden(
            "insecure: only the organization's administrator may turn off TLS checks for a registry",
        ));
    }
    let username = body.username.unwrap_or_default();
    let sealed = match (&body.password, username.is_empty()) {
        (Some(_), true) => return Err(ApiError::bad_request("password: given without a username")),
        (None, false) => return Err(ApiError::bad_request("username: given without a password")),
        (None, true) => Vec::new(),
        (Some(pw), false) => {
            let key = app.options.secret_key.as_ref().ok_or_else(|| {
                ApiError::unavailable(
                    "this server has no secret key to seal registry passwords with",
                    60,
                )
            })?;
            key.seal(pw.as_bytes())
        }
    };
    let r = app
        .store
        .create_registry(&tenant_id, &body.host, &username, &sealed, body.insecure)
        .await?;
    log(
        &app,
        &caller.0,
        "registry.create",
        &r.id,
        json!({ "tenant": tenant_id, "host": r.host, "username": r.username, "insecure": r.insecure }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/v1/registries", tag = "scans", responses((status = 200, description = "Registries, never their passwords", body = Registries), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_registries(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<Registries>> {
    caller.require(Role::Admin)?;
    let registries = app.store.registries(caller.scope().as_deref()).await?;
    Ok(Json(Registries { registries }))
}

#[utoipa::path(delete, path = "/v1/registries/{id}", tag = "scans", params(("id" = String, Path, description = "Registry id")), responses((status = 204, description = "Removed"), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn delete_registry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let r = match app.store.registry(&id).await? {
        Some(r) if caller.owns(&r.tenant_id) => r,
        _ => return Err(ApiError::not_found(format!("registry {id}"))),
    };
    app.store.delete_registry(&id).await?;
    log(
        &app,
        &caller.0,
        "registry.delete",
        &id,
        json!({ "tenant": r.tenant_id, "host": r.host }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
