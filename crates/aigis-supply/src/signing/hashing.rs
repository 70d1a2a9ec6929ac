//! Computing a model's manifest from disk, with aigis-crypto's parallel tree hasher: files in
//! parallel (files mode), or every shard of every file in parallel (shards mode).

use std::path::{Path, PathBuf};

use aigis_crypto::digest::{
    DigestAlgo, Plan, PlannedFile, SymlinkPolicy, TreeHasher, check_relative_path,
    cmp_path_components,
};

use super::SigningError;
use super::statement::{HashType, Method, ModelManifest, Resource, Serialization};

/// What to hash.
#[derive(Debug, Clone, Default)]
pub struct HashOptions {
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// Only these files (relative paths) instead of walking the directory
    /// (`--ignore-unsigned-files`).
    pub only: Option<Vec<String>>,
}

/// The model's files as the serialization sees them, and the empty ones among them.
pub struct Listing {
    /// The plan to hash (names are manifest paths; `.` for a single-file model).
    pub plan: Plan,
    /// Whether the model path is a single file.
    pub single_file: bool,
}

fn hasher(ser: &Serialization, threads: Option<usize>) -> TreeHasher {
    let algo = match ser.hash_type {
        HashType::Sha256 => DigestAlgo::Sha256,
        HashType::Blake3 => DigestAlgo::Blake3,
    };
    let mut h = TreeHasher::new(algo)
        .with_symlinks(SymlinkPolicy::Record)
        .with_ignore(ser.ignore_paths.clone());
    if let Some(n) = threads {
        h = h.with_threads(n);
    }
    h
}

/// Lists the files of `model` under `ser` (ignore rules, symlink policy).
pub fn list(
    model: &Path,
    ser: &Serialization,
    opts: &HashOptions,
) -> Result<Listing, SigningError> {
    let meta = std::fs::symlink_metadata(model).map_err(|source| SigningError::Io {
        path: model.to_path_buf(),
        source,
    })?;
    let single_file = meta.is_file();
    let h = hasher(ser, opts.threads);
    let mut plan = match &opts.only {
        Some(only) if !single_file => plan_only(model, only)?,
        _ => h.plan(model)?,
    };
    if single_file {
        for f in &mut plan.files {
            f.path = ".".into();
        }
    }
    let root = std::fs::canonicalize(model).map_err(|source| SigningError::Io {
        path: model.to_path_buf(),
        source,
    })?;
    for link in std::mem::take(&mut plan.symlinks) {
        let full = model.join(&link.path);
        if !ser.allow_symlinks {
            return Err(SigningError::Symlink {
                path: full,
                reason: format!(
                    "is a symlink (to {}); symlinks are refused unless --allow-symlinks",
                    link.target
                ),
            });
        }
        plan.files.push(resolve_link(&root, &full, link.path)?);
    }
    Ok(Listing { plan, single_file })
}

/// Follows a symlink only if it resolves to a regular file inside the model directory.
fn resolve_link(root: &Path, full: &Path, path: String) -> Result<PlannedFile, SigningError> {
    let target = std::fs::canonicalize(full).map_err(|source| SigningError::Io {
        path: full.to_path_buf(),
        source,
    })?;
    if !target.starts_with(root) {
        return Err(SigningError::Symlink {
            path: full.to_path_buf(),
            reason: format!(
                "points outside the model directory (to {}); refusing to follow it",
                target.display()
            ),
        });
    }
    let meta = std::fs::metadata(&target).map_err(|source| SigningError::Io {
        path: target.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SigningError::Symlink {
            path: full.to_path_buf(),
            reason: "points to a directory or special file; only symlinks to files are followed"
                .into(),
        });
    }
    Ok(PlannedFile {
        path,
        full: target,
        size: meta.len(),
    })
}

/// The files named in a manifest, as a plan (missing ones are left out; the comparison
/// reports them). Like the walker, no symlink is followed on the way: a link anywhere on a
/// path (a directory component, or the file itself) is recorded as the walker would record it,
/// so [`list`] refuses it or resolves it under the same rules.
fn plan_only(model: &Path, only: &[String]) -> Result<Plan, SigningError> {
    let mut plan = Plan::default();
    for path in only {
        check_relative_path(path).map_err(|e| SigningError::UnsafePath {
            name: path.clone(),
            reason: e.to_string(),
        })?;
        match first_link_or_file(model, path) {
            Some(Found::Link(prefix)) => {
                let target = std::fs::read_link(model.join(&prefix))
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                plan.symlinks.push(aigis_crypto::digest::SymlinkEntry {
                    path: prefix,
                    target,
                });
            }
            Some(Found::File(size)) => plan.files.push(PlannedFile {
                path: path.clone(),
                full: model.join(path),
                size,
            }),
            None => {}
        }
    }
    plan.symlinks.sort_by(|a, b| a.path.cmp(&b.path));
    plan.symlinks.dedup_by(|a, b| a.path == b.path);
    Ok(plan)
}

/// What lies at a manifest path, looked at component by component without following links.
enum Found {
    /// The first component (a prefix of the path) that is a symlink.
    Link(String),
    /// A regular file of this size, reached through directories only.
    File(u64),
}

/// Walks `path` (a checked relative path) under `model` with `symlink_metadata` on every
/// prefix. `None`: missing, or not a regular file.
fn first_link_or_file(model: &Path, path: &str) -> Option<Found> {
    let mut prefix = PathBuf::new();
    let mut components = path.split('/').peekable();
    while let Some(c) = components.next() {
        prefix.push(c);
        let meta = std::fs::symlink_metadata(model.join(&prefix)).ok()?;
        let last = components.peek().is_none();
        if meta.file_type().is_symlink() {
            return Some(Found::Link(prefix.to_str()?.to_string()));
        }
        if last {
            return meta.is_file().then_some(Found::File(meta.len()));
        }
        if !meta.is_dir() {
            return None;
        }
    }
    None
}

/// Hashes `model` into a manifest named after the directory.
pub fn hash_model(
    model: &Path,
    ser: &Serialization,
    opts: &HashOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ModelManifest, SigningError> {
    let listing = list(model, ser, opts)?;
    hash_listing(model, ser, listing, opts, progress)
}

/// Hashes a [`list`]ing.
pub fn hash_listing(
    model: &Path,
    ser: &Serialization,
    listing: Listing,
    opts: &HashOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ModelManifest, SigningError> {
    let h = hasher(ser, opts.threads);
    let (resources, empty_files) = match ser.method {
        Method::Files => {
            let m = h.hash_plan(listing.plan, progress)?;
            let resources = m
                .files
                .into_iter()
                .map(|f| Resource {
                    name: f.path,
                    digest: f.digest,
                })
                .collect();
            (resources, None)
        }
        Method::Shards { shard_size } => {
            let mut empty: Vec<String> = listing
                .plan
                .files
                .iter()
                .filter(|f| f.size == 0)
                .map(|f| f.path.clone())
                .collect();
            empty.sort_by(|a, b| cmp_path_components(a, b));
            let shards = h.hash_shards(&listing.plan, shard_size, progress)?;
            let resources = shards
                .into_iter()
                .map(|s| Resource {
                    name: format!("{}:{}:{}", s.path, s.start, s.end),
                    digest: s.digest,
                })
                .collect();
            (resources, Some(empty))
        }
    };
    let mut manifest = ModelManifest {
        model_name: model_name(model),
        serialization: ser.clone(),
        resources,
        empty_files,
        legacy_v02: false,
    };
    manifest.sort();
    Ok(manifest)
}

/// The subject name: the last component of the model path (resolved for `.` and `..`).
pub fn model_name(model: &Path) -> String {
    let name = model.file_name().and_then(|n| n.to_str());
    match name {
        Some(n) if n != ".." => n.to_string(),
        _ => std::fs::canonicalize(model)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .unwrap_or_default(),
    }
}

/// Builds the ignore list recorded in the signature: user paths, git paths (unless disabled)
/// and the signature file when it lies inside the model directory; sorted and deduplicated.
pub fn ignore_list(
    model: &Path,
    user: &[PathBuf],
    ignore_git_paths: bool,
    signature: Option<&Path>,
) -> Result<Vec<String>, SigningError> {
    let root = std::fs::canonicalize(model).map_err(|source| SigningError::Io {
        path: model.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for p in user {
        if let Some(rel) = relative_to_model(&root, p) {
            out.push(rel);
        } else {
            let s = p.to_string_lossy().trim_end_matches('/').to_string();
            check_relative_path(&s).map_err(|e| SigningError::UnsafePath {
                name: s.clone(),
                reason: format!(
                    "--ignore-paths takes paths inside the model directory (relative to it, or to the current directory): {e}"
                ),
            })?;
            out.push(s);
        }
    }
    if ignore_git_paths {
        out.extend(super::statement::GIT_PATHS.iter().map(|s| (*s).to_string()));
    }
    if let Some(sig) = signature
        && let Some(rel) = relative_to_model(&root, sig)
    {
        out.push(rel);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `p` (absolute, or relative to the current directory) as a path relative to the model root,
/// if it lies strictly inside it.
fn relative_to_model(root: &Path, p: &Path) -> Option<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    // The file may not exist yet (a signature about to be written): resolve its parent.
    let resolved = match std::fs::canonicalize(&abs) {
        Ok(r) => r,
        Err(_) => std::fs::canonicalize(abs.parent()?)
            .ok()?
            .join(abs.file_name()?),
    };
    let rel = resolved.strip_prefix(root).ok()?;
    let s = rel.to_str()?.to_string();
    (!s.is_empty() && check_relative_path(&s).is_ok()).then_some(s)
}
