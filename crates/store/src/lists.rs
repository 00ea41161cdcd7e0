//! Detection settings kept per tenant: trusted and threat IP lists, and suppression rules. The
//! store keeps them as given (the server checks them before they are stored); the detector
//! compiles a tenant's together with the administrator tenant's.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError, conflict, new_id, now_ms};

osprey_model::text_enum!(
    /// What a list does.
    ListKind {
        /// Addresses never reported by the threat-intelligence rules.
        Trusted = "trusted",
        /// The tenant's own threat list (`….MaliciousIPCaller.Custom` findings).
        Threat = "threat",
    }
);

/// An IP list; `body` is what was uploaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpList {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: ListKind,
    #[serde(skip_serializing, default)]
    pub body: String,
    /// Addresses and ranges read from it.
    pub entries: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A suppression rule: new audit findings of `kind` (a glob; empty = every type) whose event
/// matches `condition` are archived with `reason`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuppressionRuleRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub condition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub created_ms: i64,
}

const LIST_COLUMNS: &str = "id, tenant_id, name, kind, body, entries, created_ms, updated_ms";
const RULE_COLUMNS: &str = "id, tenant_id, name, type, condition, reason, created_ms";

fn list_row(r: &AnyRow) -> Result<IpList> {
    let kind: String = r.try_get("kind")?;
    Ok(IpList {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        kind: ListKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            what: "IP list kind".into(),
            error: kind.clone(),
        })?,
        body: r.try_get("body")?,
        entries: r.try_get("entries")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

fn rule_row(r: &AnyRow) -> Result<SuppressionRuleRecord> {
    Ok(SuppressionRuleRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        kind: r.try_get("type")?,
        condition: r.try_get("condition")?,
        reason: r.try_get("reason")?,
        created_ms: r.try_get("created_ms")?,
    })
}

impl Store {
    /// Creates or replaces a tenant's list `name`; returns it and whether it was new.
    pub async fn put_ip_list(
        &self,
        tenant_id: &str,
        name: &str,
        kind: ListKind,
        body: &str,
        entries: i64,
    ) -> Result<(IpList, bool)> {
        crate::tenants::validate_name("list name", name)?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM ip_lists WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let created = existing.is_none();
        // The stored row comes back from the write itself.
        let row = match existing {
            Some(id) => sqlx::query(AssertSqlSafe(format!(
                "UPDATE ip_lists SET kind = $2, body = $3, entries = $4, updated_ms = $5 WHERE id = $1
                 RETURNING {LIST_COLUMNS}"
            )))
            .bind(id)
            .bind(kind.as_str())
            .bind(body)
            .bind(entries)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?,
            None => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO ip_lists (id, tenant_id, name, kind, body, entries, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {LIST_COLUMNS}"
            )))
            .bind(new_id())
            .bind(tenant_id)
            .bind(name)
            .bind(kind.as_str())
            .bind(body)
            .bind(entries)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("list {name}")))?,
        };
        let list = list_row(&row)?;
        tx.commit().await?;
        Ok((list, created))
    }

    pub async fn ip_list(&self, id: &str) -> Result<Option<IpList>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM ip_lists WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(list_row).transpose()
    }

    pub async fn ip_list_by_name(&self, tenant_id: &str, name: &str) -> Result<Option<IpList>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM ip_lists WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(list_row).transpose()
    }

    /// A tenant's lists (or every tenant's), bodies included.
    pub async fn ip_lists(&self, tenant_id: Option<&str>) -> Result<Vec<IpList>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM ip_lists WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY tenant_id, name"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(list_row).collect()
    }

    pub async fn delete_ip_list(&self, id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM ip_lists WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("list {id}")));
        }
        Ok(())
    }

    pub async fn create_suppression_rule(
        &self,
        tenant_id: &str,
        name: &str,
        kind: &str,
        condition: &str,
        reason: &str,
    ) -> Result<SuppressionRuleRecord> {
        crate::tenants::validate_name("rule name", name)?;
        let r = SuppressionRuleRecord {
            id: new_id(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            kind: kind.into(),
            condition: condition.into(),
            reason: reason.into(),
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO suppression_rules (id, tenant_id, name, type, condition, reason, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.name)
        .bind(&r.kind)
        .bind(&r.condition)
        .bind(&r.reason)
        .bind(r.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, || format!("suppression rule {name}")))?;
        Ok(r)
    }

    pub async fn suppression_rule(&self, id: &str) -> Result<Option<SuppressionRuleRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM suppression_rules WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rule_row).transpose()
    }

    /// A tenant's rules (or every tenant's), oldest first.
    pub async fn suppression_rules(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<SuppressionRuleRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM suppression_rules WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_ms, id"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rule_row).collect()
    }

    pub async fn delete_suppression_rule(&self, id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM suppression_rules WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("suppression rule {id}")));
        }
        Ok(())
    }
}
