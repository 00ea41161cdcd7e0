//! Signing in (an API token in, a session cookie out) and out.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osprey_store::Role;

use super::layout::{render, see_other};
use super::session::{Signed, cross_site, safe_next, same_origin};
use super::view::Query;
use crate::App;

/// The longest sign-in form accepted.
const MAX_FORM: usize = 4096;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

/// `GET /console/sign-in`.
pub async fn page(RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    render(&SignInPage {
        next: safe_next(q.get("next")),
        error: None,
    })
}

/// `POST /console/sign-in`: a token that authenticates (and is not an ingest token) opens a
/// session and goes on to `next`.
pub async fn sign_in(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let form = Query::parse(
        std::str::from_utf8(&body)
            .ok()
            .filter(|_| body.len() <= MAX_FORM),
    );
    let next = safe_next(form.get("next")).to_string();
    let refuse = |status: StatusCode, error: &str| {
        let mut resp = render(&SignInPage {
            next: &next,
            error: Some(error),
        });
        *resp.status_mut() = status;
        resp
    };
    let Some(token) = form.get("token").map(str::trim).filter(|t| !t.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter an API token.");
    };
    match app.store.authenticate(token).await {
        Ok(Some(p)) if p.role == Role::Ingest => refuse(
            StatusCode::FORBIDDEN,
            "An ingest token only posts audit events; sign in with a viewer, analyst or admin token.",
        ),
        Ok(Some(_)) => {
            let cookie = app.console.open_session(token, osprey_store::now_ms());
            let mut resp = see_other(&next);
            resp.headers_mut()
                .insert(header::SET_COOKIE, app.console.set_cookie(&cookie));
            resp
        }
        Ok(None) => refuse(StatusCode::UNAUTHORIZED, "Unknown or revoked token."),
        Err(e) => {
            tracing::error!(error = %e, "sign-in: the store failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database does not answer; try again.",
            )
        }
    }
}

/// `POST /console/sign-out`: ends the session (with the session's CSRF token) and goes to the
/// sign-in page.
pub async fn sign_out(State(app): State<Arc<App>>, signed: Signed, body: Bytes) -> Response {
    let form = Query::parse(
        std::str::from_utf8(&body)
            .ok()
            .filter(|_| body.len() <= MAX_FORM),
    );
    if let Some(refused) = signed.csrf_refusal(&app, form.get("csrf")) {
        return refused;
    }
    let mut resp = see_other("/console/sign-in");
    resp.headers_mut()
        .insert(header::SET_COOKIE, app.console.clear_cookie());
    resp
}

/// `GET /` and `GET /console`: the console's first page.
pub async fn home() -> Response {
    see_other("/console/summary").into_response()
}
