//! Tenants, clusters, API tokens and the log of administrative actions.
//!
//! An organization is one store: one administrator tenant and any number of member tenants.
//! Tokens are random secrets shown once; the store keeps only their SHA-256 (a lookup hash is
//! enough for 256-bit random secrets: there is nothing to brute-force).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError, conflict, fill_random, new_id, now_ms};

osprey_model::text_enum!(
    /// An organization's administrator tenant, or one of its members.
    TenantKind {
        /// Sees and manages every member's data.
        Administrator = "administrator",
        Member = "member",
    }
);

fn tenant_kind(text: &str) -> Result<TenantKind> {
    TenantKind::parse(text).ok_or_else(|| corrupt("tenant kind", text))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub kind: TenantKind,
    pub created_ms: i64,
}

osprey_model::text_enum!(
    /// What a token may do; ordered from least to most.
    #[derive(PartialOrd, Ord)]
    Role {
        /// Posts audit events for one cluster; reads nothing.
        Ingest = "ingest",
        /// Reads.
        Viewer = "viewer",
        /// Reads and works findings (state, workflow, notes), requests scans.
        Analyst = "analyst",
        /// Everything in its tenant (and, in the administrator tenant, in every member).
        Admin = "admin",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cluster {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_ms: i64,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<i64>,
    /// When the token stops working, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// When it was last used (at most a minute off); never, when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_ms: Option<i64>,
}

/// Who is calling: a valid, unrevoked token and its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub tenant_kind: TenantKind,
    pub role: Role,
    /// Ingest tokens write to this cluster only.
    pub cluster_id: Option<String>,
}

impl Principal {
    /// Whether this caller sees every member's data.
    pub fn is_org_admin(&self) -> bool {
        self.tenant_kind == TenantKind::Administrator
    }
}

/// One line of the administrative audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminAction {
    pub seq: i64,
    pub at_ms: i64,
    pub tenant_id: String,
    /// The token id that acted, or `cli` for offline commands.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Which part of the administrative log to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWindow {
    /// Only entries before this one (a page's last).
    pub before_seq: Option<i64>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// A new token secret: `osp_` and 32 random bytes, base64url.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    format!(
        "osp_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// What the store keeps of a secret.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        error: format!("unexpected value {value:?}"),
    }
}

fn tenant_row(r: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: tenant_kind(&r.try_get::<String, _>("kind")?)?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn token_row(r: &AnyRow) -> Result<TokenInfo> {
    let role: String = r.try_get("role")?;
    Ok(TokenInfo {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("token role", &role))?,
        cluster_id: r.try_get("cluster_id")?,
        created_ms: r.try_get("created_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        last_used_ms: r.try_get("last_used_ms")?,
    })
}

/// The columns of [`TokenInfo`].
const TOKEN_COLUMNS: &str =
    "id, tenant_id, name, role, cluster_id, created_ms, revoked_ms, expires_ms, last_used_ms";

/// How stale a token's last-used time may get before a use writes it again.
const LAST_USED_EVERY_MS: i64 = 60_000;

fn cluster_row(r: &AnyRow) -> Result<Cluster> {
    Ok(Cluster {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        created_ms: r.try_get("created_ms")?,
    })
}

impl Store {
    pub async fn create_tenant(&self, name: &str, kind: TenantKind) -> Result<Tenant> {
        validate_name("tenant name", name)?;
        let t = Tenant {
            id: new_id(),
            name: name.to_string(),
            kind,
            created_ms: now_ms(),
        };
        sqlx::query("INSERT INTO tenants (id, name, kind, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(kind.as_str())
            .bind(t.created_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, || format!("tenant {name:?}")))?;
        Ok(t)
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, name, kind, created_ms FROM tenants ORDER BY created_ms, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(tenant_row).collect()
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, name, kind, created_ms FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_row).transpose()
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, name, kind, created_ms FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_row).transpose()
    }

    /// The organization's administrator tenant, when the store has been set up.
    pub async fn administrator(&self) -> Result<Option<Tenant>> {
        let row = sqlx::query(
            "SELECT id, name, kind, created_ms FROM tenants WHERE kind = 'administrator' ORDER BY created_ms LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tenant_row).transpose()
    }

    /// Mints a token; the secret is returned once and never stored.
    pub async fn create_token(
        &self,
        tenant_id: &str,
        name: &str,
        role: Role,
        cluster_id: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        self.create_token_expiring(tenant_id, name, role, cluster_id, None)
            .await
    }

    /// Mints a token that stops working at `expires_ms` (never, when `None`).
    pub async fn create_token_expiring(
        &self,
        tenant_id: &str,
        name: &str,
        role: Role,
        cluster_id: Option<&str>,
        expires_ms: Option<i64>,
    ) -> Result<(TokenInfo, String)> {
        validate_name("token name", name)?;
        if role == Role::Ingest && cluster_id.is_none() {
            return Err(StoreError::Invalid(
                "an ingest token belongs to a cluster".into(),
            ));
        }
        let secret = new_secret();
        let info = TokenInfo {
            id: new_id(),
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            role,
            cluster_id: cluster_id.map(str::to_string),
            created_ms: now_ms(),
            revoked_ms: None,
            expires_ms,
            last_used_ms: None,
        };
        sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, role, cluster_id, hash, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&info.id)
        .bind(&info.tenant_id)
        .bind(&info.name)
        .bind(role.as_str())
        .bind(info.cluster_id.clone())
        .bind(hash_token(&secret))
        .bind(info.created_ms)
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok((info, secret))
    }

    /// The caller a secret stands for, unless it is unknown, revoked or expired; notes the
    /// use (at most once a minute per token).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.role, t.cluster_id, t.last_used_ms, n.id AS tenant_id, n.name, n.kind
             FROM tokens t JOIN tenants n ON n.id = t.tenant_id
             WHERE t.hash = $1 AND t.revoked_ms IS NULL AND (t.expires_ms IS NULL OR t.expires_ms > $2)",
        )
        .bind(hash_token(secret))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let token_id: String = r.try_get("token_id")?;
        let last_used: Option<i64> = r.try_get("last_used_ms")?;
        if last_used.is_none_or(|t| now - t >= LAST_USED_EVERY_MS) {
            sqlx::query("UPDATE tokens SET last_used_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(&token_id)
                .execute(&self.pool)
                .await?;
        }
        let role: String = r.try_get("role")?;
        Ok(Some(Principal {
            token_id,
            tenant_id: r.try_get("tenant_id")?,
            tenant_name: r.try_get("name")?,
            tenant_kind: tenant_kind(&r.try_get::<String, _>("kind")?)?,
            role: Role::parse(&role).ok_or_else(|| corrupt("token role", &role))?,
            cluster_id: r.try_get("cluster_id")?,
        }))
    }

    /// Tokens of one tenant, or of every tenant.
    pub async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens
             WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_ms, id"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_row).collect()
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenInfo>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_row).transpose()
    }

    /// Revokes a token; revoking twice keeps the first time.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 && self.token(id).await?.is_none() {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        Ok(())
    }

    /// Mints a new ingest token for a cluster; the cluster's other ingest tokens stop working
    /// after `overlap_ms` (at once when 0), so the API server's configuration can be changed
    /// without losing a batch. Returns the new token and when the old ones stop.
    pub async fn rotate_ingest_token(
        &self,
        cluster: &Cluster,
        overlap_ms: i64,
    ) -> Result<(TokenInfo, String, i64)> {
        let now = now_ms();
        let until = now + overlap_ms.max(0);
        let (info, secret) = self
            .create_token(
                &cluster.tenant_id,
                &format!("ingest {}", cluster.name),
                Role::Ingest,
                Some(&cluster.id),
            )
            .await?;
        let old = "cluster_id = $2 AND role = 'ingest' AND id <> $3 AND revoked_ms IS NULL";
        if overlap_ms <= 0 {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE tokens SET revoked_ms = $1 WHERE {old}"
            )))
            .bind(now)
            .bind(&cluster.id)
            .bind(&info.id)
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE tokens SET expires_ms = $1 WHERE {old} AND (expires_ms IS NULL OR expires_ms > $1)"
            )))
            .bind(until)
            .bind(&cluster.id)
            .bind(&info.id)
            .execute(&self.pool)
            .await?;
        }
        Ok((info, secret, until))
    }

    /// Registers a cluster and mints its ingest token.
    pub async fn create_cluster(&self, tenant_id: &str, name: &str) -> Result<(Cluster, String)> {
        validate_name("cluster name", name)?;
        let c = Cluster {
            id: new_id(),
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO clusters (id, tenant_id, name, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&c.id)
        .bind(&c.tenant_id)
        .bind(&c.name)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, || format!("cluster {name:?}")))?;
        let (_, secret) = self
            .create_token(
                tenant_id,
                &format!("ingest {name}"),
                Role::Ingest,
                Some(&c.id),
            )
            .await?;
        Ok((c, secret))
    }

    pub async fn cluster(&self, id: &str) -> Result<Option<Cluster>> {
        let row = sqlx::query("SELECT id, tenant_id, name, created_ms FROM clusters WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_row).transpose()
    }

    /// Clusters of one tenant, or of every tenant.
    pub async fn clusters(&self, tenant_id: Option<&str>) -> Result<Vec<Cluster>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, created_ms FROM clusters
             WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_ms, id",
        )
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cluster_row).collect()
    }

    /// Appends to the administrative log.
    pub async fn log_action(
        &self,
        tenant_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_log (at_ms, tenant_id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now_ms())
        .bind(tenant_id)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The administrative log, newest first, of one tenant or of all, before an entry and
    /// within a time window (`since_ms` inclusive, `until_ms` exclusive) when given.
    pub async fn admin_log(
        &self,
        tenant_id: Option<&str>,
        window: LogWindow,
        limit: i64,
    ) -> Result<Vec<AdminAction>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, tenant_id, actor, action, target, detail FROM admin_log
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR seq < $2)
               AND ($3 IS NULL OR at_ms >= $3) AND ($4 IS NULL OR at_ms < $4)
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(tenant_id.map(str::to_string))
        .bind(window.before_seq)
        .bind(window.since_ms)
        .bind(window.until_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AdminAction {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at_ms")?,
                    tenant_id: r.try_get("tenant_id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt {
                        what: "admin log detail".into(),
                        error: e.to_string(),
                    })?,
                })
            })
            .collect()
    }
}

/// Names are shown in consoles and logs: printable, not blank, at most 200 characters.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    if name.chars().count() > 200 {
        return Err(StoreError::Invalid(format!(
            "{what} is longer than 200 characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} contains control characters"
        )));
    }
    if let Some(c) = name.chars().find(|c| is_format(*c)) {
        return Err(StoreError::Invalid(format!(
            "{what} contains the invisible character U+{:04X} (bidirectional controls and zero-width characters make a name look like another)",
            c as u32
        )));
    }
    Ok(())
}

/// Unicode's format characters (general category Cf: bidirectional overrides and isolates,
/// zero-width spaces and joiners, the byte-order mark, tags…) and the line and paragraph
/// separators. Listed by hand: the standard library has no general categories, and this set
/// changes rarely (Unicode 16).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_others_are_refused() {
        assert!(validate_name("cluster name", "prod-eu-1").is_ok());
        assert!(validate_name("cluster name", "Équipe données").is_ok());
        for (name, shows) in [
            ("prod\u{202E}1-ue", "U+202E"),
            ("ad\u{200B}min", "U+200B"),
            ("\u{FEFF}prod", "U+FEFF"),
            ("a\u{2066}b", "U+2066"),
            ("tag\u{E0041}", "U+E0041"),
        ] {
            let e = validate_name("cluster name", name).unwrap_err().to_string();
            assert!(e.contains(shows) && e.starts_with("cluster name"), "{e}");
        }
        assert!(validate_name("x", "a\tb").is_err());
        assert!(validate_name("x", "   ").is_err());
    }
}
