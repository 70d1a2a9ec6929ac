//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a committed
//! transaction is on disk before [`SqliteStore::append`] returns. WAL checkpoints run on a
//! background thread with its own connection. One writer (the ledger's
//! writer thread) appends batches; readers (CLI, verification) may run concurrently.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{Appender, LogReader, Row, SpoolMark, StoredCheckpoint};
use crate::LedgerError;
use crate::event::Encoded;
use crate::merkle::{Tree, leaf_hash};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    leaf BLOB NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_request_id ON entries(request_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    note TEXT NOT NULL
);
";

/// A ledger in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: String,
    /// Tells the checkpointer thread to stop.
    stop: Arc<AtomicBool>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path)
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A BLOB or TEXT column as bytes (a tampered row may have changed the type).
fn bytes_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    let v = r.get_ref(i)?;
    v.as_bytes().map(<[u8]>::to_vec).or_else(|_| {
        Ok(v.as_i64()
            .map(|n| n.to_string().into_bytes())
            .unwrap_or_default())
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`. With `origin`, a new store records it
    /// and an existing one must have been created for the same origin.
    pub fn open(path: &Path, origin: Option<&str>) -> Result<Self, LedgerError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LedgerError::store(&name, &e))?;
        }
        let conn = Connection::open(path).map_err(|e| LedgerError::store(&name, &e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut store = Self {
            conn,
            path: name,
            stop: stop.clone(),
        };
        store
            .conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA wal_autocheckpoint=8192;",
            )
            .map_err(|e| store.err(&e))?;
        // WAL checkpoints (copying committed pages into the main file, and its fsync) run on
        // their own connection and thread every 50 ms, so the writer's commits do not stall
        // behind them (p99). A checkpoint only copies what is already durable in the WAL, so
        // durability is unchanged. The writer still checkpoints itself past 8192 WAL pages
        // (32 MiB) in case this thread cannot keep up, which bounds the WAL.
        let cp = Connection::open(path).map_err(|e| store.err(&e))?;
        std::thread::Builder::new()
            .name("aigis-ledger-checkpoint".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    // A failed or partial checkpoint loses nothing: the rows stay in the WAL.
                    let _ = cp.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
                }
            })
            .map_err(|e| LedgerError::Io {
                path: store.path.clone(),
                message: format!("WAL checkpoint thread: {e}"),
            })?;
        store
            .conn
            .execute_batch(SCHEMA)
            .map_err(|e| store.err(&e))?;
        if let Some(origin) = origin {
            match store.origin()? {
                None => {
                    store
                        .conn
                        .execute("INSERT INTO meta (k, v) VALUES ('origin', ?1)", [origin])
                        .map_err(|e| store.err(&e))?;
                }
                Some(o) if o == origin => {}
                Some(o) => {
                    return Err(LedgerError::Config(format!(
                        "{} belongs to the log {o:?}, not {origin:?}; use the key file it was created with",
                        store.path
                    )));
                }
            }
        }
        Ok(store)
    }

    /// Opens an existing store read-only-in-spirit (no origin check, nothing created besides
    /// the schema).
    pub fn open_existing(path: &Path) -> Result<Self, LedgerError> {
        if !path.exists() {
            return Err(LedgerError::Io {
                path: path.display().to_string(),
                message: "no such ledger (create it by running the gateway or `aigis audit init --store`)".into(),
            });
        }
        Self::open(path, None)
    }

    fn err(&self, e: &rusqlite::Error) -> LedgerError {
        LedgerError::store(&self.path, e)
    }

    /// The raw connection (tests use it to tamper with rows).
    #[cfg(any(test, feature = "test-util"))]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Number of rows (not necessarily the tree size if rows were tampered with).
    pub fn count(&self) -> Result<u64, LedgerError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get::<_, i64>(0))
            .map(u64_of)
            .map_err(|e| self.err(&e))
    }
}

impl Appender for SqliteStore {
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError> {
        let first = tree.size();
        let mut leaves = Vec::with_capacity(events.len());
        let path = self.path.clone();
        let err = |e: rusqlite::Error| LedgerError::store(&path, &e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO entries (idx, request_id, time_ms, leaf, event) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (i, ev) in events.iter_mut().enumerate() {
                ev.index = first + i as u64;
                let bytes = ev.canonical();
                let leaf = leaf_hash(&bytes);
                stmt.execute(params![
                    i64_of(ev.index),
                    ev.request_id,
                    i64_of(ev.time_ms),
                    &leaf[..],
                    bytes
                ])
                .map_err(err)?;
                leaves.push(leaf);
            }
        }
        if let Some(m) = mark {
            tx.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                params![format!("spool:{}", m.spool), m.through.to_string()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        for l in leaves {
            tree.push(l);
        }
        Ok(())
    }

    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT v FROM meta WHERE k = ?1",
                [format!("spool:{spool}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn load_tree(&mut self) -> Result<Tree, LedgerError> {
        let mut tree = Tree::new();
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf FROM entries ORDER BY idx")
            .map_err(|e| self.err(&e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| LedgerError::store(&self.path, &e))?;
        while let Some(r) = rows
            .next()
            .map_err(|e| LedgerError::store(&self.path, &e))?
        {
            let idx: i64 = r.get(0).map_err(|e| LedgerError::store(&self.path, &e))?;
            let leaf: Vec<u8> = r.get(1).map_err(|e| LedgerError::store(&self.path, &e))?;
            let leaf = leaf.try_into().map_err(|_| LedgerError::Corrupt {
                index: u64_of(idx),
                what: "stored leaf hash is not 32 bytes".into(),
            })?;
            if u64_of(idx) != tree.size() {
                return Err(LedgerError::Corrupt {
                    index: tree.size(),
                    what: format!(
                        "entry missing (next stored index is {idx}); run `aigis audit verify`"
                    ),
                });
            }
            tree.push(leaf);
        }
        Ok(tree)
    }

    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO checkpoints (size, time_ms, note) VALUES (?1, ?2, ?3)",
                params![i64_of(cp.size), i64_of(cp.time_ms), cp.note],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        self.conn
            .query_row(
                "SELECT size, time_ms, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| {
                    Ok(StoredCheckpoint {
                        size: u64_of(r.get(0)?),
                        time_ms: u64_of(r.get(1)?),
                        note: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }
}

impl LogReader for SqliteStore {
    fn scan(
        &mut self,
        from: u64,
        f: &mut dyn FnMut(Row) -> Result<bool, LedgerError>,
    ) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| LedgerError::store(&path, &e);
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf, event FROM entries WHERE idx >= ?1 ORDER BY idx")
            .map_err(err)?;
        let mut rows = stmt.query([i64_of(from)]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let row = Row {
                idx: u64_of(r.get(0).map_err(err)?),
                leaf: bytes_of(r, 1).map_err(err)?,
                event: bytes_of(r, 2).map_err(err)?,
            };
            if !f(row)? {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| LedgerError::store(&path, &e);
        let mut stmt = self
            .conn
            .prepare("SELECT size, time_ms, note FROM checkpoints ORDER BY size")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredCheckpoint {
                    size: u64_of(r.get(0)?),
                    time_ms: u64_of(r.get(1)?),
                    note: r.get(2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn find_request(&mut self, request_id: &str) -> Result<Vec<Row>, LedgerError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| LedgerError::store(&path, &e);
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf, event FROM entries WHERE request_id = ?1 ORDER BY idx")
            .map_err(err)?;
        let rows = stmt
            .query_map([request_id], |r| {
                Ok(Row {
                    idx: u64_of(r.get(0)?),
                    leaf: bytes_of(r, 1)?,
                    event: bytes_of(r, 2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn origin(&mut self) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = 'origin'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }
}
