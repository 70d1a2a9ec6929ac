//! Incremental inspection of one text channel (a choice's content, a content block) with a
//! bounded hold-back.
//!
//! Each push runs the detectors over the unreleased text plus [`CONTEXT`] bytes of released
//! text before it, then releases everything up to the *release point*: the earliest position
//! where a match could still be forming. Only detectors that act (redact, pseudonymize, block)
//! hold text; flagged matches change nothing and are reported once the text after them is
//! settled. What is held:
//! - the trailing run of non-space characters (a URL, key, e-mail or number may continue),
//!   unless it is a plain word (letters and sentence punctuation) that no acting detector
//!   could continue: not the start of a key format, URL or canary, no key word such as
//!   `password` in reach before it, and PII not rewritten (an e-mail can start with any word);
//! - when PII acts, digit groups separated by single spaces or dashes before it (cards,
//!   phones, IBANs);
//! - when PII is rewritten, the last [`MULTIWORD`] words (names and street addresses);
//! - an unclosed markdown link or image, HTML tag, or PEM block;
//! - any candidate match that touches the end, and PII candidates whose right-hand context
//!   window is not complete yet.
//!
//! PII and secrets are also looked for in the cleaned windows of the buffer (see
//! `normalize/clean.rs`), so a value split by an invisible character, struck through with
//! combining marks or written in fullwidth forms is one match; the hold rules read a non-ASCII
//! word or digit group cleaned too.
//!
//! The hold is capped by the profile's `hold_back` (PEM blocks by [`MAX_PEM`]). Within the cap
//! the released text does not depend on how the upstream chunked it: it is exactly what
//! inspecting the whole text at once gives. Text already released is never retracted.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use super::{Links, OutputFinding, Scope, leak, links};
use crate::normalize;
use crate::profile::Action;
use crate::{Detection, Detector};

/// Released text kept before the unreleased text as left context for the detectors.
pub const CONTEXT: usize = 160;
/// Longest PEM block held while waiting for its `-----END` line.
pub const MAX_PEM: usize = 16 * 1024;
/// Words held when multi-word PII (names, street addresses) is rewritten.
pub const MULTIWORD: usize = 5;
/// How far back an unclosed link, image or tag is looked for.
const MAX_OPEN: usize = 512;
/// Longest run of digit groups held, in characters.
const MAX_GROUPS: usize = 64;
/// Right-hand context the PII scorer reads after a candidate.
const PII_RIGHT: usize = crate::pii::context::WINDOW;
/// Longest trailing word released early.
const MAX_PLAIN_WORD: usize = 64;
/// Punctuation a plain word may carry besides letters.
const PLAIN_PUNCTUATION: &[char] = &[
    ',', '.', ';', ':', '!', '?', '\'', '"', '(', ')', '*', '-', '\u{2019}', '\u{201c}', '\u{201d}',
];
/// Starts of the bare URLs the link detector finds.
const URL_STARTS: [&str; 4] = ["http://", "https://", "ftp://", "www."];

/// What a push released.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    /// The text to send on (redacted); may be empty.
    pub text: String,
    /// What was found in it.
    pub findings: Vec<OutputFinding>,
    /// A `block` fired: send nothing more of this response.
    pub blocked: bool,
}

/// One match in the buffer.
#[derive(Debug, Clone)]
struct Hit {
    span: Range<usize>,
    detector: &'static str,
    kind: Cow<'static, str>,
    action: Action,
    score: f32,
    replacement: Option<String>,
}

/// The inspection state of one text channel.
#[derive(Debug, Default)]
pub struct TextStream {
    buf: String,
    /// Bytes at the start of `buf` already released (left context).
    base: usize,
    /// Offset of `buf[0]` in the channel's upstream text.
    offset: usize,
    numbering: HashMap<(String, String), String>,
    counters: HashMap<String, u32>,
    meter: leak::Meter,
    /// Upstream offset up to which flagged matches have been reported.
    flagged: usize,
    /// Upstream offset where the last rewritten match ended.
    rewritten: usize,
    leaked: bool,
    blocked: bool,
}

impl TextStream {
    /// Adds upstream text and returns what can be released now.
    pub fn push(&mut self, scope: &Scope<'_>, text: &str) -> Step {
        if self.blocked {
            return Step::default();
        }
        // Text that only extends a held unfinished word cannot move the release point (that
        // needs a space, or the hold-back cap): skip the detectors until one comes.
        let extends_word = self.held() > 0
            && !self.buf.ends_with(char::is_whitespace)
            && !text.contains(char::is_whitespace)
            && self.held() + text.len() <= scope.policy.profile().output.hold_back;
        self.buf.push_str(text);
        if extends_word {
            return Step::default();
        }
        self.step(scope, false)
    }

    /// The channel ended: releases everything still held.
    pub fn finish(&mut self, scope: &Scope<'_>) -> Step {
        if self.blocked {
            return Step::default();
        }
        self.step(scope, true)
    }

    /// Bytes received but not released yet.
    pub fn held(&self) -> usize {
        self.buf.len() - self.base
    }

    fn step(&mut self, scope: &Scope<'_>, end: bool) -> Step {
        let hits = detect(scope, &self.buf);
        let len = self.buf.len();
        let p = if end {
            len
        } else {
            self.release_point(scope, &hits)
        };
        let mut step = Step::default();
        let settled = self.offset
            + if end {
                len
            } else {
                len.saturating_sub(PII_RIGHT)
            };
        let mut at = self.base;
        for h in &hits {
            if h.action == Action::Flag {
                let done = self.offset + h.span.end;
                if done > self.flagged && done <= settled {
                    step.findings.push(self.finding(h));
                }
                continue;
            }
            if h.span.end <= self.base || h.span.start < at && h.span.start >= self.base {
                continue; // handled before, or overlaps one just handled
            }
            if h.span.end > p && h.span.start >= self.base {
                continue; // not final yet
            }
            if h.action == Action::Off {
                continue;
            }
            let start = h.span.start.max(at);
            step.findings.push(self.finding(h));
            match h.action {
                Action::Block => {
                    step.text.push_str(&self.buf[at..start]);
                    step.blocked = true;
                    self.blocked = true;
                    return step;
                }
                Action::Redact | Action::Pseudonymize => {
                    step.text.push_str(&self.buf[at..start]);
                    let placeholder = match &h.replacement {
                        Some(r) => r.clone(),
                        None => self.placeholder(h),
                    };
                    // A match whose head was released (an early-released word, or a forced
                    // release) is replaced from here on; one whose head was itself rewritten
                    // loses its tail without a second placeholder.
                    if h.span.start >= self.base || self.offset + h.span.start >= self.rewritten {
                        step.text.push_str(&placeholder);
                    }
                    at = h.span.end.min(len);
                    self.rewritten = self.offset + at;
                }
                Action::Flag | Action::Off => {}
            }
        }
        self.flagged = self.flagged.max(settled);
        // A rewritten match may end past the release point: release up to its end.
        let released = p.max(at);
        step.text.push_str(&self.buf[at..released]);
        self.meter_leak(scope, released, end, &mut step);
        self.advance(released);
        step
    }

    /// Feeds the released upstream text to the leak meter; a leak that blocks withholds it.
    fn meter_leak(&mut self, scope: &Scope<'_>, p: usize, end: bool, step: &mut Step) {
        let policy = &scope.policy.profile().output;
        if policy.leak == Action::Off || self.leaked || !scope.protected.is_judged() {
            return;
        }
        let share = self
            .meter
            .feed(scope.protected, &self.buf[self.base..p], end);
        if share >= policy.leak_threshold {
            self.leaked = true;
            step.findings.push(OutputFinding {
                detector: "leak",
                kind: "system-prompt".into(),
                action: policy.leak,
                span: None,
                score: share,
            });
            if policy.leak == Action::Block {
                step.text.clear();
                step.blocked = true;
                self.blocked = true;
            }
        }
    }

    /// Marks `p` released and drops context older than [`CONTEXT`], cutting at a space.
    fn advance(&mut self, p: usize) {
        self.base = p;
        if self.base <= CONTEXT + CONTEXT / 4 {
            return;
        }
        let mut cut = floor_boundary(&self.buf, self.base - CONTEXT);
        if let Some(i) = self.buf[cut..self.base].find(char::is_whitespace) {
            cut += i;
        }
        self.buf.drain(..cut);
        self.offset += cut;
        self.base -= cut;
    }

    fn finding(&self, h: &Hit) -> OutputFinding {
        OutputFinding {
            detector: h.detector,
            kind: h.kind.to_string(),
            action: h.action,
            span: Some(self.offset + h.span.start..self.offset + h.span.end),
            score: h.score,
        }
    }

    /// `[EMAIL_ADDRESS_1]`, `[SECRET_2]`: the same value keeps its placeholder.
    fn placeholder(&mut self, h: &Hit) -> String {
        let kind = match h.detector {
            "secrets" => "SECRET".to_owned(),
            "canary" => "REDACTED".to_owned(),
            _ => crate::profile::placeholder_name(&h.kind).to_ascii_uppercase(),
        };
        let value = self.buf.get(h.span.clone()).unwrap_or_default().to_owned();
        let key = (kind.clone(), value);
        if let Some(p) = self.numbering.get(&key) {
            return p.clone();
        }
        let n = self.counters.entry(kind.clone()).or_default();
        *n += 1;
        let p = format!("[{kind}_{n}]");
        self.numbering.insert(key, p.clone());
        p
    }

    /// The earliest position where a match could still be forming (see the module docs).
    fn release_point(&self, scope: &Scope<'_>, hits: &[Hit]) -> usize {
        let b = self.buf.as_str();
        let len = b.len();
        let output = &scope.policy.profile().output;
        let pii_acts = acts(output.pii);
        let mut p = trailing_run(b);
        if !pii_acts && output.early_release && p < len && word_can_go(scope, b, p) {
            p = len;
        }
        if pii_acts {
            p = digit_groups(b, p);
        }
        if output.pii.rewrites() {
            p = p.min(last_words(b, MULTIWORD + 1));
        }
        let (open, pem) = open_construct(b);
        p = p.min(open);
        let acting = || hits.iter().filter(|h| acts(h.action));
        for h in acting() {
            let right = if h.detector == "pii" { PII_RIGHT } else { 0 };
            if h.span.end + right >= len {
                p = p.min(h.span.start);
            }
        }
        let cap = if pem { MAX_PEM } else { output.hold_back };
        if len - p > cap {
            p = floor_boundary(b, len - cap);
        }
        // Never cut a match: it is rewritten whole or not at all. (Hits are sorted by start,
        // so one pass from the last covers chains of overlapping matches.)
        for h in acting().rev() {
            if h.span.start < p && p < h.span.end {
                p = h.span.start;
            }
        }
        p.max(self.base)
    }
}

/// Runs the output detectors over `text`; hits sorted by start, longest first.
fn detect(scope: &Scope<'_>, text: &str) -> Vec<Hit> {
    let profile = scope.policy.profile();
    let out = &profile.output;
    let mut hits = Vec::new();
    let scan = |text: &str, found: &mut Vec<Detection>| {
        if out.secrets != Action::Off {
            scope.guard.secrets.scan(text, found);
        }
        if out.pii != Action::Off {
            scope.guard.pii.scan(text, found);
        }
    };
    let mut found: Vec<Detection> = Vec::new();
    scan(text, &mut found);
    // A value split by an invisible character, in fullwidth forms or grouped with unusual
    // spaces is found in the cleaned windows and mapped back whole (ASCII text has none).
    if !text.is_ascii() {
        normalize::scan_windows(text, &mut found, scan);
    }
    let secrets: Vec<Range<usize>> = found
        .iter()
        .filter(|d| d.detector == Detector::Secrets)
        .map(|d| d.span.clone())
        .collect();
    for d in found {
        let (detector, action) = match d.detector {
            Detector::Secrets => ("secrets", out.secrets),
            _ => {
                let wanted = profile.pii.entities.is_empty()
                    || profile.pii.entities.iter().any(|e| *e == d.kind);
                let inside_secret = secrets
                    .iter()
                    .any(|s| s.start < d.span.end && d.span.start < s.end);
                let counts = wanted && !inside_secret && d.score >= profile.pii.min_score;
                ("pii", if counts { out.pii } else { Action::Off })
            }
        };
        hits.push(Hit {
            span: d.span,
            detector,
            kind: d.kind,
            action,
            score: d.score,
            replacement: None,
        });
    }
    for canary in scope.canaries {
        for (i, _) in text.match_indices(canary.as_str()) {
            hits.push(Hit {
                span: i..i + canary.len(),
                detector: "canary",
                kind: "system-prompt-canary".into(),
                action: Action::Block,
                score: 1.0,
                replacement: None,
            });
        }
    }
    for link in links::find(text, out.links, &out.allowed_hosts) {
        let action = match out.links {
            super::Links::Allow => Action::Off,
            super::Links::Flag => Action::Flag,
            super::Links::StripUnlisted | super::Links::DefangUnlisted => Action::Redact,
            super::Links::BlockUnlisted => Action::Block,
        };
        hits.push(Hit {
            span: link.span,
            detector: "links",
            kind: format!("{}:{}", link.kind, link.reason).into(),
            action,
            score: 1.0,
            replacement: link.replacement,
        });
    }
    hits.sort_by_key(|h| (h.span.start, std::cmp::Reverse(h.span.end)));
    hits
}

/// Whether an action changes or stops the text (flagged and ignored matches hold nothing).
fn acts(action: Action) -> bool {
    matches!(
        action,
        Action::Redact | Action::Pseudonymize | Action::Block
    )
}

/// The trailing word `b[start..]` can be released now: it is plain, and no acting detector
/// could continue it into a match (see the module docs). PII is the caller's test.
fn word_can_go(scope: &Scope<'_>, b: &str, start: usize) -> bool {
    let out = &scope.policy.profile().output;
    let word = &b[start..];
    if word.len() > MAX_PLAIN_WORD
        || !word
            .chars()
            .all(|c| c.is_alphabetic() || PLAIN_PUNCTUATION.contains(&c))
    {
        return false;
    }
    let links = !matches!(out.links, Links::Allow | Links::Flag);
    if links && word.ends_with('!') {
        return false; // `![` opens a markdown image
    }
    // A key word, key, URL or canary written in fullwidth letters (`ｓｋ`) is one once cleaned,
    // as the detectors read it.
    let (b, start) = if b.is_ascii() {
        (Cow::Borrowed(b), start)
    } else {
        let mut cleaned = normalize::cleaned(&b[..start]).into_owned();
        let at = cleaned.len();
        cleaned.push_str(&normalize::cleaned(word));
        (Cow::Owned(cleaned), at)
    };
    let word = &b[start..];
    let secrets = acts(out.secrets);
    if secrets && scope.guard.secrets.keyword_reaches(&b, start) {
        return false;
    }
    token_starts(word).into_iter().all(|tail| {
        let lower = tail.to_ascii_lowercase();
        !(secrets && scope.guard.secrets.could_start(tail)
            || links && URL_STARTS.iter().any(|u| u.starts_with(&lower))
            || scope.canaries.iter().any(|c| c.starts_with(tail)))
    })
}

/// The non-empty tails of `word` where a token could begin: the word itself and every
/// position after a non-alphanumeric character, except an apostrophe inside a word (`I'm`).
fn token_starts(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let letter = |k: Option<&(usize, char)>| k.is_some_and(|&(_, c)| c.is_alphabetic());
    let mut tails = vec![word];
    for (j, &(i, c)) in chars.iter().enumerate() {
        let contraction = matches!(c, '\'' | '\u{2019}')
            && letter(j.checked_sub(1).and_then(|k| chars.get(k)))
            && letter(chars.get(j + 1));
        if !c.is_alphanumeric() && !contraction && i + c.len_utf8() < word.len() {
            tails.push(&word[i + c.len_utf8()..]);
        }
    }
    tails
}

/// Start of the trailing run of non-space characters (`len` when the text ends in a space).
fn trailing_run(b: &str) -> usize {
    b.rfind(char::is_whitespace)
        .map_or(0, |i| i + b[i..].chars().next().map_or(1, char::len_utf8))
}

/// A token that can be one group of a card, phone, IBAN or ID number (also once cleaned:
/// fullwidth digits, an invisible character inside).
fn digitish(tok: &str) -> bool {
    let tok = normalize::cleaned(tok);
    !tok.is_empty()
        && tok.len() <= 12
        && (tok.bytes().any(|c| c.is_ascii_digit()) || tok == "+")
        && tok
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+()./-".contains(&c))
}

/// Moves `p` back over digit groups separated by single spaces (also the unusual ones cleaning
/// makes plain, `+1\u{202F}415`) or dashes, at most [`MAX_GROUPS`] characters.
fn digit_groups(b: &str, mut p: usize) -> usize {
    if !b[p..].is_empty() && !digitish(&b[p..]) {
        return p;
    }
    let mut held = 0;
    loop {
        let Some(sep) = b[..p].chars().next_back().filter(|&c| {
            c == ' ' || c == '-' || !c.is_ascii() && c.is_whitespace() && !is_line_break(c)
        }) else {
            return p;
        };
        let end = p - sep.len_utf8();
        let start = b[..end]
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + b[i..].chars().next().map_or(1, char::len_utf8));
        held += b[start..p].chars().count();
        if held > MAX_GROUPS || !digitish(&b[start..end]) {
            return p;
        }
        p = start;
    }
}

/// A line or paragraph separator: it ends a run of digit groups, as `\n` does.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Start of the last `n` whitespace-separated words.
fn last_words(b: &str, n: usize) -> usize {
    let mut p = b.len();
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in b.char_indices().rev() {
        if c.is_whitespace() {
            if in_word {
                words += 1;
                if words == n {
                    return p;
                }
            }
            in_word = false;
        } else {
            in_word = true;
            p = i;
        }
    }
    0
}

/// Start of an unclosed markdown link or image, HTML tag, or PEM block (else `len`), and
/// whether it is a PEM block.
fn open_construct(b: &str) -> (usize, bool) {
    let len = b.len();
    if let Some(i) = b.rfind("-----BEGIN ")
        && !b[i..].contains("-----END ")
    {
        return (i, true);
    }
    let window = floor_boundary(b, len.saturating_sub(MAX_OPEN));
    let tail = &b[window..];
    let mut p = len;
    if let Some(i) = tail.rfind('[') {
        let rest = &tail[i..];
        let open = match rest.find(']') {
            None => true,
            Some(j) => {
                let after = &rest[j + 1..];
                after.is_empty() || (after.starts_with('(') && !after.contains(')'))
            }
        };
        if open {
            let at = window + i;
            p = if b[..at].ends_with('!') { at - 1 } else { at };
        }
    }
    if let Some(i) = tail.rfind('<')
        && !tail[i..].contains('>')
    {
        p = p.min(window + i);
    }
    (p, false)
}

/// The largest char boundary at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests;
