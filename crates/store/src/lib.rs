//! Osprey's storage: one interface over two real backends, embedded SQLite (the default, one
//! file in the data directory, WAL) and PostgreSQL (shared state for several servers).
//!
//! Both run the same portable SQL through sqlx's `Any` driver (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); only the schema differs per dialect (`migrations/sqlite`, `migrations/postgres`)
//! and the few statements whose semantics differ say so where they are. Times are Unix
//! milliseconds, documents are JSON text, so every value is one of the driver's portable types.

mod audit;
mod findings;
mod graph;
mod hunts;
mod lists;
mod outputs;
mod rbac;
mod registries;
mod sboms;
mod scans;
mod tenants;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

pub use audit::{AuditBatch, DetectionRound, NewAuditBatch, SEEN_KEY_BYTES, SeenKeys};
pub use findings::{
    FindingFilter, FindingPage, FindingRecord, FindingSort, FindingSource, FindingState,
    FindingUpdate, HistoryEntry, StatsGroup, StoredFinding, Upserted, Workflow, severity_score,
};
pub use graph::{EdgeEnd, EdgeRow, EdgeSumRow, EntityRow, GraphCounts};
pub use hunts::{HuntResult, HuntState, MAX_HUNT_ATTEMPTS, NewRetroHunt, RetroHunt};
pub use lists::{IpList, ListKind, SuppressionRuleRecord};
pub use outputs::{Delivery, MAX_ATTEMPTS, Output, OutputKind, REPEAT_DELAY_MS};
pub use rbac::RbacRow;
pub use registries::Registry;
pub use sboms::{Sbom, SbomInfo};
pub use scans::{MAX_SCAN_ATTEMPTS, NewScan, ScanJob, ScanKind, ScanResult, ScanState};
pub use tenants::{
    AdminAction, Cluster, LogWindow, Principal, Role, Tenant, TenantKind, TokenInfo, hash_token,
    new_secret,
};

/// An advisory lock of [`Store::lock_served`] or [`Store::lock_setup`]: held while this lives.
pub struct ServedLock(#[allow(dead_code)] sqlx::AnyConnection);

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// What the caller gave is not acceptable (a name, a page token, a registry host): the
    /// server answers 400 with this line. Never a fault of the store itself.
    #[error("{0}")]
    Invalid(String),
    /// The data directory could not be made or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("stored document {what}: {error}")]
    Corrupt { what: String, error: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: a connection pool and the backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The SQLite file inside a data directory.
pub const SQLITE_FILE: &str = "osprey.db";

/// Creates a directory (and its parents) for the server's data: one it creates is readable by
/// its owner only (0700); one that exists is left as the operator made it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes the SQLite database file readable and writable by its owner only (0600), creating it
/// so when absent; SQLite gives its `-wal` and `-shm` files the database file's mode.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Store {
    /// Opens (creating when missing) the SQLite database in `dir` and migrates it.
    pub async fn open_sqlite(dir: &Path) -> Result<Store> {
        let data_dir = |source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        create_private_dir(dir).map_err(data_dir)?;
        let path = dir.join(SQLITE_FILE);
        private_file(&path).map_err(data_dir)?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // FULL: a commit is on disk when it returns (WAL fsync), which the webhook's
                    // "durable before 200" rests on. busy_timeout: writers queue instead of failing.
                    conn.execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON")
                        .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        // WAL is a property of the file: readers never block the writer.
        pool.execute("PRAGMA journal_mode = WAL").await?;
        let store = Store {
            pool,
            backend: Backend::Sqlite,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://…`) and migrates the schema.
    pub async fn open_postgres(url: &str) -> Result<Store> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = Store {
            pool,
            backend: Backend::Postgres,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// On PostgreSQL: takes the session-level advisory lock that marks the database as served,
    /// on a connection of its own (returned: the lock lasts as long as it); `None` when another
    /// process holds it. Not for SQLite (its data directory is locked by the server instead).
    ///
    /// `shared`: servers that share the database through a bus take it shared (any number of
    /// them, but no server without a bus); one without a bus takes it exclusive.
    pub async fn lock_served(&self, shared: bool) -> Result<Option<ServedLock>> {
        // Keyed by the schema too: several stores may share one database in schemas of
        // their own (tests do).
        let mut conn = self.pool.acquire().await?.detach();
        let sql = if shared {
            "SELECT pg_try_advisory_lock_shared(1869836146, hashtext(current_schema()))"
        } else {
            "SELECT pg_try_advisory_lock(1869836146, hashtext(current_schema()))"
        };
        let got: bool = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
        Ok(got.then_some(ServedLock(conn)))
    }

    /// On PostgreSQL: waits for, and holds while the returned guard lives, the lock under
    /// which a server sets up an empty database (servers starting together create one
    /// organization, not several). `None` on SQLite, where one process serves a store.
    pub async fn lock_setup(&self) -> Result<Option<ServedLock>> {
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock(1869836147, hashtext(current_schema()))")
            .execute(&mut conn)
            .await?;
        Ok(Some(ServedLock(conn)))
    }

    /// Runs one statement as given (tests and maintenance).
    #[doc(hidden)]
    pub async fn raw_execute(&self, sql: &'static str) -> Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// waiting for it under the busy timeout: a deferred transaction that reads first and
    /// writes later fails at once ("database is locked") when another writer committed in
    /// between.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes every connection (after the last writer finished).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        let sets: &[(i64, &str, &'static str)] = match self.backend {
            Backend::Sqlite => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/sqlite/0001_init.sql"),
                ),
                (
                    2,
                    "outputs",
                    include_str!("../migrations/sqlite/0002_outputs.sql"),
                ),
                (
                    3,
                    "scans",
                    include_str!("../migrations/sqlite/0003_scans.sql"),
                ),
                (
                    4,
                    "lists",
                    include_str!("../migrations/sqlite/0004_lists.sql"),
                ),
                (5, "bus", include_str!("../migrations/sqlite/0005_bus.sql")),
                (
                    6,
                    "pods",
                    include_str!("../migrations/sqlite/0006_pods.sql"),
                ),
                (
                    7,
                    "seen keys",
                    include_str!("../migrations/sqlite/0007_seen_keys.sql"),
                ),
                (
                    8,
                    "graph",
                    include_str!("../migrations/sqlite/0008_graph.sql"),
                ),
                (
                    9,
                    "retro-hunts",
                    include_str!("../migrations/sqlite/0009_retro_hunts.sql"),
                ),
                (
                    10,
                    "rbac",
                    include_str!("../migrations/sqlite/0010_rbac.sql"),
                ),
                (
                    12,
                    "graph edges from",
                    include_str!("../migrations/sqlite/0012_graph_edges_from.sql"),
                ),
                (
                    13,
                    "scan attempts",
                    include_str!("../migrations/sqlite/0013_scan_attempts.sql"),
                ),
                (
                    14,
                    "token expiry",
                    include_str!("../migrations/sqlite/0014_token_expiry.sql"),
                ),
            ],
            Backend::Postgres => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/postgres/0001_init.sql"),
                ),
                (
                    2,
                    "outputs",
                    include_str!("../migrations/postgres/0002_outputs.sql"),
                ),
                (
                    3,
                    "scans",
                    include_str!("../migrations/postgres/0003_scans.sql"),
                ),
                (
                    4,
                    "lists",
                    include_str!("../migrations/postgres/0004_lists.sql"),
                ),
                (
                    5,
                    "bus",
                    include_str!("../migrations/postgres/0005_bus.sql"),
                ),
                (
                    6,
                    "pods",
                    include_str!("../migrations/postgres/0006_pods.sql"),
                ),
                (
                    7,
                    "seen keys",
                    include_str!("../migrations/postgres/0007_seen_keys.sql"),
                ),
                (
                    8,
                    "graph",
                    include_str!("../migrations/postgres/0008_graph.sql"),
                ),
                (
                    9,
                    "retro-hunts",
                    include_str!("../migrations/postgres/0009_retro_hunts.sql"),
                ),
                (
                    10,
                    "rbac",
                    include_str!("../migrations/postgres/0010_rbac.sql"),
                ),
                (
                    11,
                    "storage",
                    include_str!("../migrations/postgres/0011_storage.sql"),
                ),
                (
                    12,
                    "graph edges from",
                    include_str!("../migrations/postgres/0012_graph_edges_from.sql"),
                ),
                (
                    13,
                    "scan attempts",
                    include_str!("../migrations/postgres/0013_scan_attempts.sql"),
                ),
                (
                    14,
                    "token expiry",
                    include_str!("../migrations/postgres/0014_token_expiry.sql"),
                ),
            ],
        };
        let migrations = sets
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        // The migrator takes an advisory lock on PostgreSQL, so servers starting together
        // migrate once.
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new random identifier: 16 bytes, hex.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    hex::encode(b)
}

fn fill_random(buf: &mut [u8]) {
    // The OS generator failing is not something to carry on from: ids and tokens would repeat.
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// Maps a unique-constraint violation to a conflict naming `what`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

/// Scratch databases for tests of this crate and of the server; compiled only with the
/// `testing` feature, which the test builds turn on (never the production binary).
#[cfg(feature = "testing")]
pub mod testing {
    use sqlx::{AssertSqlSafe, Connection};

    use crate::{Result, Store, new_id};

    /// The PostgreSQL server tests use: `OSPREY_TEST_DATABASE_URL`, else the local one CI runs.
    pub fn postgres_url() -> String {
        std::env::var("OSPREY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A URL whose connections live in a new, empty schema of the test database.
    pub async fn scratch_postgres_url() -> Result<String> {
        sqlx::any::install_default_drivers();
        let base = postgres_url();
        let schema = format!("osprey_test_{}", new_id());
        let mut conn = sqlx::AnyConnection::connect(&base).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
    }

    /// A migrated store in a new schema.
    pub async fn scratch_postgres() -> Result<Store> {
        Store::open_postgres(&scratch_postgres_url().await?).await
    }

    /// Runs a statement as is: tests break a store on purpose with it (a trigger that
    /// refuses writes).
    pub async fn execute(store: &Store, sql: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(&store.pool)
            .await?;
        Ok(())
    }
}
