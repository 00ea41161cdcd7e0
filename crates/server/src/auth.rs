//! Bearer tokens: every route but health and metrics names its caller.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use osprey_store::{Principal, Role};

use crate::App;
use crate::error::ApiError;

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header is not 'Bearer TOKEN'"))?;
        match app.store.authenticate(secret).await? {
            Some(p) => Ok(Caller(p)),
            None => {
                // Logged for the operator (never the secret): guessing shows up.
                tracing::warn!(
                    method = %parts.method,
                    path = %parts.uri.path(),
                    "authentication refused: unknown or revoked token"
                );
                app.metrics.auth_refused.inc();
                Err(unauthorized("unknown or revoked token"))
            }
        }
    }
}

impl Caller {
    /// Fails unless the caller's role is at least `role` (ingest tokens only ever ingest).
    pub fn require(&self, role: Role) -> Result<&Principal, ApiError> {
        let p = &self.0;
        if p.role == Role::Ingest && role != Role::Ingest {
            return Err(ApiError::forbidden(
                "an ingest token can only post audit events",
            ));
        }
        if p.role < role {
            return Err(ApiError::forbidden(format!(
                "this needs the {} role; the token has {}",
                role.as_str(),
                p.role.as_str()
            )));
        }
        Ok(p)
    }

    /// The tenant whose data a listing covers: every tenant for the organization's
    /// administrator, else the caller's own.
    pub fn scope(&self) -> Option<String> {
        if self.0.is_org_admin() {
            None
        } else {
            Some(self.0.tenant_id.clone())
        }
    }

    /// Whether the caller may act on data owned by `tenant_id`.
    pub fn owns(&self, tenant_id: &str) -> bool {
        self.0.is_org_admin() || self.0.tenant_id == tenant_id
    }
}
