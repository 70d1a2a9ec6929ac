//! The JSON document: a stable shape for scripts (`jq`), documented in `docs/report.md`.
//! Any change to a field's name or meaning bumps [`JSON_FORMAT_VERSION`].

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::{Error, Finding, NotScanned, Report, Summary, Tool};

/// The `format_version` of the JSON document this build writes and reads.
pub const JSON_FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format_version: u32,
    tool: &'a Tool,
    summary: Summary,
    findings: Vec<&'a Finding>,
    not_scanned: Vec<&'a NotScanned>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    rules: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Header {
    format_version: u32,
}

/// `summary` is derived from the findings, so reading ignores it.
#[derive(Deserialize)]
struct OwnedDocument {
    tool: Tool,
    findings: Vec<Finding>,
    #[serde(default)]
    not_scanned: Vec<NotScanned>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
}

pub(crate) fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let document = Document {
        format_version: JSON_FORMAT_VERSION,
        tool: &report.tool,
        summary: report.summary(),
        findings: report.sorted_findings(),
        not_scanned: report.sorted_not_scanned(),
        rules: &report.rules,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

pub(crate) fn read(json: &str) -> Result<Report, Error> {
    let header: Header = serde_json::from_str(json)?;
    if header.format_version != JSON_FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            found: header.format_version,
            supported: JSON_FORMAT_VERSION,
        });
    }
    let document: OwnedDocument = serde_json::from_str(json)?;
    Ok(Report {
        tool: document.tool,
        findings: document.findings,
        not_scanned: document.not_scanned,
        rules: document.rules,
    })
}
