//! What every console page shares: the frame (navigation, who is signed in, the sign-out form,
//! the scope time bar), rendering a template into a response, error pages, and the security
//! headers every console response carries.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use osprey_store::Role;

use super::session::Signed;
use super::table::is_paging;
use super::view::{PRESETS, Query, Scope};
use crate::error::ApiError;

/// No script or style but the server's own files, nothing framed, forms posted only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The frame of a signed-in page.
pub struct Frame {
    /// The page's title (also the browser tab's).
    pub title: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// `tenant · role`.
    pub who: String,
    pub csrf: String,
    /// The path of the page (scope links keep it).
    pub path: String,
    pub query: Query,
    /// `None` on pages without a scope time.
    pub scope: Option<Scope>,
    pub now_ms: i64,
    /// Administrators see Settings.
    pub admin: bool,
}

/// One scope preset as the bar shows it.
pub struct PresetLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

impl Frame {
    pub fn new(
        signed: &Signed,
        title: impl Into<String>,
        section: &'static str,
        path: impl Into<String>,
        query: Query,
        scope: Option<Scope>,
    ) -> Frame {
        let p = &signed.caller.0;
        Frame {
            title: title.into(),
            section,
            who: format!("{} · {}", p.tenant_name, p.role.as_str()),
            csrf: signed.csrf.clone(),
            path: path.into(),
            query,
            scope,
            now_ms: osprey_store::now_ms(),
            admin: signed.can(Role::Admin),
        }
    }

    /// The presets, each a link to this page with that scope (and the first page of every
    /// list).
    pub fn presets(&self) -> Vec<PresetLink> {
        let current = self.scope.as_ref().map(|s| s.preset.as_str());
        let firsts: Vec<(&str, &str)> = self
            .query
            .pairs()
            .iter()
            .filter(|(k, _)| is_paging(k))
            .map(|(k, _)| (k.as_str(), ""))
            .collect();
        PRESETS
            .iter()
            .map(|(name, label, _)| {
                let mut changes = vec![("range", *name), ("since", ""), ("until", "")];
                changes.extend(firsts.iter().copied());
                PresetLink {
                    label,
                    href: self.link(&changes),
                    current: current == Some(*name),
                }
            })
            .collect()
    }

    /// This page with some parameters changed.
    pub fn link(&self, changes: &[(&str, &str)]) -> String {
        let q = self.query.with(changes);
        if q.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{q}", self.path)
        }
    }

    /// A link reproducing exactly this page's window.
    pub fn permalink(&self) -> String {
        match &self.scope {
            Some(s) => format!("{}?{}", self.path, s.permalink(&self.query, self.now_ms)),
            None => self.link(&[]),
        }
    }

    pub fn since_input(&self) -> String {
        Scope::input(self.scope.as_ref().and_then(|s| s.since_ms))
    }

    pub fn until_input(&self) -> String {
        Scope::input(self.scope.as_ref().and_then(|s| s.until_ms))
    }

    /// This page without its notice: where a form sends the browser back to.
    pub fn back(&self) -> String {
        self.link(&[("notice", "")])
    }

    /// The scope and order of a list, for hidden fields of its filter form.
    pub fn list_fields(&self) -> Vec<(String, String)> {
        self.hidden(&["range", "since", "until", "sort", "order"])
    }

    /// The page's parameters named in `names`, for hidden fields of a form that changes others.
    pub fn hidden(&self, names: &[&str]) -> Vec<(String, String)> {
        self.query
            .pairs()
            .iter()
            .filter(|(k, v)| !v.is_empty() && names.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The other parameters of the page, kept as hidden fields by the custom-window form.
    pub fn kept_fields(&self) -> Vec<(String, String)> {
        self.query
            .pairs()
            .iter()
            .filter(|(k, v)| {
                !v.is_empty() && !is_paging(k) && !["range", "since", "until"].contains(&k.as_str())
            })
            .cloned()
            .collect()
    }
}

/// A template as an HTML response.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering the page failed\n",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// An error as a page: its status and the one line saying what is wrong.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let mut resp = render(&page);
    *resp.status_mut() = status;
    resp
}

/// A failure of a call into the API as a page.
pub fn api_error(e: ApiError) -> Response {
    error_page(e.status, &e.message)
}

/// The headers of every console response: the content security policy, no framing, no
/// sniffing, no caching of pages holding findings, no referrer to other sites.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A redirect after a form (303: the browser asks for the target with GET).
pub fn see_other(target: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A severity label's CSS class and text.
pub fn severity_class(label: osprey_model::SeverityLabel) -> &'static str {
    use osprey_model::SeverityLabel as L;
    match label {
        L::Critical => "sev-critical",
        L::High => "sev-high",
        L::Medium => "sev-medium",
        L::Low => "sev-low",
        L::Info | L::Untriaged => "sev-info",
    }
}
