//! An authorization server of the Docker registry token spec: `GET /token?service&scope` with
//! optional Basic credentials, and `POST /token` with an OAuth2 refresh token (docker's
//! "identity token"). Tokens are ES256 JWTs whose `x5c` header carries a self-signed
//! certificate, which the registry trusts through its `rootcertbundle`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::http::{Request, Response, Server};

/// Who may do what.
#[derive(Clone, Default)]
pub struct Policy {
    /// user, password
    pub users: Vec<(String, String)>,
    /// Repositories under these prefixes may be pulled anonymously.
    pub public_prefixes: Vec<String>,
    /// Refresh tokens accepted by the POST flow.
    pub refresh_tokens: Vec<String>,
}

pub struct TokenServer {
    pub server: Server,
    pub cert_pem: PathBuf,
    pub service: String,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(service: &str, issuer: &str, policy: Policy) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["osprey-test-token".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_pem = dir.path().join("token.crt");
        std::fs::write(&cert_pem, cert.pem()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let encoding =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let (svc, iss) = (service.to_string(), issuer.to_string());
        let server = Server::start(move |req| answer(req, &policy, &svc, &iss, &x5c, &encoding));
        TokenServer {
            server,
            cert_pem,
            service: service.into(),
            issuer: issuer.into(),
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("{}/token", self.server.url())
    }
}

fn answer(
    req: &Request,
    policy: &Policy,
    service: &str,
    issuer: &str,
    x5c: &str,
    key: &jsonwebtoken::EncodingKey,
) -> Response {
    if req.path() != "/token" {
        return Response::new(404);
    }
    let (subject, scopes, field) = match req.method.as_str() {
        "GET" => {
            let subject = match req.basic_auth() {
                Some((u, p)) if policy.users.iter().any(|(uu, pp)| *uu == u && *pp == p) => Some(u),
                Some(_) => {
                    return Response::json(401, &serde_json::json!({"details": "bad credentials"}));
                }
                None => None,
            };
            let scopes: Vec<String> = req
                .query_all("scope")
                .iter()
                .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
                .collect();
            (subject, scopes, "token")
        }
        "POST" => {
            let form = req.form();
            let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
                && form
                    .get("refresh_token")
                    .is_some_and(|t| policy.refresh_tokens.contains(t));
            if !ok {
                return Response::json(401, &serde_json::json!({"error": "invalid_grant"}));
            }
            let scopes = form
                .get("scope")
                .map(|s| s.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            (
                Some("refresh-token-user".to_string()),
                scopes,
                "access_token",
            )
        }
        _ => return Response::new(405),
    };
    let mut access = Vec::new();
    for scope in scopes {
        let parts: Vec<&str> = scope.splitn(3, ':').collect();
        let [kind, name, actions] = parts.as_slice() else {
            continue;
        };
        let granted: Vec<&str> = match &subject {
            Some(_) => actions.split(',').collect(),
            None if policy
                .public_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str())) =>
            {
                actions.split(',').filter(|a| *a == "pull").collect()
            }
            None => Vec::new(),
        };
        if !granted.is_empty() {
            access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "sub": subject.unwrap_or_default(), "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_suffix()),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![x5c.to_string()]);
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    Response::json(200, &serde_json::json!({field: token, "expires_in": 300}))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}
