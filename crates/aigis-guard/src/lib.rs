//! Guard engine: normalise -> detect -> decide -> redact.
//!
//! Detectors work on `&str` and report [`Detection`]s whose spans are byte offsets into the text
//! they were given. No I/O, no HTTP types: the gateway and `aigis guard scan` both embed it.

pub mod eval;
pub mod injection;
pub mod normalize;
pub mod pii;
pub mod secrets;

use std::borrow::Cow;
use std::ops::Range;

/// The detector family that produced a [`Detection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Prompt injection or jailbreak.
    Injection,
    /// Invisible or bidirectional-control characters used to hide text.
    Invisible,
    /// Personal data.
    Pii,
    /// Credentials and keys.
    Secrets,
    /// A custom banned substring or pattern.
    Banned,
    /// A custom topic word-list.
    Topic,
}

/// One thing a detector found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// The detector family.
    pub detector: Detector,
    /// What was found: a PII entity type (`EMAIL`, `CREDIT_CARD`), a secret rule id
    /// (`github-pat`), an injection signal.
    pub kind: Cow<'static, str>,
    /// Byte range in the scanned text; always on UTF-8 character boundaries.
    pub span: Range<usize>,
    /// Confidence in `[0, 1]`.
    pub score: f32,
    /// True when a checksum or structural check confirmed the value (Luhn, mod-97, CRC32, ...).
    pub validated: bool,
}
