//! Secret recognisers (being written on branch guard-secrets; this stub keeps the API compiling).

/// Secret recognisers.
#[derive(Debug, Default)]
pub struct Secrets;

impl Secrets {
    /// Compiles the rules.
    pub fn new() -> Self {
        Self
    }
    /// Appends the secrets found in `text`.
    pub fn scan(&self, _text: &str, _out: &mut Vec<crate::Detection>) {}
}
