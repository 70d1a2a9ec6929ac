//! The plain-text table for people: one row per finding, evidence and hint lines under it, the
//! inputs not scanned, then a one-line summary. No colours; the CLI may add them.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::{Report, Severity};

const HEADER: [&str; 4] = ["SEVERITY", "RULE", "LOCATION", "MESSAGE"];
const GAP: &str = "  ";

pub(crate) fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let findings = report.sorted_findings();
    if findings.is_empty() {
        writeln!(out, "no findings")?;
    } else {
        let rows: Vec<[Cow<'_, str>; 4]> = findings
            .iter()
            .map(|finding| {
                [
                    Cow::Borrowed(finding.severity().as_str()),
                    sanitize(finding.rule_id()),
                    sanitize(&finding.location().to_string())
                        .into_owned()
                        .into(),
                    sanitize(finding.message()),
                ]
            })
            .collect();
        let mut widths = HEADER.map(|title| title.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        write_row(out, &HEADER, &widths)?;
        let indent = " ".repeat(widths[0] + GAP.len());
        for (row, finding) in rows.iter().zip(&findings) {
            write_row(out, row, &widths)?;
            if let Some(evidence) = finding.evidence() {
                writeln!(out, "{indent}evidence: {}", sanitize(evidence.as_str()))?;
            }
            if let Some(help) = finding.help() {
                writeln!(out, "{indent}hint: {}", sanitize(help))?;
            }
        }
    }
    let not_scanned = report.sorted_not_scanned();
    if !not_scanned.is_empty() {
        writeln!(out)?;
        writeln!(out, "not scanned:")?;
        for item in not_scanned {
            writeln!(
                out,
                "  {}: {}",
                sanitize(item.path()),
                sanitize(item.reason())
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary_line(report))
}

/// Cells padded to their column width, the last one not padded, no trailing whitespace.
fn write_row<S: AsRef<str>>(out: &mut impl Write, cells: &[S], widths: &[usize]) -> io::Result<()> {
    let mut line = String::new();
    for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if index > 0 {
            line.push_str(GAP);
        }
        let _ = write!(line, "{:<width$}", cell.as_ref());
    }
    writeln!(out, "{}", line.trim_end())
}

/// `3 findings (1 critical, 1 high, 0 medium, 1 low, 0 info); 1 not scanned`
fn summary_line(report: &Report) -> String {
    let summary = report.summary();
    let total = summary.findings();
    let mut line = format!("{total} finding{}", if total == 1 { "" } else { "s" });
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|&severity| format!("{} {severity}", summary.count(severity)))
        .collect();
    let _ = write!(line, " ({})", counts.join(", "));
    if summary.not_scanned > 0 {
        let _ = write!(line, "; {} not scanned", summary.not_scanned);
    }
    line
}

/// Escapes control characters and bidirectional overrides (Trojan Source) that come from scanned
/// input, so a file name or message cannot move the cursor, clear the screen or reorder text.
fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(escaped, "{}", c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn escapes_terminal_and_bidi_controls() {
        assert_eq!(sanitize("evil\u{1b}[2Jname"), "evil\\u{1b}[2Jname");
        assert_eq!(sanitize("a\nb"), "a\\u{a}b");
        assert_eq!(sanitize("abc\u{202E}cod.exe"), "abc\\u{202e}cod.exe");
        assert_eq!(sanitize("plain ünïcödé…"), "plain ünïcödé…");
    }
}
