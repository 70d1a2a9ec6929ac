//! Package ecosystems, their name normalisation and their version orderings.
//!
//! Each ecosystem compares versions by its own rules: PEP 440 for PyPI (through `pep440_rs`:
//! normalisation, epochs, pre/post/dev releases, local versions), SemVer 2.0 precedence for
//! crates.io and npm, and Go's module versions (SemVer with a `v` prefix; pseudo-versions are
//! pre-releases, so they already sort where Go sorts them; `+incompatible` is build metadata and
//! does not take part in precedence).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The package ecosystems aigis can match (OSV `affected[].package.ecosystem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ecosystem {
    /// Python packages on PyPI (PEP 440 versions).
    #[serde(rename = "PyPI")]
    PyPi,
    /// Rust crates on crates.io (SemVer).
    #[serde(rename = "crates.io")]
    CratesIo,
    /// JavaScript packages on npm (SemVer).
    #[serde(rename = "npm")]
    Npm,
    /// Go modules (SemVer with `v` prefix, pseudo-versions, `+incompatible`).
    #[serde(rename = "Go")]
    Go,
}

impl Ecosystem {
    /// Every supported ecosystem.
    pub const ALL: [Self; 4] = [Self::PyPi, Self::CratesIo, Self::Npm, Self::Go];

    /// The OSV spelling (`PyPI`, `crates.io`, `npm`, `Go`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PyPi => "PyPI",
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::Go => "Go",
        }
    }

    /// The package-URL type (`pkg:pypi/...`).
    pub const fn purl_type(self) -> &'static str {
        match self {
            Self::PyPi => "pypi",
            Self::CratesIo => "cargo",
            Self::Npm => "npm",
            Self::Go => "golang",
        }
    }

    /// A file-name-safe key for the index (`pypi`, `crates-io`, `npm`, `go`).
    pub const fn file_key(self) -> &'static str {
        match self {
            Self::PyPi => "pypi",
            Self::CratesIo => "crates-io",
            Self::Npm => "npm",
            Self::Go => "go",
        }
    }

    /// The OSV ecosystem for an `affected[].package.ecosystem` string. OSV allows a `:suffix`
    /// (e.g. `Debian:12`); the supported ecosystems have none, so a suffixed name is not one.
    pub fn from_osv(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The name under which a package is looked up: PyPI names are normalised as PEP 503 says
    /// (lowercase, runs of `-`, `_`, `.` become one `-`); other ecosystems compare names exactly
    /// (crates.io names are ASCII-case-insensitive and `-`/`_` are equivalent on the registry, so
    /// they are lowercased with `_` as `-`).
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Self::PyPi => pep503(name),
            Self::CratesIo => name.trim().to_ascii_lowercase().replace('_', "-"),
            Self::Npm | Self::Go => name.trim().to_owned(),
        }
    }

    /// Parses `text` as a version of this ecosystem.
    pub fn parse_version(self, text: &str) -> Option<Version> {
        match self {
            Self::PyPi => parse_pep440(text),
            Self::CratesIo | Self::Npm => parse_semver(text, false),
            Self::Go => parse_semver(text, true),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Ecosystem {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s) || e.file_key() == s)
            .ok_or_else(|| format!("unknown ecosystem `{s}`; expected PyPI, crates.io, npm or Go"))
    }
}

/// PEP 503 normalisation: lowercase, and every run of `-`, `_` and `.` becomes one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// A parsed version. Versions of different kinds never compare (they come from different
/// ecosystems); [`Version::compare`] returns `None` for such a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A PEP 440 version.
    Pep440(pep440_rs::Version),
    /// A SemVer version with build metadata removed (it has no precedence).
    Semver(semver::Version),
}

impl Version {
    /// Orders two versions of the same kind.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Pep440(a), Self::Pep440(b)) => Some(a.cmp(b)),
            (Self::Semver(a), Self::Semver(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Whether this is a pre-release (PEP 440 `a`/`b`/`rc`/`dev`, SemVer `-pre`).
    pub fn is_prerelease(&self) -> bool {
        match self {
            Self::Pep440(v) => v.any_prerelease(),
            Self::Semver(v) => !v.pre.is_empty(),
        }
    }
}

fn parse_pep440(text: &str) -> Option<Version> {
    pep440_rs::Version::from_str(text.trim())
        .ok()
        .map(Version::Pep440)
}

/// SemVer with the leniency lockfiles and advisories need: a leading `v` or `=` is dropped, and a
/// version with one or two components (`1`, `1.2`) is completed with zeros. Build metadata
/// (`+incompatible`, `+wasi-snapshot-preview1`) is dropped because SemVer gives it no precedence.
/// Go versions always carry the `v`; OSV's Go ranges do not, so both are accepted, and Go
/// versions must have all three components (no completion).
fn parse_semver(text: &str, go: bool) -> Option<Version> {
    let mut t = text.trim();
    t = t.strip_prefix('=').unwrap_or(t).trim_start();
    t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    let mut v = match semver::Version::parse(t) {
        Ok(v) => v,
        Err(_) if !go => semver::Version::parse(&complete_semver(t)?).ok()?,
        Err(_) => return None,
    };
    v.build = semver::BuildMetadata::EMPTY;
    Some(Version::Semver(v))
}

/// `1` -> `1.0.0`, `1.2` -> `1.2.0`, `1.2-pre` -> `1.2.0-pre`; `None` when it still is no
/// major.minor.patch core.
fn complete_semver(t: &str) -> Option<String> {
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut out = parts.join(".");
    for _ in parts.len()..3 {
        out.push_str(".0");
    }
    out.push_str(rest);
    Some(out)
}
