//! One finding: which rule fired, how bad it is, where, and the (masked) evidence.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Severity;

/// Where a finding is: a file or artifact, optionally narrowed to an archive member, a line and
/// column, a byte offset, or a key path inside a structured document.
///
/// Lines and columns are 1-based (a column counts Unicode code points); passing 0 to a builder
/// means "unknown" and leaves the field empty. Locations order by path, then member, then line,
/// column, byte offset and key path, which is the order reports list findings in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    column: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    byte_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_path: Option<String>,
}

impl Location {
    /// A location that is a whole file or artifact, as the user named it.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            member: None,
            line: None,
            column: None,
            byte_offset: None,
            key_path: None,
        }
    }

    /// Narrows to a member inside an archive (`data.pkl` in `model.zip`); nested archives join
    /// their member names with `!`.
    #[must_use]
    pub fn with_member(mut self, member: impl Into<String>) -> Self {
        self.member = Some(member.into());
        self
    }

    /// Sets the 1-based line; 0 means unknown.
    #[must_use]
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = (line > 0).then_some(line);
        self
    }

    /// Sets the 1-based column in Unicode code points; 0 means unknown.
    #[must_use]
    pub fn with_column(mut self, column: u64) -> Self {
        self.column = (column > 0).then_some(column);
        self
    }

    /// Sets the 0-based byte offset from the start of the file (or of the member, if one is set).
    #[must_use]
    pub fn with_byte_offset(mut self, offset: u64) -> Self {
        self.byte_offset = Some(offset);
        self
    }

    /// Sets the path of keys inside a structured document, written as a JSON pointer
    /// (`/model/layers/3/config`).
    #[must_use]
    pub fn with_key_path(mut self, key_path: impl Into<String>) -> Self {
        self.key_path = Some(key_path.into());
        self
    }

    /// The file or artifact path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The member inside an archive, if any.
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// The 1-based line, if known.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The 1-based column, if known.
    pub fn column(&self) -> Option<u64> {
        self.column
    }

    /// The 0-based byte offset, if known.
    pub fn byte_offset(&self) -> Option<u64> {
        self.byte_offset
    }

    /// The key path inside a structured document, if any.
    pub fn key_path(&self) -> Option<&str> {
        self.key_path.as_deref()
    }
}

/// Written as `path[!member][:line[:column]][#key_path][ (byte N)]`, e.g.
/// `model.zip!data.pkl (byte 52)` or `config.json:12:7#/auto_map/AutoModel`.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(member) = &self.member {
            write!(f, "!{member}")?;
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key_path) = &self.key_path {
            write!(f, "#{key_path}")?;
        }
        if let Some(offset) = self.byte_offset {
            write!(f, " (byte {offset})")?;
        }
        Ok(())
    }
}

/// Values shorter than this are masked completely.
pub const MASK_MIN_CHARS: usize = 12;
/// Leading characters of a long secret that stay visible, so a user can tell which key it is.
pub const MASK_KEEP_PREFIX: usize = 4;
/// Trailing characters of a long secret that stay visible.
pub const MASK_KEEP_SUFFIX: usize = 2;
/// What replaces the hidden part of a secret; it never depends on the secret's length.
pub const MASK: &str = "…";
/// What a secret shorter than [`MASK_MIN_CHARS`] is shown as.
pub const MASK_SHORT: &str = "****";
/// Evidence text longer than this many characters is cut, so one finding cannot carry a whole
/// file into a report.
pub const MAX_EVIDENCE_CHARS: usize = 256;

/// The part of the input that made a rule fire, safe to print.
///
/// The only ways to build one are [`Evidence::masked`] (secrets) and [`Evidence::text`]
/// (anything else), so a report cannot hold an unmasked secret by accident.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evidence {
    text: String,
    masked: bool,
}

impl Evidence {
    /// Evidence that is a secret (an API key, a token, a password).
    ///
    /// A value of at least [`MASK_MIN_CHARS`] characters keeps its first [`MASK_KEEP_PREFIX`]
    /// and last [`MASK_KEEP_SUFFIX`] characters around [`MASK`] (`sk-proj-abc…yz` becomes
    /// `sk-p…yz`); a shorter value becomes [`MASK_SHORT`], which reveals neither its content nor
    /// its length.
    pub fn masked(secret: &str) -> Self {
        let count = secret.chars().count();
        let text = if count < MASK_MIN_CHARS {
            MASK_SHORT.to_owned()
        } else {
            let prefix: String = secret.chars().take(MASK_KEEP_PREFIX).collect();
            let suffix: String = secret
                .chars()
                .skip(count.saturating_sub(MASK_KEEP_SUFFIX))
                .collect();
            format!("{prefix}{MASK}{suffix}")
        };
        Self { text, masked: true }
    }

    /// Evidence that is not secret (an opcode, an import name, a header value), cut to
    /// [`MAX_EVIDENCE_CHARS`] characters.
    pub fn text(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if let Some((cut, _)) = text.char_indices().nth(MAX_EVIDENCE_CHARS) {
            text.truncate(cut);
            text.push_str(MASK);
        }
        Self {
            text,
            masked: false,
        }
    }

    /// The printable evidence.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this evidence is a masked secret.
    pub fn is_masked(&self) -> bool {
        self.masked
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One problem a scanner found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finding {
    rule_id: String,
    severity: Severity,
    message: String,
    location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    help: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    properties: BTreeMap<String, String>,
}

impl Finding {
    /// A finding of rule `rule_id` (e.g. `AIG-PICKLE-001`) at `location`.
    pub fn new(
        rule_id: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
        location: Location,
    ) -> Self {
        Self {
            rule_id: rule_id.into(),
            severity,
            message: message.into(),
            location,
            evidence: None,
            help: None,
            tags: Vec::new(),
            properties: BTreeMap::new(),
        }
    }

    /// Attaches the evidence that made the rule fire.
    #[must_use]
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// Attaches a hint telling the user what to do about it.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a tag (e.g. `code-execution`, `CWE-502`); duplicates are ignored.
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Attaches a structured fact for scripts (`package`, `installed_version`, `fixed_version`,
    /// `advisories`…): JSON lists them under `properties`, SARIF in the result's property bag.
    /// A later value for the same key replaces the earlier one.
    #[must_use]
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The structured facts, sorted by key.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// The rule that fired.
    pub fn rule_id(&self) -> &str {
        &self.rule_id
    }

    /// How bad it is.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// What was found, in one sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where it was found.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The (masked, if secret) evidence, if any.
    pub fn evidence(&self) -> Option<&Evidence> {
        self.evidence.as_ref()
    }

    /// The hint, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The tags, in the order they were added.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The order every renderer lists findings in: most severe first, then by location, then by
    /// rule id, then by message, so the same findings always render the same bytes.
    pub fn report_order(&self, other: &Self) -> Ordering {
        other
            .severity
            .cmp(&self.severity)
            .then_with(|| self.location.cmp(&other.location))
            .then_with(|| self.rule_id.cmp(&other.rule_id))
            .then_with(|| self.message.cmp(&other.message))
    }
}

#[cfg(test)]
mod tests {
    use super::{Evidence, Finding, Location, MAX_EVIDENCE_CHARS};
    use crate::Severity;

    #[test]
    fn long_secret_keeps_four_leading_and_two_trailing_chars() {
        let evidence = Evidence::masked("sk-proj-abcdefghijklmnopqrstuvwxyz");
        assert_eq!(evidence.as_str(), "sk-p…yz");
        assert!(evidence.is_masked());
    }

    #[test]
    fn twelve_chars_is_the_shortest_partly_shown_secret() {
        assert_eq!(Evidence::masked("abcdefghijkl").as_str(), "abcd…kl");
        assert_eq!(Evidence::masked("abcdefghijk").as_str(), "****");
    }

    #[test]
    fn short_secret_reveals_neither_content_nor_length() {
        for secret in ["", "a", "hunter2", "abcdefghijk"] {
            assert_eq!(Evidence::masked(secret).as_str(), "****", "{secret:?}");
        }
    }

    #[test]
    fn masking_counts_characters_not_bytes() {
        let evidence = Evidence::masked("ключ-секрет-значение");
        assert_eq!(evidence.as_str(), "ключ…ие");
    }

    #[test]
    fn masked_secret_middle_never_appears() {
        let secret = "AKIAIOSFODNN7EXAMPLE";
        let shown = Evidence::masked(secret).to_string();
        assert!(!shown.contains("IOSFODNN7EXAMP"));
        assert!(shown.chars().count() <= 4 + 1 + 2);
    }

    #[test]
    fn plain_text_evidence_is_kept_and_cut_when_long() {
        let evidence = Evidence::text("GLOBAL os system");
        assert_eq!(evidence.as_str(), "GLOBAL os system");
        assert!(!evidence.is_masked());
        let long = "x".repeat(MAX_EVIDENCE_CHARS + 10);
        assert_eq!(
            Evidence::text(long).as_str().chars().count(),
            MAX_EVIDENCE_CHARS + 1
        );
    }

    #[test]
    fn location_display_names_every_known_part() {
        let location = Location::new("model.zip")
            .with_member("archive/data.pkl")
            .with_byte_offset(52);
        assert_eq!(location.to_string(), "model.zip!archive/data.pkl (byte 52)");
        let location = Location::new("config.json")
            .with_line(12)
            .with_column(7)
            .with_key_path("/auto_map/AutoModel");
        assert_eq!(location.to_string(), "config.json:12:7#/auto_map/AutoModel");
    }

    #[test]
    fn zero_line_and_column_mean_unknown() {
        let location = Location::new("a.py").with_line(0).with_column(0);
        assert_eq!(location.line(), None);
        assert_eq!(location.column(), None);
    }

    #[test]
    fn duplicate_tags_are_ignored() {
        let finding = Finding::new("R", Severity::Low, "m", Location::new("f"))
            .with_tag("a")
            .with_tag("b")
            .with_tag("a");
        assert_eq!(finding.tags(), ["a", "b"]);
    }
}
