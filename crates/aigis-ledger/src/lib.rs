//! aigis's tamper-evident audit ledger.
//!
//! Every AI call and admin action becomes a leaf of an append-only RFC 6962 Merkle log;
//! checkpoints are C2SP signed notes (Ed25519, with an ML-DSA-65 cosignature); any record can
//! be proven included and any two checkpoints proven consistent, offline, with only the
//! public verifier keys.
//!
//! - [`merkle`]: hashing, inclusion and consistency proofs (generation and verification);
//! - [`note`], [`checkpoint`]: signed notes and checkpoints;
//! - [`tiles`]: the tlog-tiles layout;
//! - [`event`]: the canonical, versioned event schema (content only as keyed digests);
//! - [`store`]: SQLite (embedded) and PostgreSQL (fleet) stores;
//! - [`writer`]: the bounded queue and the batching writer thread that signs checkpoints;
//! - [`content`]: optional content capture, sealed per tenant with age;
//! - [`spool`]: the local durable queue used while the store is down;
//! - [`audit`]: verification of a whole log, receipts, export.

pub mod audit;
mod canonical;
pub mod checkpoint;
pub mod content;
pub mod event;
pub mod export;
pub mod keys;
pub mod merkle;
pub mod note;
mod sha256;
pub mod spool;
pub mod store;
pub mod tiles;
pub mod time;
pub mod writer;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use event::{ContentKey, Encoded, Event, EventKind, EventRef};
pub use keys::{LedgerKeys, LedgerVerifiers};
pub use writer::{Ack, Ledger, WriterConfig};

/// Errors of the ledger (stores, keys, queue). Messages name the file, store or entry and
/// never contain key material.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A store operation failed.
    #[error("ledger store {store}: {message}")]
    Store {
        /// Store (path or URL without credentials).
        store: String,
        /// The database's message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A key file or verifier key is unusable.
    #[error("ledger key: {what}")]
    Key {
        /// What is wrong.
        what: String,
    },
    /// Invalid configuration.
    #[error("ledger config: {0}")]
    Config(String),
    /// A stored entry is unreadable.
    #[error("entry {index}: {what}")]
    Corrupt {
        /// Entry index.
        index: u64,
        /// What is wrong.
        what: String,
    },
    /// An event too long to record: every reader refuses events over
    /// [`event::MAX_EVENT_LEN`], so it is refused before it reaches the store or the spool.
    #[error(
        "the event of request {request_id:?} encodes to {len} bytes (with the longest index); the limit is {} bytes: shorten its long fields",
        event::MAX_EVENT_LEN
    )]
    EventTooLong {
        /// The event's request id (its first 64 characters).
        request_id: String,
        /// Its canonical length, counted with a 20-digit index.
        len: usize,
    },
    /// The queue is full (back-pressure) or the writer has stopped.
    #[error("ledger queue {0}")]
    Unavailable(&'static str),
    /// The store failed and the spool is full or disabled: the record could not be made durable.
    #[error("ledger cannot record: {0}")]
    FailClosed(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl LedgerError {
    pub(crate) fn store(store: &str, e: &dyn std::fmt::Display) -> Self {
        Self::Store {
            store: store.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Standard padded base64 (RFC 4648 §4), as every C2SP format uses.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64 strictly.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
