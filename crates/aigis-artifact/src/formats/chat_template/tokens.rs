//! The token-level fallback for templates minijinja's parser refuses.

use aigis_report::Severity;
use minijinja::machinery::{self, Token, WhitespaceConfig};

use super::{
    Analysis, DANGEROUS_ATTRS, DANGEROUS_CALLS, ESCAPES, Signal, escape_in, is_dunder, syntax,
};

/// The fallback for templates minijinja cannot parse: identifiers after `.`, string literals,
/// and literals joined by `~` or `+` are checked against the same lists.
pub(super) fn token_analysis(source: &str, analysis: &mut Analysis) {
    let mut previous: Option<Token<'_>> = None;
    let mut joined = String::new();
    let mut joining = false;
    for token in machinery::tokenize(source, false, syntax(), WhitespaceConfig::default()) {
        let (token, span) = match token {
            Ok(t) => t,
            Err(err) => {
                analysis.unreadable = Some(format!("the template cannot be tokenised: {err}"));
                return;
            }
        };
        let evidence = || {
            let start = span.start_offset as usize;
            let end = (span.end_offset as usize).min(start + 160);
            format!(
                "line {}:{}: {}",
                span.start_line,
                span.start_col + 1,
                source.get(start..end).unwrap_or("")
            )
        };
        let literal = match &token {
            Token::Str(s) => Some((*s).to_owned()),
            Token::String(s) => Some(s.to_string()),
            _ => None,
        };
        if let Some(lit) = literal {
            joined = if joining { joined + &lit } else { lit };
            if let Some(escape) = escape_in(&joined) {
                analysis.push(Signal {
                    rule: "002",
                    severity: Severity::High,
                    message: format!("a string literal (or concatenation) spells `{escape}`"),
                    evidence: evidence(),
                });
            }
        }
        joining = matches!(token, Token::Tilde | Token::Plus)
            && matches!(previous, Some(Token::Str(_) | Token::String(_)));
        if let (Some(Token::Dot), Token::Ident(name)) = (&previous, &token) {
            let severity = if ESCAPES.contains(name) {
                Some(Severity::Critical)
            } else if is_dunder(name)
                || name.starts_with('_')
                || DANGEROUS_ATTRS.contains(name)
                || DANGEROUS_CALLS.contains(name)
            {
                Some(Severity::High)
            } else {
                None
            };
            if let Some(severity) = severity {
                analysis.push(Signal {
                    rule: if severity == Severity::Critical {
                        "001"
                    } else {
                        "002"
                    },
                    severity,
                    message: format!("attribute access to `{name}`"),
                    evidence: evidence(),
                });
            }
        }
        // Keep the literal before `~`/`+` as `previous`, so the next literal joins it.
        if !joining {
            previous = Some(token);
        }
    }
}
