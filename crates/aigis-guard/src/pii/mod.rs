//! PII recognisers (being written on branch guard-pii; this stub keeps the API compiling).

/// PII recognisers.
#[derive(Debug, Default)]
pub struct Pii;

impl Pii {
    /// Compiles the recognisers.
    pub fn new() -> Self {
        Self
    }
    /// Appends the PII found in `text`.
    pub fn scan(&self, _text: &str, _out: &mut Vec<crate::Detection>) {}
}
