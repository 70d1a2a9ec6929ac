//! Walking a tree safely: no symlink is followed, special files are refused, every name
//! becomes a safe `/`-separated relative path.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{DigestError, MAX_DEPTH, MAX_FILES, SymlinkEntry, SymlinkPolicy};

/// A file to hash: its manifest path and where it is on disk.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Manifest path.
    pub path: String,
    /// Path on disk.
    pub full: PathBuf,
    /// Size when listed.
    pub size: u64,
}

/// What a walk found.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Regular files, in walk order.
    pub files: Vec<PlannedFile>,
    /// Recorded symlinks, sorted.
    pub symlinks: Vec<SymlinkEntry>,
}

impl Plan {
    /// Sum of the listed file sizes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Checks that `path` is a safe relative manifest path: non-empty `/`-separated components,
/// none empty, `.` or `..`, no `\`, no control characters, not absolute.
pub fn check_relative_path(path: &str) -> Result<(), DigestError> {
    let unsafe_name = |reason: &str| DigestError::UnsafeName {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() || path.starts_with('/') {
        return Err(unsafe_name("manifest paths are non-empty and relative"));
    }
    if path.contains('\\') {
        return Err(unsafe_name("contains '\\', a path separator on Windows"));
    }
    if path.chars().any(char::is_control) {
        return Err(unsafe_name("contains a control character"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(unsafe_name("contains an empty, '.' or '..' component"));
    }
    Ok(())
}

fn special_kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "an unknown file type"
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DigestError + '_ {
    move |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `path` is one of `ignore` or lies under one of them, compared by whole `/`-separated
/// components (`.git` ignores `.git/HEAD`, not `.github`).
pub fn is_ignored(path: &str, ignore: &[String]) -> bool {
    ignore.iter().any(|prefix| {
        path == prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Lists the regular files under `root` (or `root` itself if it is a regular file), skipping the
/// relative paths in `ignore` (and everything under them) before looking at them.
pub fn plan(root: &Path, symlinks: SymlinkPolicy, ignore: &[String]) -> Result<Plan, DigestError> {
    let meta = std::fs::metadata(root).map_err(io_err(root))?;
    let mut plan = Plan::default();
    if meta.is_file() {
        let name =
            root.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| DigestError::UnsafeName {
                    path: root.display().to_string(),
                    reason: "file name is not UTF-8".into(),
                })?;
        check_relative_path(name)?;
        // Resolved, so the no-follow open below accepts a root the caller named through a link.
        plan.files.push(PlannedFile {
            path: name.to_string(),
            full: std::fs::canonicalize(root).map_err(io_err(root))?,
            size: meta.len(),
        });
        return Ok(plan);
    }
    if !meta.is_dir() {
        return Err(DigestError::SpecialFile {
            path: root.to_path_buf(),
            kind: special_kind(meta.file_type()),
        });
    }
    // (directory on disk, its manifest prefix, depth)
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let full = entry.path();
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| DigestError::UnsafeName {
                path: full.display().to_string(),
                reason: "name is not UTF-8".into(),
            })?;
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            if is_ignored(&path, ignore) {
                continue;
            }
            check_relative_path(&path)?;
            let ft = entry.file_type().map_err(io_err(&full))?;
            if ft.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    return Err(DigestError::Limit(format!(
                        "{path}: deeper than {MAX_DEPTH} directories"
                    )));
                }
                stack.push((full, path, depth + 1));
            } else if ft.is_file() {
                if plan.files.len() >= MAX_FILES {
                    return Err(DigestError::Limit(format!("more than {MAX_FILES} files")));
                }
                let size = entry.metadata().map_err(io_err(&full))?.len();
                plan.files.push(PlannedFile { path, full, size });
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&full).map_err(io_err(&full))?;
                let target = target.to_string_lossy().into_owned();
                match symlinks {
                    SymlinkPolicy::Refuse => {
                        return Err(DigestError::Symlink { path: full, target });
                    }
                    SymlinkPolicy::Record => plan.symlinks.push(SymlinkEntry { path, target }),
                }
            } else {
                return Err(DigestError::SpecialFile {
                    path: full,
                    kind: special_kind(ft),
                });
            }
        }
    }
    plan.symlinks
        .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(plan)
}

/// Opens a file for hashing without following a symlink and without blocking on a FIFO that
/// replaced it since the walk, then checks it is still a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, DigestError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err(path))?;
    let ft = file.metadata().map_err(io_err(path))?.file_type();
    if !ft.is_file() {
        return Err(DigestError::SpecialFile {
            path: path.to_path_buf(),
            kind: special_kind(ft),
        });
    }
    Ok(file)
}
