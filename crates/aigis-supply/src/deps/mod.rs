//! Dependency vulnerability scanning: lockfiles and environments against an offline OSV index.
//!
//! ```text
//! OSV records (JSON/YAML, dirs or zip exports) --db::import--> compact index (one gzip per ecosystem)
//! paths --discover--> inputs --inputs::parse (parallel)--> packages (ecosystem, name, version, line)
//!       --db lookup (only the names present)--> advisories --matching (once per distinct version)-->
//!       vulnerabilities merged by alias + smallest fix --report / vex--> table, JSON, SARIF, VEX
//! ```
//!
//! - [`ecosystem`]: PyPI (PEP 440), crates.io and npm (SemVer), Go (module versions); name
//!   normalisation.
//! - [`npm_range`]: npm range syntax (`^1.2`, `~1.2.3`, `1.x`, `>=1 <2 || 3`), used for
//!   `package.json` requirements.
//! - [`osv`], [`severity`], [`range`]: the OSV record, its severity (CVSS v2/v3/v4 scored), and
//!   the range evaluation algorithm of the OSV schema.
//! - [`db`]: import, status, lookup.
//! - [`inputs`], [`discover`]: the file formats read and how a tree is walked; [`markers`]: PEP
//!   508 environment markers, evaluated for the target environment.
//! - [`matching`], [`scan`](mod@scan), [`ai`]: the scan itself and the AI-specific checks.
//! - [`report`], [`vex`]: output.
//! - [`online`]: the optional OSV API mode (`--online`), feeding the same matching.
//!
//! # Non-goals
//!
//! No network access unless asked: the database is what was imported; [`online`] asks the OSV
//! API only when the scan options say so.
//! No dependency resolution: inputs must pin versions (unpinned requirements are reported, not
//! resolved). Environment markers are evaluated for one target environment ([`markers`];
//! CPython 3.12 on Linux unless set), not for every platform at once. `GIT` ranges cannot be evaluated against a
//! version number and are reported as not evaluated.

pub mod ai;
pub mod db;
pub mod discover;
pub mod ecosystem;
pub mod inputs;
pub mod markers;
pub mod matching;
pub mod npm_range;
pub mod online;
pub mod osv;
pub mod range;
pub mod report;
pub mod scan;
pub mod severity;
pub mod time;
pub mod vex;
mod yaml;
mod zipread;

#[cfg(test)]
mod tests;

pub use db::{Database, DbError, Meta};
pub use ecosystem::{Ecosystem, Version};
pub use scan::{Excluded, Ignore, ScanOptions, ScanResult, scan};
