//! Findings and reports shared by every aigis command, and the three ways to print them.
//!
//! A scanner builds [`Finding`]s (rule id, [`Severity`], message, [`Location`], optional masked
//! [`Evidence`], hint and tags) and adds them to a [`Report`], together with every input it could
//! not scan ([`NotScanned`]). The CLI then renders the report with [`Report::render`] as a
//! [`Format::Table`], [`Format::Json`] or [`Format::Sarif`] (2.1.0) document and exits with
//! [`Report::exit_code`].
//!
//! ```
//! use aigis_report::{Evidence, Finding, Format, Location, NotScanned, Report, Severity};
//!
//! let mut report = Report::new("aigis", "0.1.0");
//! report.add(
//!     Finding::new(
//!         "AIG-PICKLE-001",
//!         Severity::Critical,
//!         "pickle imports os.system",
//!         Location::new("model.zip").with_member("archive/data.pkl").with_byte_offset(52),
//!     )
//!     .with_evidence(Evidence::text("GLOBAL os system"))
//!     .with_help("load it with weights_only=True or convert it to safetensors"),
//! );
//! report.add_not_scanned(NotScanned::new("huge.bin", "larger than the 4 GiB size limit"));
//!
//! let mut out = Vec::new();
//! report.render(Format::Sarif, &mut out)?;
//! assert_eq!(report.exit_code("high".parse()?), 1); // a finding wins over "not scanned"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The contract
//!
//! - **Exit codes.** `0` ([`EXIT_CLEAN`]): no finding at or above `--fail-on` and everything was
//!   scanned. `1` ([`EXIT_FINDINGS`]): a finding at or above `--fail-on`. `2`
//!   ([`EXIT_INCOMPLETE`]): something was not scanned (a limit hit, unreadable input). When both
//!   1 and 2 apply, 1 wins and the report still lists what was not scanned.
//! - **Severities** are ordered `info < low < medium < high < critical` and spelled in lowercase
//!   everywhere (command line, JSON, SARIF properties).
//! - **Deterministic output.** Renderers list findings most severe first, then by location, rule
//!   id and message; inputs not scanned by path. The same findings give the same bytes whatever
//!   order they were added in.
//! - **No secrets in reports.** [`Evidence`] can only be built by [`Evidence::masked`], which keeps
//!   at most the first 4 and last 2 characters of a value of 12 or more characters and nothing of
//!   a shorter one, or by [`Evidence::text`] for evidence that is not secret.
//! - **Plain text.** The table has no colours, and control and bidirectional-override characters
//!   from scanned input are escaped so a hostile file name cannot rewrite the terminal.
//!
//! # Non-goals
//!
//! No I/O besides the [`std::io::Write`] it is given, no colours (the CLI may add them), and no
//! reading of SARIF back in.

#![deny(missing_docs)]

mod finding;
mod render;
mod report;
mod severity;
pub mod time;

#[cfg(test)]
mod tests;

pub use finding::{
    Evidence, Finding, Location, MASK, MASK_KEEP_PREFIX, MASK_KEEP_SUFFIX, MASK_MIN_CHARS,
    MASK_SHORT, MAX_EVIDENCE_CHARS,
};
pub use render::json::JSON_FORMAT_VERSION;
pub use render::sarif::{SARIF_SCHEMA, SARIF_VERSION};
pub use report::{
    EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE, Format, NotScanned, Report, Summary, Tool,
};
pub use severity::Severity;

/// Everything that can go wrong in this crate: parsing a name given on the command line, or
/// reading a JSON report back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--fail-on` (or other) severity name that is not one of the five.
    #[error("unknown severity `{given}`; expected one of: critical, high, medium, low, info")]
    UnknownSeverity {
        /// What was given.
        given: String,
    },
    /// A `--format` name that is not one of the three.
    #[error("unknown report format `{given}`; expected one of: table, json, sarif")]
    UnknownFormat {
        /// What was given.
        given: String,
    },
    /// The text is not a JSON report of the shape [`Format::Json`] renders.
    #[error("not an aigis JSON report: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON report was written by a version of aigis with a different document shape.
    #[error(
        "aigis JSON report format_version {found} is not supported (this build reads version \
         {supported}); render the report again with this version of aigis"
    )]
    UnsupportedFormatVersion {
        /// The `format_version` in the document.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
}
