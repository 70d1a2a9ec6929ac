//! Lockfiles, requirement files, SBOMs and installed environments: each turned into the list of
//! packages (ecosystem, name, exact version, line) it pins, plus the requirements it leaves
//! unpinned and the problems it has.
//!
//! A parser never stops at the first problem when it can go on: a malformed entry becomes an
//! [`Issue`] with its line, the rest is still read, and the scan reports the file as "not fully
//! scanned". A file that cannot be read at all (not UTF-8, larger than [`MAX_INPUT_BYTES`],
//! invalid syntax) yields one issue and no packages.

mod cargo;
mod cyclonedx;
mod go;
mod javascript;
mod python;
mod python_locks;

use std::path::Path;

use super::ecosystem::Ecosystem;

/// Largest input file read (a lockfile of a very large monorepo is a few MiB).
pub const MAX_INPUT_BYTES: u64 = 64 << 20;
/// Most packages taken from one file.
pub const MAX_PACKAGES_PER_FILE: usize = 500_000;
/// Deepest `-r`/`-c` include chain in requirement files.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Deepest nesting followed in `package-lock.json` v1 and CycloneDX component trees.
pub const MAX_TREE_DEPTH: usize = 128;

/// The kinds of input aigis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    /// `Cargo.lock`.
    CargoLock,
    /// `requirements*.txt` and `pip freeze` output.
    Requirements,
    /// `poetry.lock`.
    PoetryLock,
    /// `uv.lock`.
    UvLock,
    /// `Pipfile.lock`.
    PipfileLock,
    /// `pdm.lock`.
    PdmLock,
    /// `*.dist-info/METADATA` (or `*.egg-info/PKG-INFO`) of an installed environment.
    InstalledMetadata,
    /// `package-lock.json` / `npm-shrinkwrap.json` (lockfile versions 1–3).
    PackageLock,
    /// `pnpm-lock.yaml`.
    PnpmLock,
    /// `yarn.lock` (classic v1 and berry).
    YarnLock,
    /// `go.mod`.
    GoMod,
    /// `go.sum` (used only where there is no `go.mod` beside it).
    GoSum,
    /// Conda `environment.yml` (its `pip:` section).
    CondaEnvironment,
    /// A CycloneDX JSON SBOM.
    CycloneDx,
}

impl InputKind {
    /// Every kind, in declaration order (the fuzz target picks one by its first byte).
    pub const ALL: [Self; 14] = [
        Self::CargoLock,
        Self::Requirements,
        Self::PoetryLock,
        Self::UvLock,
        Self::PipfileLock,
        Self::PdmLock,
        Self::InstalledMetadata,
        Self::PackageLock,
        Self::PnpmLock,
        Self::YarnLock,
        Self::GoMod,
        Self::GoSum,
        Self::CondaEnvironment,
        Self::CycloneDx,
    ];

    /// A short name for reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CargoLock => "Cargo.lock",
            Self::Requirements => "requirements",
            Self::PoetryLock => "poetry.lock",
            Self::UvLock => "uv.lock",
            Self::PipfileLock => "Pipfile.lock",
            Self::PdmLock => "pdm.lock",
            Self::InstalledMetadata => "installed (dist-info)",
            Self::PackageLock => "package-lock.json",
            Self::PnpmLock => "pnpm-lock.yaml",
            Self::YarnLock => "yarn.lock",
            Self::GoMod => "go.mod",
            Self::GoSum => "go.sum",
            Self::CondaEnvironment => "environment.yml",
            Self::CycloneDx => "CycloneDX",
        }
    }

    /// The kind of a file, by its name (and, for `METADATA`, its folder). `explicit` is true
    /// for files named on the command line: any `*.txt` is then read as requirements and any
    /// `*.json` with a CycloneDX shape as an SBOM.
    pub fn detect(path: &Path, explicit: bool) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        let parent = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|p| p.to_str())
            .unwrap_or_default();
        Some(match name {
            "Cargo.lock" => Self::CargoLock,
            "poetry.lock" => Self::PoetryLock,
            "uv.lock" => Self::UvLock,
            "Pipfile.lock" => Self::PipfileLock,
            "pdm.lock" => Self::PdmLock,
            "package-lock.json" | "npm-shrinkwrap.json" => Self::PackageLock,
            "pnpm-lock.yaml" => Self::PnpmLock,
            "yarn.lock" => Self::YarnLock,
            "go.mod" => Self::GoMod,
            "go.sum" => Self::GoSum,
            "environment.yml" | "environment.yaml" => Self::CondaEnvironment,
            "METADATA" if parent.ends_with(".dist-info") => Self::InstalledMetadata,
            "PKG-INFO" if parent.ends_with(".egg-info") => Self::InstalledMetadata,
            _ if has_extension(name, "txt")
                && (lower.contains("requirements") || parent == "requirements" || explicit) =>
            {
                Self::Requirements
            }
            _ if lower.ends_with(".cdx.json")
                || lower == "bom.json"
                || lower == "sbom.json"
                || lower.ends_with(".sbom.json")
                || (explicit && has_extension(name, "json")) =>
            {
                Self::CycloneDx
            }
            _ => return None,
        })
    }
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The name as the input spells it.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The 1-based line that pins it, when known.
    pub line: Option<u64>,
    /// The PEP 508 environment marker that conditions it (`python_version < "3.9"`), evaluated
    /// by the scan against its target environment.
    pub marker: Option<String>,
}

/// A requirement without an exact version (`requests>=2`, `name @ git+https://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The name.
    pub name: String,
    /// The requirement as written (`>=2.0`, `@ git+https://…`).
    pub spec: String,
    /// The 1-based line.
    pub line: u64,
    /// Its PEP 508 environment marker, if any.
    pub marker: Option<String>,
}

/// A problem in an input: the part it affects was not scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The file (an included requirements file may differ from the one scanned).
    pub file: String,
    /// The 1-based line (0 when it concerns the whole file).
    pub line: u64,
    /// What is wrong, with a hint where there is one.
    pub message: String,
}

/// What one input yields.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Pinned packages.
    pub packages: Vec<Package>,
    /// Requirements without an exact version.
    pub unpinned: Vec<Unpinned>,
    /// Problems (each makes the input "not fully scanned").
    pub issues: Vec<Issue>,
    /// Sub-files read (requirement includes), for the report.
    pub included: Vec<String>,
}

impl Parsed {
    pub(crate) fn issue(&mut self, file: &str, line: u64, message: impl Into<String>) {
        self.issues.push(Issue {
            file: file.to_owned(),
            line,
            message: message.into(),
        });
    }

    /// Adds a package, unless the per-file cap is reached (then one issue says so).
    pub(crate) fn package(
        &mut self,
        file: &str,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
        line: Option<u64>,
    ) {
        self.conditional_package(file, ecosystem, name, version, line, None);
    }

    /// [`Self::package`] for a package installed only where `marker` holds.
    pub(crate) fn conditional_package(
        &mut self,
        file: &str,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
        line: Option<u64>,
        marker: Option<&str>,
    ) {
        if self.packages.len() >= MAX_PACKAGES_PER_FILE {
            if self.packages.len() == MAX_PACKAGES_PER_FILE {
                self.issue(
                    file,
                    line.unwrap_or(0),
                    format!("more than {MAX_PACKAGES_PER_FILE} packages; the rest were not read"),
                );
                self.packages.push(Package {
                    ecosystem,
                    name: String::new(),
                    version: String::new(),
                    line,
                    marker: None,
                });
            }
            return;
        }
        self.packages.push(Package {
            ecosystem,
            name: name.trim().to_owned(),
            version: version.trim().to_owned(),
            line,
            marker: marker
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        });
    }

    fn finish(mut self) -> Self {
        self.packages.retain(|p| !p.name.is_empty());
        self.packages.sort();
        self.packages.dedup();
        self
    }
}

/// Reads `path` as UTF-8 text of at most [`MAX_INPUT_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_INPUT_BYTES {
        return Err(format!(
            "{len} bytes, larger than the {MAX_INPUT_BYTES}-byte input limit"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("not UTF-8 text (invalid byte at offset {at})")
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// Parses one input file of `kind`.
pub fn parse(kind: InputKind, path: &Path) -> Parsed {
    let file = path.display().to_string();
    if kind == InputKind::Requirements {
        let mut out = Parsed::default();
        python::requirements_file(path, 0, &mut Vec::new(), &mut out);
        return out.finish();
    }
    let text = match read_text(path) {
        Ok(text) => text,
        Err(message) => {
            let mut out = Parsed::default();
            out.issue(&file, 0, message);
            return out;
        }
    };
    parse_text(kind, &file, &text).finish()
}

/// Parses the text of one input (no includes are followed: `-r` lines in requirements text are
/// reported as issues). This is what the fuzz target drives.
pub fn parse_text(kind: InputKind, file: &str, text: &str) -> Parsed {
    let mut out = Parsed::default();
    match kind {
        InputKind::CargoLock => cargo::cargo_lock(file, text, &mut out),
        InputKind::Requirements => {
            python::requirements_text(file, text, None, &mut out);
        }
        InputKind::InstalledMetadata => python::metadata(file, text, &mut out),
        InputKind::PoetryLock | InputKind::PdmLock => {
            python_locks::toml_packages(file, text, &mut out);
        }
        InputKind::UvLock => python_locks::uv_lock(file, text, &mut out),
        InputKind::PipfileLock => python_locks::pipfile_lock(file, text, &mut out),
        InputKind::CondaEnvironment => python_locks::conda_environment(file, text, &mut out),
        InputKind::PackageLock => javascript::package_lock(file, text, &mut out),
        InputKind::PnpmLock => javascript::pnpm_lock(file, text, &mut out),
        InputKind::YarnLock => javascript::yarn_lock(file, text, &mut out),
        InputKind::GoMod => go::go_mod(file, text, &mut out),
        InputKind::GoSum => go::go_sum(file, text, &mut out),
        InputKind::CycloneDx => cyclonedx::sbom(file, text, &mut out),
    }
    out
}

/// Whether `name` ends in `.ext` (any ASCII case).
pub(crate) fn has_extension(name: &str, ext: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    text.as_bytes()[..end].split(|&b| b == b'\n').count() as u64
}

/// 1-based line of the first occurrence of `needle` at or after byte `from`.
pub(crate) fn find_line(text: &str, needle: &str, from: usize) -> Option<(u64, usize)> {
    let start = from.min(text.len());
    text.get(start..)?
        .find(needle)
        .map(|at| (line_at(text, start + at), start + at))
}
