//! The web console at `/console`: HTML rendered on the server from askama templates
//! (`crates/server/templates/console/`), htmx for partial updates and the embedded assets of
//! [`crate::console_assets`]; no separate front-end server and no build step.
//!
//! A person signs in with an API token ([`session`]); every page then reads through the same
//! calls, roles and tenancy as the API (a viewer gets no write buttons, and a change a role
//! may not make is refused by the same check). Every response carries a content security
//! policy without `unsafe-inline` ([`layout::CSP`]); every form that changes something
//! carries the session's CSRF token.

pub mod chart;
pub mod entity;
pub mod evidence;
pub mod finding;
pub mod findings;
pub mod graph;
pub mod group;
pub mod layout;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod summary;
pub mod table;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::App;

/// The console's routes (and `/`, which opens it).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(sign_in::home))
        .route("/console", get(sign_in::home))
        .route("/console/", get(sign_in::home))
        .route(
            "/console/sign-in",
            get(sign_in::page).post(sign_in::sign_in),
        )
        .route("/console/sign-out", axum::routing::post(sign_in::sign_out))
        .route("/console/summary", get(summary::page))
        .route("/console/findings", get(findings::page))
        .route("/console/findings/export.csv", get(findings::export))
        .route(
            "/console/findings/bulk",
            axum::routing::post(findings::bulk),
        )
        .route(
            "/console/findings/{id}",
            get(finding::page).post(finding::change),
        )
        .route("/console/entities/{type}/{*id}", get(entity::page))
        .route("/console/graph.json", get(graph::data))
        .route("/console/graph/{type}/{*id}", get(graph::page))
        .route(
            "/console/settings",
            get(settings::page).post(settings::change),
        )
        .route("/console/groups", get(group::list))
        .route("/console/groups/{id}", get(group::page))
        .route("/console/assets/{name}", get(crate::console_assets::serve))
        .layer(axum::middleware::map_response(layout::security_headers))
}
