//! Where the log lives. A store appends batches durably (one transaction, acknowledged only
//! after commit), assigns gap-free indices, keeps signed checkpoints, and reads entries back
//! in index order for verification, proofs and export.
//!
//! - [`file`](mod@file): the embedded default, an append-only file set (one `write` and one
//!   `fdatasync` per batch);
//! - [`sqlite`]: embedded, one SQLite file (WAL, `synchronous=FULL`: a commit is on disk);
//! - [`postgres`]: fleets; many gateways append concurrently, one sequencer row assigns
//!   indices inside each appending transaction, so an aborted transaction leaves no gap.

pub mod file;
pub mod postgres;
pub mod sqlite;

use crate::LedgerError;
use crate::event::Encoded;
use crate::merkle::Tree;

/// One stored entry.
#[derive(Debug, Clone)]
pub struct Row {
    /// Index column.
    pub idx: u64,
    /// Stored leaf hash (a cache of `leaf_hash(event)`; verification recomputes it).
    pub leaf: Vec<u8>,
    /// Canonical event bytes.
    pub event: Vec<u8>,
}

/// One stored checkpoint.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// When it was signed (ms since the epoch).
    pub time_ms: u64,
    /// The signed note.
    pub note: String,
}

/// Spool progress committed with a drained batch: the first `through` events of the spool
/// `spool` are in the log.
#[derive(Debug, Clone, Copy)]
pub struct SpoolMark<'a> {
    /// The spool's id.
    pub spool: &'a str,
    /// Events of that spool committed so far (this batch included).
    pub through: u64,
}

/// The write side, driven by the writer thread.
pub trait Appender: Send {
    /// Appends `events` in one durable transaction, setting each event's `index`, and brings
    /// `tree` up to date with every committed entry (including other writers').
    fn append(&mut self, events: &mut [Encoded], tree: &mut Tree) -> Result<(), LedgerError> {
        self.append_marked(events, tree, None)
    }
    /// [`Appender::append`], recording `mark` in the same transaction.
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError>;
    /// How many events of spool `spool` the store holds (0 when it never saw it).
    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError>;
    /// Loads every committed leaf hash into a fresh tree.
    fn load_tree(&mut self) -> Result<Tree, LedgerError>;
    /// Stores a signed checkpoint (idempotent per size).
    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError>;
    /// The checkpoint with the largest size.
    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError>;
}

/// The read side, used by verification, proofs and export.
pub trait LogReader {
    /// Calls `f` for every entry with index ≥ `from`, in index order, until `f` returns false.
    fn scan(
        &mut self,
        from: u64,
        f: &mut dyn FnMut(Row) -> Result<bool, LedgerError>,
    ) -> Result<(), LedgerError>;
    /// Every checkpoint, by increasing size.
    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, LedgerError>;
    /// Entries recorded under `request_id`.
    fn find_request(&mut self, request_id: &str) -> Result<Vec<Row>, LedgerError>;
    /// The origin recorded when the log was created.
    fn origin(&mut self) -> Result<Option<String>, LedgerError>;
}

/// Builds the in-memory tree from a reader (leaves in index order).
pub fn tree_from(reader: &mut dyn LogReader) -> Result<Tree, LedgerError> {
    let mut tree = Tree::new();
    reader.scan(0, &mut |row| {
        tree.push(crate::merkle::leaf_hash(&row.event));
        Ok(true)
    })?;
    Ok(tree)
}

/// Opens a store for reading (CLI, audits). A file or SQLite store must exist.
pub fn open_reader(url: &StoreUrl) -> Result<Box<dyn LogReader>, LedgerError> {
    match url {
        StoreUrl::File(p) => Ok(Box::new(file::FileStore::open_existing(p)?)),
        StoreUrl::Sqlite(p) => Ok(Box::new(sqlite::SqliteStore::open_existing(p)?)),
        StoreUrl::Postgres(u) => Ok(Box::new(postgres::PgStore::connect(u, None)?)),
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `file:DIR`.
    File(std::path::PathBuf),
    /// `sqlite:PATH`.
    Sqlite(std::path::PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl StoreUrl {
    /// Parses `file:DIR`, `sqlite:PATH` or `postgres://…`.
    pub fn parse(s: &str) -> Result<Self, LedgerError> {
        if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err(LedgerError::Config(
                    "`file:` needs a folder, e.g. file:/var/lib/aigis/ledger".into(),
                ));
            }
            return Ok(Self::File(p.into()));
        }
        if let Some(p) = s.strip_prefix("sqlite:") {
            if p.is_empty() {
                return Err(LedgerError::Config(
                    "`sqlite:` needs a path, e.g. sqlite:/var/lib/aigis/ledger.db".into(),
                ));
            }
            return Ok(Self::Sqlite(p.into()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        Err(LedgerError::Config(format!(
            "store {s:?} is none of file:DIR, sqlite:PATH, postgres://…"
        )))
    }
}
