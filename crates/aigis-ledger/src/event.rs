//! The audit event: one leaf of the log, in a canonical, versioned JSON encoding.
//!
//! Canonical means: members in the fixed order of [`Event`]'s fields, absent optionals and
//! empty lists omitted, no insignificant whitespace, no floating-point numbers (scores are
//! integers in thousandths, latency in microseconds). Parsing an event and encoding it again
//! gives the same bytes, so a receipt can carry the event as a JSON object and a verifier
//! re-derives the exact leaf bytes from it.
//!
//! **Data minimisation**: no prompt or response text is ever part of an event. Content is
//! represented by [`ContentKey::digest`], an HMAC-SHA-256 under a per-ledger secret key, bound
//! to the request id: whoever holds the content *and* the key can show what was sent; nobody
//! can test guesses without the key, and the same prompt sent twice gives unrelated digests.

use crate::sha256::{HmacKey, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The event schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Longest canonical event accepted (bounded memory when reading a store or a receipt).
pub const MAX_EVENT_LEN: usize = 64 * 1024;
/// Most findings kept per event (the rest are counted in `findings_dropped`).
pub const MAX_FINDINGS: usize = 64;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A call to a model through the gateway (admitted or refused).
    AiCall,
    /// An administrative action: key creation or revocation, policy or config reload.
    Admin,
}

/// The authorization outcome and the policies behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `allow` or `deny`.
    pub effect: String,
    /// Ids of the policies that decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

/// One limit's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOutcome {
    /// Limit name from the config.
    pub name: String,
    /// `admitted`, `refused`, `store_error`.
    pub outcome: String,
}

/// A guard finding: type, span and score — never the matched text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardFinding {
    /// Finding type (`injection`, `pii:EMAIL`, `secret:aws`, …).
    pub kind: String,
    /// What the guard did (`block`, `redact`, `pseudonymize`, `log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Byte span `[start, end)` in the inspected text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<[u64; 2]>,
    /// Score in thousandths (0..=1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_milli: Option<u32>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub prompt: u64,
    /// Completion (output) tokens.
    pub completion: u64,
}

/// One audit event. Field order is the canonical member order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// Position in the log (assigned by the store's sequencer; bound into the leaf so a
    /// reordered row is named).
    pub index: u64,
    /// Milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// Kind of event.
    pub kind: EventKind,
    /// Request id (`x-request-id` returned to the client) or admin operation id.
    pub request_id: String,
    /// Who acted (principal id; `anonymous` when identity is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The action (`chat.completions`, `keys.create`, `config.reload`, …).
    pub action: String,
    /// Requested model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Route that served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Upstream that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Authorization decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Limit outcomes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitOutcome>,
    /// Findings on the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_findings: Vec<GuardFinding>,
    /// Findings on the response (filled once responses are inspected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_findings: Vec<GuardFinding>,
    /// Findings beyond [`MAX_FINDINGS`] that were counted but not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub findings_dropped: u32,
    /// Token usage, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenUsage>,
    /// Whether the response was streamed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    /// Whether the response ended early (client gone, upstream cut, guard stopped it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub partial: bool,
    /// HTTP status returned to the client (0 for admin events without one).
    pub status: u16,
    /// HTTP status the upstream returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Time from request start to the record point, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The client's address as the gateway saw it (the TCP peer: behind a load balancer, the
    /// balancer's), in full or masked to its network (`[ledger] client_ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// TLS key-exchange group of the client connection (e.g. `X25519MLKEM768`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_group: Option<String>,
    /// Keyed digest of the request content (hex), see [`ContentKey`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_digest: Option<String>,
    /// Keyed digest of the response content (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_digest: Option<String>,
    /// Captured content (`content = "encrypted"` routes): the reference `TENANT/NAME` of the
    /// request and response blobs, sealed to the tenant's age recipients in the content
    /// folder (see [`crate::content`]). The blobs may be pruned or crypto-shredded; the log
    /// still verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Admin events: the object acted on (key id, config file, policy set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Admin events: short free-form detail (never secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An event's members borrowed, for encoding one without building an [`Event`] first: the
/// gateway records every request, and the owned event's dozen allocations, copies and moves
/// cost about as much as encoding it. [`Encoded::from_ref`] writes exactly the bytes
/// [`Encoded::new`] writes for the [`Event`] with the same members.
#[derive(Debug, Clone, Copy)]
#[expect(missing_docs, reason = "the members are the Event's, documented there")]
pub struct EventRef<'a> {
    pub v: u32,
    pub index: u64,
    pub time_ms: u64,
    pub kind: EventKind,
    pub request_id: &'a str,
    pub principal: Option<&'a str>,
    pub action: &'a str,
    pub model: Option<&'a str>,
    pub route: Option<&'a str>,
    pub upstream: Option<&'a str>,
    /// The decision's effect and policies.
    pub decision: Option<(&'a str, &'a [String])>,
    /// Each limit's name and outcome.
    pub limits: &'a [(&'a str, &'a str)],
    pub request_findings: &'a [GuardFinding],
    pub response_findings: &'a [GuardFinding],
    pub findings_dropped: u32,
    pub tokens: Option<TokenUsage>,
    pub stream: bool,
    pub partial: bool,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub latency_us: Option<u64>,
    pub client_ip: Option<&'a str>,
    pub tls_group: Option<&'a str>,
    pub prompt_digest: Option<&'a str>,
    pub response_digest: Option<&'a str>,
    pub content: Option<&'a str>,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    /// A blank event, as [`Event::new`].
    pub fn new(kind: EventKind, request_id: &'a str, action: &'a str, time_ms: u64) -> Self {
        Self {
            v: SCHEMA_VERSION,
            index: 0,
            time_ms,
            kind,
            request_id,
            principal: None,
            action,
            model: None,
            route: None,
            upstream: None,
            decision: None,
            limits: &[],
            request_findings: &[],
            response_findings: &[],
            findings_dropped: 0,
            tokens: None,
            stream: false,
            partial: false,
            status: 0,
            upstream_status: None,
            latency_us: None,
            client_ip: None,
            tls_group: None,
            prompt_digest: None,
            response_digest: None,
            content: None,
            target: None,
            detail: None,
        }
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// An event that does not parse or is not canonical.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not valid event JSON.
    #[error("event JSON is invalid at line {line} column {column}: {message}")]
    Json {
        /// Line of the error.
        line: usize,
        /// Column.
        column: usize,
        /// serde's message.
        message: String,
    },
    /// Too long.
    #[error("event is {0} bytes; the limit is {MAX_EVENT_LEN}")]
    TooLong(usize),
    /// A newer schema.
    #[error(
        "event schema version {0} is not supported (this build reads version {SCHEMA_VERSION}); upgrade aigis"
    )]
    Version(u32),
    /// Parsed, but re-encoding differs (not produced by the canonical encoder).
    #[error("event is not in canonical form (member order, whitespace or escapes differ)")]
    NotCanonical,
}

impl Event {
    /// A blank event of `kind` for `request_id` and `action` at `time_ms`; the store sets
    /// `index`.
    pub fn new(kind: EventKind, request_id: &str, action: &str, time_ms: u64) -> Self {
        Self {
            v: SCHEMA_VERSION,
            index: 0,
            time_ms,
            kind,
            request_id: request_id.to_owned(),
            principal: None,
            action: action.to_owned(),
            model: None,
            route: None,
            upstream: None,
            decision: None,
            limits: Vec::new(),
            request_findings: Vec::new(),
            response_findings: Vec::new(),
            findings_dropped: 0,
            tokens: None,
            stream: false,
            partial: false,
            status: 0,
            upstream_status: None,
            latency_us: None,
            client_ip: None,
            tls_group: None,
            prompt_digest: None,
            response_digest: None,
            content: None,
            target: None,
            detail: None,
        }
    }

    /// The canonical encoding.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        self.canonical_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out` (no allocation of its own, but for an event
    /// with limit outcomes).
    pub fn canonical_into(&self, out: &mut Vec<u8>) {
        let limits: Vec<(&str, &str)> = self
            .limits
            .iter()
            .map(|l| (l.name.as_str(), l.outcome.as_str()))
            .collect();
        crate::canonical::encode(
            &EventRef {
                v: self.v,
                index: self.index,
                time_ms: self.time_ms,
                kind: self.kind,
                request_id: &self.request_id,
                principal: self.principal.as_deref(),
                action: &self.action,
                model: self.model.as_deref(),
                route: self.route.as_deref(),
                upstream: self.upstream.as_deref(),
                decision: self
                    .decision
                    .as_ref()
                    .map(|d| (d.effect.as_str(), d.policies.as_slice())),
                limits: &limits,
                request_findings: &self.request_findings,
                response_findings: &self.response_findings,
                findings_dropped: self.findings_dropped,
                tokens: self.tokens,
                stream: self.stream,
                partial: self.partial,
                status: self.status,
                upstream_status: self.upstream_status,
                latency_us: self.latency_us,
                client_ip: self.client_ip.as_deref(),
                tls_group: self.tls_group.as_deref(),
                prompt_digest: self.prompt_digest.as_deref(),
                response_digest: self.response_digest.as_deref(),
                content: self.content.as_deref(),
                target: self.target.as_deref(),
                detail: self.detail.as_deref(),
            },
            out,
        );
    }

    /// Parses an event from JSON (any member order) without the canonical check.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_LEN {
            return Err(EventError::TooLong(bytes.len()));
        }
        let e: Event = serde_json::from_slice(bytes).map_err(|e| EventError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if e.v != SCHEMA_VERSION {
            return Err(EventError::Version(e.v));
        }
        Ok(e)
    }

    /// Parses canonical bytes (as stored in a log) and checks they are canonical.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, EventError> {
        let e = Self::from_json(bytes)?;
        if e.canonical() != bytes {
            return Err(EventError::NotCanonical);
        }
        Ok(e)
    }

    /// Caps finding lists at [`MAX_FINDINGS`], counting what was dropped.
    pub fn cap_findings(&mut self) {
        for list in [&mut self.request_findings, &mut self.response_findings] {
            if list.len() > MAX_FINDINGS {
                let extra = list.len() - MAX_FINDINGS;
                list.truncate(MAX_FINDINGS);
                self.findings_dropped = self
                    .findings_dropped
                    .saturating_add(u32::try_from(extra).unwrap_or(u32::MAX));
            }
        }
    }
}

/// Digits of the longest index (`u64::MAX`).
const MAX_INDEX_DIGITS: usize = 20;

/// The canonical bytes before the index digits (`v` is always [`SCHEMA_VERSION`]).
const INDEX_PREFIX: &[u8] = br#"{"v":1,"index":"#;

/// An event encoded once, by whoever appends it (a request's own thread in the gateway), with
/// its index still to be assigned: the store writes the canonical bytes with the index it
/// assigns spliced in, so the writer thread neither encodes nor frees the event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Canonical bytes with `"index":0`.
    bytes: Vec<u8>,
    /// Position in the log, set by the store.
    pub index: u64,
    /// The event's `time_ms`.
    pub time_ms: u64,
    /// The event's `request_id`.
    pub request_id: String,
}

impl Encoded {
    /// Encodes `event` (its `index` is ignored: the store assigns one).
    pub fn new(mut event: Event) -> Self {
        event.index = 0;
        let mut bytes = Vec::with_capacity(512);
        event.canonical_into(&mut bytes);
        debug_assert!(bytes.starts_with(INDEX_PREFIX) && bytes[INDEX_PREFIX.len()] == b'0');
        Self {
            bytes,
            index: 0,
            time_ms: event.time_ms,
            request_id: std::mem::take(&mut event.request_id),
        }
    }

    /// Encodes borrowed members (their `index` is ignored, as in [`Encoded::new`]).
    pub fn from_ref(event: &EventRef<'_>) -> Self {
        let mut encoded = Self {
            bytes: Vec::with_capacity(512),
            index: 0,
            time_ms: 0,
            request_id: String::new(),
        };
        encoded.refill(event);
        encoded
    }

    /// Encodes borrowed members in place of this event, reusing its buffers: the same as
    /// [`Encoded::from_ref`] without allocating (see [`crate::writer::Batch`]).
    pub fn refill(&mut self, event: &EventRef<'_>) {
        self.bytes.clear();
        crate::canonical::encode(&EventRef { index: 0, ..*event }, &mut self.bytes);
        self.index = 0;
        self.time_ms = event.time_ms;
        self.request_id.clear();
        self.request_id.push_str(event.request_id);
    }

    /// Refuses an event whose canonical encoding could exceed [`MAX_EVENT_LEN`], which every
    /// reader (a store's, the spool's, a receipt's) refuses: recorded, it would make the log
    /// unverifiable. The length is counted with the longest index (`MAX_INDEX_DIGITS`
    /// digits), since the index is assigned only inside the store's transaction; an event
    /// within 19 bytes of the limit is refused too.
    pub fn check_len(&self) -> Result<(), crate::LedgerError> {
        let len = self.bytes.len() - 1 + MAX_INDEX_DIGITS;
        if len <= MAX_EVENT_LEN {
            return Ok(());
        }
        Err(crate::LedgerError::EventTooLong {
            request_id: self.request_id.chars().take(64).collect(),
            len,
        })
    }

    /// The canonical encoding with `"index":0`: what the event is wherever it lands in the
    /// log (a store tells an event appended again from a new one by it).
    pub(crate) fn unindexed(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes held by the event's buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity() + self.request_id.capacity()
    }

    /// Appends the canonical encoding, with `index`, to `out`.
    pub fn canonical_into(&self, out: &mut Vec<u8>) {
        let at = INDEX_PREFIX.len();
        out.extend_from_slice(&self.bytes[..at]);
        out.extend_from_slice(itoa::Buffer::new().format(self.index).as_bytes());
        out.extend_from_slice(&self.bytes[at + 1..]);
    }

    /// The canonical encoding, with `index`.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 20);
        self.canonical_into(&mut out);
        out
    }

    /// The event back (spool and tests).
    pub fn event(&self) -> Result<Event, EventError> {
        Event::from_canonical(&self.canonical())
    }
}

impl From<Event> for Encoded {
    fn from(event: Event) -> Self {
        Self::new(event)
    }
}

/// The per-ledger secret key for content digests (32 bytes, zeroized on drop), with its HMAC
/// inner and outer states prepared once (every request digests its prompt and response).
pub struct ContentKey(Zeroizing<[u8; 32]>, HmacKey);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

impl ContentKey {
    /// Wraps key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        let key = HmacKey::new(&bytes);
        Self(Zeroizing::new(bytes), key)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, crate::LedgerError> {
        let mut k = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(k.as_mut()).map_err(|_| crate::LedgerError::Random)?;
        let key = HmacKey::new(&k);
        Ok(Self(k, key))
    }

    /// The raw key bytes (for writing the key file).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `HMAC-SHA-256(key, "aigis-ledger/v1 " || label || "\n" || request_id || "\n" || content)`,
    /// lowercase hex. `label` is `prompt` or `response`.
    pub fn digest(&self, label: &str, request_id: &str, content: &[u8]) -> String {
        self.digest_hex(label, request_id, content)
            .as_str()
            .to_owned()
    }

    /// [`ContentKey::digest`] without allocating.
    pub fn digest_hex(&self, label: &str, request_id: &str, content: &[u8]) -> DigestHex {
        let mut d = self.digester(label, request_id);
        d.update(content);
        d.finish_hex()
    }

    /// The same digest computed incrementally, for content that arrives in pieces (a
    /// streamed response).
    pub fn digester(&self, label: &str, request_id: &str) -> Digester {
        let mut mac = self.1.start();
        mac.update(b"aigis-ledger/v1 ");
        mac.update(label.as_bytes());
        mac.update(b"\n");
        mac.update(request_id.as_bytes());
        mac.update(b"\n");
        Digester(mac)
    }

    /// Whether `digest` is the digest of `content` (constant-time comparison).
    pub fn matches(&self, label: &str, request_id: &str, content: &[u8], digest: &str) -> bool {
        let ours = self.digest(label, request_id, content);
        aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_bytes(), digest.as_bytes())
            .is_ok()
    }
}

/// An incremental [`ContentKey::digest`].
pub struct Digester(Mac);

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digester(..)")
    }
}

impl Digester {
    /// Adds the next piece of content.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The digest, lowercase hex.
    pub fn finish(self) -> String {
        self.finish_hex().as_str().to_owned()
    }

    /// The digest, lowercase hex, without allocating.
    pub fn finish_hex(self) -> DigestHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, b) in hex.chunks_exact_mut(2).zip(self.0.finish()) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
        }
        DigestHex(hex)
    }
}

/// A content digest in lowercase hex, held inline ([`Digester::finish_hex`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DigestHex([u8; 64]);

impl DigestHex {
    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for DigestHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
