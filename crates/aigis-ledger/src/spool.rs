//! The spool: a local, fsync-durable queue of events that could not be written to the store
//! (`on_store_error = "spool"`). Bounded by `spool_max` bytes: when full, the ledger fails
//! closed. The writer drains it into the store, oldest first, as soon as the store works.
//!
//! File format: a header `AIGSPL1\n || 16-byte spool id`, then records of `u32 length
//! (big-endian) || canonical event || first 8 bytes of SHA-256(event)`. A torn record at the
//! end (crash mid-write) is cut off when the spool is opened; it was never acknowledged.
//!
//! **Exactly once.** The id is fresh each time the spool is emptied. Draining commits each
//! batch together with a mark "spool ID: the first N events are in the log" in the same
//! store transaction ([`Appender::append_marked`]); a drain after a crash between that commit
//! and the truncation skips what the mark covers, so no event is appended twice. (A file
//! without the header, from an older version, is read from its start under a new id.)

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};

use crate::LedgerError;
use crate::event::{Encoded, Event, MAX_EVENT_LEN};
use crate::merkle::Tree;
use crate::store::{Appender, SpoolMark};

const MAGIC: &[u8; 8] = b"AIGSPL1\n";
const HEADER_LEN: u64 = 24;

/// A durable local queue of events.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
    /// Bytes of records (the header excluded).
    len: u64,
    max: u64,
    id: String,
    /// Where records start (after the header; 0 for a file of the older format).
    start: u64,
}

fn fresh_id() -> Result<String, LedgerError> {
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| LedgerError::Random)?;
    Ok(hex::encode(id))
}

fn check(bytes: &[u8]) -> [u8; 8] {
    let d = digest(&SHA256, bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

impl Spool {
    /// Opens (creating) the spool at `path`, bounded by `max` bytes; a torn tail is removed.
    pub fn open(path: &Path, max: u64) -> Result<Self, LedgerError> {
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut head = Vec::new();
        (&file)
            .take(HEADER_LEN)
            .read_to_end(&mut head)
            .map_err(io)?;
        let mut spool = Self {
            path: path.to_owned(),
            len: 0,
            max,
            file: file.try_clone().map_err(io)?,
            id: String::new(),
            start: HEADER_LEN,
        };
        if head.len() as u64 == HEADER_LEN && head.starts_with(MAGIC) {
            spool.id = hex::encode(&head[MAGIC.len()..]);
        } else if MAGIC.starts_with(&head[..head.len().min(MAGIC.len())]) {
            // Empty, or a header torn by a crash (nothing after it was ever written).
            spool.write_header()?;
        } else {
            spool.id = fresh_id()?;
            spool.start = 0;
        }
        let (_, valid) = spool.read_events()?;
        let actual = file.metadata().map_err(io)?.len();
        if valid != actual {
            file.set_len(valid).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        spool.len = valid - spool.start;
        Ok(spool)
    }

    /// Empties the file and starts it with a header under a fresh id.
    fn write_header(&mut self) -> Result<(), LedgerError> {
        let id = fresh_id()?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&hex::decode(&id).unwrap_or_default());
        self.file.set_len(0).map_err(|e| self.io(&e))?;
        self.file.write_all(&header).map_err(|e| self.io(&e))?;
        self.file.sync_all().map_err(|e| self.io(&e))?;
        self.id = id;
        self.start = HEADER_LEN;
        self.len = 0;
        Ok(())
    }

    /// This spool's id (changes each time it is emptied).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn io(&self, e: &std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Bytes used.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `events` durably (fsync), or fails without writing when they do not fit.
    pub fn push(&mut self, events: &[Encoded]) -> Result<(), LedgerError> {
        let mut buf = Vec::new();
        for e in events {
            let bytes = e.canonical();
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&bytes);
            buf.extend_from_slice(&check(&bytes));
        }
        if self.len + buf.len() as u64 > self.max {
            return Err(LedgerError::FailClosed(format!(
                "the store is failing and the spool {} is full ({} of {} bytes)",
                self.path.display(),
                self.len,
                self.max
            )));
        }
        self.file.write_all(&buf).map_err(|e| self.io(&e))?;
        self.file.sync_data().map_err(|e| self.io(&e))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Every spooled event, oldest first.
    pub fn events(&mut self) -> Result<Vec<Event>, LedgerError> {
        Ok(self.read_events()?.0)
    }

    fn read_events(&mut self) -> Result<(Vec<Event>, u64), LedgerError> {
        let mut data = Vec::new();
        let mut f = self.file.try_clone().map_err(|e| self.io(&e))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| self.io(&e))?;
        f.read_to_end(&mut data).map_err(|e| self.io(&e))?;
        let mut events = Vec::new();
        let mut pos = usize::try_from(self.start).unwrap_or(0);
        while let Some(len_bytes) = data.get(pos..pos + 4) {
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                as usize;
            if len > MAX_EVENT_LEN {
                break;
            }
            let Some(body) = data.get(pos + 4..pos + 4 + len) else {
                break;
            };
            let Some(sum) = data.get(pos + 4 + len..pos + 12 + len) else {
                break;
            };
            if sum != check(body) {
                break;
            }
            match Event::from_canonical(body) {
                Ok(e) => events.push(e),
                Err(_) => break,
            }
            pos += 12 + len;
        }
        Ok((events, pos as u64))
    }

    /// Empties the spool (after its events were committed to the store), under a new id.
    pub fn clear(&mut self) -> Result<(), LedgerError> {
        self.write_header()
    }

    /// Commits the spooled events the store does not have yet, oldest first, in batches of
    /// at most `max_batch`, each with its [`SpoolMark`]; returns how many were committed.
    /// The spool is not emptied: call [`Spool::clear`] next ([`Spool::drain`] does both).
    pub fn commit_into(
        &mut self,
        store: &mut dyn Appender,
        tree: &mut Tree,
        max_batch: usize,
    ) -> Result<usize, LedgerError> {
        let mut events: Vec<Encoded> = self.events()?.into_iter().map(Encoded::new).collect();
        let done = usize::try_from(store.drained(&self.id)?).unwrap_or(usize::MAX);
        let mut through = done.min(events.len());
        let rest = &mut events[through..];
        let committed = rest.len();
        for chunk in rest.chunks_mut(max_batch.max(1)) {
            through += chunk.len();
            let mark = SpoolMark {
                spool: &self.id,
                through: through as u64,
            };
            store.append_marked(chunk, tree, Some(&mark))?;
        }
        Ok(committed)
    }

    /// Moves the spooled events into the store exactly once and empties the spool.
    pub fn drain(
        &mut self,
        store: &mut dyn Appender,
        tree: &mut Tree,
        max_batch: usize,
    ) -> Result<usize, LedgerError> {
        let n = self.commit_into(store, tree, max_batch)?;
        self.clear()?;
        Ok(n)
    }
}
