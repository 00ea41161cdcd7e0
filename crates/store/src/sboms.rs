//! The SBOM kept per image digest of a tenant: the inventory (zstd JSON), its open
//! vulnerability findings and the vulnerability database it was last matched with, so a new
//! database re-matches every image without pulling it again.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::scans::{ids_json, ids_of};
use crate::{DetectionRound, Result, Store, now_ms};

/// An image digest's inventory as stored.
#[derive(Debug, Clone)]
pub struct Sbom {
    pub tenant_id: String,
    pub image_digest: String,
    pub reference: String,
    pub cluster_id: Option<String>,
    pub os: String,
    pub packages: i64,
    /// zstd-compressed JSON of the inventory.
    pub inventory: Vec<u8>,
    /// The open vulnerability findings of the digest.
    pub vuln_finding_ids: Vec<String>,
    /// When the vulnerability database last matched against it was built (empty: never).
    pub matched_db: String,
    pub scanned_ms: i64,
    pub matched_ms: i64,
}

/// An SBOM's facts without the inventory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SbomInfo {
    pub tenant_id: String,
    pub image_digest: String,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub os: String,
    pub packages: i64,
    pub vulnerabilities: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub matched_db: String,
    pub scanned_ms: i64,
    pub matched_ms: i64,
}

const SBOM_INFO_COLUMNS: &str = "tenant_id, image_digest, reference, cluster_id, os, packages, vuln_finding_ids, matched_db, scanned_ms, matched_ms";

fn sbom_info_row(r: &AnyRow) -> Result<SbomInfo> {
    let digest: String = r.try_get("image_digest")?;
    let ids: String = r.try_get("vuln_finding_ids")?;
    Ok(SbomInfo {
        tenant_id: r.try_get("tenant_id")?,
        reference: r.try_get("reference")?,
        cluster_id: r.try_get("cluster_id")?,
        os: r.try_get("os")?,
        packages: r.try_get("packages")?,
        vulnerabilities: ids_of(&ids, &format!("findings of SBOM {digest}"))?.len() as i64,
        matched_db: r.try_get("matched_db")?,
        scanned_ms: r.try_get("scanned_ms")?,
        matched_ms: r.try_get("matched_ms")?,
        image_digest: digest,
    })
}

impl Store {
    /// The SBOM of a tenant's image digest.
    pub async fn sbom(&self, tenant_id: &str, digest: &str) -> Result<Option<Sbom>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SBOM_INFO_COLUMNS}, inventory FROM sboms WHERE tenant_id = $1 AND image_digest = $2"
        )))
        .bind(tenant_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let ids: String = r.try_get("vuln_finding_ids")?;
        Ok(Some(Sbom {
            tenant_id: r.try_get("tenant_id")?,
            image_digest: r.try_get("image_digest")?,
            reference: r.try_get("reference")?,
            cluster_id: r.try_get("cluster_id")?,
            os: r.try_get("os")?,
            packages: r.try_get("packages")?,
            inventory: r.try_get("inventory")?,
            vuln_finding_ids: ids_of(&ids, &format!("findings of SBOM {digest}"))?,
            matched_db: r.try_get("matched_db")?,
            scanned_ms: r.try_get("scanned_ms")?,
            matched_ms: r.try_get("matched_ms")?,
        }))
    }

    /// Every SBOM's facts (a tenant's, or all), most recently scanned first.
    pub async fn sboms(&self, tenant_id: Option<&str>) -> Result<Vec<SbomInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SBOM_INFO_COLUMNS} FROM sboms WHERE ($1 IS NULL OR tenant_id = $1)
             ORDER BY scanned_ms DESC, image_digest"
        )))
        .bind(tenant_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sbom_info_row).collect()
    }

    /// SBOMs not matched against the database built at `built_at` yet.
    pub async fn sboms_to_rematch(&self, built_at: &str, limit: i64) -> Result<Vec<SbomInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SBOM_INFO_COLUMNS} FROM sboms WHERE matched_db <> $1
             ORDER BY tenant_id, image_digest LIMIT $2"
        )))
        .bind(built_at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sbom_info_row).collect()
    }

    /// Images (tenant, reference, a cluster seen running it) whose latest scan is older than
    /// `before_ms`: due for a scheduled re-scan.
    pub async fn images_due_for_rescan(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, reference, MAX(cluster_id) AS cluster_id FROM sboms
             GROUP BY tenant_id, reference HAVING MAX(scanned_ms) < $1
             ORDER BY MAX(scanned_ms) LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("tenant_id")?,
                    r.try_get("reference")?,
                    r.try_get("cluster_id")?,
                ))
            })
            .collect()
    }

    /// Records that an SBOM was passed over by the re-match with the database built at
    /// `built_at` (it could not be matched), so the re-match goes on with the others.
    pub async fn skip_sbom_match(
        &self,
        tenant_id: &str,
        digest: &str,
        built_at: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE sboms SET matched_db = $3 WHERE tenant_id = $1 AND image_digest = $2")
            .bind(tenant_id)
            .bind(digest)
            .bind(built_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a tenant's image as scanned now (its re-scan was queued), so the schedule does
    /// not queue it again before the next interval.
    pub async fn touch_sboms(&self, tenant_id: &str, reference: &str) -> Result<()> {
        sqlx::query("UPDATE sboms SET scanned_ms = $3 WHERE tenant_id = $1 AND reference = $2")
            .bind(tenant_id)
            .bind(reference)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl DetectionRound<'_> {
    /// Stores (or replaces) an image digest's SBOM.
    pub async fn put_sbom(&mut self, s: &Sbom) -> Result<()> {
        sqlx::query(
            "INSERT INTO sboms (tenant_id, image_digest, reference, cluster_id, os, packages, inventory, vuln_finding_ids, matched_db, scanned_ms, matched_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, image_digest) DO UPDATE SET reference = excluded.reference,
                 cluster_id = COALESCE(excluded.cluster_id, sboms.cluster_id), os = excluded.os,
                 packages = excluded.packages, inventory = excluded.inventory,
                 vuln_finding_ids = excluded.vuln_finding_ids, matched_db = excluded.matched_db,
                 scanned_ms = excluded.scanned_ms, matched_ms = excluded.matched_ms",
        )
        .bind(&s.tenant_id)
        .bind(&s.image_digest)
        .bind(&s.reference)
        .bind(s.cluster_id.clone())
        .bind(&s.os)
        .bind(s.packages)
        .bind(s.inventory.clone())
        .bind(ids_json(&s.vuln_finding_ids))
        .bind(&s.matched_db)
        .bind(s.scanned_ms)
        .bind(s.matched_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a re-match of a stored SBOM.
    pub async fn set_sbom_match(
        &mut self,
        tenant_id: &str,
        digest: &str,
        vuln_finding_ids: &[String],
        matched_db: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sboms SET vuln_finding_ids = $3, matched_db = $4, matched_ms = $5
             WHERE tenant_id = $1 AND image_digest = $2",
        )
        .bind(tenant_id)
        .bind(digest)
        .bind(ids_json(vuln_finding_ids))
        .bind(matched_db)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
