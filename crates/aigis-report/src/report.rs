//! A report: the findings of one command, what it could not scan, and the exit code they imply.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Finding, Severity, render};

/// Exit code when nothing at or above `--fail-on` was found and everything was scanned.
pub const EXIT_CLEAN: i32 = 0;
/// Exit code when a finding is at or above `--fail-on`. Wins over [`EXIT_INCOMPLETE`].
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code when the command could not finish: some input was not scanned.
pub const EXIT_INCOMPLETE: i32 = 2;

/// The program that produced a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    name: String,
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    information_uri: Option<String>,
}

impl Tool {
    /// The tool's name (`aigis`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tool's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where to read about the tool and its rules, if known.
    pub fn information_uri(&self) -> Option<&str> {
        self.information_uri.as_deref()
    }
}

/// An input the command could not scan, and why (a limit was hit, it was unreadable, its format
/// is unsupported). Any of these makes the exit code at least [`EXIT_INCOMPLETE`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NotScanned {
    path: String,
    reason: String,
}

impl NotScanned {
    /// `path` (with `!member` for an archive member) was not scanned because of `reason`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The input that was not scanned.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why, in words that name the limit or error.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// How many findings a report holds at each severity, and how many inputs were not scanned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Findings of severity critical.
    pub critical: usize,
    /// Findings of severity high.
    pub high: usize,
    /// Findings of severity medium.
    pub medium: usize,
    /// Findings of severity low.
    pub low: usize,
    /// Findings of severity info.
    pub info: usize,
    /// Inputs that were not scanned.
    pub not_scanned: usize,
}

impl Summary {
    /// The number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    /// The number of findings of every severity.
    pub fn findings(&self) -> usize {
        Severity::ALL.iter().map(|&s| self.count(s)).sum()
    }

    fn count_mut(&mut self, severity: Severity) -> &mut usize {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }
}

/// Everything one command found, ready to render and to turn into an exit code.
///
/// Findings are kept in the order they were added; every renderer lists them in
/// [`Finding::report_order`], so output does not depend on scan order or parallelism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub(crate) tool: Tool,
    pub(crate) findings: Vec<Finding>,
    pub(crate) not_scanned: Vec<NotScanned>,
    pub(crate) rules: BTreeMap<String, String>,
}

impl Report {
    /// An empty report from `tool` at `version`. The information URI defaults to this crate's
    /// repository.
    pub fn new(tool: impl Into<String>, version: impl Into<String>) -> Self {
        let repository = env!("CARGO_PKG_REPOSITORY");
        Self {
            tool: Tool {
                name: tool.into(),
                version: version.into(),
                information_uri: (!repository.is_empty()).then(|| repository.to_owned()),
            },
            findings: Vec::new(),
            not_scanned: Vec::new(),
            rules: BTreeMap::new(),
        }
    }

    /// Sets where to read about the tool and its rules (SARIF `tool.driver.informationUri`).
    #[must_use]
    pub fn with_information_uri(mut self, uri: impl Into<String>) -> Self {
        self.tool.information_uri = Some(uri.into());
        self
    }

    /// Adds a finding.
    pub fn add(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Records an input that could not be scanned.
    pub fn add_not_scanned(&mut self, item: NotScanned) {
        self.not_scanned.push(item);
    }

    /// Gives a rule a one-line description (SARIF `shortDescription`); a rule without one is
    /// described by its id.
    pub fn describe_rule(&mut self, rule_id: impl Into<String>, description: impl Into<String>) {
        self.rules.insert(rule_id.into(), description.into());
    }

    /// Moves everything from `other` (e.g. the report of one file scanned in parallel) into this
    /// report; this report's tool is kept.
    pub fn merge(&mut self, other: Report) {
        self.findings.extend(other.findings);
        self.not_scanned.extend(other.not_scanned);
        for (id, description) in other.rules {
            self.rules.entry(id).or_insert(description);
        }
    }

    /// The tool that produced this report.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }

    /// The findings, in the order they were added.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The findings in report order: most severe first, then by location and rule id.
    pub fn sorted_findings(&self) -> Vec<&Finding> {
        let mut findings: Vec<&Finding> = self.findings.iter().collect();
        findings.sort_by(|a, b| a.report_order(b));
        findings
    }

    /// The inputs that were not scanned, in the order they were recorded.
    pub fn not_scanned(&self) -> &[NotScanned] {
        &self.not_scanned
    }

    /// The inputs that were not scanned, sorted by path and reason.
    pub(crate) fn sorted_not_scanned(&self) -> Vec<&NotScanned> {
        let mut items: Vec<&NotScanned> = self.not_scanned.iter().collect();
        items.sort();
        items
    }

    /// The description given with [`Report::describe_rule`], if any.
    pub fn rule_description(&self, rule_id: &str) -> Option<&str> {
        self.rules.get(rule_id).map(String::as_str)
    }

    /// Counts of findings per severity and of inputs not scanned.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            not_scanned: self.not_scanned.len(),
            ..Summary::default()
        };
        for finding in &self.findings {
            *summary.count_mut(finding.severity()) += 1;
        }
        summary
    }

    /// The severity of the worst finding, or `None` when there are no findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(Finding::severity).max()
    }

    /// The project's exit-code contract: [`EXIT_FINDINGS`] (1) when a finding is at or above
    /// `fail_on`; otherwise [`EXIT_INCOMPLETE`] (2) when something was not scanned; otherwise
    /// [`EXIT_CLEAN`] (0). When both 1 and 2 apply, 1 wins (the report still lists what was not
    /// scanned).
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        if self.max_severity().is_some_and(|worst| worst >= fail_on) {
            EXIT_FINDINGS
        } else if self.not_scanned.is_empty() {
            EXIT_CLEAN
        } else {
            EXIT_INCOMPLETE
        }
    }

    /// Writes the report to `out` in `format`.
    pub fn render(&self, format: Format, out: &mut impl Write) -> io::Result<()> {
        match format {
            Format::Table => render::table::write(self, out),
            Format::Json => render::json::write(self, out),
            Format::Sarif => render::sarif::write(self, out),
        }
    }

    /// Reads a report back from the JSON that [`Format::Json`] renders.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        render::json::read(json)
    }
}

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// An aligned plain-text table for people, followed by a summary line.
    Table,
    /// The stable JSON document described in `docs/report.md`, pretty-printed.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Self; 3] = [Self::Table, Self::Json, Self::Sarif];

    /// The lowercase name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Json => "json",
            Self::Sarif => "sarif",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Parses `table`, `json` or `sarif` (any ASCII case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownFormat {
                given: s.to_owned(),
            })
    }
}
