//! Finding the inputs in a directory tree.
//!
//! Directories that hold build output, caches, vendored or installed dependencies are not
//! entered during discovery ([`IGNORED_DIRS`], and every hidden directory): a `node_modules`
//! tree holds the `package.json` of every dependency, which the lockfile already lists. A path
//! named on the command line is always scanned, even when it is such a directory, so
//! `aigis deps .venv` scans an installed environment. Symbolic links are not followed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::inputs::InputKind;

/// Directory names never entered while discovering.
pub const IGNORED_DIRS: [&str; 6] = [
    "node_modules",
    "bower_components",
    "target",
    "__pycache__",
    "site-packages",
    "venv",
];
/// Deepest directory level entered.
pub const MAX_DEPTH: usize = 32;
/// Most inputs collected from one walk.
pub const MAX_INPUTS: usize = 100_000;

/// One input to scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// What it is.
    pub kind: InputKind,
}

/// What discovery found, and what it could not enter.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The inputs, sorted by path.
    pub inputs: Vec<Input>,
    /// Paths that could not be read (path, reason).
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Collects the inputs under `paths`. Files named directly are taken by name (any `*.txt` as a
/// requirements file, any `*.json` as a CycloneDX SBOM); directories are walked.
pub fn discover(paths: &[PathBuf]) -> Discovered {
    let mut found = Discovered::default();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let installed = looks_installed(path);
                walk(path, 0, installed, &mut found);
            }
            Ok(_) => match InputKind::detect(path, true) {
                Some(kind) => found.inputs.push(Input {
                    path: path.clone(),
                    kind,
                }),
                None => found.unreadable.push((
                    path.clone(),
                    "not a supported input (see `aigis deps --help` for the file names read)"
                        .to_owned(),
                )),
            },
            Err(e) => found.unreadable.push((path.clone(), e.to_string())),
        }
    }
    drop_shadowed_go_sum(&mut found.inputs);
    found.inputs.sort();
    found.inputs.dedup();
    found
}

/// A directory given explicitly that is (or holds) an installed environment: its
/// `*.dist-info` folders are read even below `site-packages`, and nothing else is (installed
/// packages ship their own requirement files and lockfiles, which describe their development,
/// not what is installed).
fn looks_installed(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == "site-packages"
        || name.starts_with(".venv")
        || name == "venv"
        || name == "env"
        || path.join("pyvenv.cfg").is_file()
}

fn ignored(name: &str, installed: bool) -> bool {
    if installed
        && (name == "site-packages"
            || name.ends_with(".dist-info")
            || name == "lib"
            || name.starts_with("python"))
    {
        return false;
    }
    name.starts_with('.') || IGNORED_DIRS.contains(&name)
}

fn walk(dir: &Path, depth: usize, installed: bool, found: &mut Discovered) {
    if depth > MAX_DEPTH || found.inputs.len() >= MAX_INPUTS {
        found.unreadable.push((
            dir.to_path_buf(),
            format!("deeper than {MAX_DEPTH} levels or more than {MAX_INPUTS} inputs"),
        ));
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            found.unreadable.push((dir.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mut children: Vec<_> = entries.flatten().collect();
    children.sort_by_key(fs::DirEntry::file_name);
    for entry in children {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_dir() {
            if !ignored(&name, installed) {
                walk(&path, depth + 1, installed, found);
            }
        } else if kind.is_file()
            && let Some(kind) = InputKind::detect(&path, false)
            && ((kind == InputKind::InstalledMetadata) == installed)
        {
            found.inputs.push(Input { path, kind });
        }
    }
}

/// `go.sum` is read only where there is no `go.mod` in the same folder.
fn drop_shadowed_go_sum(inputs: &mut Vec<Input>) {
    let mod_dirs: BTreeSet<PathBuf> = inputs
        .iter()
        .filter(|i| i.kind == InputKind::GoMod)
        .filter_map(|i| i.path.parent().map(Path::to_path_buf))
        .collect();
    inputs.retain(|i| {
        i.kind != InputKind::GoSum || i.path.parent().is_none_or(|p| !mod_dirs.contains(p))
    });
}
