//! The PostgreSQL store for fleets: many gateways append to one log.
//!
//! **One sequencer.** Indices come from a single-row table `aigis_ledger_head`, locked with
//! `SELECT … FOR UPDATE` inside the appending transaction, which inserts the batch at
//! `size .. size + n` and advances `size` before committing. An aborted transaction rolls
//! the head back with its rows, so indices have no gaps (a `SERIAL`/sequence would leave
//! one: sequences are not transactional). The lock serialises appenders only for the few
//! statements of one batch; batching keeps that cheap.
//!
//! **Tiles and checkpoints from committed entries.** After its commit, a writer reads every
//! leaf committed since its last view (its own and other gateways') so its tree matches the
//! log exactly; checkpoints are signed from that tree. Every gateway of the fleet uses the
//! same ledger key, so checkpoints of the same size are identical whoever signs them.
//!
//! The client is blocking to its caller: it owns a single-threaded tokio runtime and must be
//! used outside async contexts (the ledger writer thread, the CLI).
//!
//! **Connection loss.** A connection that breaks (a server restart, a failover, an operation
//! unanswered for [`OP_TIMEOUT`]) is replaced on the next operation, so the writer's probe
//! finds the store again once the server is back. A statement outside a transaction that
//! failed because the connection was gone is run once more on a new one (each is safe to
//! repeat), as is an append whose transaction broke before its `COMMIT` was sent. An append
//! whose `COMMIT` went unanswered is *in doubt*: the server may have committed it. The store
//! says it failed (so the writer spools or holds its events) and, on the next append, looks up
//! whether the batch's leaves are in the log at the indices it was given; if they are, the
//! events the writer appends again are recognised (by their encoding without the index) and
//! given their committed indices instead of being stored twice. The lookup first waits for the
//! head's row lock, which the batch's transaction holds until it has committed or aborted, so
//! a `COMMIT` still on its way is not taken for a failed one; a transaction whose client is
//! gone is ended by the server after `IDLE_IN_TRANSACTION`.
//!
//! **TLS** as libpq does it ([`tls_connector`]): the URL's `sslmode` decides. `prefer` (the
//! default) encrypts when the server offers TLS and `require` refuses a server without, neither
//! checking the certificate; `verify-full` checks it against the CA certificates of the PEM
//! file `PGSSLROOTCERT` names, or else the system's roots; `disable` never uses TLS.

use std::collections::HashMap;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Appender, LogReader, Row, SpoolMark, StoredCheckpoint};
use crate::LedgerError;
use crate::event::Encoded;
use crate::merkle::{Hash, Tree, leaf_hash};

mod tls;

pub use tls::{SslMode, tls_connector};

/// Rows fetched per round trip when scanning.
const PAGE: i64 = 10_000;

/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the answer to one operation (a statement, a batch's transaction, its
/// `COMMIT`); past it the connection is taken as lost and replaced on the next operation.
/// The writer thread waits on the store, so a server that stops answering without closing the
/// connection (a network partition) must not hold it, and the queue behind it, forever.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server ends a transaction of this store idle for longer (its client gone without the
/// server noticing: a network partition), releasing the head's lock, which every gateway of
/// the fleet needs to append. The store's own transactions never idle: they run statement
/// after statement.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(20);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aigis_ledger_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aigis_ledger_head (
    id INT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO aigis_ledger_head (id, size) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS aigis_ledger_entries (
    idx BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    leaf BYTEA NOT NULL,
    event BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS aigis_ledger_entries_request_id ON aigis_ledger_entries (request_id);
CREATE TABLE IF NOT EXISTS aigis_ledger_checkpoints (
    size BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    note TEXT NOT NULL
);
";

/// Advisory lock key serialising schema creation between gateways starting together.
const SCHEMA_LOCK: i64 = 0x6169_6769_736c_6467; // "aigislgd"

/// A ledger in a PostgreSQL database.
pub struct PgStore {
    rt: Runtime,
    client: Client,
    /// What a new connection needs: the URL as `tokio_postgres` reads it, and the connector.
    url: String,
    tls: MakeRustlsConnect,
    label: String,
    /// Reading the leaves after a commit failed: the caller's tree lags the log and is
    /// brought up to date before the next append.
    behind: bool,
    /// An operation went unanswered: the connection is replaced before the next one.
    broken: bool,
    doubt: Doubt,
}

/// What the store knows of batches whose `COMMIT` was sent but never answered.
#[derive(Default)]
struct Doubt {
    /// The last such batch, not looked up yet.
    unresolved: Option<Unresolved>,
    /// Events of such batches found in the log: each one's index by its encoding without the
    /// index, until the writer has appended them again (it was told the batch failed, so it
    /// does, before anything newer).
    known: HashMap<Vec<u8>, u64>,
}

/// A batch whose `COMMIT` went unanswered: the indices it was given (from `first`), its
/// leaves there, and its events' encodings without the index.
struct Unresolved {
    first: u64,
    leaves: Vec<Hash>,
    events: Vec<Vec<u8>>,
}

/// How an append's transaction failed.
enum Failed {
    /// Nothing of the batch was committed.
    NotWritten(LedgerError),
    /// The `COMMIT` went unanswered: the batch may be in the log ([`Doubt`]).
    InDoubt(LedgerError),
}

/// Runs `$op`, an expression of the connection `$c`, on a live connection within
/// [`OP_TIMEOUT`]. When it fails because the connection is gone, it runs once more on a new
/// one: only for statements that are safe to repeat (reads, idempotent writes).
macro_rules! on_live {
    ($store:expr, |$c:ident| $op:expr) => {{
        let mut retried = false;
        loop {
            $store.ready()?;
            let $c = &$store.client;
            let answer = within(&$store.rt, $op);
            match $store.settle(answer) {
                Err(_) if !retried && $store.lost() => retried = true,
                done => break done,
            }
        }
    }};
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.label)
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Column `i` of a row read back; a NULL or a value of another type (a schema altered by
/// hand) is an error that says so, never a panic.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, LedgerError> {
    r.try_get(i).map_err(|e| LedgerError::Store {
        store: "postgres".into(),
        message: format!("unreadable column {i} ({e}): the schema was altered"),
    })
}

/// A stored entry read back.
fn entry(r: &tokio_postgres::Row) -> Result<Row, LedgerError> {
    Ok(Row {
        idx: u64_of(col(r, 0)?),
        leaf: col(r, 1)?,
        event: col(r, 2)?,
    })
}

/// A stored checkpoint read back.
fn checkpoint(r: &tokio_postgres::Row) -> Result<StoredCheckpoint, LedgerError> {
    Ok(StoredCheckpoint {
        size: u64_of(col(r, 0)?),
        time_ms: u64_of(col(r, 1)?),
        note: col(r, 2)?,
    })
}

/// A PostgreSQL error with the server's message (tokio-postgres shows only "db error").
fn pg_err(label: &str, e: &tokio_postgres::Error) -> LedgerError {
    match e.as_db_error() {
        Some(db) => LedgerError::store(label, &format!("{} ({})", db.message(), db.code().code())),
        None => LedgerError::store(label, e),
    }
}

/// The URL without user info, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl PgStore {
    /// Connects, creates the schema if needed and, with `origin`, records or checks it.
    pub fn connect(url: &str, origin: Option<&str>) -> Result<Self, LedgerError> {
        let label = redact(url);
        let err = |e: &dyn std::fmt::Display| LedgerError::store(&label, e);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(&e))?;
        let root_cert = std::env::var_os("PGSSLROOTCERT").map(std::path::PathBuf::from);
        let (url, tls, _) = tls_connector(url, root_cert.as_deref()).map_err(|e| err(&e))?;
        let mut client = open(&rt, &label, &url, tls.clone())?;
        let schema = within(&rt, async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .await?;
            tx.batch_execute(SCHEMA).await?;
            tx.commit().await
        });
        let mut store = Self {
            rt,
            client,
            url,
            tls,
            label,
            behind: false,
            broken: false,
            doubt: Doubt::default(),
        };
        store.settle(schema)?;
        if let Some(origin) = origin {
            let existing = store.origin()?;
            match existing {
                None => {
                    store.execute(
                        "INSERT INTO aigis_ledger_meta (k, v) VALUES ('origin', $1) ON CONFLICT DO NOTHING",
                        &[&origin],
                    )?;
                }
                Some(o) if o == origin => {}
                Some(o) => {
                    return Err(LedgerError::Config(format!(
                        "{} belongs to the log {o:?}, not {origin:?}",
                        store.label
                    )));
                }
            }
        }
        Ok(store)
    }

    /// Whether the connection is gone (or was given up on): the next operation opens another.
    fn lost(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// Replaces a lost connection.
    fn ready(&mut self) -> Result<(), LedgerError> {
        if !self.lost() {
            return Ok(());
        }
        self.client = open(&self.rt, &self.label, &self.url, self.tls.clone())?;
        self.broken = false;
        tracing::info!(target: "aigis::security", store = %self.label, "ledger store reconnected");
        Ok(())
    }

    /// An operation's outcome: an unanswered one marks the connection lost.
    fn settle<T>(
        &mut self,
        answer: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, LedgerError> {
        match answer {
            Ok(done) => done.map_err(|e| pg_err(&self.label, &e)),
            Err(_) => {
                self.broken = true;
                Err(unanswered(&self.label))
            }
        }
    }

    /// Runs a query (see [`on_live`]).
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        on_live!(self, |c| c.query(sql, params))
    }

    /// Runs an idempotent statement (see [`on_live`]); returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, LedgerError> {
        on_live!(self, |c| c.execute(sql, params))
    }

    /// Runs the append transaction and rolls it back at the end (tests: an aborted
    /// transaction must leave no gap).
    #[cfg(any(test, feature = "test-util"))]
    pub fn append_and_abort(&mut self, events: &mut [Encoded]) -> Result<(), LedgerError> {
        let label = self.label.clone();
        let mut events: Vec<&mut Encoded> = events.iter_mut().collect();
        self.rt
            .block_on(async {
                let tx = self.client.transaction().await?;
                insert_batch(&tx, &mut events).await?;
                tx.rollback().await
            })
            .map_err(|e| pg_err(&label, &e))
    }

    /// Runs SQL (tests use it to tamper with rows).
    #[cfg(any(test, feature = "test-util"))]
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), LedgerError> {
        let label = self.label.clone();
        self.rt
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| pg_err(&label, &e))
    }

    /// The committed log size.
    fn head(&mut self) -> Result<u64, LedgerError> {
        let rows = self.query("SELECT size FROM aigis_ledger_head WHERE id = 1", &[])?;
        let head = rows.first().ok_or_else(|| LedgerError::Corrupt {
            index: 0,
            what: format!("{}: the row of aigis_ledger_head is missing", self.label),
        })?;
        Ok(u64_of(col(head, 0)?))
    }

    fn leaves_from(&mut self, tree: &mut Tree, end: u64) -> Result<(), LedgerError> {
        while tree.size() < end {
            let rows = self.query(
                "SELECT idx, leaf FROM aigis_ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
                &[&i64_of(tree.size()), &i64_of(end), &PAGE],
            )?;
            if rows.is_empty() {
                return Err(LedgerError::Corrupt {
                    index: tree.size(),
                    what: format!("committed entry missing below the head {end}"),
                });
            }
            for r in rows {
                let idx = u64_of(col(&r, 0)?);
                let leaf: Vec<u8> = col(&r, 1)?;
                let leaf = leaf.try_into().map_err(|_| LedgerError::Corrupt {
                    index: idx,
                    what: "stored leaf hash is not 32 bytes".into(),
                })?;
                if idx != tree.size() {
                    return Err(LedgerError::Corrupt {
                        index: tree.size(),
                        what: format!("entry missing (next stored index is {idx})"),
                    });
                }
                tree.push(leaf);
            }
        }
        Ok(())
    }
}

/// Opens a connection within [`CONNECT_TIMEOUT`], its driver running on `rt`.
fn open(
    rt: &Runtime,
    label: &str,
    url: &str,
    tls: MakeRustlsConnect,
) -> Result<Client, LedgerError> {
    rt.block_on(async {
        let (client, conn) = timeout(CONNECT_TIMEOUT, tokio_postgres::connect(url, tls))
            .await
            .map_err(|_| LedgerError::store(label, &"no connection within 10 s"))?
            .map_err(|e| pg_err(label, &e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(error = %e, "ledger PostgreSQL connection ended");
            }
        });
        let setting = format!(
            "SET idle_in_transaction_session_timeout = {}",
            IDLE_IN_TRANSACTION.as_millis()
        );
        timeout(OP_TIMEOUT, client.batch_execute(&setting))
            .await
            .map_err(|_| unanswered(label))?
            .map_err(|e| pg_err(label, &e))?;
        Ok(client)
    })
}

/// Runs `op` on `rt` for at most [`OP_TIMEOUT`].
fn within<F: std::future::Future>(
    rt: &Runtime,
    op: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    rt.block_on(async { timeout(OP_TIMEOUT, op).await })
}

fn unanswered(label: &str) -> LedgerError {
    LedgerError::store(
        label,
        &format!("no answer within {} s", OP_TIMEOUT.as_secs()),
    )
}

/// Locks the head, inserts `events` at the next indices (setting `index`), advances the head.
/// Returns the first index and the events' leaves.
async fn insert_batch(
    tx: &tokio_postgres::Transaction<'_>,
    events: &mut [&mut Encoded],
) -> Result<(u64, Vec<Hash>), tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT size FROM aigis_ledger_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let first = u64_of(row.try_get(0)?);
    let n = events.len();
    let (mut idx, mut rid, mut time, mut leaf, mut ev) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut leaves = Vec::with_capacity(n);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = first + i as u64;
        let bytes = e.canonical();
        idx.push(i64_of(e.index));
        rid.push(e.request_id.clone());
        time.push(i64_of(e.time_ms));
        let hash = leaf_hash(&bytes);
        leaf.push(hash.to_vec());
        leaves.push(hash);
        ev.push(bytes);
    }
    tx.execute(
        "INSERT INTO aigis_ledger_entries (idx, request_id, time_ms, leaf, event) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[])",
        &[&idx, &rid, &time, &leaf, &ev],
    )
    .await?;
    tx.execute(
        "UPDATE aigis_ledger_head SET size = $1 WHERE id = 1",
        &[&i64_of(first + n as u64)],
    )
    .await?;
    Ok((first, leaves))
}

impl PgStore {
    /// Inserts the events of `events` not already in the log, with `mark`, in one transaction;
    /// returns the head after it.
    fn commit_batch(
        &mut self,
        events: &mut [Encoded],
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<u64, Failed> {
        let mut fresh = self.fresh(events);
        let client = &mut self.client;
        let written = within(&self.rt, async {
            let tx = client.transaction().await?;
            let inserted = insert_batch(&tx, &mut fresh).await?;
            if let Some(m) = mark {
                tx.execute(
                    "INSERT INTO aigis_ledger_meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    &[&format!("spool:{}", m.spool), &m.through.to_string()],
                )
                .await?;
            }
            Ok::<_, tokio_postgres::Error>((tx, inserted))
        });
        let (tx, (first, leaves)) = match written {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => return Err(Failed::NotWritten(pg_err(&self.label, &e))),
            Err(_) => {
                self.broken = true;
                return Err(Failed::NotWritten(unanswered(&self.label)));
            }
        };
        let end = first + leaves.len() as u64;
        let error = match within(&self.rt, tx.commit()) {
            Ok(Ok(())) => return Ok(end),
            // The server answered: it refused the commit.
            Ok(Err(e)) if e.as_db_error().is_some() => {
                return Err(Failed::NotWritten(pg_err(&self.label, &e)));
            }
            Ok(Err(e)) => pg_err(&self.label, &e),
            Err(_) => unanswered(&self.label),
        };
        self.broken = true;
        if !leaves.is_empty() {
            tracing::warn!(target: "aigis::security", store = %self.label, first, events = leaves.len(), error = %error, "a batch's commit went unanswered; whether it is in the log is looked up before the next append");
            self.doubt.unresolved = Some(Unresolved {
                first,
                leaves,
                events: fresh.iter().map(|e| e.unindexed().to_vec()).collect(),
            });
        }
        Err(Failed::InDoubt(error))
    }

    /// The events of `events` to insert: an event [`Doubt::known`] holds gets its index there
    /// and is left out.
    fn fresh<'e>(&self, events: &'e mut [Encoded]) -> Vec<&'e mut Encoded> {
        let known = &self.doubt.known;
        events
            .iter_mut()
            .filter_map(|e| match known.get(e.unindexed()) {
                Some(&index) => {
                    e.index = index;
                    None
                }
                None => Some(e),
            })
            .collect()
    }

    /// After `events` committed: forgets the known events among them. The rest are forgotten
    /// too when no event of a batch was known: the writer appends them again first, so none
    /// will come after.
    fn forget_known(&mut self, events: &[Encoded]) {
        let known = &mut self.doubt.known;
        if known.is_empty() || events.is_empty() {
            return;
        }
        let seen = events
            .iter()
            .filter(|e| known.remove(e.unindexed()).is_some())
            .count();
        if seen == 0 {
            known.clear();
        } else {
            tracing::info!(target: "aigis::security", store = %self.label, events = seen, "events of a batch whose commit went unanswered were in the log already; not stored again");
        }
    }

    /// Looks up the batch whose `COMMIT` went unanswered: it is in the log when its leaves are
    /// at its indices (a leaf binds the event and its index, and the batch was one
    /// transaction).
    ///
    /// The batch's transaction may still be running on its old connection (its `COMMIT` still
    /// on the way, or its connection's loss not noticed yet): looked up then, it would be
    /// missing, and then commit, and the events appended again would be stored twice. It holds
    /// the head's row lock until it commits or aborts, so the lookup first waits for that lock
    /// (the server ends such a transaction after [`IDLE_IN_TRANSACTION`]).
    fn resolve_doubt(&mut self) -> Result<(), LedgerError> {
        let Some(batch) = &self.doubt.unresolved else {
            return Ok(());
        };
        let (first, end) = (batch.first, batch.first + batch.leaves.len() as u64);
        self.query(
            "SELECT 1 FROM aigis_ledger_head WHERE id = 1 FOR SHARE",
            &[],
        )?;
        let rows = self.query(
            "SELECT leaf FROM aigis_ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            &[&i64_of(first), &i64_of(end)],
        )?;
        let Some(batch) = self.doubt.unresolved.take() else {
            return Ok(());
        };
        let stored = rows
            .iter()
            .map(|r| col::<Vec<u8>>(r, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let committed = stored.len() == batch.leaves.len()
            && stored.iter().zip(&batch.leaves).all(|(s, l)| s == l);
        tracing::warn!(target: "aigis::security", store = %self.label, first, committed, "looked up the batch whose commit went unanswered");
        if committed {
            self.doubt
                .known
                .extend(batch.events.into_iter().zip(first..));
        }
        Ok(())
    }
}

impl Appender for PgStore {
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError> {
        let mut retried = false;
        let end = loop {
            self.ready()?;
            self.resolve_doubt()?;
            if self.behind {
                let head = self.head()?;
                self.leaves_from(tree, head)?;
                self.behind = false;
            }
            match self.commit_batch(events, mark) {
                Ok(end) => {
                    self.forget_known(events);
                    break end;
                }
                // Nothing was written and the connection is gone: once more on a new one.
                Err(Failed::NotWritten(_)) if !retried && self.lost() => retried = true,
                Err(Failed::NotWritten(e) | Failed::InDoubt(e)) => return Err(e),
            }
        };
        // Committed: the batch is in the log whatever happens next, and reporting it failed
        // would have the writer spool it and append it twice. A tree left behind only delays
        // the next checkpoint; it catches up before the next append.
        if let Err(e) = self.leaves_from(tree, end) {
            tracing::warn!(target: "aigis::security", store = %self.label, error = %e, "reading back the log after a commit failed; catching up before the next append");
            self.behind = true;
        }
        Ok(())
    }

    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError> {
        let rows = self.query(
            "SELECT v FROM aigis_ledger_meta WHERE k = $1",
            &[&format!("spool:{spool}")],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(0))
    }

    fn load_tree(&mut self) -> Result<Tree, LedgerError> {
        let head = self.head()?;
        let mut tree = Tree::new();
        self.leaves_from(&mut tree, head)?;
        self.behind = false;
        Ok(tree)
    }

    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO aigis_ledger_checkpoints (size, time_ms, note) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&i64_of(cp.size), &i64_of(cp.time_ms), &cp.note],
        )
        .map(drop)
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let rows = self.query(
            "SELECT size, time_ms, note FROM aigis_ledger_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )?;
        rows.first().map(checkpoint).transpose()
    }
}

impl LogReader for PgStore {
    fn scan(
        &mut self,
        from: u64,
        f: &mut dyn FnMut(Row) -> Result<bool, LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut next = i64_of(from);
        loop {
            let rows = self.query(
                "SELECT idx, leaf, event FROM aigis_ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&next, &PAGE],
            )?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            let last: i64 = col(last, 0)?;
            for r in &rows {
                if !f(entry(r)?)? {
                    return Ok(());
                }
            }
            // No entry can follow the largest index: only an edited row has it.
            next = last.checked_add(1).ok_or_else(|| LedgerError::Corrupt {
                index: u64_of(last),
                what: format!(
                    "{}: a row has the largest possible index, which no log reaches: the row was edited",
                    self.label
                ),
            })?;
        }
    }

    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let rows = self.query(
            "SELECT size, time_ms, note FROM aigis_ledger_checkpoints ORDER BY size",
            &[],
        )?;
        rows.iter().map(checkpoint).collect()
    }

    fn find_request(&mut self, request_id: &str) -> Result<Vec<Row>, LedgerError> {
        let rows = self.query(
            "SELECT idx, leaf, event FROM aigis_ledger_entries WHERE request_id = $1 ORDER BY idx",
            &[&request_id],
        )?;
        rows.iter().map(entry).collect()
    }

    fn origin(&mut self) -> Result<Option<String>, LedgerError> {
        let rows = self.query("SELECT v FROM aigis_ledger_meta WHERE k = 'origin'", &[])?;
        rows.first().map(|r| col(r, 0)).transpose()
    }
}
