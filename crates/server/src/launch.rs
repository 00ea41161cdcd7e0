//! Start-up: everything `osprey serve` checks and opens before it takes its first request, in
//! the one order that never leaves half a server behind. Every setting that can be wrong is
//! found before anything is created or locked; then the store is opened and locked against a
//! second server, the organization is created on first start, the secret key is checked
//! against what the store has sealed with it, and the bus is opened.
//!
//! The binary turns [`LaunchError`] into a message naming its own flag; tests and other
//! embedders get the same order without the command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use osprey_store::{Role, Store, TenantKind};

use crate::bus::Bus;
use crate::error::{ServerError, ServerResult};
use crate::secrets::SecretKey;
use crate::write_secret;

/// What a server runs on.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// A `postgres://` URL; the embedded SQLite in `data` without one.
    pub database: Option<String>,
    /// The data directory: SQLite, the admin token of a first start, the secret key, caches.
    pub data: PathBuf,
    /// The key sealing registry passwords; `data/secret.key` (made on first start) without one.
    pub secret_key_file: Option<PathBuf>,
    /// A `nats://` URL: servers sharing one database coordinate through it.
    pub bus: Option<String>,
    /// How much the bus keeps before ingestion answers 429.
    pub bus_max_bytes: u64,
    /// A vulnerability database to check before starting (scans open it themselves).
    pub vuln_db: Option<PathBuf>,
}

/// Which setting is wrong, and why. Each names the setting by what it is, not by a flag.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{url}: {error}")]
    Database { url: String, error: ServerError },
    #[error("{}: {error}", .path.display())]
    Data { path: PathBuf, error: ServerError },
    /// The key could not be read (the error names the file or the environment variable).
    #[error("{0}")]
    SecretKey(ServerError),
    /// The key is not the one the store's secrets are sealed with.
    #[error("{0}")]
    WrongSecretKey(ServerError),
    #[error("{url}: {error}")]
    Bus { url: String, error: ServerError },
    #[error("{}: {error}", .path.display())]
    VulnDb { path: PathBuf, error: String },
    /// Setting up the organization on first start failed.
    #[error("setting up the organization: {0}")]
    Setup(ServerError),
}

/// A store ready to serve, held by this process.
pub struct Launched {
    pub store: Store,
    /// Keep it as long as the server runs: it keeps other servers off the store.
    pub guard: ServeGuard,
    pub secret_key: SecretKey,
    pub bus: Option<Arc<Bus>>,
    /// Where the administrator's token was written, on the first start only.
    pub admin_token_file: Option<PathBuf>,
}

impl Launch {
    /// Checks, opens and locks, in order (see the module documentation).
    pub async fn open(&self) -> Result<Launched, LaunchError> {
        // 1. Settings that need nothing created.
        if let Some(db) = &self.vuln_db {
            osprey_vuln::db::Database::open(db).map_err(|e| LaunchError::VulnDb {
                path: db.clone(),
                error: e.to_string(),
            })?;
        }
        osprey_store::create_private_dir(&self.data).map_err(|e| LaunchError::Data {
            path: self.data.clone(),
            error: ServerError::io("creating it")(e),
        })?;
        let secret_key = SecretKey::load(self.secret_key_file.as_deref(), &self.data)
            .map_err(LaunchError::SecretKey)?;
        let nats = match &self.bus {
            Some(url) => Some(Bus::reach(url).await.map_err(|error| LaunchError::Bus {
                url: redact(url),
                error,
            })?),
            None => None,
        };
        // 2. The store, locked against a second server that would not share it.
        let store = open_store(self.database.as_deref(), &self.data).await?;
        let guard = lock_store(&store, &self.data, self.bus.is_some())
            .await
            .map_err(|error| self.store_error(error))?;
        // 3. First start: the organization; every start: the key opens what it sealed.
        let admin_token_file = bootstrap(&store, &self.data)
            .await
            .map_err(LaunchError::Setup)?;
        secret_key
            .check(&store)
            .await
            .map_err(LaunchError::WrongSecretKey)?;
        // 4. The bus's streams and buckets.
        let bus = match (nats, &self.bus) {
            (Some(client), Some(url)) => {
                let max_bytes = i64::try_from(self.bus_max_bytes).unwrap_or(i64::MAX);
                let bus = Bus::open(client, &store, max_bytes)
                    .await
                    .map_err(|error| LaunchError::Bus {
                        url: redact(url),
                        error,
                    })?;
                Some(Arc::new(bus))
            }
            _ => None,
        };
        Ok(Launched {
            store,
            guard,
            secret_key,
            bus,
            admin_token_file,
        })
    }

    fn store_error(&self, error: ServerError) -> LaunchError {
        match &self.database {
            Some(url) => LaunchError::Database {
                url: redact(url),
                error,
            },
            None => LaunchError::Data {
                path: self.data.clone(),
                error,
            },
        }
    }
}

/// Opens the store a server or a command runs on: PostgreSQL at `database`, else the embedded
/// SQLite in `data`.
pub async fn open_store(database: Option<&str>, data: &Path) -> Result<Store, LaunchError> {
    match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Store::open_postgres(url)
                .await
                .map_err(|e| LaunchError::Database {
                    url: redact(url),
                    error: e.into(),
                })
        }
        Some(url) => Err(LaunchError::Database {
            url: redact(url),
            error: ServerError::Invalid(
                "expected a postgres:// URL (without it, the embedded SQLite in the data directory is used)"
                    .into(),
            ),
        }),
        None => Store::open_sqlite(data)
            .await
            .map_err(|e| LaunchError::Data {
                path: data.to_path_buf(),
                error: e.into(),
            }),
    }
}

/// A URL without its secrets, for messages and logs: the password of its user information (or
/// all of it when it is one word, as a NATS token is), and the values of query parameters that
/// name a secret (`password`, `token`, `key`, `secret`, `sig`, …).
pub fn redact(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains(['/', '?', '#']) => {
            match url[s + 3..at].split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => format!("{}***{}", &url[..s + 3], &url[at..]),
            }
        }
        _ => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, format!("#{f}")),
            None => (query, String::new()),
        };
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if names_a_secret(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}{fragment}", redacted.join("&"));
    }
    out
}

/// Whether a query parameter's name says it holds a secret.
fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "token",
        "secret",
        "key",
        "sig",
        "auth",
        "credential",
    ]
    .iter()
    .any(|w| name.contains(w))
}

/// Marks a store as served by this process while it lives.
pub struct ServeGuard {
    _file: Option<std::fs::File>,
    _database: Option<osprey_store::ServedLock>,
}

/// Makes sure no other `osprey serve` runs on the same store unless they all share it through
/// a bus: several processes without one would each run detection, outputs and scans over the
/// same data (sending alerts twice, racing each other's cursors). SQLite: an exclusive lock on
/// `DATA/serve.lock`; PostgreSQL: a session advisory lock, shared by servers with a bus
/// (`shared`) and exclusive without.
pub async fn lock_store(store: &Store, data_dir: &Path, shared: bool) -> ServerResult<ServeGuard> {
    match store.backend() {
        osprey_store::Backend::Sqlite => {
            let path = data_dir.join("serve.lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(ServerError::io(path.display().to_string()))?;
            match file.try_lock() {
                Ok(()) => Ok(ServeGuard {
                    _file: Some(file),
                    _database: None,
                }),
                Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Invalid(
                    "another osprey serve uses this data directory".into(),
                )),
                Err(std::fs::TryLockError::Error(e)) => Err(ServerError::Io {
                    what: path.display().to_string(),
                    source: e,
                }),
            }
        }
        osprey_store::Backend::Postgres => match store.lock_served(shared).await {
            Ok(Some(lock)) => Ok(ServeGuard {
                _file: None,
                _database: Some(lock),
            }),
            Ok(None) if shared => Err(ServerError::Invalid(
                "an osprey serve without --bus uses this database; servers sharing a database all need the same --bus".into(),
            )),
            Ok(None) => Err(ServerError::Invalid(
                "another osprey serve uses this database; servers sharing a database need --bus nats://…".into(),
            )),
            Err(e) => Err(e.into()),
        },
    }
}

/// The file a first start writes the administrator's token to.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// On an empty store: creates the organization's administrator tenant and an admin token,
/// written to `DATA/admin-token` (mode 0600). Returns the file when it did.
pub async fn bootstrap(store: &Store, data_dir: &Path) -> ServerResult<Option<std::path::PathBuf>> {
    let _setup = store.lock_setup().await?;
    if store.administrator().await?.is_some() {
        return Ok(None);
    }
    let tenant = store
        .create_tenant("admin", TenantKind::Administrator)
        .await?;
    let (info, secret) = store
        .create_token(&tenant.id, "bootstrap", Role::Admin, None)
        .await?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_secret(&path, &secret).map_err(ServerError::io(path.display().to_string()))?;
    store
        .log_action(
            &tenant.id,
            "server",
            "organization.create",
            &tenant.id,
            serde_json::json!({ "admin_token": info.id }),
        )
        .await?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://osprey:hunter2@db:5432/osprey"),
            "postgres://osprey:***@db:5432/osprey"
        );
        assert_eq!(redact("nats://nats:4222"), "nats://nats:4222");
        assert_eq!(
            redact("nats://s3cr3t-token@nats:4222"),
            "nats://***@nats:4222"
        );
        assert_eq!(redact("postgres://user@db/x"), "postgres://***@db/x");
        assert_eq!(
            redact("postgres://db/x?sslmode=require&password=hunter2"),
            "postgres://db/x?sslmode=require&password=***"
        );
        assert_eq!(
            redact("https://hooks.example/in?token=abc&api_key=k#frag"),
            "https://hooks.example/in?token=***&api_key=***#frag"
        );
        assert_eq!(
            redact("https://hooks.example/a@b/path"),
            "https://hooks.example/a@b/path"
        );
    }

    #[tokio::test]
    async fn the_second_server_on_a_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch {
            data: dir.path().to_path_buf(),
            ..Launch::default()
        };
        let first = launch.open().await.unwrap();
        let token = first.admin_token_file.as_ref().expect("first start");
        assert!(token.is_file());
        let err = launch.open().await.err().expect("a second server");
        assert!(
            err.to_string()
                .contains("another osprey serve uses this data directory"),
            "{err}"
        );
        drop(first);
        let again = launch.open().await.unwrap();
        assert!(again.admin_token_file.is_none(), "not a first start");
    }

    #[tokio::test]
    async fn a_wrong_database_url_is_named_without_its_password() {
        let err = open_store(Some("mysql://u:secret@db/x"), Path::new("."))
            .await
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with("mysql://u:***@db/x: expected a postgres:// URL"),
            "{text}"
        );
    }
}
