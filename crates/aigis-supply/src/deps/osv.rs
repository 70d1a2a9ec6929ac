//! OSV records (<https://ossf.github.io/osv-schema/>): the raw JSON/YAML shape, and the compact
//! [`Advisory`] the index keeps.
//!
//! Parsing is two-step (raw -> validated), like every parser in aigis: [`parse_record`] reads
//! the document into the serde mirror of the schema, then keeps only what matching and reporting
//! need (ids, aliases, a one-line summary, the computed severity, and the `affected` entries of
//! the ecosystems aigis knows). A withdrawn record is recognised here and dropped by the caller.

use serde::{Deserialize, Deserializer, Serialize};

use super::ecosystem::Ecosystem;
use super::severity::{self, AdvisorySeverity};
use super::yaml;

/// Largest OSV record file read (the biggest real records, with thousands of listed versions, are
/// under 1 MiB).
pub const MAX_RECORD_BYTES: usize = 8 << 20;
/// Longest summary kept in the index (characters).
pub const MAX_SUMMARY_CHARS: usize = 240;

/// One advisory as the index stores it: everything matching and reporting need, nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The record id (`PYSEC-2021-76`, `RUSTSEC-2016-0001`, `GHSA-…`).
    pub id: String,
    /// Other ids of the same vulnerability (`CVE-…`, `GHSA-…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// One line: the OSV `summary`, else the first sentence of `details`.
    #[serde(default)]
    pub summary: String,
    /// The severity computed from the record.
    pub severity: AdvisorySeverity,
    /// The record's `modified` time (RFC 3339), kept to report the database's age.
    #[serde(default)]
    pub modified: String,
    /// The affected packages of supported ecosystems.
    pub affected: Vec<Affected>,
}

/// One `affected[]` entry of a supported ecosystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name as the record spells it.
    pub name: String,
    /// `ECOSYSTEM` and `SEMVER` ranges (`GIT` ranges are not kept: they cannot be evaluated
    /// against a version number offline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The entry had `GIT` ranges only and no listed versions: nothing here can be evaluated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub git_only: bool,
}

/// An OSV range of type `ECOSYSTEM` or `SEMVER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `true` for `SEMVER` (always SemVer precedence), `false` for `ECOSYSTEM` (the package
    /// ecosystem's own ordering).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semver: bool,
    /// The events, in record order.
    pub events: Vec<Event>,
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Versions from here on are affected (`"0"`: from the first version).
    #[serde(rename = "i")]
    Introduced(String),
    /// Versions from here on are not affected.
    #[serde(rename = "f")]
    Fixed(String),
    /// The last affected version; later ones are not affected.
    #[serde(rename = "l")]
    LastAffected(String),
    /// An upper limit for the whole range (`"*"`: none).
    #[serde(rename = "x")]
    Limit(String),
}

/// What [`parse_record`] makes of one document.
#[derive(Debug)]
pub enum Parsed {
    /// A live advisory, with the entries of supported ecosystems (possibly none).
    Advisory(Advisory),
    /// The record is withdrawn; it is ignored.
    Withdrawn(String),
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RecordError {
    /// 1-based line of the problem (1 when unknown).
    pub line: u64,
    /// What is wrong, with a hint.
    pub message: String,
}

#[derive(Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    severity: Vec<RawSeverity>,
    #[serde(default, deserialize_with = "null_default")]
    affected: Vec<RawAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct RawSeverity {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default, deserialize_with = "null_default")]
    ranges: Vec<RawRange>,
    #[serde(default, deserialize_with = "null_default")]
    versions: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "null_default")]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// `null` where a list or object is expected reads as empty.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The document format of a record file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Syntax {
    /// OSV JSON.
    Json,
    /// OSV YAML (the PyPA advisory database).
    Yaml,
}

impl Syntax {
    /// The syntax for a file name, by extension; `None` for files that are not records.
    pub fn for_name(name: &str) -> Option<Self> {
        let ext = |e: &str| {
            std::path::Path::new(name)
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case(e))
        };
        if ext("json") {
            Some(Self::Json)
        } else if ext("yaml") || ext("yml") {
            Some(Self::Yaml)
        } else {
            None
        }
    }
}

/// Parses one OSV record.
pub fn parse_record(bytes: &[u8], syntax: Syntax) -> Result<Parsed, RecordError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError {
            line: 1,
            message: format!(
                "record is {} bytes, larger than the {MAX_RECORD_BYTES}-byte limit",
                bytes.len()
            ),
        });
    }
    let raw: RawRecord = match syntax {
        Syntax::Json => serde_json::from_slice(bytes).map_err(|e| RecordError {
            line: e.line() as u64,
            message: format!("not an OSV record: {e}"),
        })?,
        Syntax::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|e| RecordError {
                line: 1,
                message: format!("not UTF-8 text: {e}"),
            })?;
            let value = yaml::parse(text).map_err(|e| RecordError {
                line: e.line,
                message: e.message,
            })?;
            serde_json::from_value(value).map_err(|e| RecordError {
                line: 1,
                message: format!("not an OSV record: {e}"),
            })?
        }
    };
    Ok(validate(raw))
}

fn validate(raw: RawRecord) -> Parsed {
    if raw
        .withdrawn
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        return Parsed::Withdrawn(raw.id);
    }
    let severity = severity::of_record(
        &raw.severity,
        raw.affected.iter().flat_map(|a| a.severity.iter()),
        raw.database_specific.as_ref(),
        raw.affected
            .iter()
            .filter_map(|a| a.database_specific.as_ref()),
    );
    let affected = raw
        .affected
        .into_iter()
        .filter_map(convert_affected)
        .collect();
    let summary = one_line(raw.summary.as_deref(), raw.details.as_deref());
    let mut aliases = raw.aliases;
    aliases.retain(|a| *a != raw.id);
    aliases.sort();
    aliases.dedup();
    Parsed::Advisory(Advisory {
        id: raw.id,
        aliases,
        summary,
        severity,
        modified: raw.modified.unwrap_or_default(),
        affected,
    })
}

fn convert_affected(raw: RawAffected) -> Option<Affected> {
    let package = raw.package?;
    let ecosystem = Ecosystem::from_osv(package.ecosystem.trim())?;
    let mut had_git = false;
    let mut ranges = Vec::new();
    for range in raw.ranges {
        let semver = match range.kind.as_str() {
            "SEMVER" => true,
            "ECOSYSTEM" => false,
            _ => {
                had_git = true;
                continue;
            }
        };
        let events = range.events.iter().filter_map(convert_event).collect();
        ranges.push(Range { semver, events });
    }
    let git_only = had_git && ranges.is_empty() && raw.versions.is_empty();
    Some(Affected {
        ecosystem,
        name: package.name,
        ranges,
        versions: raw.versions,
        git_only,
    })
}

fn convert_event(event: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    let (key, value) = event.iter().next()?;
    let value = match value {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(match key.as_str() {
        "introduced" => Event::Introduced(value),
        "fixed" => Event::Fixed(value),
        "last_affected" => Event::LastAffected(value),
        "limit" => Event::Limit(value),
        _ => return None,
    })
}

/// The summary, else the first sentence (or line) of the details, capped at
/// [`MAX_SUMMARY_CHARS`].
fn one_line(summary: Option<&str>, details: Option<&str>) -> String {
    let text = summary
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| details.map(str::trim))
        .unwrap_or_default();
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = match flat.find(". ") {
        Some(end) if summary.is_none_or(|s| s.trim().is_empty()) => &flat[..=end],
        _ => flat.as_str(),
    };
    if first.chars().count() > MAX_SUMMARY_CHARS {
        let cut: String = first.chars().take(MAX_SUMMARY_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        first.to_owned()
    }
}
