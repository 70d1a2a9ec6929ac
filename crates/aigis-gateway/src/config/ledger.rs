//! `[ledger]`: the tamper-evident audit ledger every request and admin action is recorded in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerStore {
    /// `file:DIR`: the append-only file set (resolved from the config file's folder).
    File(PathBuf),
    /// `sqlite:PATH` (resolved from the config file's folder).
    Sqlite(PathBuf),
    /// `postgres://…`: shared by a fleet.
    Postgres(String),
}

/// What to do when the store cannot take a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOnError {
    /// Write to a local durable spool (bounded by `spool_max`), drain it later; a full spool
    /// fails closed.
    Spool,
    /// Refuse traffic (503) until the store is back.
    FailClosed,
}

/// `[ledger]`
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The store.
    pub store: LedgerStore,
    /// The ledger key file (`aigis audit init` creates it).
    pub signing_key: PathBuf,
    /// How often a checkpoint is signed while the log grows.
    pub checkpoint_every: Duration,
    /// Shortest time between two batch commits (group commit): each commit is one `write` and
    /// one `fdatasync`, so a longer interval costs less CPU and disk I/O per request.
    pub commit_interval: Duration,
    /// What happens when the store fails.
    pub on_store_error: LedgerOnError,
    /// Largest spool, in bytes.
    pub spool_max: u64,
    /// The spool file: beside a file or SQLite store (`PATH.spool`), else beside the key file.
    pub spool: PathBuf,
    /// `content = "encrypted"`: routes without their own `content` capture content.
    pub capture_default: bool,
    /// `[ledger.capture]`: where captured content is sealed and to whom, per tenant.
    pub capture: Option<Arc<aigis_ledger::content::ContentStore>>,
}

impl LedgerConfig {
    /// Whether requests on a route whose own setting is `route` capture encrypted content.
    pub fn captures(&self, route: Option<bool>) -> bool {
        route.unwrap_or(self.capture_default)
    }
}
