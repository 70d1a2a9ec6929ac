//! Secret recognisers: credentials, API keys, private keys and passwords in text.
//!
//! # What is covered
//! [`Secrets::rules`] lists every built-in rule (id, description, confidence, whether a checksum
//! or structural check validates it). The families are: private keys (PEM blocks of every
//! common label, OpenSSH, OpenPGP, SSH2, PuTTY, JSON-escaped PEM, kubeconfig `client-key-data`,
//! age); JWTs; cloud providers (AWS, Google Cloud, Azure, DigitalOcean, Alibaba, Tencent, IBM,
//! Oracle, Scaleway, Cloudflare…); version control and CI (GitHub, GitLab, Bitbucket, Atlassian,
//! CircleCI…); payments (Stripe, Square, Braintree, Adyen, Razorpay, Shopify…); LLM providers
//! (OpenAI, Anthropic, Groq, Hugging Face, Replicate, Cohere, Mistral, Perplexity, xAI, Gemini…);
//! messaging (Slack, Discord, Telegram, Twilio, SendGrid, Mailgun, Mailchimp…); package
//! registries (npm, PyPI, RubyGems, NuGet, Docker Hub, crates.io…); infrastructure and SaaS
//! (Vault, Terraform Cloud, Doppler, Pulumi, Linear, Notion, Datadog, New Relic, Sentry,
//! Grafana…); connection strings and URLs with passwords; and generic `password=`, `api_key:`,
//! `secret:`, `token:` assignments.
//!
//! # How rules are written
//! Rules live in `rules.rs`, one line each, written from the providers' published token formats.
//! A rule declares literal *keywords* (its prefix, or the provider name for context rules) and a
//! `regex` pattern that starts at a keyword; the named group `s` marks the secret value when the
//! match includes surrounding context. A keyword containing an uppercase letter (`AKIA`, `SK`)
//! must match exactly; an all-lowercase one (`ghp_`, `password`) matches in any case. Patterns
//! use ASCII classes (`[[:word:]]`, `[0-9]`) and unbounded rather than large counted repetitions
//! of wide classes, which keeps both the automata and capture extraction small.
//! [`Secrets::new`] builds one Aho-Corasick automaton (a full DFA, `crate::keywords`) over
//! every keyword. [`Secrets::scan`] makes one pass of that automaton; only rules whose keywords
//! occur run their regex, and only in a window after each keyword occurrence (windows of one rule
//! are merged, so the regex work per rule is linear in the text, whatever the input). Text
//! without keywords costs one automaton pass.
//!
//! # Confidence
//! Each rule carries a base confidence: distinctive prefixes 0.85–0.97, short or reused prefixes
//! lower, context rules (provider name + value shape) 0.7, generic assignments 0.55–0.65 scaled
//! by the value's entropy. A value that passes a checksum or structural check is reported with
//! `validated = true` and at least 0.99. When spans overlap, the higher score wins (then the
//! longer span, then the earlier rule), so a GitHub token in `password=ghp_…` is reported once,
//! as `github-pat`.
//!
//! # Checks
//! - GitHub (`ghp_ gho_ ghu_ ghs_ ghr_`) and npm (`npm_`) tokens: the last 6 characters are the
//!   CRC32 (IEEE) of the 30 random characters before them, in base62 (`0-9A-Za-z`), left-padded
//!   with `0`. A token failing it is not reported at all. `github_pat_` has no public checksum.
//! - age secret keys: bech32 (BIP-173) checksum, HRP `age-secret-key-`.
//! - JWTs: header and payload are base64url JSON objects; the header has a string `alg`.
//! - PEM blocks: BEGIN and END present; the body decodes to DER (a SEQUENCE) or carries RFC 1421
//!   encryption headers; OpenSSH bodies start with `openssh-key-v1\0`; OpenPGP armor must be a
//!   tagged packet and match its CRC-24 line when present.
//! - Discord bot tokens: the first segment is the base64 of a numeric id.
//! - HTTP Basic credentials decode to `user:password`.
//! - PyPI tokens: the part after `pypi-` decodes to a v2 macaroon (header with identifier,
//!   caveat sections, 32-byte signature field). This check confirms but never rejects, since the
//!   `pypi-AgEIcHlwaS5vcmc` prefix (the encoded `pypi.org` location) is already distinctive.
//!
//! Every rule also has a Shannon-entropy floor on the value (3 bits/byte for tokens, set per rule
//! elsewhere). Token rules reject documentation stand-ins (`…EXAMPLE`, `xxxxx`, `00000000`);
//! context and generic rules reject placeholders (`changeme`, `<your-key>`, `${VAR}`, `****`,
//! `process.env…`, …); generic values must also look random (a digit, or long mixed case) and
//! not be an identifier path or a call (`self.password`, `get_token()`).
//!
//! # Cost
//! Measured with the ignored `throughput` test (`cargo test --release -p aigis-guard --lib
//! secrets::tests::throughput -- --ignored --nocapture`, shared 2-core machine, best of runs):
//! about 3 µs per 1 KB of prose and 300–400 MB/s on 100 KB of prose (the automaton pass is the
//! whole cost); 45–75 MB/s on code dense in `password`/`token`/`api_key` words, where the
//! generic rules run on most of the text; 1 MB adversarial inputs (`AKIA…`, `=…`, a base64 blob)
//! take 2–25 ms, `password=` repeated 100 000 times about 100 ms.
//!
//! # Non-goals
//! No network verification of keys; no decoding of base64/hex-wrapped text before scanning
//! (normalisation is the caller's stage).

mod checks;
mod rules;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use regex::{Regex, RegexBuilder};
use regex_automata::dfa::{Automaton, dense};
use regex_automata::{Anchored, Input};

use crate::keywords::Keywords;
use crate::{Detection, Detector};
use checks::Verdict;
use rules::{Kind, SPECS, Spec};

/// Search window after a keyword for rules whose pattern has no maximum length.
const DEFAULT_WINDOW: usize = 1024;
/// Compiled size cap per rule regex (the patterns are small; this only guards mistakes).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// A built-in rule as exposed to callers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleInfo {
    /// Stable kebab-case id, reported as [`Detection::kind`].
    pub id: &'static str,
    /// What the rule finds.
    pub description: &'static str,
    /// Base confidence of an unvalidated match, in `[0, 1]`.
    pub confidence: f32,
    /// True when a checksum or structural check validates (and can reject) matches.
    pub checksum: bool,
    /// Literal keywords that trigger the rule.
    pub keywords: &'static [&'static str],
}

struct Rule {
    regex: Regex,
    /// Capture index of the group `s`, if the pattern has one.
    secret_group: Option<usize>,
    spec: &'static Spec,
    before: usize,
    after: usize,
}

/// The secrets detector: compiled rules plus the keyword automaton.
pub struct Secrets {
    rules: Vec<Rule>,
    infos: Vec<RuleInfo>,
    /// The keyword automaton (an Aho-Corasick DFA, ASCII case-insensitive, overlapping).
    keywords: Option<Keywords>,
    /// Per automaton pattern: `Some(k)` when the keyword must match exactly (case-sensitive).
    keyword_exact: Vec<Option<&'static str>>,
    /// Per automaton pattern: the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    /// Per automaton pattern: the longest search window of its rules.
    keyword_reach: Vec<usize>,
    /// The keywords a reported span can start with (rules without a value group), lowercase
    /// and sorted, for [`Secrets::could_start`].
    span_keywords: Vec<String>,
    /// Anchored automata of the rules whose reported span starts before their keyword (a
    /// lead-in) with secret material.
    leads: Vec<dense::DFA<Vec<u32>>>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

struct Candidate {
    rule: usize,
    span: Range<usize>,
    score: f32,
    /// The rule's base confidence: breaks ties between equally scored (validated) candidates.
    base: f32,
    validated: bool,
}

impl Secrets {
    /// Compiles every built-in rule and the keyword automaton. Costly; build once and share.
    pub fn new() -> Self {
        let rules: Vec<Rule> = SPECS.iter().filter_map(compile).collect();
        let infos = rules
            .iter()
            .map(|r| RuleInfo {
                id: r.spec.id,
                description: r.spec.description,
                confidence: r.spec.confidence,
                checksum: r.spec.check.validates(),
                keywords: r.spec.keywords,
            })
            .collect();
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for &kw in rule.spec.keywords {
                if let Some(p) = patterns.iter().position(|&k| k == kw) {
                    if !keyword_rules[p].contains(&i) {
                        keyword_rules[p].push(i);
                    }
                } else {
                    patterns.push(kw);
                    keyword_rules.push(vec![i]);
                }
            }
        }
        let keyword_exact = patterns
            .iter()
            .map(|k| k.bytes().any(|b| b.is_ascii_uppercase()).then_some(*k))
            .collect();
        // A full DFA: one table lookup per byte, which is what keeps keyword-free text fast.
        let keywords = Keywords::new(
            &patterns.iter().map(|k| k.as_bytes()).collect::<Vec<_>>(),
            true,
        );
        let keyword_reach = keyword_rules
            .iter()
            .map(|rs| rs.iter().map(|&r| rules[r].after).max().unwrap_or(0))
            .collect();
        let mut span_keywords: Vec<String> = rules
            .iter()
            .filter(|r| r.secret_group.is_none())
            .flat_map(|r| r.spec.keywords.iter().map(|k| k.to_ascii_lowercase()))
            .collect();
        span_keywords.sort_unstable();
        span_keywords.dedup();
        let leads = rules
            .iter()
            .filter(|r| r.before > 0 && r.secret_group.is_none() && !r.spec.lead_may_show)
            .filter_map(|r| dense::DFA::new(r.spec.pattern).ok())
            .collect();
        Secrets {
            rules,
            infos,
            keywords,
            keyword_exact,
            keyword_rules,
            keyword_reach,
            span_keywords,
            leads,
        }
    }

    /// True when `text` holds a keyword whose rule's search window reaches byte `at`: a secret
    /// value there may belong to it.
    pub fn keyword_reaches(&self, text: &str, at: usize) -> bool {
        let Some(keywords) = &self.keywords else {
            return false;
        };
        let mut reaches = false;
        keywords.overlapping(text.as_bytes(), |pid, hit| {
            reaches = reaches
                || hit.start.saturating_add(self.keyword_reach[pid]) > at
                    && self.keyword_exact[pid]
                        .is_none_or(|k| text.as_bytes().get(hit.clone()) == Some(k.as_bytes()));
        });
        reaches
    }

    /// True when a reported secret could start with `word` if more text followed it without a
    /// break: `word` begins the keyword of a rule whose span starts at its keyword (compared
    /// ignoring case), or fits the start of a rule's lead-in. Streams use it to release a
    /// trailing word early.
    pub fn could_start(&self, word: &str) -> bool {
        let lower = word.to_ascii_lowercase();
        let i = self
            .span_keywords
            .partition_point(|k| k.as_str() < lower.as_str());
        if self
            .span_keywords
            .get(i)
            .is_some_and(|k| k.starts_with(lower.as_str()))
        {
            return true;
        }
        self.leads.iter().any(|dfa| viable(dfa, word))
    }

    /// The built-in rules, in table order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.infos
    }

    /// Appends every secret found in `text` to `out`, ordered by position, one detection per
    /// span (the most specific rule wins). Spans are byte ranges of the secret value itself.
    pub fn scan(&self, text: &str, out: &mut Vec<Detection>) {
        let regions = self.keyword_regions(text);
        if regions.is_empty() {
            return;
        }
        let mut candidates = Vec::new();
        for (rule, window) in regions {
            self.search_region(rule, text, window, &mut candidates);
        }
        resolve_overlaps(&mut candidates);
        out.extend(candidates.into_iter().map(|c| Detection {
            detector: Detector::Secrets,
            kind: Cow::Borrowed(self.rules[c.rule].spec.id),
            span: c.span,
            score: c.score,
            validated: c.validated,
        }));
    }

    /// One automaton pass: for each rule with a keyword hit, the merged windows to search.
    fn keyword_regions(&self, text: &str) -> Vec<(usize, Range<usize>)> {
        let mut regions = Vec::new();
        let Some(keywords) = &self.keywords else {
            return regions;
        };
        // Open (not yet flushed) window per rule; allocated on the first hit only.
        let mut open: Vec<Option<Range<usize>>> = Vec::new();
        keywords.overlapping(text.as_bytes(), |pid, hit| {
            if let Some(exact) = self.keyword_exact[pid]
                && text.as_bytes().get(hit.clone()) != Some(exact.as_bytes())
            {
                return;
            }
            if open.is_empty() {
                open.resize(self.rules.len(), None);
            }
            for &r in &self.keyword_rules[pid] {
                let rule = &self.rules[r];
                let start = hit.start.saturating_sub(rule.before);
                let end = hit
                    .start
                    .saturating_add(rule.after)
                    .min(text.len())
                    .max(hit.end);
                match &mut open[r] {
                    Some(w) if start <= w.end => {
                        w.start = w.start.min(start);
                        w.end = w.end.max(end);
                    }
                    slot => {
                        if let Some(w) = slot.replace(start..end) {
                            regions.push((r, w));
                        }
                    }
                }
            }
        });
        regions.extend(
            open.into_iter()
                .enumerate()
                .filter_map(|(r, w)| Some((r, w?))),
        );
        regions
    }

    /// Runs one rule's regex over one merged window, collecting accepted candidates.
    fn search_region(&self, r: usize, text: &str, window: Range<usize>, out: &mut Vec<Candidate>) {
        let rule = &self.rules[r];
        let start = floor_boundary(text, window.start);
        let end = ceil_boundary(text, window.end);
        let Some(hay) = text.get(..end) else {
            return;
        };
        let mut locs = rule.regex.capture_locations();
        let mut pos = start;
        while pos < end {
            let Some(m) = rule.regex.captures_read_at(&mut locs, hay, pos) else {
                break;
            };
            pos = if m.end() > m.start() {
                m.end()
            } else {
                ceil_boundary(text, m.end() + 1)
            };
            let span = match rule.secret_group.and_then(|g| locs.get(g)) {
                Some((s, e)) => s..e,
                None if rule.secret_group.is_none() => m.start()..m.end(),
                None => continue,
            };
            // Token rules must not start inside a longer word; context rules start at a
            // provider name that may be glued to a prefix (`dbPassword`, `MY_DATADOG_KEY`).
            let glued = rule.spec.kind == Kind::Token
                && text
                    .get(..m.start())
                    .and_then(|t| t.chars().next_back())
                    .is_some_and(|c| c.is_ascii_alphanumeric());
            if glued {
                continue;
            }
            if let Some(c) = candidate(r, rule, text, span) {
                out.push(c);
            }
        }
    }
}

/// True unless the anchored automaton dies on `word`: some match can start with it.
fn viable(dfa: &dense::DFA<Vec<u32>>, word: &str) -> bool {
    let Ok(mut state) = dfa.start_state_forward(&Input::new(word).anchored(Anchored::Yes)) else {
        return true;
    };
    for &b in word.as_bytes() {
        state = dfa.next_state(state, b);
        if dfa.is_dead_state(state) {
            return false;
        }
        if dfa.is_quit_state(state) {
            return true;
        }
    }
    true
}

fn compile(spec: &'static Spec) -> Option<Rule> {
    let regex = RegexBuilder::new(spec.pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()?;
    let secret_group = regex.capture_names().position(|n| n == Some("s"));
    let max_len = regex_syntax::Parser::new()
        .parse(spec.pattern)
        .ok()
        .and_then(|hir| hir.properties().maximum_len());
    let after = match (spec.window, max_len) {
        (0, Some(n)) => n,
        (0, None) => DEFAULT_WINDOW,
        (w, _) => usize::from(w),
    };
    Some(Rule {
        regex,
        secret_group,
        spec,
        before: usize::from(spec.before),
        after,
    })
}

/// Applies token boundaries, plausibility filters and the rule's check to one match.
fn candidate(r: usize, rule: &Rule, text: &str, mut span: Range<usize>) -> Option<Candidate> {
    let spec = rule.spec;
    if spec.kind == Kind::Generic {
        span.end = span.start + trim_trailing_punctuation(text.get(span.clone())?).len();
    }
    // The value must not continue past the match (a longer token is a different thing).
    if text
        .get(span.end..)?
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let value = text.get(span.clone())?;
    // Cheapest filters first: most generic candidates in code are identifiers or calls.
    if spec.kind == Kind::Generic && !looks_secret(value) {
        return None;
    }
    let placeholder = match spec.kind {
        Kind::Token => is_token_placeholder(value),
        Kind::Context | Kind::Generic => is_placeholder(value),
    };
    if placeholder {
        return None;
    }
    let entropy = shannon_entropy(value);
    if entropy < spec.min_entropy {
        return None;
    }
    let (score, validated) = match spec.check.run(value) {
        Verdict::Reject => return None,
        Verdict::Valid => (spec.confidence.max(0.99), true),
        Verdict::Plausible if spec.kind == Kind::Generic => (
            spec.confidence * (0.8 + 0.2 * (entropy / 4.5).min(1.0)),
            false,
        ),
        Verdict::Plausible => (spec.confidence, false),
    };
    Some(Candidate {
        rule: r,
        span,
        score,
        base: spec.confidence,
        validated,
    })
}

/// Keeps the best candidate of every group of overlapping spans; output sorted by position.
fn resolve_overlaps(candidates: &mut Vec<Candidate>) {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.base.total_cmp(&a.base))
            .then((b.span.end - b.span.start).cmp(&(a.span.end - a.span.start)))
            .then(a.rule.cmp(&b.rule))
            .then(a.span.start.cmp(&b.span.start))
    });
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    candidates.retain(|c| {
        let overlaps = taken
            .range(..c.span.end)
            .next_back()
            .is_some_and(|(_, &end)| end > c.span.start);
        if !overlaps {
            taken.insert(c.span.start, c.span.end);
        }
        !overlaps
    });
    candidates.sort_by_key(|c| c.span.start);
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
fn shannon_entropy(s: &str) -> f32 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    #[expect(clippy::cast_precision_loss, reason = "lengths are far below 2^23")]
    let len = s.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^23")]
            let p = c as f32 / len;
            -p * p.log2()
        })
        .sum()
}

fn trim_trailing_punctuation(value: &str) -> &str {
    value.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}'])
}

/// Markers of example values, templates and references rather than real secrets.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "xxx",
    "***",
    "...",
    "changeme",
    "change_me",
    "change-me",
    "your",
    "example",
    "placeholder",
    "dummy",
    "redacted",
    "sample",
    "replace",
    "insert",
    "todo",
    "fixme",
    "<",
    ">",
    "${",
    "{{",
    "%(",
    "$(",
    "process.env",
    "environ",
    "getenv",
    "secrets.",
    "env.",
    "vault:",
    "://",
];
const PLACEHOLDER_VALUES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "null",
    "none",
    "nil",
    "true",
    "false",
    "undefined",
    "test",
    "admin",
    "default",
    "string",
    "empty",
    "required",
    "optional",
    "hidden",
    "pass",
];

fn is_placeholder(value: &str) -> bool {
    let first = value.bytes().next();
    PLACEHOLDER_MARKERS
        .iter()
        .any(|m| contains_ignore_case(value, m))
        || PLACEHOLDER_VALUES
            .iter()
            .any(|v| value.eq_ignore_ascii_case(v))
        || value.bytes().all(|b| Some(b) == first)
        || value.starts_with(['$', '%'])
}

/// ASCII case-insensitive substring test without allocating (`needle` is lowercase ASCII).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Documentation stand-ins in an otherwise well-formed token (`AKIA…EXAMPLE`, `ghp_xxxxx…`).
/// Narrower than [`is_placeholder`]: random token bodies must essentially never trip it.
fn is_token_placeholder(value: &str) -> bool {
    const MARKERS: &[&str] = &[
        "example", "xxxxx", "*****", "00000000", "12345678", "abcdefgh",
    ];
    MARKERS.iter().any(|m| contains_ignore_case(value, m))
}

/// Shape test for generic values: a digit or mixed case with length, and not an identifier path
/// (`self.password`, `os_password`) or a call.
fn looks_secret(value: &str) -> bool {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let mixed = value.bytes().any(|b| b.is_ascii_uppercase())
        && value.bytes().any(|b| b.is_ascii_lowercase());
    let identifier = value
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'.');
    let call = value.contains('(') || value.contains(')');
    !call
        && (has_digit
            || (mixed && value.len() >= 20 && !identifier)
            || (mixed && value.len() >= 24))
}
