//! A client for the OCI distribution API (v2), read side only: manifests and blobs, with the
//! registry authentication flows (anonymous, Basic, Bearer token from a `WWW-Authenticate`
//! challenge, docker identity tokens) and retries.
//!
//! Written on reqwest rather than with oci-client (0.18): that crate turns 4xx answers into
//! envelopes without their status code (a 429 looks like any other error and its Retry-After
//! is lost), has no retries, no identity-token (refresh-token) flow, and `unwrap`s token header
//! values a hostile token server controls. The read path is three endpoints; owning it keeps
//! errors precise and the process panic-free.
//!
//! The client is async (tokio) inside; [`RegistryClient`] exposes blocking methods that run on
//! its own small runtime, so synchronous engines can call it from any thread.

pub mod challenge;
mod reference;

use std::future::Future;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RANGE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};

pub use reference::Reference;

use crate::digest::Digest;
use crate::error::ImageError;
use challenge::Challenge;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker's config.json).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP for loopback registries; TLS without certificate checks for others.
    pub insecure: bool,
    /// Explicit credentials; when `None`, docker's config.json is consulted (if enabled).
    pub credentials: Option<Credentials>,
    /// Read `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`) for credentials.
    pub docker_config: bool,
    /// Retries after a 429, a 5xx or a network failure.
    pub max_retries: u32,
    /// First backoff delay; doubled on each retry, capped at 8 s.
    pub retry_base: Duration,
    /// Where requests may go (the registry, its token server, redirects): every destination
    /// for the command line, the operator's policy for the server.
    pub destinations: osprey_egress::Policy,
    /// When every request and download of this client must have ended (a scan's deadline).
    pub deadline: Option<std::time::Instant>,
    /// Bytes this client may download in all (manifests, configs, layers, token answers).
    pub max_download_bytes: Option<u64>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            credentials: None,
            docker_config: true,
            max_retries: 4,
            retry_base: Duration::from_millis(250),
            destinations: osprey_egress::Policy::open(),
            deadline: None,
            max_download_bytes: None,
        }
    }
}

const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Bytes of an error answer read (for its message); the rest is not read.
const MAX_ERROR_BODY: u64 = 64 << 10;
const MAX_TOKEN_BYTES: u64 = 1 << 20;
const MAX_RESUMES: u32 = 3;

/// A client bound to one repository of one registry.
pub struct RegistryClient {
    session: Arc<Session>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Session {
    http: reqwest::Client,
    reference: Reference,
    base: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<HeaderValue>>,
    options: RegistryOptions,
    /// Bytes downloaded so far, against `options.max_download_bytes`.
    downloaded: AtomicU64,
}

impl Drop for RegistryClient {
    fn drop(&mut self) {
        // Never block in drop: this may run inside someone else's async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl RegistryClient {
    pub fn new(
        reference: Reference,
        options: RegistryOptions,
    ) -> Result<RegistryClient, ImageError> {
        let plain_http = options.insecure && reference.is_loopback();
        let http = options
            .destinations
            .client(true)
            .user_agent(concat!("osprey/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .danger_accept_invalid_certs(options.insecure && !plain_http)
            .build()
            .map_err(|e| ImageError::Internal(format!("HTTP client: {e}")))?;
        let credentials = match &options.credentials {
            Some(c) => Some(c.clone()),
            None if options.docker_config => docker_config_credentials(&reference),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("osprey-registry")
            .enable_all()
            .build()
            .map_err(|e| ImageError::Internal(format!("async runtime: {e}")))?;
        let scheme = if plain_http { "http" } else { "https" };
        Ok(RegistryClient {
            session: Arc::new(Session {
                http,
                base: format!("{scheme}://{}", reference.api_host()),
                reference,
                credentials,
                authorization: Mutex::new(None),
                options,
                downloaded: AtomicU64::new(0),
            }),
            runtime: Some(runtime),
        })
    }

    pub fn reference(&self) -> &Reference {
        &self.session.reference
    }

    /// Runs a future on the client's runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, ImageError>> + Send + 'static,
    ) -> Result<T, ImageError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = self.runtime.as_ref().expect("runtime lives until drop");
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| ImageError::Internal("registry task ended without an answer".into()))?
    }

    /// Fetches a manifest or index by tag or digest: its bytes, digest and media type.
    /// A manifest fetched by digest is checked against it.
    pub fn manifest(
        &self,
        reference: &str,
        limit: u64,
    ) -> Result<(Vec<u8>, Digest, Option<String>), ImageError> {
        let s = self.session.clone();
        let reference = reference.to_string();
        self.run(async move {
            let url = format!(
                "{}/v2/{}/manifests/{}",
                s.base, s.reference.repository, reference
            );
            let resp = s
                .send(
                    Method::GET,
                    &url,
                    Some(crate::spec::MANIFEST_ACCEPT.join(", ")),
                    None,
                )
                .await?;
            let media_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let header_digest = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            let body = s
                .read_body(resp, limit, &format!("manifest {reference}"))
                .await?;
            let input = format!("{} manifest", s.reference);
            let digest = match reference.parse::<Digest>() {
                Ok(pinned) => {
                    pinned.verify(&input, &body)?;
                    pinned
                }
                Err(_) => {
                    let computed = Digest::sha256_of(&body);
                    if let Some(h) = header_digest {
                        h.verify(&input, &body)?;
                    }
                    computed
                }
            };
            Ok((body, digest, media_type))
        })
    }

    /// Fetches a small blob (a config) whole, checking its digest.
    pub fn blob_bytes(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
        let s = self.session.clone();
        let digest = digest.clone();
        self.run(async move {
            let url = format!("{}/v2/{}/blobs/{}", s.base, s.reference.repository, digest);
            let resp = s.send(Method::GET, &url, None, None).await?;
            let body = s.read_body(resp, limit, &format!("blob {digest}")).await?;
            digest.verify(&format!("{} blob", s.reference), &body)?;
            Ok(body)
        })
    }

    /// Opens a blob as a stream. The caller checks the digest (the layer pipeline does);
    /// a connection that breaks mid-blob is resumed with a Range request.
    pub fn blob_stream(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, ImageError> {
        let s = self.session.clone();
        let url = format!("{}/v2/{}/blobs/{}", s.base, s.reference.repository, digest);
        let first = {
            let (s, url) = (s.clone(), url.clone());
            self.run(async move { s.send(Method::GET, &url, None, None).await })?
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(16);
        let rt = self.runtime.as_ref().expect("runtime lives until drop");
        rt.spawn(async move {
            let mut resp = first;
            let mut offset = 0u64;
            let mut resumes = 0;
            loop {
                let next = match s.within(resp.chunk()).await {
                    Ok(next) => next,
                    Err(deadline) => {
                        let _ = tx.send(Err(deadline.into_io())).await;
                        return;
                    }
                };
                match next {
                    Ok(Some(bytes)) => {
                        offset += bytes.len() as u64;
                        if let Err(e) = s.count(bytes.len()) {
                            let _ = tx.send(Err(e.into_io())).await;
                            return;
                        }
                        if tx.send(Ok(bytes)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) if resumes < MAX_RESUMES => {
                        resumes += 1;
                        tracing::warn!("blob download broke at byte {offset} ({e}); resuming");
                        let range = format!("bytes={offset}-");
                        match s.send(Method::GET, &url, None, Some(range)).await {
                            Ok(r) if r.status() == StatusCode::PARTIAL_CONTENT => resp = r,
                            Ok(r) => {
                                let _ = tx
                                    .send(Err(io::Error::other(format!(
                                        "cannot resume blob download: HTTP {}",
                                        r.status()
                                    ))))
                                    .await;
                                return;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e.into_io())).await;
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(io::Error::other(format!("blob download failed: {e}"))))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(Box::new(ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        }))
    }
}

/// The blocking end of a blob download.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Session {
    fn registry_error(&self, reason: impl Into<String>) -> ImageError {
        ImageError::Registry {
            registry: self.reference.registry.clone(),
            reason: reason.into(),
        }
    }

    fn unauthorized(&self, reason: impl Into<String>) -> ImageError {
        ImageError::Unauthorized {
            registry: self.reference.registry.clone(),
            reason: reason.into(),
        }
    }

    /// Sends a request with authentication, answering one 401 challenge and retrying 429,
    /// 5xx and network failures with backoff. Returns a response with a success status.
    async fn send(
        &self,
        method: Method,
        url: &str,
        accept: Option<String>,
        range: Option<String>,
    ) -> Result<reqwest::Response, ImageError> {
        self.check_destination(url)?;
        let mut authenticated = false;
        let mut attempt = 0u32;
        loop {
            let mut req = self.http.request(method.clone(), url);
            if let Some(a) = &accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(r) = &range {
                req = req.header(RANGE, r);
            }
            let auth = self.authorization.lock().expect("not poisoned").clone();
            if let Some(h) = auth {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = match self.within(req.send()).await? {
                Ok(r) => r,
                Err(e) => {
                    if let Some(refused) = osprey_egress::refused(&e) {
                        return Err(self.refused(refused));
                    }
                    if attempt < self.options.max_retries
                        && (e.is_connect() || e.is_timeout() || e.is_request())
                    {
                        attempt += 1;
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(self.registry_error(describe_network_error(
                        &e,
                        &self.options,
                        &self.reference,
                    )));
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            match status {
                StatusCode::UNAUTHORIZED if !authenticated => {
                    authenticated = true;
                    let challenge = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(challenge::parse);
                    let header = self.authenticate(challenge).await?;
                    *self.authorization.lock().expect("not poisoned") = Some(header);
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(self.unauthorized(if self.credentials.is_some() {
                        "the credentials were not accepted (HTTP 401)"
                    } else {
                        "authentication required (HTTP 401) and no credentials found; use --username/--password or docker login"
                    }));
                }
                StatusCode::FORBIDDEN => {
                    return Err(self.unauthorized(format!(
                        "access to {} denied (HTTP 403)",
                        self.reference.repository
                    )));
                }
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                    if attempt < self.options.max_retries =>
                {
                    attempt += 1;
                    let wait = retry_after(resp.headers()).unwrap_or_else(|| self.backoff(attempt));
                    tracing::debug!("{url}: HTTP {status}, retry {attempt} in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    let body = self.error_body(resp).await;
                    return Err(self.registry_error(http_failure(status, &body, url, attempt)));
                }
            }
        }
    }

    /// Refuses a URL whose literal address the destination policy does not allow (a name is
    /// checked when the client resolves it).
    fn check_destination(&self, url: &str) -> Result<(), ImageError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| self.registry_error(format!("{url}: not a URL: {e}")))?;
        self.options
            .destinations
            .check_url(&parsed)
            .map_err(|r| self.refused(&r))
    }

    /// The error of a destination the policy refused: [`osprey_egress::NOT_ALLOWED`] first.
    fn refused(&self, r: &osprey_egress::Refused) -> ImageError {
        self.registry_error(format!(
            "{}: {} ({})",
            osprey_egress::NOT_ALLOWED,
            r.destination,
            r.why
        ))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        (self.options.retry_base * 2u32.saturating_pow(attempt - 1)).min(Duration::from_secs(8))
    }

    /// Answers a challenge: the Authorization header value to send from now on.
    async fn authenticate(&self, challenge: Option<Challenge>) -> Result<HeaderValue, ImageError> {
        match (challenge, &self.credentials) {
            (Some(Challenge::Basic), Some(Credentials::Basic { username, password })) => {
                header_value(&basic(username, password)).map_err(|e| self.unauthorized(e))
            }
            (Some(Challenge::Basic), _) => Err(self.unauthorized(
                "authentication required (HTTP 401, Basic) and no username/password found; use --username/--password or docker login",
            )),
            (Some(Challenge::Bearer { realm, service, scope }), _) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                let token = self.fetch_token(&realm, service.as_deref(), &scope).await?;
                header_value(&format!("Bearer {token}")).map_err(|e| self.unauthorized(format!("token server {realm}: {e}")))
            }
            (None, _) => Err(self.unauthorized("HTTP 401 without a usable WWW-Authenticate challenge")),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, ImageError> {
        let realm_url = reqwest::Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.unauthorized(format!("token realm {realm:?} is not an http(s) URL"))
            })?;
        self.options
            .destinations
            .check_url(&realm_url)
            .map_err(|r| self.refused(&r))?;
        let mut attempt = 0u32;
        let resp = loop {
            let req = match &self.credentials {
                Some(Credentials::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", "osprey"),
                        ("scope", scope),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    self.http.post(realm_url.clone()).form(&form)
                }
                creds => {
                    let mut url = realm_url.clone();
                    {
                        let mut q = url.query_pairs_mut();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        q.append_pair("scope", scope);
                    }
                    let mut req = self.http.get(url);
                    if let Some(Credentials::Basic { username, password }) = creds {
                        req = req.basic_auth(username, Some(password));
                    }
                    req
                }
            };
            match self.within(req.send()).await? {
                Ok(r)
                    if (r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error())
                        && attempt < self.options.max_retries =>
                {
                    attempt += 1;
                    let wait = retry_after(r.headers()).unwrap_or_else(|| self.backoff(attempt));
                    tokio::time::sleep(wait).await;
                }
                Ok(r) => break r,
                Err(e) => {
                    if let Some(refused) = osprey_egress::refused(&e) {
                        return Err(self.refused(refused));
                    }
                    if attempt < self.options.max_retries && (e.is_connect() || e.is_timeout()) {
                        attempt += 1;
                        tokio::time::sleep(self.backoff(attempt)).await;
                    } else {
                        return Err(self.unauthorized(format!("token server {realm}: {e}")));
                    }
                }
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(match &self.credentials {
                Some(_) => format!("token server {realm} refused the credentials (HTTP {})", status.as_u16()),
                None => format!(
                    "token server {realm} refused anonymous access (HTTP {}); use --username/--password or docker login",
                    status.as_u16()
                ),
            }));
        }
        if !status.is_success() {
            return Err(self.unauthorized(format!("token server {realm}: HTTP {status}")));
        }
        let body = self.read_body(resp, MAX_TOKEN_BYTES, "token").await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| self.unauthorized(format!("token server {realm}: invalid answer: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.unauthorized(format!("token server {realm}: answer holds no token"))
            })
    }

    /// Reads a response body, refusing more than `limit` bytes.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, ImageError> {
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(self.registry_error(format!("{what}: larger than the {limit}-byte limit")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = self
            .within(resp.chunk())
            .await?
            .map_err(|e| self.registry_error(format!("{what}: {e}")))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(
                    self.registry_error(format!("{what}: larger than the {limit}-byte limit"))
                );
            }
            self.count(chunk.len())?;
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The start of an error answer, for its message: at most [`MAX_ERROR_BODY`] bytes, read
    /// within the deadline; whatever else the registry sends is not read.
    async fn error_body(&self, mut resp: reqwest::Response) -> String {
        let mut body = Vec::new();
        while (body.len() as u64) < MAX_ERROR_BODY {
            match self.within(resp.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let room = (MAX_ERROR_BODY as usize).saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                _ => break,
            }
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Runs a request or a read within the client's deadline.
    async fn within<T>(&self, fut: impl Future<Output = T>) -> Result<T, ImageError> {
        match self.options.deadline {
            None => Ok(fut.await),
            Some(deadline) => {
                tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut)
                    .await
                    .map_err(|_| self.registry_error("the scan's time limit passed (deadline)"))
            }
        }
    }

    /// Counts downloaded bytes against the client's limit.
    fn count(&self, bytes: usize) -> Result<(), ImageError> {
        let total = self.downloaded.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        match self.options.max_download_bytes {
            Some(max) if total > max => Err(self.registry_error(format!(
                "downloaded more than the {max}-byte limit of this scan"
            ))),
            _ => Ok(()),
        }
    }
}

fn basic(username: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

fn header_value(v: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(v).map_err(|_| {
        "credential or token contains characters not allowed in an HTTP header".to_string()
    })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn http_failure(status: StatusCode, body: &str, url: &str, retries: u32) -> String {
    // Registries answer with {"errors":[{"code","message"}]}; show the first message.
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<EnvelopeError>,
    }
    #[derive(serde::Deserialize)]
    struct EnvelopeError {
        code: Option<String>,
        message: Option<String>,
    }
    let detail = serde_json::from_str::<Envelope>(body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| {
            format!(
                ": {}{}",
                e.code.unwrap_or_default(),
                e.message.map(|m| format!(" ({m})")).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let after = if retries > 0 {
        format!(" after {retries} retries")
    } else {
        String::new()
    };
    let what = if status == StatusCode::NOT_FOUND {
        " (not found)"
    } else {
        ""
    };
    format!("GET {url}: HTTP {}{what}{detail}{after}", status.as_u16())
}

fn describe_network_error(
    e: &reqwest::Error,
    options: &RegistryOptions,
    reference: &Reference,
) -> String {
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let lower = chain.to_lowercase();
    // rustls reports a plain-HTTP answer to a TLS handshake as a corrupt message.
    let plain_http = lower.contains("invalidcontenttype") || lower.contains("corrupt message");
    let hint = match (plain_http, options.insecure, reference.is_loopback()) {
        (true, false, _) => " (a plain-HTTP registry? use --insecure)",
        (true, true, false) => " (plain HTTP is allowed only for registries on this machine)",
        _ => "",
    };
    format!("cannot reach the registry: {chain}{hint}")
}

/// Credentials for `reference` from docker's config.json (auths, credsStore, credHelpers).
fn docker_config_credentials(reference: &Reference) -> Option<Credentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let file = dir.join("config.json");
    if !file.is_file() {
        return None;
    }
    match docker_credential::get_credential(&reference.credential_key()) {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
            Some(Credentials::Basic { username, password })
        }
        Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
            Some(Credentials::IdentityToken(t))
        }
        Err(docker_credential::CredentialRetrievalError::NoCredentialConfigured) => None,
        Err(e) => {
            tracing::warn!(
                "{}: cannot use credentials for {}: {e}; continuing without",
                file.display(),
                reference.registry
            );
            None
        }
    }
}
