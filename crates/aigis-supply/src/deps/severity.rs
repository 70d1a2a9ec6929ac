//! The severity of an advisory, from what the record says.
//!
//! In order of preference: the highest CVSS base score among the record's (and its affected
//! entries') `severity` vectors — CVSS v4.0, v3.1, v3.0 and v2 vectors are parsed and scored
//! with the `cvss` crate — then a qualitative `database_specific.severity` (`CRITICAL`, `HIGH`,
//! `MODERATE`/`MEDIUM`, `LOW`, as GitHub advisories write it), then RustSec's
//! `informational` class (`unsound`, `unmaintained` -> low; `notice` -> info: cargo-audit
//! reports these as warnings, not vulnerabilities). A record with none of these has no
//! severity, and a scan counts it as `high` (see [`AdvisorySeverity::effective`]).
//!
//! CVSS score bands are the specification's: 9.0–10.0 critical, 7.0–8.9 high, 4.0–6.9 medium,
//! 0.1–3.9 low, 0.0 info.

use std::str::FromStr;

use aigis_report::Severity;
use serde::{Deserialize, Serialize};

use super::osv::RawSeverity;

/// The severity the index stores for an advisory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AdvisorySeverity {
    /// The level, if the record gives one in any form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Severity>,
    /// The CVSS base score, if a vector was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Where the level came from: the CVSS vector, `database_specific: HIGH`, or
    /// `rustsec: unmaintained`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// RustSec's informational class (`unmaintained`, `unsound`, `notice`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub informational: Option<String>,
}

impl AdvisorySeverity {
    /// The level a scan uses: the record's, or `high` when it has none.
    pub fn effective(&self) -> Severity {
        self.level.unwrap_or(Severity::High)
    }
}

/// The CVSS qualitative band of a score.
pub fn band(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

/// Scores one CVSS vector string (`CVSS:3.1/AV:N/…`, `CVSS:4.0/…`, or a bare v2 vector).
pub fn cvss_score(vector: &str) -> Option<f64> {
    let parsed = cvss::Cvss::from_str(vector.trim()).ok()?;
    let score = parsed.score();
    score.is_finite().then_some(score)
}

pub(crate) fn of_record<'a>(
    top: &'a [RawSeverity],
    per_affected: impl Iterator<Item = &'a RawSeverity>,
    database_specific: Option<&serde_json::Value>,
    affected_specific: impl Iterator<Item = &'a serde_json::Value>,
) -> AdvisorySeverity {
    let mut best: Option<(f64, String)> = None;
    for s in top.iter().chain(per_affected) {
        if !s.kind.starts_with("CVSS_") {
            continue;
        }
        if let Some(score) = cvss_score(&s.score)
            && best.as_ref().is_none_or(|(b, _)| score > *b)
        {
            best = Some((score, s.score.trim().to_owned()));
        }
    }
    let mut informational = None;
    let mut qualitative = database_specific.and_then(qualitative_level);
    for specific in affected_specific {
        if qualitative.is_none() {
            qualitative = qualitative_level(specific);
        }
        if let Some(class) = specific.get("informational").and_then(|v| v.as_str()) {
            informational = Some(class.to_owned());
        }
        // RustSec also copies the CVSS vector into `database_specific.cvss`.
        if best.is_none()
            && let Some(vector) = specific.get("cvss").and_then(|v| v.as_str())
            && let Some(score) = cvss_score(vector)
        {
            best = Some((score, vector.to_owned()));
        }
    }
    if let Some((score, vector)) = best {
        return AdvisorySeverity {
            level: Some(band(score)),
            score: Some(score),
            source: vector,
            informational,
        };
    }
    if let Some((level, word)) = qualitative {
        return AdvisorySeverity {
            level: Some(level),
            score: None,
            source: format!("database_specific: {word}"),
            informational,
        };
    }
    if let Some(class) = &informational {
        let level = if class == "notice" {
            Severity::Info
        } else {
            Severity::Low
        };
        return AdvisorySeverity {
            level: Some(level),
            score: None,
            source: format!("rustsec: {class}"),
            informational,
        };
    }
    AdvisorySeverity::default()
}

fn qualitative_level(specific: &serde_json::Value) -> Option<(Severity, String)> {
    let word = specific
        .get("severity")?
        .as_str()?
        .trim()
        .to_ascii_uppercase();
    let level = match word.as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MODERATE" | "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => return None,
    };
    Some((level, word))
}
