//! The console's sign-in session: the API token a person signed in with, sealed (ChaCha20-
//! Poly1305 under a key derived from the server's secret key) with its expiry into an
//! `HttpOnly`, `SameSite=Strict` cookie — `Secure` when the server is reached over HTTPS. The
//! token is authenticated again on every request, so revoking it ends its sessions at once.
//!
//! Every form that changes something carries a CSRF token: the HMAC of the session cookie
//! under a second derived key, checked before the change (and a cross-site `Sec-Fetch-Site`
//! is refused outright).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osprey_store::Role;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::Caller;
use crate::secrets::SecretKey;

/// The session cookie's name.
pub const COOKIE: &str = "osprey_session";
/// How long a sign-in lasts.
pub const LIFETIME_MS: i64 = 12 * 3_600_000;
/// The longest cookie value accepted (a sealed token is far shorter).
const MAX_COOKIE: usize = 1024;

/// The keys sessions are sealed and CSRF tokens are made with.
pub struct Keys {
    seal: SecretKey,
    csrf: SecretKey,
    /// Cookies get `Secure` (the server is reached over HTTPS).
    pub secure: bool,
}

impl Keys {
    /// Keys derived from the server's secret key (so every server of a database opens the
    /// same sessions), or random ones that last as long as the process.
    pub fn new(secret: Option<&SecretKey>, secure: bool) -> Keys {
        let root = secret.cloned().unwrap_or_else(SecretKey::random);
        Keys {
            seal: root.derive("osprey console session v1"),
            csrf: root.derive("osprey console csrf v1"),
            secure,
        }
    }

    /// The cookie value of a session for `token`, expiring `LIFETIME_MS` after `now_ms`.
    pub fn open_session(&self, token: &str, now_ms: i64) -> String {
        let body = serde_json::to_vec(&Sealed {
            t: token.to_string(),
            e: now_ms + LIFETIME_MS,
        })
        .expect("a session serializes");
        hex::encode(self.seal.seal(&body))
    }

    /// The token of a cookie value that opens with this server's key and has not expired.
    pub fn token_of(&self, cookie: &str, now_ms: i64) -> Option<String> {
        if cookie.len() > MAX_COOKIE {
            return None;
        }
        let sealed = hex::decode(cookie).ok()?;
        let plain = self.seal.open(&sealed).ok()?;
        let s: Sealed = serde_json::from_slice(&plain).ok()?;
        (s.e > now_ms).then_some(s.t)
    }

    /// The CSRF token of a session.
    pub fn csrf(&self, cookie: &str) -> String {
        hex::encode(self.csrf.mac(cookie.as_bytes()))
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, cookie: &str, token: &str) -> bool {
        let Ok(given) = hex::decode(token) else {
            return false;
        };
        let expected = self.csrf.mac(cookie.as_bytes());
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// `Set-Cookie` for a new session.
    pub fn set_cookie(&self, value: &str) -> HeaderValue {
        let cookie = cookie::Cookie::build((COOKIE, value.to_string()))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(cookie::SameSite::Strict)
            .max_age(cookie::time::Duration::milliseconds(LIFETIME_MS))
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a hex cookie is a header value")
    }

    /// `Set-Cookie` that removes the session.
    pub fn clear_cookie(&self) -> HeaderValue {
        let cookie = cookie::Cookie::build((COOKIE, ""))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(cookie::SameSite::Strict)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("an empty cookie is a header value")
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The API token.
    t: String,
    /// Expiry, Unix milliseconds.
    e: i64,
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// A signed-in person: the caller the API would see for their token, and the CSRF token their
/// forms carry.
pub struct Signed {
    pub caller: Caller,
    pub csrf: String,
    cookie: String,
}

impl Signed {
    /// Whether the caller's role is at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.caller.require(role).is_ok()
    }

    /// The fields of a form that changes something: refused with a 413 page saying
    /// `too_large` when the body is over `max` bytes (or not UTF-8), and with 403 without this
    /// session's CSRF token.
    pub fn change_form(
        &self,
        app: &App,
        body: &[u8],
        max: usize,
        too_large: &str,
    ) -> Result<super::view::Query, Box<Response>> {
        let Some(form) = std::str::from_utf8(body)
            .ok()
            .filter(|_| body.len() <= max)
            .map(super::view::Query::parse_form)
        else {
            return Err(Box::new(super::layout::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large,
            )));
        };
        match self.csrf_refusal(app, form.get("csrf")) {
            Some(refused) => Err(Box::new(refused)),
            None => Ok(form),
        }
    }

    /// The refusal of a change whose form does not carry this session's CSRF token (`None`:
    /// it does).
    pub fn csrf_refusal(&self, app: &App, form_token: Option<&str>) -> Option<Response> {
        match form_token {
            Some(t) if app.console.csrf_matches(&self.cookie, t) => None,
            _ => Some(forbidden(
                "the form's CSRF token is missing or not this session's: reload the page and try again",
            )),
        }
    }
}

/// Whether a request that changes something comes from a page of this server: the browser's
/// `Sec-Fetch-Site` is not `cross-site`, and an `Origin` names the host the request was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The answer to a change sent from another site.
pub fn cross_site() -> Response {
    forbidden("a request from another site cannot change anything here")
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

impl FromRequestParts<Arc<App>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Signed, Response> {
        if parts.method != axum::http::Method::GET && !same_origin(&parts.headers) {
            return Err(cross_site());
        }
        let now = osprey_store::now_ms();
        let cookie = cookie_value(&parts.headers);
        let token = cookie.as_deref().and_then(|c| app.console.token_of(c, now));
        let principal = match token {
            Some(t) => app
                .store
                .authenticate(&t)
                .await
                .map_err(|e| crate::error::ApiError::from(e).into_response())?,
            None => None,
        };
        match (principal, cookie) {
            (Some(p), Some(cookie)) if p.role != Role::Ingest => Ok(Signed {
                csrf: app.console.csrf(&cookie),
                caller: Caller(p),
                cookie,
            }),
            _ => Err(to_sign_in(parts)),
        }
    }
}

/// Sends a person who is not signed in (or whose session ended) to the sign-in page, which
/// brings them back to where they were going.
fn to_sign_in(parts: &Parts) -> Response {
    let back = if parts.method == axum::http::Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console")
    } else {
        "/console"
    };
    let target = format!(
        "/console/sign-in?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", back)
            .finish()
    );
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if parts.headers.contains_key("hx-request") {
        // htmx follows a redirect inside the swap; this makes the whole page go.
        if let Ok(v) = HeaderValue::from_str(&target) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    }
    if let Ok(v) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Where a sign-in may send the browser back to: a path of the console, never another origin.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("/console/sign-")
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/console",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(
            Some(&SecretKey::parse(&"42".repeat(32), "t").unwrap()),
            true,
        )
    }

    #[test]
    fn a_session_holds_its_token_until_it_expires() {
        let k = keys();
        let c = k.open_session("osp_secret", 1_000);
        assert!(!c.contains("osp_secret"));
        assert_eq!(k.token_of(&c, 1_000).as_deref(), Some("osp_secret"));
        assert_eq!(k.token_of(&c, 1_000 + LIFETIME_MS), None, "expired");
        // Another server key, a tampered or an oversized value: no session.
        let other = Keys::new(
            Some(&SecretKey::parse(&"43".repeat(32), "t").unwrap()),
            true,
        );
        assert_eq!(other.token_of(&c, 1_000), None);
        let mut tampered = c.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            k.token_of(&String::from_utf8(tampered).unwrap(), 1_000),
            None
        );
        assert_eq!(k.token_of(&"a".repeat(MAX_COOKIE + 2), 1_000), None);
        assert_eq!(k.token_of("not hex", 1_000), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let k = keys();
        let a = k.open_session("t1", 0);
        let b = k.open_session("t1", 0);
        let token = k.csrf(&a);
        assert!(k.csrf_matches(&a, &token));
        assert!(!k.csrf_matches(&b, &token), "another session's token");
        assert!(!k.csrf_matches(&a, ""));
        assert!(!k.csrf_matches(&a, &token[..10]));
        assert!(!k.csrf_matches(&a, "zz"));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_on_https() {
        let set = keys().set_cookie("abc").to_str().unwrap().to_string();
        for part in [
            "osprey_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
        ] {
            assert!(set.contains(part), "{set}");
        }
        let plain = Keys::new(None, false).set_cookie("abc");
        assert!(!plain.to_str().unwrap().contains("Secure"));
        let cleared = keys().clear_cookie().to_str().unwrap().to_string();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; osprey_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }

    #[test]
    fn changes_only_from_this_origin() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("osprey.example:8443"),
        );
        assert!(
            same_origin(&h),
            "no Origin: a same-origin form of an older browser"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://osprey.example:8443"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        let mut fetch = HeaderMap::new();
        fetch.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&fetch));
    }

    #[test]
    fn sign_in_only_sends_back_into_the_console() {
        assert_eq!(
            safe_next(Some("/console/findings?x=1")),
            "/console/findings?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/console",
            "/console//evil",
            "/console/sign-in",
            "/v1/findings",
            "/console\\@evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
