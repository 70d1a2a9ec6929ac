//! Turning labelled JSONL into training examples (`aigis guard train`).

use super::Signatures;
use super::model::Example;
use crate::eval::Sample;
use crate::normalize::normalize;

/// Normalises every sample and computes its signature offset, as the detector will see it.
pub fn examples(samples: &[Sample], signatures: &Signatures) -> Vec<Example> {
    samples
        .iter()
        .map(|s| {
            let text = normalize(&s.text).text;
            let offset = signatures.offset(&text);
            Example {
                text,
                offset,
                label: s.label,
            }
        })
        .collect()
}
