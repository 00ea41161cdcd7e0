//! The RBAC objects of each cluster of a tenant (`graph_rbac`): what a cluster snapshot
//! listed and audited writes changed, each with the time that said so. The body is
//! `osprey-graph`'s JSON of the object; here it is text. A change older than what is stored
//! is ignored, and a deletion is kept (without a body) so an older write cannot undo it.

use sqlx::Row;

use crate::{DetectionRound, Result, Store};

/// An RBAC object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacRow {
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    /// `None`: deleted.
    pub body: Option<String>,
    pub changed_ms: i64,
}

impl DetectionRound<'_> {
    /// Records an object of a cluster as it was at `row.changed_ms` (unless something
    /// newer is stored).
    pub async fn put_rbac(
        &mut self,
        tenant_id: &str,
        cluster_id: &str,
        row: &RbacRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO graph_rbac (tenant_id, cluster_id, kind, namespace, name, body, changed_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, cluster_id, kind, namespace, name) DO UPDATE SET
                 body = excluded.body, changed_ms = excluded.changed_ms
             WHERE excluded.changed_ms >= graph_rbac.changed_ms",
        )
        .bind(tenant_id)
        .bind(cluster_id)
        .bind(&row.kind)
        .bind(&row.namespace)
        .bind(&row.name)
        .bind(row.body.clone())
        .bind(row.changed_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Replaces a cluster's objects by those a snapshot taken at `at_ms` lists (objects
    /// changed after it stay as changed).
    pub async fn replace_rbac(
        &mut self,
        tenant_id: &str,
        cluster_id: &str,
        at_ms: i64,
        rows: &[RbacRow],
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM graph_rbac WHERE tenant_id = $1 AND cluster_id = $2 AND changed_ms <= $3",
        )
        .bind(tenant_id)
        .bind(cluster_id)
        .bind(at_ms)
        .execute(&mut *self.tx)
        .await?;
        for row in rows {
            self.put_rbac(tenant_id, cluster_id, row).await?;
        }
        Ok(())
    }
}

impl Store {
    /// The objects of a cluster of a tenant (deleted ones left out), in kind, namespace and
    /// name order.
    pub async fn rbac(&self, tenant_id: &str, cluster_id: &str) -> Result<Vec<RbacRow>> {
        let rows = sqlx::query(
            "SELECT kind, namespace, name, body, changed_ms FROM graph_rbac
             WHERE tenant_id = $1 AND cluster_id = $2 AND body IS NOT NULL
             ORDER BY kind, namespace, name",
        )
        .bind(tenant_id)
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RbacRow {
                    kind: r.try_get("kind")?,
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    body: r.try_get("body")?,
                    changed_ms: r.try_get("changed_ms")?,
                })
            })
            .collect()
    }
}
