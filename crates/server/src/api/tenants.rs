//! Tenants (the administrator tenant creates members) and API tokens.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{Role, Tenant, TenantKind, TokenInfo};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BadInput, Body, ErrorBody, NotFound, Refused, log, managed_tenant};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    name: String,
}

/// A tenant as created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantCreated {
    id: String,
    name: String,
    kind: TenantKind,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Tenants {
    tenants: Vec<Tenant>,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant, responses((status = 201, description = "The new member tenant", body = TenantCreated), (status = 409, description = "Name taken", body = ErrorBody), BadInput, Refused), security(("bearer" = [])))]
pub async fn create_tenant(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewTenant>,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    let p = caller.require(Role::Admin)?;
    if !p.is_org_admin() {
        return Err(ApiError::forbidden(
            "only the organization's administrator tenant creates tenants",
        ));
    }
    let t = app
        .store
        .create_tenant(&body.name, TenantKind::Member)
        .await?;
    log(&app, p, "tenant.create", &t.id, json!({ "name": t.name })).await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            id: t.id,
            name: t.name,
            kind: t.kind,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", responses((status = 200, description = "Tenants the caller sees", body = Tenants), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_tenants(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Tenants>> {
    caller.require(Role::Viewer)?;
    let scope = caller.scope();
    let tenants: Vec<_> = app
        .store
        .tenants()
        .await?
        .into_iter()
        .filter(|t| scope.as_ref().is_none_or(|s| *s == t.id))
        .collect();
    Ok(Json(Tenants { tenants }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Tenant name or id; the caller's own when absent.
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    name: String,
    /// Days after which the token stops working (1–3650); never, when absent.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A token as created: its secret is shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    id: String,
    token: String,
    tenant: String,
    role: Role,
    /// When the token stops working, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_ms: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Tokens {
    tokens: Vec<TokenInfo>,
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = NewToken, responses((status = 201, description = "The token, with its secret (shown once)", body = TokenCreated), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?}: expected admin, analyst or viewer",
            body.role
        ))
    })?;
    if role == Role::Ingest {
        return Err(ApiError::bad_request(
            "ingest tokens come with their cluster (POST /v1/clusters)",
        ));
    }
    let expires_ms = match body.expires_in_days {
        None => None,
        Some(d @ 1..=3650) => Some(osprey_store::now_ms() + i64::from(d) * 86_400_000),
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "expires_in_days {d}: expected 1 to 3650"
            )));
        }
    };
    let (info, secret) = app
        .store
        .create_token_expiring(&tenant_id, &body.name, role, None, expires_ms)
        .await?;
    log(
        &app,
        &caller.0,
        "token.create",
        &info.id,
        json!({ "tenant": tenant_id, "role": role, "name": info.name, "expires_ms": expires_ms }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: info.id,
            token: secret,
            tenant: tenant_id,
            role,
            expires_ms,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, description = "Tokens, never their secrets", body = Tokens), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_tokens(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Tokens>> {
    caller.require(Role::Admin)?;
    let tokens = app.store.tokens(caller.scope().as_deref()).await?;
    Ok(Json(Tokens { tokens }))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")), responses((status = 204, description = "Revoked"), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    match app.store.token(&id).await? {
        Some(t) if caller.owns(&t.tenant_id) => {
            app.store.revoke_token(&id).await?;
            log(
                &app,
                &caller.0,
                "token.revoke",
                &id,
                json!({ "tenant": t.tenant_id }),
            )
            .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found(format!("token {id}"))),
    }
}
