//! File-tree digests: a parallel, streaming hasher and the canonical manifest it produces.
//!
//! [`TreeHasher::hash`] walks a directory without following symlinks, hashes every regular file
//! on a rayon pool with a fixed [`BUF_LEN`] buffer per file (memory does not grow with file
//! size), and returns a [`Manifest`]: entries `(path, size, digest)` with `/`-separated relative
//! paths sorted by their UTF-8 bytes. [`Manifest::to_json`] is deterministic (fixed member order,
//! no insignificant whitespace), so the same tree gives the same bytes whatever the thread count.
//!
//! Safety rules (fail closed):
//! - symlinks inside the tree are never followed; by default they are an error
//!   ([`SymlinkPolicy::Refuse`]), or they can be recorded with their target, unhashed
//!   ([`SymlinkPolicy::Record`]). The root path itself is resolved: the caller chose it.
//! - FIFOs, sockets and devices are an error (opening a FIFO would block; devices never end).
//! - names must be UTF-8 and must not contain `\` (a separator on Windows) or control
//!   characters, so every manifest path is a safe relative path; parsed manifests are
//!   checked by the same rule ([`check_relative_path`]).
//! - files are opened with `O_NOFOLLOW | O_NONBLOCK` and re-checked with `fstat`; a file that
//!   changes size while being hashed is an error.
//!
//! The manifest maps directly onto OpenSSF model signing and in-toto: one subject per file with
//! `name` = path and `digest` = `{algorithm: hex}` ([`Manifest::in_toto_subjects`]).

mod walk;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use walk::{Plan, PlannedFile, check_relative_path, is_ignored};

/// Read buffer per file being hashed.
pub const BUF_LEN: usize = 256 * 1024;
/// Largest number of files in one tree.
pub const MAX_FILES: usize = 1_000_000;
/// Deepest directory nesting walked.
pub const MAX_DEPTH: usize = 128;
/// Largest manifest JSON accepted by [`Manifest::from_json`].
pub const MAX_MANIFEST_LEN: usize = 256 * 1024 * 1024;
/// Smallest shard size accepted by [`TreeHasher::hash_shards`].
pub const MIN_SHARD_SIZE: u64 = 1;
/// Largest number of shards in one tree (bounds the job list and the resulting manifest).
pub const MAX_SHARDS: usize = 4_000_000;

/// Errors from hashing a tree or reading a manifest. Each names the path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A symlink inside the tree under [`SymlinkPolicy::Refuse`].
    #[error(
        "{path}: symlink inside the tree (to {target}); symlinks are not followed — remove it, or record symlinks explicitly"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: String,
    },
    /// A FIFO, socket or device.
    #[error("{path}: {kind} is not a regular file; refusing to hash it")]
    SpecialFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A name that cannot be a safe manifest path.
    #[error("{path}: {reason}")]
    UnsafeName {
        /// The path.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file changed while it was being hashed.
    #[error("{path}: changed while being hashed (expected {expected} bytes, read {read})")]
    Changed {
        /// The path.
        path: PathBuf,
        /// Size at open.
        expected: u64,
        /// Bytes read.
        read: u64,
    },
    /// A limit was hit.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A manifest is malformed.
    #[error("invalid manifest: {0}")]
    Manifest(String),
}

/// The digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgo {
    /// SHA-256 (aws-lc-rs), the algorithm of OpenSSF model signing.
    Sha256,
    /// BLAKE3 (the `blake3` crate).
    Blake3,
}

impl DigestAlgo {
    /// `sha256` or `blake3`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Sha256 => "sha256",
            DigestAlgo::Blake3 => "blake3",
        }
    }
}

/// What to do with symlinks inside the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymlinkPolicy {
    /// Fail on the first symlink (default).
    #[default]
    Refuse,
    /// Record `(path, target)` in [`Manifest::symlinks`] without following or hashing it.
    Record,
}

/// One hashed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex digest.
    pub digest: String,
}

/// One recorded (not followed) symlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymlinkEntry {
    /// Relative path of the link, `/`-separated.
    pub path: String,
    /// The link's target, as stored.
    pub target: String,
}

/// The canonical manifest of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// The digest algorithm of every entry.
    pub algorithm: DigestAlgo,
    /// Files sorted by path bytes.
    pub files: Vec<FileEntry>,
    /// Recorded symlinks sorted by path bytes (empty unless [`SymlinkPolicy::Record`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<SymlinkEntry>,
}

impl Manifest {
    /// Total bytes hashed.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Canonical JSON: fixed member order, sorted entries, no insignificant whitespace.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The in-toto v1 `subject` list: `[{"name": path, "digest": {"sha256": hex}}]`.
    pub fn in_toto_subjects(&self) -> serde_json::Value {
        self.files
            .iter()
            .map(|f| serde_json::json!({"name": f.path, "digest": {self.algorithm.name(): f.digest}}))
            .collect()
    }

    /// Parses and validates a manifest (version, safe sorted unique paths, digest lengths).
    pub fn from_json(text: &[u8]) -> Result<Self, DigestError> {
        if text.len() > MAX_MANIFEST_LEN {
            return Err(DigestError::Limit(format!(
                "manifest larger than {MAX_MANIFEST_LEN} bytes"
            )));
        }
        let m: Manifest = serde_json::from_slice(text).map_err(|e| {
            DigestError::Manifest(format!("line {} column {}: {e}", e.line(), e.column()))
        })?;
        if m.version != 1 {
            return Err(DigestError::Manifest(format!(
                "unsupported version {}",
                m.version
            )));
        }
        for pair in m.files.windows(2) {
            if let [a, b] = pair
                && a.path >= b.path
            {
                return Err(DigestError::Manifest(format!(
                    "files not sorted or duplicated at {:?}",
                    b.path
                )));
            }
        }
        for f in &m.files {
            check_relative_path(&f.path)?;
            if f.digest.len() != 64
                || !f
                    .digest
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(DigestError::Manifest(format!(
                    "{}: digest is not 64 lowercase hex digits",
                    f.path
                )));
            }
        }
        for s in &m.symlinks {
            check_relative_path(&s.path)?;
        }
        Ok(m)
    }
}

/// Hashes file trees into manifests.
#[derive(Debug, Clone)]
pub struct TreeHasher {
    algo: DigestAlgo,
    threads: Option<usize>,
    symlinks: SymlinkPolicy,
    ignore: Vec<String>,
}

/// The digest of one byte range `[start, end)` of a file (OpenSSF model signing's shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEntry {
    /// Relative path, `/`-separated.
    pub path: String,
    /// First byte (inclusive).
    pub start: u64,
    /// Last byte (exclusive).
    pub end: u64,
    /// Lowercase hex digest of the bytes in the range.
    pub digest: String,
}

/// Orders `/`-separated relative paths by their components, then by bytes within a component:
/// `a/b.bin` sorts before `a.txt` (component `a` < `a.txt`), unlike a plain byte comparison
/// (`/` > `.`). This is the order of OpenSSF model signing manifests (Python `PurePath` order).
pub fn cmp_path_components(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl TreeHasher {
    /// A hasher for `algo`, using rayon's default thread count and refusing symlinks.
    pub fn new(algo: DigestAlgo) -> Self {
        TreeHasher {
            algo,
            threads: None,
            symlinks: SymlinkPolicy::Refuse,
            ignore: Vec::new(),
        }
    }

    /// Skips these relative paths (and everything under them) while walking; see
    /// [`is_ignored`].
    #[must_use]
    pub fn with_ignore(mut self, paths: Vec<String>) -> Self {
        self.ignore = paths;
        self
    }

    /// Uses exactly `n` (at least 1) worker threads.
    #[must_use]
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Sets the symlink policy.
    #[must_use]
    pub fn with_symlinks(mut self, policy: SymlinkPolicy) -> Self {
        self.symlinks = policy;
        self
    }

    /// Lists the tree (without hashing): the files to hash and their total size. The CLI uses it
    /// to size a progress bar.
    pub fn plan(&self, root: &Path) -> Result<Plan, DigestError> {
        walk::plan(root, self.symlinks, &self.ignore)
    }

    fn run<T: Send>(
        &self,
        job: impl FnOnce() -> Result<T, DigestError> + Send,
    ) -> Result<T, DigestError> {
        match self.threads {
            None => job(),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| DigestError::Limit(format!("cannot start {n} threads: {e}")))?
                .install(job),
        }
    }

    /// Hashes every file of a [`plan`](Self::plan) in shards of `shard_size` bytes, all shards of
    /// all files in parallel (a single large file keeps every core busy). Shards are
    /// `[0, s), [s, 2s), …, [ks, size)`; empty files have no shard. Entries are sorted by
    /// [`cmp_path_components`], then by `start`.
    pub fn hash_shards(
        &self,
        plan: &Plan,
        shard_size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<ShardEntry>, DigestError> {
        if shard_size < MIN_SHARD_SIZE {
            return Err(DigestError::Limit(format!(
                "shard size must be at least {MIN_SHARD_SIZE} byte"
            )));
        }
        let mut jobs = Vec::new();
        for f in &plan.files {
            let mut start = 0u64;
            while start < f.size {
                let end = start.saturating_add(shard_size).min(f.size);
                if jobs.len() >= MAX_SHARDS {
                    return Err(DigestError::Limit(format!(
                        "more than {MAX_SHARDS} shards; use a larger shard size"
                    )));
                }
                jobs.push((f, start, end));
                start = end;
            }
        }
        let algo = self.algo;
        let mut shards = self.run(|| {
            jobs.par_iter()
                .map(|(f, start, end)| {
                    let digest = hash_range(&f.full, f.size, *start, *end, algo, progress)?;
                    Ok(ShardEntry {
                        path: f.path.clone(),
                        start: *start,
                        end: *end,
                        digest,
                    })
                })
                .collect::<Result<Vec<_>, DigestError>>()
        })?;
        shards.sort_by(|a, b| cmp_path_components(&a.path, &b.path).then(a.start.cmp(&b.start)));
        Ok(shards)
    }

    /// Hashes every file under `root` (or `root` itself if it is a file). `progress` is called
    /// from worker threads with the number of bytes just hashed.
    pub fn hash(
        &self,
        root: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Manifest, DigestError> {
        let plan = self.plan(root)?;
        self.hash_plan(plan, progress)
    }

    /// Hashes a [`plan`](Self::plan).
    pub fn hash_plan(
        &self,
        plan: Plan,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Manifest, DigestError> {
        let algo = self.algo;
        // Largest first, so one big file is not left for last on a single core.
        let mut files = plan.files;
        files.sort_by_key(|f| std::cmp::Reverse(f.size));
        let run = || {
            files
                .par_iter()
                .map(|f| {
                    let (size, digest) = hash_file(&f.full, algo, progress)?;
                    Ok(FileEntry {
                        path: f.path.clone(),
                        size,
                        digest,
                    })
                })
                .collect::<Result<Vec<_>, DigestError>>()
        };
        let mut files = self.run(run)?;
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(Manifest {
            version: 1,
            algorithm: algo,
            files,
            symlinks: plan.symlinks,
        })
    }
}

enum Hasher {
    Sha256(aws_lc_rs::digest::Context),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(algo: DigestAlgo) -> Self {
        match algo {
            DigestAlgo::Sha256 => {
                Hasher::Sha256(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
            }
            DigestAlgo::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(c) => c.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(c) => hex::encode(c.finish()),
            Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
        }
    }
}

/// Streams one file through the hasher with a fixed buffer.
fn hash_file(
    path: &Path,
    algo: DigestAlgo,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, String), DigestError> {
    let io = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file: File = walk::open_regular(path)?;
    let expected = file.metadata().map_err(io)?.len();
    let mut hasher = Hasher::new(algo);
    let mut buf = vec![0u8; BUF_LEN];
    let mut read = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        read += n as u64;
        progress(n as u64);
        if read > expected {
            break;
        }
    }
    if read != expected {
        return Err(DigestError::Changed {
            path: path.to_path_buf(),
            expected,
            read,
        });
    }
    Ok((read, hasher.finish()))
}

/// Hashes bytes `[start, end)` of a file that had `size` bytes when listed, with a fixed buffer
/// and positioned reads (no shared file offset, so shards of one file hash concurrently).
pub fn hash_range(
    path: &Path,
    size: u64,
    start: u64,
    end: u64,
    algo: DigestAlgo,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, DigestError> {
    use std::os::unix::fs::FileExt;
    let io = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file: File = walk::open_regular(path)?;
    let now = file.metadata().map_err(io)?.len();
    if now != size || start > end || end > size {
        return Err(DigestError::Changed {
            path: path.to_path_buf(),
            expected: size,
            read: now,
        });
    }
    let mut hasher = Hasher::new(algo);
    let want = usize::try_from(end - start).unwrap_or(BUF_LEN).min(BUF_LEN);
    let mut buf = vec![0u8; want.max(1)];
    let mut pos = start;
    while pos < end {
        let len = usize::try_from(end - pos)
            .unwrap_or(buf.len())
            .min(buf.len());
        let chunk = buf.get_mut(..len).unwrap_or_default();
        let n = match file.read_at(chunk, pos) {
            Ok(0) => {
                return Err(DigestError::Changed {
                    path: path.to_path_buf(),
                    expected: size,
                    read: pos,
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(chunk.get(..n).unwrap_or_default());
        pos += n as u64;
        progress(n as u64);
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests;
