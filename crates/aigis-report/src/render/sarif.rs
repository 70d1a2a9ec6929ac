//! SARIF 2.1.0 for code-scanning dashboards (GitHub code scanning, Azure DevOps, IDE viewers).
//!
//! One run. `tool.driver.rules` lists each rule that fired, sorted by id; each result points at
//! its rule by `ruleId` and `ruleIndex`. Severity maps to `level` (critical/high → `error`,
//! medium → `warning`, low/info → `note`) and to the numeric `security-severity` property GitHub
//! uses to rank alerts. Inputs not scanned become error notifications of `invocations[0]`, which
//! is then not `executionSuccessful`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use crate::{Evidence, Finding, Location, Report, Severity};

/// The `$schema` written into every SARIF log.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF `version` written into every log.
pub const SARIF_VERSION: &str = "2.1.0";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: ToolComponent<'a>,
    invocations: [Invocation<'a>; 1],
    results: Vec<SarifResult<'a>>,
    /// `Location` columns count Unicode code points.
    column_kind: &'static str,
}

#[derive(Serialize)]
struct ToolComponent<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'a str>,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    short_description: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<Text<'a>>,
    default_configuration: Configuration,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

impl<'a> Text<'a> {
    fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Self { text: text.into() }
    }
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text<'a>,
    locations: [ResultLocation<'a>; 1],
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultLocation<'a> {
    physical_location: PhysicalLocation,
    /// The full location as people read it (`model.zip!data.pkl (byte 52)`).
    message: Text<'a>,
    #[serde(skip_serializing_if = "LocationProperties::is_empty")]
    properties: LocationProperties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_offset: Option<u64>,
}

/// SARIF has no field for a member inside an archive or a key inside a document, so they travel
/// in the location's property bag; the artifact URI stays the file on disk, which is what a
/// dashboard can link to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocationProperties<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_member: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_path: Option<&'a str>,
}

impl LocationProperties<'_> {
    fn is_empty(&self) -> bool {
        self.archive_member.is_none() && self.key_path.is_none()
    }
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    severity: Severity,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(flatten)]
    properties: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation<'a> {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_execution_notifications: Vec<Notification<'a>>,
}

#[derive(Serialize)]
struct Notification<'a> {
    level: &'static str,
    message: Text<'a>,
    locations: [NotificationLocation; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationLocation {
    physical_location: PhysicalLocation,
}

pub(crate) fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let findings = report.sorted_findings();
    let rules = rules(report, &findings);
    let rule_index: BTreeMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(index, rule)| (rule.id, index))
        .collect();
    let results = findings
        .iter()
        .map(|finding| SarifResult {
            rule_id: finding.rule_id(),
            rule_index: rule_index
                .get(finding.rule_id())
                .copied()
                .unwrap_or_default(),
            level: level(finding.severity()),
            message: Text::new(finding.message()),
            locations: [result_location(finding.location())],
            properties: ResultProperties {
                severity: finding.severity(),
                security_severity: security_severity(finding.severity()),
                evidence: finding.evidence().map(Evidence::as_str),
                help: finding.help(),
                tags: finding.tags(),
                properties: finding.properties(),
            },
        })
        .collect();
    let notifications: Vec<Notification<'_>> = report
        .sorted_not_scanned()
        .into_iter()
        .map(|item| Notification {
            level: "error",
            message: Text::new(format!("not scanned: {}", item.reason())),
            locations: [NotificationLocation {
                physical_location: PhysicalLocation {
                    artifact_location: ArtifactLocation {
                        uri: artifact_uri(item.path()),
                    },
                    region: None,
                },
            }],
        })
        .collect();
    let log = Log {
        schema: SARIF_SCHEMA,
        version: SARIF_VERSION,
        runs: [Run {
            tool: ToolComponent {
                driver: Driver {
                    name: report.tool.name(),
                    version: report.tool.version(),
                    information_uri: report.tool.information_uri(),
                    rules,
                },
            },
            invocations: [Invocation {
                execution_successful: notifications.is_empty(),
                tool_execution_notifications: notifications,
            }],
            results,
            column_kind: "unicodeCodePoints",
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

/// One rule per distinct rule id, sorted by id. A rule's default level and security severity
/// are those of its most severe finding; its help is the first hint in report order; its tags
/// are the union of its findings' tags.
fn rules<'a>(report: &'a Report, findings: &[&'a Finding]) -> Vec<Rule<'a>> {
    let mut by_id: BTreeMap<&'a str, Vec<&'a Finding>> = BTreeMap::new();
    for &finding in findings {
        by_id.entry(finding.rule_id()).or_default().push(finding);
    }
    by_id
        .into_iter()
        .map(|(id, findings)| {
            let severity = findings
                .iter()
                .map(|f| f.severity())
                .max()
                .unwrap_or(Severity::Info);
            let mut tags: Vec<&str> = findings
                .iter()
                .flat_map(|f| f.tags())
                .map(String::as_str)
                .collect();
            tags.sort_unstable();
            tags.dedup();
            Rule {
                id,
                short_description: Text::new(report.rule_description(id).unwrap_or(id)),
                help: findings.iter().find_map(|f| f.help()).map(Text::new),
                default_configuration: Configuration {
                    level: level(severity),
                },
                properties: RuleProperties {
                    security_severity: security_severity(severity),
                    tags,
                },
            }
        })
        .collect()
}

fn result_location(location: &Location) -> ResultLocation<'_> {
    let region = Region {
        start_line: location.line(),
        start_column: location.line().and(location.column()),
        byte_offset: location.byte_offset(),
    };
    let has_region = region.start_line.is_some() || region.byte_offset.is_some();
    ResultLocation {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: artifact_uri(location.path()),
            },
            region: has_region.then_some(region),
        },
        message: Text::new(location.to_string()),
        properties: LocationProperties {
            archive_member: location.member(),
            key_path: location.key_path(),
        },
    }
}

/// SARIF `level`: what a dashboard shows as error, warning or note.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning reads `security-severity` as a CVSS-like score in a string:
/// over 9.0 is critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A path as a URI reference: relative paths stay relative (so dashboards resolve them against
/// the checkout), absolute paths become `file://` URIs, and every byte outside the unreserved set
/// and `/` is percent-encoded (spaces, `:`, `#`, `%`, non-ASCII), so the result always parses as
/// a URI reference and cannot be mistaken for one with a scheme.
fn artifact_uri(path: &str) -> String {
    uri_for(path, std::path::MAIN_SEPARATOR == '\\')
}

/// [`artifact_uri`] for either platform: on Windows `\\` separates directories and `C:/` starts
/// an absolute path; elsewhere both are ordinary file-name characters.
fn uri_for(path: &str, windows: bool) -> String {
    let path: Cow<'_, str> = if windows {
        Cow::Owned(path.replace('\\', "/"))
    } else {
        Cow::Borrowed(path)
    };
    let bytes = path.as_bytes();
    let drive = match bytes {
        [letter, b':', b'/', ..] if windows && letter.is_ascii_alphabetic() => {
            Some(char::from(*letter))
        }
        _ => None,
    };
    let mut uri = String::with_capacity(path.len() + 8);
    let rest = match drive {
        Some(letter) => {
            let _ = write!(uri, "file:///{letter}:");
            bytes.get(2..).unwrap_or_default()
        }
        None if path.starts_with('/') => {
            uri.push_str("file://");
            bytes
        }
        None => bytes,
    };
    for &byte in rest {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::{level, security_severity, uri_for};
    use crate::Severity;

    #[test]
    fn relative_paths_stay_relative_and_are_percent_encoded() {
        let unix = |path| uri_for(path, false);
        assert_eq!(unix("models/model.pkl"), "models/model.pkl");
        assert_eq!(unix("my model#1.pkl"), "my%20model%231.pkl");
        assert_eq!(unix("a:b"), "a%3Ab");
        assert_eq!(unix("100%.bin"), "100%25.bin");
        assert_eq!(unix("modèle.bin"), "mod%C3%A8le.bin");
    }

    #[test]
    fn absolute_paths_become_file_uris() {
        assert_eq!(
            uri_for("/srv/m/model.zip", false),
            "file:///srv/m/model.zip"
        );
        assert_eq!(uri_for("C:\\models\\x.pt", true), "file:///C:/models/x.pt");
        assert_eq!(uri_for("models\\x.pt", true), "models/x.pt");
    }

    #[test]
    fn windows_syntax_is_plain_text_elsewhere() {
        assert_eq!(uri_for("C:/models/x.pt", false), "C%3A/models/x.pt");
        assert_eq!(uri_for("a\\b", false), "a%5Cb");
    }

    #[test]
    fn levels_and_scores_follow_the_documented_mapping() {
        let mapped: Vec<_> = Severity::ALL
            .iter()
            .map(|&s| (level(s), security_severity(s)))
            .collect();
        assert_eq!(
            mapped,
            [
                ("error", "9.5"),
                ("error", "8.0"),
                ("warning", "5.5"),
                ("note", "3.0"),
                ("note", "0.0"),
            ]
        );
    }
}
