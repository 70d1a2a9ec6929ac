//! How bad a finding is, and the `--fail-on` threshold every command compares against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// How bad a finding is.
///
/// Ordered from least to most severe, so `Severity::Critical > Severity::Low` and
/// `finding.severity() >= fail_on` reads the way the exit-code contract is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a problem by itself.
    Info,
    /// A weakness that is unlikely to be exploitable on its own.
    Low,
    /// A weakness that should be fixed.
    Medium,
    /// Likely exploitable, or code execution behind one more step.
    High,
    /// Exploitable as it stands, e.g. code that runs when a model file is loaded.
    Critical,
}

impl Severity {
    /// Every severity, most severe first (the order reports list them in).
    pub const ALL: [Self; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// The lowercase name used on the command line and in JSON and SARIF output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;

    /// Parses the names `critical`, `high`, `medium`, `low` and `info` (any ASCII case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownSeverity {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Severity;

    #[test]
    fn ordered_from_info_to_critical() {
        let mut ascending = Severity::ALL;
        ascending.reverse();
        assert!(ascending.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn parses_every_name_it_prints() {
        for severity in Severity::ALL {
            assert_eq!(
                severity.to_string().parse::<Severity>().ok(),
                Some(severity)
            );
        }
        assert_eq!("HIGH".parse::<Severity>().ok(), Some(Severity::High));
    }

    #[test]
    fn unknown_name_error_lists_the_valid_ones() {
        let message = "severe".parse::<Severity>().err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("unknown severity `severe`; expected one of: critical, high, medium, low, info")
        );
    }

    #[test]
    fn serde_uses_lowercase_names() {
        let json = serde_json::to_string(&Severity::Critical).ok();
        assert_eq!(json.as_deref(), Some("\"critical\""));
    }
}
