//! The `inspect` stage: the guard on the way in (`request`) and on the way out
//! (`response` for complete responses, `stream` for server-sent events, read by `sse`).

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod sse;
pub(crate) mod stream;

pub use request::{RequestInspected, inspect};

use std::ops::Range;

pub(crate) use aigis_ledger::event::GuardFinding;

/// A guard finding as the access log, metrics and audit record keep it (never content): kind
/// `detector:kind`, the action taken, the byte span in the text it was found in, and the
/// score in thousandths.
pub(crate) fn noted(
    detector: &str,
    kind: &str,
    action: aigis_guard::Action,
    span: Option<&Range<usize>>,
    score: f32,
) -> GuardFinding {
    // The clamp keeps the product in 0..=1000, which a u32 holds exactly.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=1000 first"
    )]
    let milli = (score.clamp(0.0, 1.0) * 1000.0).round() as u32;
    GuardFinding {
        kind: format!("{detector}:{kind}"),
        action: Some(action.as_str().to_owned()),
        span: span.map(|s| [s.start as u64, s.end as u64]),
        score_milli: Some(milli),
    }
}

/// `detector:kind:action`, as the access log and metrics name a finding.
pub(crate) fn summary(f: &GuardFinding) -> String {
    format!("{}:{}", f.kind, f.action.as_deref().unwrap_or("flag"))
}
