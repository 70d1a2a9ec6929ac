//! The append-only file-set store (`file:DIR`): the embedded store built for throughput.
//! One batch is one `write` and one `fdatasync` (no page or B-tree maintenance, no WAL
//! copy), and the writer thread's queue fills with the next batch while that `fdatasync`
//! runs (group commit).
//!
//! Layout of `DIR`:
//!
//! - `origin`: the log's origin, written once (temporary file, `fsync`, rename, directory
//!   `fsync`);
//! - `seg-FIRST.log`: segments (`FIRST` = index of their first entry, 20 digits), each
//!   starting with `AIGLOG1\n || FIRST (u64 BE)`, then batches. A new segment starts once the
//!   current one passes [`SEGMENT_MAX`] bytes; it is created and `fsync`ed (file and
//!   directory) before its first batch is written;
//! - `checkpoints.log`: `AIGCKP1\n`, then records `note length (u32 BE) || size (u64 BE) ||
//!   time_ms (u64 BE) || note || check`, each `fdatasync`ed;
//! - `lock`: held (advisory lock) by the one writer.
//!
//! A batch is `magic || payload length (u32 BE) || entries (u32 BE) || mark length
//! (u32 BE) || payload || check`, the payload being the spool mark (`SPOOL_ID\nTHROUGH`, or
//! empty) and then each entry as `index (u64 BE) || event length (u32 BE) || leaf hash (32) ||
//! canonical event`. The magic names the check over everything before it: `AIGC` (written
//! since format 2) a CRC-32 (BE), `AIGB` (format 1, still read) the first 16 bytes of SHA-256.
//! The check only detects torn writes, which a CRC does as well as a hash (tampering is the
//! Merkle tree's and the checkpoints' business); the SHA-256 pass over every event cost as much
//! as the leaf hashes themselves.
//!
//! **Durability.** [`FileStore::append_marked`] returns only after the batch's `fdatasync`.
//! A batch is written only after the previous one is durable, so after a crash only the last
//! batch can be torn (cut short, or with a check that fails). Opening the store for writing
//! cuts such a tail off — it was never acknowledged — unless a stored checkpoint covers it:
//! then those entries were acknowledged and damaged afterwards, and the store refuses to open
//! instead of hiding it (`aigis audit verify` names the entry).
//!
//! **Tamper evidence** comes from the Merkle tree and the signed checkpoints, as for every
//! store: readers return entries as stored (the per-batch check only detects torn writes), so
//! `aigis audit verify` names an edited, deleted, reordered or truncated entry.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::{Appender, LogReader, Row, SpoolMark, StoredCheckpoint};
use crate::LedgerError;
use crate::event::{Encoded, Event};
use crate::merkle::Tree;

mod format;
mod segment;

use format::{
    CHECK_LEN, CHECKPOINT_MAGIC, CHECKPOINT_OVERHEAD, MAX_NOTE, SEGMENT_HEADER, SEGMENT_MAGIC,
    be_u32, be_u64, check_of, encode_batch, encode_checkpoint, segment_name,
};
#[cfg(any(test, feature = "test-util"))]
use format::{encode_batch_header, finish_batch, len_u32, push_entry};
pub use segment::RawEntry;
use segment::{Next, SegmentReader, list_segments};

/// A segment is closed once it holds this many bytes (the next batch starts a new one).
pub const SEGMENT_MAX: u64 = 256 << 20;

/// The open segment, or an error naming `dir` (built only on failure: every batch asks).
fn active_of<'a>(
    active: &'a mut Option<Active>,
    dir: &Path,
) -> Result<&'a mut Active, LedgerError> {
    active
        .as_mut()
        .ok_or_else(|| io_err(dir, &"opened for reading only"))
}

/// An I/O error on the segment that starts at `first`.
fn seg_err(dir: &Path, first: u64, e: &std::io::Error) -> LedgerError {
    io_err(&dir.join(segment_name(first)), e)
}

/// Opens a segment for appending: the file, positioned at its end, and its length.
fn open_at_end(path: &Path) -> Result<(File, u64), LedgerError> {
    let io = |e: std::io::Error| io_err(path, &e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    Ok((file, len))
}

/// `fsync`s a directory (so a created or renamed file's name is durable).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_err(path: &Path, e: &dyn std::fmt::Display) -> LedgerError {
    LedgerError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What [`FileStore::recover`] found: the tree and spool marks, and the last segment opened
/// for appending (its first index and length).
struct Recovered {
    tree: Tree,
    marks: HashMap<String, u64>,
    file: File,
    first: u64,
    len: u64,
}

/// The writer's state: the open segment and what the open scan learnt.
struct Active {
    file: File,
    /// Its first index and length.
    first: u64,
    len: u64,
    checkpoints: File,
    /// Length of `checkpoints` through its last whole record.
    checkpoints_len: u64,
    /// A failed checkpoint write could not be undone: cut `checkpoints` back to
    /// `checkpoints_len` before writing the next record (a record after a torn one would be
    /// misread).
    checkpoints_dirty: bool,
    /// Size of the latest stored checkpoint.
    latest_checkpoint: Option<StoredCheckpoint>,
    /// Entries in the log.
    size: u64,
    marks: HashMap<String, u64>,
    /// The tree built while opening, handed to the writer by `load_tree`.
    tree: Option<Tree>,
    /// A failed write could not be undone: refuse appends until it is.
    dirty: bool,
    /// Encoding buffer, reused across batches.
    buf: Vec<u8>,
    /// Held while open: one writer per store.
    _lock: File,
}

/// A ledger in a folder of append-only files.
pub struct FileStore {
    dir: PathBuf,
    segment_max: u64,
    active: Option<Active>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({})", self.dir.display())
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir` for appending, cutting off a torn,
    /// unacknowledged tail. With `origin`, a new store records it and an existing one must
    /// have been created for the same origin.
    pub fn open(dir: &Path, origin: Option<&str>) -> Result<Self, LedgerError> {
        Self::open_with(dir, origin, SEGMENT_MAX)
    }

    /// [`FileStore::open`] with segments closed past `segment_max` bytes (tests use small
    /// segments).
    pub fn open_with(
        dir: &Path,
        origin: Option<&str>,
        segment_max: u64,
    ) -> Result<Self, LedgerError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(|e| io_err(parent, &e))?;
            }
        }
        let mut store = Self {
            dir: dir.to_owned(),
            segment_max: segment_max.max(SEGMENT_HEADER + 1),
            active: None,
        };
        let lock = store.lock()?;
        store.check_origin(origin)?;
        let checkpoints = store.open_checkpoints()?;
        // Cut a torn checkpoint record first, so the latest one is a whole record.
        let latest_checkpoint = store.read_checkpoints(true)?.pop();
        let checkpoints_len = checkpoints
            .metadata()
            .map_err(|e| io_err(&store.path("checkpoints.log"), &e))?
            .len();
        let r = store.recover(latest_checkpoint.as_ref().map_or(0, |c| c.size))?;
        store.active = Some(Active {
            file: r.file,
            first: r.first,
            len: r.len,
            checkpoints,
            checkpoints_len,
            checkpoints_dirty: false,
            latest_checkpoint,
            size: r.tree.size(),
            marks: r.marks,
            tree: Some(r.tree),
            dirty: false,
            buf: Vec::new(),
            _lock: lock,
        });
        Ok(store)
    }

    /// Opens an existing store for reading (verification, proofs, export); nothing is
    /// written.
    pub fn open_existing(dir: &Path) -> Result<Self, LedgerError> {
        if !dir.join("origin").exists() {
            return Err(LedgerError::Io {
                path: dir.display().to_string(),
                message:
                    "no such ledger (create it by running the gateway with store = \"file:DIR\")"
                        .into(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            segment_max: SEGMENT_MAX,
            active: None,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> Result<File, LedgerError> {
        let path = self.path("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, &e))?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => LedgerError::Config(format!(
                "{} is in use by another writer (one gateway per file: store; use postgres:// for a fleet)",
                self.dir.display()
            )),
            std::fs::TryLockError::Error(e) => io_err(&path, &e),
        })?;
        Ok(file)
    }

    fn check_origin(&mut self, origin: Option<&str>) -> Result<(), LedgerError> {
        let Some(origin) = origin else {
            return Ok(());
        };
        match self.origin()? {
            Some(o) if o == origin => Ok(()),
            Some(o) => Err(LedgerError::Config(format!(
                "{} belongs to the log {o:?}, not {origin:?}; use the key file it was created with",
                self.dir.display()
            ))),
            None => {
                let tmp = self.path("origin.tmp");
                let io = |e: std::io::Error| io_err(&tmp, &e);
                let mut f = File::create(&tmp).map_err(io)?;
                f.write_all(origin.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                std::fs::rename(&tmp, self.path("origin")).map_err(io)?;
                sync_dir(&self.dir).map_err(|e| io_err(&self.dir, &e))
            }
        }
    }

    fn open_checkpoints(&self) -> Result<File, LedgerError> {
        let path = self.path("checkpoints.log");
        let io = |e: std::io::Error| io_err(&path, &e);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < CHECKPOINT_MAGIC.len() as u64 {
            // New, or its header was torn before anything followed it.
            file.set_len(0).map_err(io)?;
            file.write_all(CHECKPOINT_MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            if created {
                sync_dir(&self.dir).map_err(|e| io_err(&self.dir, &e))?;
            }
        }
        Ok(file)
    }

    /// Reads the checkpoint records; with `repair`, cuts a torn last record off. A record with
    /// an impossible length is damage, not a torn write (which leaves a prefix of a valid
    /// record): it is an error, as cutting there could drop acknowledged checkpoints after it.
    fn read_checkpoints(&self, repair: bool) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let path = self.path("checkpoints.log");
        let io = |e: std::io::Error| io_err(&path, &e);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        if bytes.len() < CHECKPOINT_MAGIC.len() {
            return Ok(Vec::new());
        }
        if &bytes[..CHECKPOINT_MAGIC.len()] != CHECKPOINT_MAGIC {
            return Err(io_err(&path, &"not a ledger checkpoint file (bad header)"));
        }
        let mut out = Vec::new();
        let mut pos = CHECKPOINT_MAGIC.len();
        let mut torn = None;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let note_len = if rest.len() >= 4 {
                be_u32(rest) as usize
            } else {
                usize::MAX
            };
            if rest.len() >= 4 && note_len > MAX_NOTE {
                return Err(io_err(
                    &path,
                    &format!(
                        "the checkpoint record at byte {pos} claims a {note_len}-byte note; the file is damaged"
                    ),
                ));
            }
            let end = note_len.saturating_add(CHECKPOINT_OVERHEAD);
            // Runs past the end of the file: a torn write.
            if rest.len() < end {
                torn = Some(pos);
                break;
            }
            let body = end - CHECK_LEN;
            let last = pos + end == bytes.len();
            if repair && last && check_of(&rest[..body])[..] != rest[body..end] {
                torn = Some(pos);
                break;
            }
            out.push(StoredCheckpoint {
                size: be_u64(&rest[4..]),
                time_ms: be_u64(&rest[12..]),
                note: String::from_utf8_lossy(&rest[20..body]).into_owned(),
            });
            pos += end;
        }
        if let (true, Some(at)) = (repair, torn) {
            tracing::warn!(target: "aigis::security", file = %path.display(), offset = at, "cutting a torn checkpoint record (never acknowledged) off the ledger");
            let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
            f.set_len(at as u64).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        Ok(out)
    }

    /// Scans every segment: builds the tree and the spool marks, cuts off a torn tail of the
    /// last segment (refusing when a checkpoint covers it) and opens the last segment for
    /// appending.
    fn recover(&mut self, checkpointed: u64) -> Result<Recovered, LedgerError> {
        let mut segments = list_segments(&self.dir)?;
        // A segment created but never given its header (crash while creating it) holds
        // nothing: remove it.
        if let Some((_, last)) = segments.last()
            && std::fs::metadata(last).map_err(|e| io_err(last, &e))?.len() < SEGMENT_HEADER
        {
            std::fs::remove_file(last).map_err(|e| io_err(last, &e))?;
            sync_dir(&self.dir).map_err(|e| io_err(&self.dir, &e))?;
            segments.pop();
        }
        let mut tree = Tree::new();
        let mut marks = HashMap::new();
        let count = segments.len();
        for (n, (first, path)) in segments.iter().enumerate() {
            let last = n + 1 == count;
            Self::load_segment(path, *first, last, checkpointed, &mut tree, &mut marks)?;
        }
        let (first, path) = match segments.last() {
            Some((first, path)) => (*first, path.clone()),
            None => (0, self.new_segment(0)?),
        };
        let (file, len) = open_at_end(&path)?;
        Ok(Recovered {
            tree,
            marks,
            file,
            first,
            len,
        })
    }

    /// Loads one segment's leaves and marks into `tree` and `marks`.
    fn load_segment(
        path: &Path,
        first: u64,
        last: bool,
        checkpointed: u64,
        tree: &mut Tree,
        marks: &mut HashMap<String, u64>,
    ) -> Result<(), LedgerError> {
        let mut r = SegmentReader::open(path)?;
        if r.first != first || first != tree.size() {
            return Err(LedgerError::Corrupt {
                index: tree.size(),
                what: format!(
                    "segment {} does not continue the log (it starts at entry {}); run `aigis audit verify`",
                    path.display(),
                    r.first
                ),
            });
        }
        loop {
            let (offset, why, torn) = match r.next(last)? {
                Next::End => return Ok(()),
                Next::Batch(b) if b.intact => {
                    for e in &b.entries {
                        if e.idx != tree.size() {
                            return Err(LedgerError::Corrupt {
                                index: tree.size(),
                                what: format!(
                                    "entry missing (the next stored index is {}); run `aigis audit verify`",
                                    e.idx
                                ),
                            });
                        }
                        tree.push(e.leaf);
                    }
                    if let Some((id, through)) = b.mark {
                        marks.insert(id, through);
                    }
                    continue;
                }
                Next::Batch(b) => (b.offset, "a batch whose check fails", true),
                Next::Partial { offset, why, torn } => (offset, why, torn),
            };
            if !last || !torn {
                // Damage before the end of the log is not a torn write.
                return Err(LedgerError::Corrupt {
                    index: tree.size(),
                    what: format!(
                        "{}: {why} at byte {offset}; run `aigis audit verify`",
                        path.display()
                    ),
                });
            }
            if checkpointed > tree.size() {
                return Err(LedgerError::Corrupt {
                    index: tree.size(),
                    what: format!(
                        "{}: {why} at byte {offset}, but a signed checkpoint covers entries up to {checkpointed}: acknowledged entries were damaged; refusing to cut them off (run `aigis audit verify`)",
                        path.display()
                    ),
                });
            }
            tracing::warn!(target: "aigis::security", segment = %path.display(), offset, why, "cutting a torn batch (never acknowledged) off the ledger");
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io_err(path, &e))?;
            f.set_len(offset).map_err(|e| io_err(path, &e))?;
            f.sync_all().map_err(|e| io_err(path, &e))?;
            return Ok(());
        }
    }

    /// Creates the segment starting at `first` (header written and `fsync`ed, then the
    /// directory).
    fn new_segment(&self, first: u64) -> Result<PathBuf, LedgerError> {
        let path = self.path(&segment_name(first));
        let io = |e: std::io::Error| io_err(&path, &e);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        let mut head = SEGMENT_MAGIC.to_vec();
        head.extend_from_slice(&first.to_be_bytes());
        f.write_all(&head).map_err(io)?;
        f.sync_all().map_err(io)?;
        sync_dir(&self.dir).map_err(|e| io_err(&self.dir, &e))?;
        Ok(path)
    }

    fn active(&mut self) -> Result<&mut Active, LedgerError> {
        active_of(&mut self.active, &self.dir)
    }

    /// Starts a new segment when the current one is full.
    fn roll(&mut self) -> Result<(), LedgerError> {
        let max = self.segment_max;
        let a = self.active()?;
        if a.len < max || a.size == a.first {
            return Ok(());
        }
        let first = a.size;
        let path = self.new_segment(first)?;
        let (file, len) = open_at_end(&path)?;
        let a = self.active()?;
        a.file = file;
        a.first = first;
        a.len = len;
        Ok(())
    }

    /// Every stored entry, for tests that tamper with the files.
    #[cfg(any(test, feature = "test-util"))]
    pub fn raw_entries(&mut self) -> Result<Vec<RawEntry>, LedgerError> {
        let mut out = Vec::new();
        for (_, path) in list_segments(&self.dir)? {
            let mut r = SegmentReader::open(&path)?;
            while let Next::Batch(b) = r.next(false)? {
                out.extend(b.entries);
            }
        }
        Ok(out)
    }

    /// Replaces the whole log with `entries` in one well-formed segment and the checkpoint
    /// file with `checkpoints`, as an attacker who knows the format would (tests).
    #[cfg(any(test, feature = "test-util"))]
    pub fn rewrite(
        &mut self,
        entries: &[RawEntry],
        checkpoints: &[StoredCheckpoint],
    ) -> Result<(), LedgerError> {
        let io = |e: std::io::Error| io_err(&self.dir, &e);
        for (_, path) in list_segments(&self.dir)? {
            std::fs::remove_file(path).map_err(io)?;
        }
        let mut seg = SEGMENT_MAGIC.to_vec();
        seg.extend_from_slice(&0u64.to_be_bytes());
        let mut batch = Vec::new();
        encode_batch_header(&mut batch, None);
        for e in entries {
            push_entry(&mut batch, e.idx, &e.leaf, &e.event);
        }
        finish_batch(&mut batch, 0, len_u32(entries.len()));
        seg.extend_from_slice(&batch);
        std::fs::write(self.path(&segment_name(0)), seg).map_err(io)?;
        let mut cps = CHECKPOINT_MAGIC.to_vec();
        for cp in checkpoints {
            cps.extend_from_slice(&encode_checkpoint(cp));
        }
        std::fs::write(self.path("checkpoints.log"), cps).map_err(io)
    }
}

/// Drops the whole pages of the synced bytes `from..to` of a segment from the page cache: the
/// writer never reads them back, and a log growing by megabytes a second otherwise has every
/// write copy into page-cache pages that are fresh each time. Advice only: an error changes
/// nothing.
#[cfg(target_os = "linux")]
fn forget_written(file: &File, from: u64, to: u64) {
    const PAGE: u64 = 4096;
    let (from, to) = (from & !(PAGE - 1), to & !(PAGE - 1));
    if let Some(len) = std::num::NonZeroU64::new(to - from) {
        let _ = rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn forget_written(_: &File, _: u64, _: u64) {}

impl Appender for FileStore {
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError> {
        // Error paths name the segment; it is formatted only when one is taken (every
        // batch passes here).
        let a = active_of(&mut self.active, &self.dir)?;
        let dir = &self.dir;
        if a.dirty {
            // Undo the bytes of a write that failed part-way, then carry on.
            a.file
                .set_len(a.len)
                .map_err(|e| seg_err(dir, a.first, &e))?;
            a.file
                .seek(SeekFrom::Start(a.len))
                .map_err(|e| seg_err(dir, a.first, &e))?;
            a.dirty = false;
        }
        // An empty append still writes (an empty batch) and syncs: it is how the writer
        // probes a failing store, so it must succeed only when the disk takes writes again.
        self.roll()?;
        let a = active_of(&mut self.active, &self.dir)?;
        let dir = &self.dir;
        let mut buf = std::mem::take(&mut a.buf);
        let leaves = encode_batch(&mut buf, events, a.size, mark);
        a.dirty = true;
        let written = a.file.write_all(&buf).and_then(|()| a.file.sync_data());
        let len = buf.len() as u64;
        a.buf = buf;
        written.map_err(|e| seg_err(dir, a.first, &e))?;
        a.dirty = false;
        a.len += len;
        forget_written(&a.file, a.len - len, a.len);
        a.size += leaves.len() as u64;
        if let Some(m) = mark {
            a.marks.insert(m.spool.to_owned(), m.through);
        }
        for l in leaves {
            tree.push(l);
        }
        Ok(())
    }

    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError> {
        Ok(self.active()?.marks.get(spool).copied().unwrap_or(0))
    }

    fn load_tree(&mut self) -> Result<Tree, LedgerError> {
        if let Some(tree) = self.active.as_mut().and_then(|a| a.tree.take()) {
            return Ok(tree);
        }
        super::tree_from(self)
    }

    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        let path = self.path("checkpoints.log");
        let a = self.active()?;
        if a.latest_checkpoint
            .as_ref()
            .is_some_and(|l| l.size >= cp.size)
        {
            return Ok(());
        }
        if a.checkpoints_dirty {
            // Undo the bytes of a write that failed part-way, or refuse to write after them.
            a.checkpoints
                .set_len(a.checkpoints_len)
                .and_then(|()| a.checkpoints.sync_all())
                .map_err(|e| io_err(&path, &e))?;
            a.checkpoints_dirty = false;
        }
        let rec = encode_checkpoint(cp);
        a.checkpoints_dirty = true;
        let written = a
            .checkpoints
            .write_all(&rec)
            .and_then(|()| a.checkpoints.sync_data());
        if let Err(e) = written {
            let undone = a
                .checkpoints
                .set_len(a.checkpoints_len)
                .and_then(|()| a.checkpoints.sync_all());
            match undone {
                Ok(()) => a.checkpoints_dirty = false,
                Err(undo) => {
                    tracing::error!(target: "aigis::security", file = %path.display(), error = %undo, "a failed checkpoint write could not be undone; retrying before the next checkpoint");
                }
            }
            return Err(io_err(&path, &e));
        }
        a.checkpoints_dirty = false;
        a.checkpoints_len += rec.len() as u64;
        a.latest_checkpoint = Some(cp.clone());
        Ok(())
    }

    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        if let Some(a) = &self.active {
            return Ok(a.latest_checkpoint.clone());
        }
        Ok(self.read_checkpoints(false)?.pop())
    }
}

impl LogReader for FileStore {
    fn scan(
        &mut self,
        from: u64,
        f: &mut dyn FnMut(Row) -> Result<bool, LedgerError>,
    ) -> Result<(), LedgerError> {
        let segments = list_segments(&self.dir)?;
        for (n, (_, path)) in segments.iter().enumerate() {
            // Skip segments that end before `from`.
            if segments.get(n + 1).is_some_and(|(next, _)| *next <= from) {
                continue;
            }
            let mut r = SegmentReader::open(path)?;
            loop {
                match r.next(false)? {
                    Next::Batch(b) => {
                        for e in b.entries.into_iter().filter(|e| e.idx >= from) {
                            let row = Row {
                                idx: e.idx,
                                leaf: e.leaf.to_vec(),
                                event: e.event,
                            };
                            if !f(row)? {
                                return Ok(());
                            }
                        }
                    }
                    // Anywhere but the very end of the log: damage.
                    Next::Partial {
                        offset, why, torn, ..
                    } if n + 1 < segments.len() || !torn => {
                        return Err(LedgerError::Io {
                            path: path.display().to_string(),
                            message: format!("{why} at byte {offset}; the segment is damaged"),
                        });
                    }
                    // The end of the segment, or of the last one while a batch is being
                    // written.
                    Next::End | Next::Partial { .. } => break,
                }
            }
        }
        Ok(())
    }

    fn checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let mut cps = self.read_checkpoints(false)?;
        cps.sort_by_key(|c| c.size);
        Ok(cps)
    }

    fn find_request(&mut self, request_id: &str) -> Result<Vec<Row>, LedgerError> {
        // In a canonical event the first `"request_id":` is the member (only the fixed
        // `kind` string comes before it), within the first bytes: no parse per entry.
        let mut needle = b"\"request_id\":".to_vec();
        needle.extend_from_slice(&serde_json::to_vec(request_id).unwrap_or_default());
        let mut out = Vec::new();
        self.scan(0, &mut |row| {
            let head = &row.event[..row.event.len().min(160 + needle.len())];
            let hit = head.windows(needle.len()).any(|w| w == needle.as_slice())
                && Event::from_json(&row.event).is_ok_and(|e| e.request_id == request_id);
            if hit {
                out.push(row);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    fn origin(&mut self) -> Result<Option<String>, LedgerError> {
        let path = self.path("origin");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::format::{BATCH_MAGIC, BATCH_MAGIC_V1, CRC_LEN};
    use super::*;
    use crate::EventKind;

    fn encoded(from: u64, n: u64) -> Vec<Encoded> {
        (from..from + n)
            .map(|i| Encoded::new(Event::new(EventKind::AiCall, &format!("r{i}"), "a", i)))
            .collect()
    }

    /// A segment holding one batch of `n` events in format 1 (what earlier versions wrote).
    fn v1_segment(n: u64) -> Vec<u8> {
        let mut batch = Vec::new();
        encode_batch(&mut batch, &mut encoded(0, n), 0, None);
        batch.truncate(batch.len() - CRC_LEN);
        batch[..4].copy_from_slice(BATCH_MAGIC_V1);
        let check = check_of(&batch);
        batch.extend_from_slice(&check);
        let mut seg = SEGMENT_MAGIC.to_vec();
        seg.extend_from_slice(&0u64.to_be_bytes());
        seg.extend_from_slice(&batch);
        seg
    }

    fn store_with(seg: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        drop(FileStore::open(&dir, None).unwrap());
        std::fs::write(dir.join(segment_name(0)), seg).unwrap();
        (tmp, dir)
    }

    #[test]
    fn format_1_batches_are_read_and_appended_to() {
        let (_tmp, dir) = store_with(&v1_segment(3));
        let mut store = FileStore::open(&dir, None).unwrap();
        let mut tree = store.load_tree().unwrap();
        assert_eq!(tree.size(), 3, "the intact format 1 batch is kept");
        store.append(&mut encoded(3, 2), &mut tree).unwrap();
        drop(store);
        let mut store = FileStore::open(&dir, None).unwrap();
        assert_eq!(store.load_tree().unwrap().size(), 5);
        let idx: Vec<u64> = store.raw_entries().unwrap().iter().map(|e| e.idx).collect();
        assert_eq!(idx, [0, 1, 2, 3, 4]);
        let bytes = std::fs::read(dir.join(segment_name(0))).unwrap();
        assert!(
            bytes.windows(4).any(|w| w == BATCH_MAGIC),
            "new batches are format 2"
        );
    }

    #[test]
    fn a_failed_checkpoint_write_that_cannot_be_undone_is_undone_before_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        let mut store = FileStore::open(&dir, None).unwrap();
        let cp = |size: u64| StoredCheckpoint {
            size,
            time_ms: size,
            note: format!("note {size}\n"),
        };
        store.put_checkpoint(&cp(1)).unwrap();
        let path = dir.join("checkpoints.log");
        // A write that failed part-way, on a handle that can neither write nor truncate.
        let a = store.active.as_mut().unwrap();
        let writable = std::mem::replace(&mut a.checkpoints, File::open(&path).unwrap());
        (&writable)
            .write_all(&encode_checkpoint(&cp(2))[..10])
            .unwrap();
        assert!(store.put_checkpoint(&cp(2)).is_err());
        assert!(store.put_checkpoint(&cp(3)).is_err(), "refused while torn");
        store.active.as_mut().unwrap().checkpoints = writable;
        store.put_checkpoint(&cp(3)).unwrap();
        let sizes: Vec<u64> = store
            .read_checkpoints(false)
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect();
        assert_eq!(sizes, [1, 3]);
    }

    #[test]
    fn a_torn_last_batch_is_found_in_either_format() {
        let mut v2 = SEGMENT_MAGIC.to_vec();
        v2.extend_from_slice(&0u64.to_be_bytes());
        let mut batch = Vec::new();
        encode_batch(&mut batch, &mut encoded(0, 3), 0, None);
        v2.extend_from_slice(&batch);
        for mut seg in [v1_segment(3), v2] {
            let n = seg.len();
            seg[n - 1] ^= 1;
            let (_tmp, dir) = store_with(&seg);
            let mut store = FileStore::open(&dir, None).unwrap();
            assert_eq!(
                store.load_tree().unwrap().size(),
                0,
                "the batch failing its check is cut"
            );
        }
    }
}
