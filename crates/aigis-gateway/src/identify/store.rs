//! Where API keys live: embedded SQLite by default, PostgreSQL for a fleet. Both hold the same
//! schema, created and upgraded by the numbered migrations below. Only HMACs of keys are
//! stored, never keys.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;
use tokio::time::timeout;

/// Longest wait for a PostgreSQL connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one key-store statement: keys are looked up on the request path, so a
/// server that stops answering fails those requests (503) instead of holding them.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the schema migration at open (it waits for another gateway migrating).
const MIGRATE_TIMEOUT: Duration = Duration::from_mins(1);
/// After a failed connection attempt, requests fail at once for this long instead of each
/// trying again.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// A stored API key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Stable id (UUID).
    pub id: String,
    /// The public lookup part of the key (`aigis_<prefix>_…`).
    pub prefix: String,
    /// Human name, e.g. `ci-bot`.
    pub name: String,
    /// `user` or `service`.
    pub kind: String,
    /// Teams the key acts for.
    pub teams: Vec<String>,
    /// Roles, e.g. `reader`, `admin`.
    pub roles: Vec<String>,
    /// HMAC-SHA256(pepper, key).
    pub hash: Vec<u8>,
    /// Which pepper made `hash`.
    pub pepper_version: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` = never.
    pub expires_at: Option<i64>,
    /// Unix seconds; `None` = active.
    pub revoked_at: Option<i64>,
}

impl KeyRecord {
    /// The record as shown to operators: everything but the HMAC.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "prefix": self.prefix, "name": self.name, "kind": self.kind,
            "teams": self.teams, "roles": self.roles, "created_at": self.created_at,
            "expires_at": self.expires_at, "revoked_at": self.revoked_at,
        })
    }

    /// Whether `which` names this key by id, prefix or name.
    pub fn is_named(&self, which: &str) -> bool {
        self.id == which || self.prefix == which || self.name == which
    }
}

/// A store failure (the message never contains key material).
#[derive(Debug, thiserror::Error)]
#[error("key store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Records which migrations a database has had.
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS aigis_key_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Schema migrations, applied in order, each once (version = index + 1). Same SQL for SQLite
/// and PostgreSQL. Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS aigis_api_keys (
        id TEXT PRIMARY KEY,
        prefix TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        teams TEXT NOT NULL,
        roles TEXT NOT NULL,
        hash TEXT NOT NULL,
        pepper_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
    )"];

const COLUMNS: &str = "id, prefix, name, kind, teams, roles, hash, pepper_version, created_at, expires_at, revoked_at";

/// An opened key store.
#[derive(Clone)]
pub enum KeyStore {
    /// Embedded SQLite file.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// PostgreSQL (one connection, reconnected on failure).
    Postgres(Arc<Postgres>),
}

/// A PostgreSQL connection that reconnects when it breaks or stops answering. Statements run
/// concurrently on it (tokio-postgres pipelines them); the lock is held only to replace it.
pub struct Postgres {
    url: String,
    conn: AsyncMutex<Conn>,
}

#[derive(Default)]
struct Conn {
    client: Option<Arc<tokio_postgres::Client>>,
    /// No new attempt before this, after one failed.
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "KeyStore::Sqlite",
            Self::Postgres(_) => "KeyStore::Postgres",
        })
    }
}

fn join(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn split(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

use super::to_hex as hex;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

impl KeyStore {
    /// Opens (and migrates) `sqlite:PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.to_owned();
            let conn = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                // The store holds key HMACs: readable by the gateway's user only.
                if !std::path::Path::new(&path).exists() {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(err)?;
                }
                let conn = rusqlite::Connection::open(&path).map_err(err)?;
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(err)?;
                conn.pragma_update(None, "busy_timeout", 5000)
                    .map_err(err)?;
                for m in MIGRATIONS {
                    conn.execute_batch(m).map_err(err)?;
                }
                Ok(conn)
            })
            .await
            .map_err(err)??;
            return Ok(Self::Sqlite(Arc::new(Mutex::new(conn))));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pg = Postgres {
                url: url.to_owned(),
                conn: AsyncMutex::default(),
            };
            let mut client = pg.connect().await?;
            timeout(MIGRATE_TIMEOUT, migrate(&mut client))
                .await
                .map_err(|_| {
                    StoreError(format!(
                        "schema migration unanswered within {} s",
                        MIGRATE_TIMEOUT.as_secs()
                    ))
                })??;
            pg.conn.lock().await.client = Some(Arc::new(client));
            return Ok(Self::Postgres(Arc::new(pg)));
        }
        Err(StoreError(format!(
            "unsupported store URL (use sqlite:PATH or postgres://…): {}",
            redact_url(url)
        )))
    }

    async fn sqlite<T: Send + 'static>(
        conn: &Arc<Mutex<rusqlite::Connection>>,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn).map_err(err)
        })
        .await
        .map_err(err)?
    }

    /// The key with this prefix, if any.
    pub async fn by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM aigis_api_keys WHERE prefix = $1");
        self.query(sql, vec![prefix.to_owned()])
            .await
            .map(|mut v| v.pop())
    }

    /// Every key, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.query(
            format!("SELECT {COLUMNS} FROM aigis_api_keys ORDER BY created_at, name"),
            vec![],
        )
        .await
    }

    async fn query(&self, sql: String, params: Vec<String>) -> Result<Vec<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(conn) => {
                Self::sqlite(conn, move |c| {
                    let mut stmt = c.prepare_cached(&sql.replace("$1", "?1"))?;
                    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                        Ok(KeyRecord {
                            id: r.get(0)?,
                            prefix: r.get(1)?,
                            name: r.get(2)?,
                            kind: r.get(3)?,
                            teams: split(&r.get::<_, String>(4)?),
                            roles: split(&r.get::<_, String>(5)?),
                            hash: unhex(&r.get::<_, String>(6)?),
                            pepper_version: r.get(7)?,
                            created_at: r.get(8)?,
                            expires_at: r.get(9)?,
                            revoked_at: r.get(10)?,
                        })
                    })?;
                    rows.collect()
                })
                .await
            }
            Self::Postgres(pg) => {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let (sql, refs) = (&sql, &refs);
                let rows = pg.run(|c| async move { c.query(sql, refs).await }).await?;
                Ok(rows
                    .iter()
                    .map(|r| KeyRecord {
                        id: r.get(0),
                        prefix: r.get(1),
                        name: r.get(2),
                        kind: r.get(3),
                        teams: split(r.get(4)),
                        roles: split(r.get(5)),
                        hash: unhex(r.get(6)),
                        pepper_version: u32::try_from(r.get::<_, i32>(7)).unwrap_or(0),
                        created_at: r.get(8),
                        expires_at: r.get(9),
                        revoked_at: r.get(10),
                    })
                    .collect())
            }
        }
    }

    /// Stores a new key.
    pub async fn insert(&self, k: &KeyRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO aigis_api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let k = k.clone();
        match self {
            Self::Sqlite(conn) => {
                let sql = (1..=11)
                    .rev()
                    .fold(sql, |s, i| s.replace(&format!("${i}"), &format!("?{i}")));
                Self::sqlite(conn, move |c| {
                    c.execute(
                        &sql,
                        rusqlite::params![
                            k.id,
                            k.prefix,
                            k.name,
                            k.kind,
                            join(&k.teams),
                            join(&k.roles),
                            hex(&k.hash),
                            k.pepper_version,
                            k.created_at,
                            k.expires_at,
                            k.revoked_at
                        ],
                    )
                    .map(|_| ())
                })
                .await
            }
            Self::Postgres(pg) => {
                let (teams, roles, hash) = (join(&k.teams), join(&k.roles), hex(&k.hash));
                let version = i32::try_from(k.pepper_version).unwrap_or(i32::MAX);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
                    &k.id,
                    &k.prefix,
                    &k.name,
                    &k.kind,
                    &teams,
                    &roles,
                    &hash,
                    &version,
                    &k.created_at,
                    &k.expires_at,
                    &k.revoked_at,
                ];
                let (sql, params) = (&sql, &params);
                pg.run(|c| async move { c.execute(sql, params).await })
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Revokes the active key whose id, prefix or name is `which`; returns how many were revoked.
    pub async fn revoke(&self, which: &str, now: i64) -> Result<u64, StoreError> {
        let sql = "UPDATE aigis_api_keys SET revoked_at = $1 WHERE revoked_at IS NULL AND (id = $2 OR prefix = $2 OR name = $2)";
        let which = which.to_owned();
        match self {
            Self::Sqlite(conn) => {
                let sql = sql.replace("$1", "?1").replace("$2", "?2");
                Self::sqlite(conn, move |c| {
                    c.execute(&sql, rusqlite::params![now, which])
                        .map(|n| n as u64)
                })
                .await
            }
            Self::Postgres(pg) => {
                let which = &which;
                pg.run(|c| async move { c.execute(sql, &[&now, which]).await })
                    .await
            }
        }
    }
}

/// Creates the migrations table and applies the migrations a database lacks. One gateway
/// migrates at a time: the others wait on the advisory lock.
async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    client.batch_execute(MIGRATIONS_TABLE).await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    tx.batch_execute("SELECT pg_advisory_xact_lock(7151100)")
        .await
        .map_err(err)?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM aigis_key_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    for (version, m) in (1i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        tx.batch_execute(m).await.map_err(err)?;
        tx.execute(
            "INSERT INTO aigis_key_migrations (version, applied_at) VALUES ($1, $2)",
            &[&version, &super::api_key::now()],
        )
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)?;
    Ok(())
}

impl Postgres {
    async fn connect(&self) -> Result<tokio_postgres::Client, StoreError> {
        // TLS as the ledger's store does it: libpq's `sslmode`, `verify-full` checks the server.
        let root_cert = std::env::var_os("PGSSLROOTCERT").map(std::path::PathBuf::from);
        let (url, tls, _) =
            aigis_ledger::store::postgres::tls_connector(&self.url, root_cert.as_deref())
                .map_err(StoreError)?;
        let shown = redact_url(&self.url);
        let (client, connection) = timeout(CONNECT_TIMEOUT, tokio_postgres::connect(&url, tls))
            .await
            .map_err(|_| {
                StoreError(format!(
                    "cannot connect to {shown}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| StoreError(format!("cannot connect to {shown}: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "key store connection closed");
            }
        });
        Ok(client)
    }

    /// The connection, re-established first if it was closed or given up on. After a failed
    /// attempt, callers fail at once for [`RECONNECT_BACKOFF`] instead of queueing attempts.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, StoreError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.client.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        conn.client = None;
        if conn.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(StoreError(format!(
                "{} is unreachable; retrying shortly",
                redact_url(&self.url)
            )));
        }
        match self.connect().await {
            Ok(c) => {
                let c = Arc::new(c);
                *conn = Conn {
                    client: Some(c.clone()),
                    retry_at: None,
                };
                Ok(c)
            }
            Err(e) => {
                conn.retry_at = Some(Instant::now() + RECONNECT_BACKOFF);
                Err(e)
            }
        }
    }

    /// Runs `op` on the connection within [`QUERY_TIMEOUT`]. A connection that does not answer
    /// in time is dropped (a half-open connection would otherwise be reused until the kernel
    /// gives up on it, after minutes), so the next statement opens another.
    async fn run<T, F: Future<Output = Result<T, tokio_postgres::Error>>>(
        &self,
        op: impl FnOnce(Arc<tokio_postgres::Client>) -> F,
    ) -> Result<T, StoreError> {
        let client = self.client().await?;
        if let Ok(done) = timeout(QUERY_TIMEOUT, op(client.clone())).await {
            return done.map_err(err);
        }
        let mut conn = self.conn.lock().await;
        if conn
            .client
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &client))
        {
            conn.client = None;
        }
        tracing::warn!(target: "aigis::security", store = %redact_url(&self.url), "key store did not answer; reconnecting");
        Err(StoreError(format!(
            "no answer within {} s",
            QUERY_TIMEOUT.as_secs()
        )))
    }
}

/// A store URL for messages: the password, if any, is hidden.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
