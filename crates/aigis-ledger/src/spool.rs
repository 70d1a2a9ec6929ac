//! The spool: a local, fsync-durable queue of events that could not be written to the store
//! (`on_store_error = "spool"`). Bounded by `spool_max` bytes: when full, the ledger fails
//! closed. The writer drains it into the store, oldest first, as soon as the store works.
//!
//! File format: a header `AIGSPL1\n || 16-byte spool id`, then records of `u32 length
//! (big-endian) || canonical event || first 8 bytes of SHA-256(event)`. A torn record at the
//! end (crash mid-write) is cut off when the spool is opened; it was never acknowledged. A
//! write that fails (disk full, I/O error) is undone at once, so no record ever follows a
//! torn one: if it cannot be undone, the spool refuses further pushes until it can.
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
    /// A failed write could not be undone: refuse pushes until it is.
    dirty: bool,
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
            dirty: false,
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
        spool.cut_at(valid)?;
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
        self.dirty = false;
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

    /// Appends `events` durably (fsync), or fails without writing when they do not fit or
    /// one is too long to read back ([`Encoded::check_len`]). A failed write is undone.
    pub fn push(&mut self, events: &[Encoded]) -> Result<(), LedgerError> {
        let mut buf = Vec::new();
        for e in events {
            e.check_len()?;
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
        if self.dirty {
            self.rollback().map_err(|e| {
                LedgerError::FailClosed(format!(
                    "the bytes of a failed spool write cannot be removed yet: {e}"
                ))
            })?;
        }
        // Set until the write is durable or undone: a record written after a torn one would be
        // acknowledged, yet lost when the drain stops at the torn one.
        self.dirty = true;
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if let Err(undo) = self.rollback() {
                tracing::error!(target: "aigis::security", spool = %self.path.display(), error = %undo, "a failed spool write could not be undone; refusing to spool until it can be");
            }
            return Err(self.io(&e));
        }
        self.dirty = false;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Cuts the file back to its last acknowledged record (the bytes of a failed write).
    fn rollback(&mut self) -> Result<(), LedgerError> {
        self.file
            .set_len(self.start + self.len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| self.io(&e))?;
        self.dirty = false;
        Ok(())
    }

    /// Every spooled event, oldest first (an unreadable rest is set aside, as at open).
    pub fn events(&mut self) -> Result<Vec<Event>, LedgerError> {
        let (events, valid) = self.read_events()?;
        self.cut_at(valid)?;
        Ok(events)
    }

    /// Cuts the spool after its last readable record (at `valid`). A write torn by a crash,
    /// never acknowledged (the start of one record that runs to the end of the file, or
    /// zeros), is dropped. Anything else may hold acknowledged records after a damaged one, or
    /// a batch whose pages reached the disk out of order before its sync returned: those bytes
    /// are first copied, synced, to `PATH.damaged-TIME` for recovery by hand, and named on
    /// `aigis::security`. So the ledger keeps working, and nothing is destroyed.
    fn cut_at(&mut self, valid: u64) -> Result<(), LedgerError> {
        let mut rest = Vec::new();
        let mut f = self.file.try_clone().map_err(|e| self.io(&e))?;
        f.seek(SeekFrom::Start(valid)).map_err(|e| self.io(&e))?;
        f.read_to_end(&mut rest).map_err(|e| self.io(&e))?;
        if !rest.is_empty() {
            let torn = rest.get(..4).is_none_or(|b| {
                let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                len <= MAX_EVENT_LEN && 12 + len >= rest.len()
            }) || rest.iter().all(|&b| b == 0);
            if torn {
                tracing::error!(target: "aigis::security", spool = %self.path.display(), offset = valid, cut_bytes = rest.len(), "cutting a spool record torn by a crash (never acknowledged)");
            } else {
                let aside = self
                    .path
                    .with_extension(format!("spool.damaged-{}", crate::now_ms()));
                let out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&aside)
                    .and_then(|mut o| o.write_all(&rest).map(|()| o))
                    .map_err(|e| self.io(&e))?;
                out.sync_all().map_err(|e| self.io(&e))?;
                tracing::error!(target: "aigis::security", spool = %self.path.display(), offset = valid, bytes = rest.len(), set_aside = %aside.display(), "a spool record is damaged and bytes follow it: they are set aside for recovery by hand (they may hold acknowledged records), not drained");
            }
            self.file.set_len(valid).map_err(|e| self.io(&e))?;
            self.file.sync_all().map_err(|e| self.io(&e))?;
        }
        self.len = valid - self.start;
        Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::EventKind;

    /// The child of `a_write_cut_short_by_the_file_size_limit_is_rolled_back`: its folder.
    const FSIZE_CHILD: &str = "AIGIS_SPOOL_FSIZE_CHILD";

    /// Event `i` with `detail` bytes of detail.
    fn event(i: u64, detail: usize) -> Encoded {
        let mut e = Event::new(EventKind::AiCall, &format!("r{i:03}"), "a", i);
        e.detail = (detail > 0).then(|| "d".repeat(detail));
        Encoded::new(e)
    }

    fn ids(s: &mut Spool) -> Vec<String> {
        s.events()
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect()
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_failed_write_that_cannot_be_undone_stops_the_spool_until_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        s.push(&[event(0, 0)]).unwrap();
        let good = s.len();
        // A write that failed part-way, on a handle that can neither write nor truncate.
        let writable = std::mem::replace(&mut s.file, File::open(&path).unwrap());
        (&writable).write_all(&[0, 0, 1, 0, b'{']).unwrap();
        assert!(s.push(&[event(1, 0)]).is_err());
        let refused = s.push(&[event(1, 0)]).unwrap_err();
        assert!(
            matches!(refused, LedgerError::FailClosed(_)),
            "refused while the torn bytes stay: {refused}"
        );
        assert_eq!(s.len(), good);
        // The disk works again: the torn bytes go first, then the record.
        s.file = writable;
        s.push(&[event(1, 0)]).unwrap();
        assert_eq!(file_len(&path), HEADER_LEN + s.len());
        assert_eq!(ids(&mut s), ["r000", "r001"]);
    }

    /// A torn last record is cut when the spool opens; damage with records after it is set
    /// aside to a file of its own, never destroyed, and the spool goes on with the records
    /// before it.
    #[test]
    fn damage_before_the_end_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        s.push(&[event(0, 0), event(1, 0), event(2, 0)]).unwrap();
        let full = file_len(&path);
        drop(s);
        // A torn tail: half of a fourth record.
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(&[0, 0, 0, 40, b'{', b'"']);
        std::fs::write(&path, &torn).unwrap();
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(ids(&mut s), ["r000", "r001", "r002"]);
        assert_eq!(file_len(&path), full, "the torn record is cut");
        let aside = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(".damaged-"))
                .collect::<Vec<_>>()
        };
        assert!(aside().is_empty(), "a torn write is not set aside");
        // One byte of the second record's body flipped, found by a drain's read.
        let mut data = std::fs::read(&path).unwrap();
        let first = usize::try_from(HEADER_LEN).unwrap();
        let len0 = u32::from_be_bytes(data[first..first + 4].try_into().unwrap());
        let second = first + 12 + len0 as usize;
        data[second + 6] ^= 0x20;
        std::fs::write(&path, &data).unwrap();
        assert_eq!(ids(&mut s), ["r000"]);
        let kept = aside();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            std::fs::read(&kept[0]).unwrap(),
            data[second..],
            "every byte kept"
        );
        assert_eq!(file_len(&path), second as u64);
        // The spool goes on: a new event follows the readable one, and a reopen agrees.
        s.push(&[event(3, 0)]).unwrap();
        drop(s);
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(ids(&mut s), ["r000", "r003"]);
    }

    #[test]
    fn an_event_too_long_to_read_back_is_not_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        let err = s.push(&[event(0, 0), event(1, MAX_EVENT_LEN)]).unwrap_err();
        assert!(matches!(err, LedgerError::EventTooLong { .. }), "{err}");
        assert!(s.is_empty());
        assert_eq!(file_len(&path), HEADER_LEN);
    }

    /// Runs only as the child of the next test, under a file size limit (SIGXFSZ ignored):
    /// a write past the limit writes what fits, then fails with EFBIG, as a write on a full
    /// disk fails with ENOSPC.
    #[test]
    fn spool_fsize_child() {
        let Ok(dir) = std::env::var(FSIZE_CHILD) else {
            return;
        };
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let limit: u64 = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max file size"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        let path = Path::new(&dir).join("spool");
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        let mut pushed = 0;
        // Fill the file to within 600 bytes of the limit (a small record is about 100).
        while HEADER_LEN + s.len() + 600 < limit {
            s.push(&[event(pushed, 0)]).unwrap();
            pushed += 1;
        }
        let good = s.len();
        assert!(s.push(&[event(pushed, 2000)]).is_err(), "written in part");
        assert_eq!(
            file_len(&path),
            HEADER_LEN + good,
            "the torn record is removed"
        );
        s.push(&[event(pushed, 0)]).unwrap();
        pushed += 1;
        assert_eq!(s.events().unwrap().len() as u64, pushed);
        drop(s);
        let mut s = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(s.events().unwrap().len() as u64, pushed, "nothing cut");
    }

    #[test]
    fn a_write_cut_short_by_the_file_size_limit_is_rolled_back() {
        if std::env::var(FSIZE_CHILD).is_ok() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", "trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\""])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "spool::tests::spool_fsize_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(FSIZE_CHILD, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
