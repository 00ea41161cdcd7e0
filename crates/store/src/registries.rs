//! The registries scans pull from, per tenant: host, username and the password sealed by the
//! server (the store never sees it in the clear).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError, conflict, new_id, now_ms};

/// A registry a tenant pulls from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registry {
    pub id: String,
    pub tenant_id: String,
    /// `host[:port]`, as image references name it.
    pub host: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The password sealed with the server's key; never shown by the API.
    #[serde(skip_serializing, default)]
    pub sealed_password: Vec<u8>,
    /// Plain HTTP (loopback) or TLS without certificate checks.
    pub insecure: bool,
    pub created_ms: i64,
}

const REGISTRY_COLUMNS: &str =
    "id, tenant_id, host, username, sealed_password, insecure, created_ms";

fn registry_row(r: &AnyRow) -> Result<Registry> {
    let insecure: i64 = r.try_get("insecure")?;
    Ok(Registry {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        host: r.try_get("host")?,
        username: r.try_get("username")?,
        sealed_password: r.try_get("sealed_password")?,
        insecure: insecure != 0,
        created_ms: r.try_get("created_ms")?,
    })
}

impl Store {
    pub async fn create_registry(
        &self,
        tenant_id: &str,
        host: &str,
        username: &str,
        sealed_password: &[u8],
        insecure: bool,
    ) -> Result<Registry> {
        validate_host(host)?;
        let r = Registry {
            id: new_id(),
            tenant_id: tenant_id.into(),
            host: host.into(),
            username: username.into(),
            sealed_password: sealed_password.to_vec(),
            insecure,
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO registries (id, tenant_id, host, username, sealed_password, insecure, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.host)
        .bind(&r.username)
        .bind(r.sealed_password.clone())
        .bind(insecure as i64)
        .bind(r.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, || format!("registry {host}")))?;
        Ok(r)
    }

    pub async fn registries(&self, tenant_id: Option<&str>) -> Result<Vec<Registry>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REGISTRY_COLUMNS} FROM registries WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY host, tenant_id"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(registry_row).collect()
    }

    pub async fn registry(&self, id: &str) -> Result<Option<Registry>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REGISTRY_COLUMNS} FROM registries WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(registry_row).transpose()
    }

    pub async fn delete_registry(&self, id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM registries WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("registry {id}")));
        }
        Ok(())
    }

    /// How a tenant reaches `host`: its own entry, else the administrator tenant's (which
    /// applies to every member).
    pub async fn registry_for(&self, tenant_id: &str, host: &str) -> Result<Option<Registry>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REGISTRY_COLUMNS} FROM registries r WHERE host = $2 AND (tenant_id = $1 OR tenant_id IN (SELECT id FROM tenants WHERE kind = 'administrator'))
             ORDER BY CASE WHEN tenant_id = $1 THEN 0 ELSE 1 END LIMIT 1"
        )))
        .bind(tenant_id)
        .bind(host)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(registry_row).transpose()
    }
}

/// A registry host as image references name it: `name[.domain][:port]`.
fn validate_host(host: &str) -> Result<()> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "registry host {host:?}: expected host[:port], as in an image reference"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_checked() {
        for ok in [
            "ghcr.io",
            "127.0.0.1:5000",
            "registry-1.docker.io",
            "localhost",
        ] {
            assert!(validate_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://ghcr.io",
            "ghcr.io/org",
            "host:0",
            "host:99999",
            "a b",
        ] {
            assert!(validate_host(bad).is_err(), "{bad}");
        }
    }
}
