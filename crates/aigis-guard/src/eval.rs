//! Labelled samples and detection metrics, for `aigis guard train` and `aigis guard eval`.
//!
//! A sample is one JSONL line: the text, `label` (1 = an injection or jailbreak: the injection
//! detector's ground truth), optionally `source` and `category` (where the row comes from, for
//! grouping), `role` (who wrote the text, which decides the injection threshold) and `expect`
//! (ground truth for other detectors, `{"pii": 1, "secrets": 0}`). A detector is measured only
//! on rows that say what it should find.

// Counts stay far below 2^52, where f64 is exact.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::{Detector, Source};

/// Every detector, in the order `--detectors` and the evaluation list them.
pub const DETECTORS: [Detector; 6] = [
    Detector::Injection,
    Detector::Pii,
    Detector::Secrets,
    Detector::Invisible,
    Detector::Banned,
    Detector::Topic,
];

/// The detector a user named: its name as findings carry it ([`Detector::as_str`]: `injection`,
/// `pii`, `secrets`, `invisible`, `banned`, `topic`), or `topics`, the name of its profile key.
pub fn detector_named(name: &str) -> Option<Detector> {
    if name == "topics" {
        return Some(Detector::Topic);
    }
    DETECTORS.into_iter().find(|d| d.as_str() == name)
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The text.
    pub text: String,
    /// True when the text is an injection or jailbreak (`label`).
    pub label: bool,
    /// Where it came from (`source` field, or empty): a data set, for grouping.
    pub source: String,
    /// Its category (`category` field, or empty).
    pub category: String,
    /// Who wrote it (`role`, default `user`); [`Source::Tool`] is scored at the indirect
    /// threshold.
    pub role: Source,
    /// Ground truth for detectors other than injection (`expect`): whether each should find
    /// something in the text. A detector missing here is not measured on this sample.
    pub expect: BTreeMap<Detector, bool>,
}

/// The role a sample's `role` names: `user`, `system`, `assistant`, `definition`, or text from
/// outside — `tool`, `document` or `indirect`, all [`Source::Tool`].
pub fn role_named(name: &str) -> Option<Source> {
    Some(match name {
        "user" => Source::User,
        "system" => Source::System,
        "assistant" => Source::Assistant,
        "tool" | "document" | "indirect" => Source::Tool,
        "definition" => Source::Definition,
        _ => return None,
    })
}

/// The name a role is reported under (`tool` for documents and indirect text too).
pub fn role_name(role: Source) -> &'static str {
    match role {
        Source::User => "user",
        Source::System => "system",
        Source::Assistant => "assistant",
        Source::Tool => "tool",
        Source::Definition => "definition",
    }
}

/// A JSONL line that is not a labelled sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SampleError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct Raw {
    label: serde_json::Value,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    expect: Option<serde_json::Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// `0`/`1` or `true`/`false`.
fn truth(value: &serde_json::Value) -> Option<bool> {
    match value {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) if n.as_u64() == Some(0) => Some(false),
        serde_json::Value::Number(n) if n.as_u64() == Some(1) => Some(true),
        _ => None,
    }
}

/// The `expect` object: detector names to `0`/`1`.
fn expectations(value: &serde_json::Value) -> Result<BTreeMap<Detector, bool>, String> {
    let object = value
        .as_object()
        .ok_or("`expect` must be an object such as {\"pii\": 1, \"secrets\": 0}")?;
    let mut out = BTreeMap::new();
    for (name, value) in object {
        let detector = detector_named(name).ok_or_else(|| {
            let known: Vec<&str> = DETECTORS[1..].iter().map(|d| d.as_str()).collect();
            format!(
                "`expect` names unknown detector `{name}`; known: {}",
                known.join(", ")
            )
        })?;
        if detector == Detector::Injection {
            return Err("the injection detector's ground truth is `label`, not `expect`".into());
        }
        let found = truth(value)
            .ok_or_else(|| format!("`expect.{name}` must be 0, 1, true or false, not {value}"))?;
        out.insert(detector, found);
    }
    Ok(out)
}

/// Parses JSONL with a text field named `field` and a `label` of `0`/`1` or `true`/`false`.
/// Blank lines are skipped; every bad line is reported.
pub fn parse_jsonl(input: &str, field: &str) -> Result<Vec<Sample>, Vec<SampleError>> {
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let error = |message: String| SampleError {
            line: i + 1,
            message,
        };
        let raw: Raw = match serde_json::from_str(line) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(error(format!("not a JSON object with a `label`: {e}")));
                continue;
            }
        };
        let Some(label) = truth(&raw.label) else {
            errors.push(error(format!(
                "`label` must be 0, 1, true or false, not {}",
                raw.label
            )));
            continue;
        };
        let role = match raw.role.as_deref().map(|r| (r, role_named(r))) {
            None => Source::User,
            Some((_, Some(role))) => role,
            Some((name, None)) => {
                errors.push(error(format!(
                    "unknown `role` `{name}`; known: user, system, assistant, tool, document, \
                     indirect, definition"
                )));
                continue;
            }
        };
        let expect = match raw.expect.as_ref().map(expectations) {
            None => BTreeMap::new(),
            Some(Ok(expect)) => expect,
            Some(Err(message)) => {
                errors.push(error(message));
                continue;
            }
        };
        let Some(text) = raw.rest.get(field).and_then(serde_json::Value::as_str) else {
            errors.push(error(format!("no string field `{field}`")));
            continue;
        };
        samples.push(Sample {
            text: text.to_owned(),
            label,
            source: raw.source.unwrap_or_default(),
            category: raw.category.unwrap_or_default(),
            role,
            expect,
        });
    }
    if errors.is_empty() {
        Ok(samples)
    } else {
        Err(errors)
    }
}

/// Confusion counts and ranking quality of scores against labels at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Samples.
    pub n: usize,
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// True negatives.
    pub tn: usize,
    /// False negatives.
    pub fn_: usize,
    /// Area under the ROC curve (`None` when only one class is present).
    pub roc_auc: Option<f64>,
}

/// One sample's result: the score (for ROC AUC), the call made, and the truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The detector's score; higher means more likely positive.
    pub score: f32,
    /// Whether the detector called the sample positive (a score over a threshold that may
    /// differ per sample, or a finding).
    pub predicted: bool,
    /// Whether it is positive.
    pub label: bool,
}

impl Metrics {
    /// Counts `scored` (score, label) pairs, calling a score at or above `threshold` positive.
    pub fn new(scored: &[(f32, bool)], threshold: f32) -> Self {
        let outcomes: Vec<Outcome> = scored
            .iter()
            .map(|&(score, label)| Outcome {
                score,
                predicted: score >= threshold,
                label,
            })
            .collect();
        Self::from_outcomes(&outcomes)
    }

    /// Counts calls against labels; ROC AUC ranks the scores.
    pub fn from_outcomes(outcomes: &[Outcome]) -> Self {
        let scored: Vec<(f32, bool)> = outcomes.iter().map(|o| (o.score, o.label)).collect();
        let mut m = Self {
            n: outcomes.len(),
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
            roc_auc: roc_auc(&scored),
        };
        for o in outcomes {
            match (o.predicted, o.label) {
                (true, true) => m.tp += 1,
                (true, false) => m.fp += 1,
                (false, false) => m.tn += 1,
                (false, true) => m.fn_ += 1,
            }
        }
        m
    }

    /// (TP + TN) / n.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.n)
    }
    /// Mean of recall and specificity.
    pub fn balanced_accuracy(&self) -> f64 {
        let positives = self.tp + self.fn_;
        let negatives = self.tn + self.fp;
        match (positives, negatives) {
            (0, _) => 1.0 - self.fpr(),
            (_, 0) => self.recall(),
            _ => f64::midpoint(self.recall(), 1.0 - self.fpr()),
        }
    }
    /// TP / (TP + FP).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// TP / (TP + FN).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    /// FP / (FP + TN).
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} acc={:.4} bal_acc={:.4} prec={:.4} rec={:.4} f1={:.4} fpr={:.4} auc={}",
            self.n,
            self.accuracy(),
            self.balanced_accuracy(),
            self.precision(),
            self.recall(),
            self.f1(),
            self.fpr(),
            self.roc_auc
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.4}"))
        )
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// ROC AUC by the rank-sum (Mann–Whitney) formula, ties counted half.
fn roc_auc(scored: &[(f32, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|s| s.1).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f32, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0.total_cmp(&sorted[i].0).is_eq() {
            j += 1;
        }
        let mid_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += mid_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The value at quantile `q` (0..=1) of `values` (sorted in place), or 0 for none.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_reports_bad_lines() {
        let ok = parse_jsonl("{\"text\":\"a\",\"label\":1,\"source\":\"s\"}\n\n{\"prompt\":\"b\",\"text\":\"c\",\"label\":false}\n", "text").unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].label && !ok[1].label);
        let errors = parse_jsonl(
            "{\"text\":\"a\",\"label\":2}\nnot json\n{\"label\":1}",
            "text",
        )
        .unwrap_err();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(errors[2].message.contains("`text`"));
    }

    #[test]
    fn roles_and_expectations_are_read_and_checked() {
        let ok = parse_jsonl(
            "{\"text\":\"a\",\"label\":0,\"role\":\"document\",\"expect\":{\"pii\":1,\"topics\":false}}\n{\"text\":\"b\",\"label\":1}\n",
            "text",
        )
        .unwrap();
        assert_eq!(ok[0].role, Source::Tool);
        assert_eq!(
            ok[0].expect,
            BTreeMap::from([(Detector::Pii, true), (Detector::Topic, false)])
        );
        assert_eq!((ok[1].role, ok[1].expect.len()), (Source::User, 0));
        let errors = parse_jsonl(
            "{\"text\":\"a\",\"label\":0,\"role\":\"web\"}\n{\"text\":\"a\",\"label\":0,\"expect\":{\"injection\":1}}\n{\"text\":\"a\",\"label\":0,\"expect\":{\"pi\":1}}\n{\"text\":\"a\",\"label\":0,\"expect\":{\"pii\":2}}\n{\"text\":\"a\",\"label\":0,\"expect\":[\"pii\"]}",
            "text",
        )
        .unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(messages[0].contains("unknown `role` `web`"), "{messages:?}");
        assert!(messages[1].contains("is `label`"), "{messages:?}");
        assert!(
            messages[2].contains("unknown detector `pi`"),
            "{messages:?}"
        );
        assert!(messages[3].contains("`expect.pii`"), "{messages:?}");
        assert!(messages[4].contains("must be an object"), "{messages:?}");
    }

    #[test]
    fn outcomes_count_calls_not_scores() {
        // A sample called positive below the usual threshold (an indirect one, or a finding).
        let m = Metrics::from_outcomes(&[
            Outcome {
                score: 0.6,
                predicted: false,
                label: true,
            },
            Outcome {
                score: 0.2,
                predicted: true,
                label: false,
            },
        ]);
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (0, 1, 0, 1));
        assert_eq!(m.roc_auc, Some(1.0));
    }

    #[test]
    fn metrics_match_hand_counts() {
        let scored = [(0.9, true), (0.8, false), (0.7, true), (0.1, false)];
        let m = Metrics::new(&scored, 0.5);
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (2, 1, 1, 0));
        assert!((m.balanced_accuracy() - 0.75).abs() < 1e-9);
        assert!((m.roc_auc.unwrap() - 0.75).abs() < 1e-9);
        assert!((m.f1() - 0.8).abs() < 1e-9);
    }
}
