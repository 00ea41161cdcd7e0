//! Outputs (signed webhooks, Alertmanager, CloudEvents) and their deliveries.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osprey_store::{Delivery, Output, OutputKind, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::findings::severity_value;
use super::{BadInput, Body, ErrorBody, NotFound, Params, Refused, log, managed_tenant};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOutput {
    name: String,
    /// webhook, alertmanager or cloudevents.
    kind: String,
    url: String,
    /// Webhooks: the HMAC key; generated (and shown once) when absent.
    #[serde(default)]
    secret: Option<String>,
    /// A score (0–10) or a label; findings below it are not sent.
    #[serde(default)]
    severity_min: Option<String>,
    /// For the organization's administrator: create it for this member (name or id).
    #[serde(default)]
    tenant: Option<String>,
}

/// An output as created; a webhook's generated secret is shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OutputCreated {
    #[serde(flatten)]
    output: Output,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Outputs {
    outputs: Vec<Output>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    deliveries: Vec<Delivery>,
}

#[utoipa::path(post, path = "/v1/outputs", tag = "outputs", request_body = NewOutput, responses((status = 201, description = "The output (with its secret only when generated)", body = OutputCreated), (status = 409, description = "Name taken", body = ErrorBody), (status = 503, description = "The server has no secret key to seal the webhook key with", body = ErrorBody), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn create_output(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewOutput>,
) -> ApiResult<(StatusCode, Json<OutputCreated>)> {
    let tenant_id = managed_tenant(&app, &caller, body.tenant.as_deref()).await?;
    let kind = OutputKind::parse(&body.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind {:?}: expected webhook, alertmanager or cloudevents",
            body.kind
        ))
    })?;
    match reqwest::Url::parse(&body.url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            // A literal address is checked now; a name when it is resolved, at each delivery.
            if let Err(r) = app.options.destinations.check_url(&u) {
                return Err(ApiError::bad_request(format!(
                    "url: {}: {}; the server's operator may allow it with --allow-destination",
                    r.destination,
                    osprey_egress::NOT_ALLOWED
                )));
            }
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "url {:?}: expected an http:// or https:// URL",
                body.url
            )));
        }
    }
    let severity_min = body
        .severity_min
        .as_deref()
        .map(|s| severity_value("severity_min", s))
        .transpose()?
        .unwrap_or(0.0);
    let generated = kind == OutputKind::Webhook && body.secret.is_none();
    let secret = match body.secret {
        Some(s) if s.len() < 16 => {
            return Err(ApiError::bad_request(
                "secret: expected at least 16 characters",
            ));
        }
        Some(s) => s,
        None if generated => osprey_store::new_secret(),
        None => String::new(),
    };
    // The HMAC key is sealed with the server's key, as registry passwords are.
    let sealed = if secret.is_empty() {
        String::new()
    } else {
        let key = app.options.secret_key.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "this server has no secret key to seal webhook keys with",
                60,
            )
        })?;
        key.seal_text(&secret)
    };
    let o = app
        .store
        .create_output(
            &tenant_id,
            &body.name,
            kind,
            &body.url,
            &sealed,
            severity_min,
        )
        .await?;
    log(
        &app,
        &caller.0,
        "output.create",
        &o.id,
        json!({ "tenant": tenant_id, "name": o.name, "kind": kind, "url": crate::launch::redact(&o.url) }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(OutputCreated {
            output: o,
            secret: generated.then_some(secret),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/outputs", tag = "outputs", responses((status = 200, description = "Outputs, never their secrets", body = Outputs), BadInput, Refused), security(("bearer" = [])))]
pub async fn list_outputs(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Outputs>> {
    caller.require(Role::Admin)?;
    let outputs = app.store.outputs(caller.scope().as_deref()).await?;
    Ok(Json(Outputs { outputs }))
}

async fn managed_output(app: &App, caller: &Caller, id: &str) -> ApiResult<osprey_store::Output> {
    caller.require(Role::Admin)?;
    match app.store.output(id).await? {
        Some(o) if caller.owns(&o.tenant_id) => Ok(o),
        _ => Err(ApiError::not_found(format!("output {id}"))),
    }
}

#[utoipa::path(delete, path = "/v1/outputs/{id}", tag = "outputs", params(("id" = String, Path, description = "Output id")), responses((status = 204, description = "Removed with its queue"), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn delete_output(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let o = managed_output(&app, &caller, &id).await?;
    app.store.delete_output(&id).await?;
    log(
        &app,
        &caller.0,
        "output.delete",
        &id,
        json!({ "tenant": o.tenant_id, "name": o.name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, delivered or dead (the dead letters).
    state: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/outputs/{id}/deliveries", tag = "outputs", params(("id" = String, Path, description = "Output id"), DeliveryQuery), responses((status = 200, description = "Deliveries, newest first", body = Deliveries), BadInput, NotFound, Refused), security(("bearer" = [])))]
pub async fn output_deliveries(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(q): Params<DeliveryQuery>,
) -> ApiResult<Json<Deliveries>> {
    managed_output(&app, &caller, &id).await?;
    if let Some(s) = q.state.as_deref()
        && !matches!(s, "pending" | "delivered" | "dead")
    {
        return Err(ApiError::bad_request(format!(
            "state {s:?}: expected pending, delivered or dead"
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let deliveries = app.store.deliveries(&id, q.state.as_deref(), limit).await?;
    Ok(Json(Deliveries { deliveries }))
}
