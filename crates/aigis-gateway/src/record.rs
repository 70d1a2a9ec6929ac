//! The ledger half of the `record` stage: builds the audit event from the request's typed
//! outcomes ([`Outcome`], one plain struct) and appends it through the ledger's bounded queue
//! (waiting for space when it is full: back-pressure, never a silent drop).
//!
//! Content never enters the event: the prompt and response are represented by keyed digests
//! ([`Recorder::digest`]); on routes with `content = "encrypted"` they are sealed to the
//! tenant's age recipients ([`Recorder::seal`], see `capture`) and the event names the blobs. The record is queued, not awaited to disk: the writer commits it
//! with its batch, or spools it when the store fails. When the ledger can no longer make
//! records durable (fail-closed mode, or a full spool), [`Recorder::accepting`] turns false
//! and the pipeline refuses traffic with 503.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aigis_ledger::content::ContentStore;
use aigis_ledger::event::MAX_FINDINGS;
use aigis_ledger::event::{Decision, Digester, GuardFinding, LimitOutcome, TokenUsage};
use aigis_ledger::spool::Spool;
use aigis_ledger::store::Appender;
use aigis_ledger::{Encoded, Event, EventKind, EventRef, Ledger, LedgerKeys, WriterConfig};

use crate::config::{LedgerConfig, LedgerOnError, LedgerStore};

/// A request's outcomes, owned: moved out of the request's state once it has been answered, so
/// its record can be completed later (by the ledger's writer, or when a stream ends) without
/// copying them.
#[derive(Debug)]
pub(crate) struct Facts {
    pub time_ms: u64,
    pub request_id: http::HeaderValue,
    pub principal: Option<String>,
    pub action: Cow<'static, str>,
    pub model: Option<String>,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub allowed: Option<bool>,
    pub policies: Vec<String>,
    pub limits: Vec<(String, &'static str)>,
    pub request_findings: Vec<String>,
    pub response_findings: Vec<String>,
    pub stream: bool,
    pub status: u16,
    pub latency: Duration,
    pub tls_group: Option<Arc<str>>,
}

impl Facts {
    /// The limit outcomes as the borrowed pairs [`Outcome`] takes.
    pub(crate) fn limit_pairs(&self) -> Vec<(&str, &str)> {
        self.limits.iter().map(|(n, o)| (n.as_str(), *o)).collect()
    }

    /// The outcome these facts describe, `limits` being [`Facts::limit_pairs`].
    pub(crate) fn outcome<'a>(&'a self, limits: &'a [(&'a str, &'a str)]) -> Outcome<'a> {
        Outcome {
            time_ms: self.time_ms,
            request_id: self.request_id.to_str().unwrap_or_default(),
            principal: self.principal.as_deref(),
            action: &self.action,
            model: self.model.as_deref(),
            route: self.route.as_deref(),
            upstream: self.upstream.as_deref(),
            allowed: self.allowed,
            policies: &self.policies,
            limits,
            request_findings: &self.request_findings,
            response_findings: &self.response_findings,
            stream: self.stream,
            status: self.status,
            latency: self.latency,
            tls_group: self.tls_group.as_deref(),
            ..Outcome::default()
        }
    }
}

/// A complete response's facts and both bodies copied into one buffer on the request's thread,
/// for the ledger's writer to complete ([`Recorder::defer`]). The request's own allocations are
/// freed at once, on their thread, while in cache. A record that held them instead (about a
/// dozen strings and buffers) until the writer took its batch, up to a commit interval later,
/// cost the gateway more than all of the writer's work (`docs/BENCHMARKS.md`, round 8).
pub(crate) struct Packed {
    /// Each string of the facts, then the prompt and the response: a `u32` length (`u32::MAX`
    /// for none) and the bytes; a list is its `u32` count and its items.
    buf: Vec<u8>,
    time_ms: u64,
    allowed: Option<bool>,
    stream: bool,
    status: u16,
    latency: Duration,
}

/// The length written for an absent field.
const NONE: u32 = u32::MAX;

fn put(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    // Every field is a string or body the gateway bounds far below 4 GiB.
    let len = field.map_or(NONE, |f| u32::try_from(f.len()).unwrap_or(NONE - 1));
    buf.extend_from_slice(&len.to_le_bytes());
    if let Some(f) = field {
        buf.extend_from_slice(&f[..len as usize]);
    }
}

fn put_list<'a>(buf: &mut Vec<u8>, count: usize, items: impl Iterator<Item = &'a str>) {
    buf.extend_from_slice(&u32::try_from(count).unwrap_or(0).to_le_bytes());
    for item in items.take(count) {
        put(buf, Some(item.as_bytes()));
    }
}

/// Reads a [`Packed`] buffer back, field by field, in the order it was written.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.buf.split_first_chunk::<4>()?;
        self.buf = rest;
        Some(u32::from_le_bytes(*n))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        if len == NONE {
            return None;
        }
        let (bytes, rest) = self.buf.split_at_checked(len as usize)?;
        self.buf = rest;
        Some(bytes)
    }

    fn text(&mut self) -> Option<&'a str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    fn list(&mut self) -> Vec<&'a str> {
        let n = self.u32().unwrap_or(0);
        (0..n).map_while(|_| self.text()).collect()
    }
}

impl Packed {
    /// Packs `facts` and the bodies.
    pub(crate) fn new(
        mut buf: Vec<u8>,
        facts: &Facts,
        prompt: Option<&[u8]>,
        response: &[u8],
    ) -> Self {
        fn text(o: Option<&String>) -> Option<&[u8]> {
            o.map(String::as_bytes)
        }
        fn strings(v: &[String]) -> (usize, impl Iterator<Item = &str>) {
            (v.len(), v.iter().map(String::as_str))
        }
        buf.clear();
        buf.reserve(256 + prompt.map_or(0, <[u8]>::len) + response.len());
        put(&mut buf, Some(facts.request_id.as_bytes()));
        put(&mut buf, text(facts.principal.as_ref()));
        put(&mut buf, Some(facts.action.as_bytes()));
        put(&mut buf, text(facts.model.as_ref()));
        put(&mut buf, text(facts.route.as_ref()));
        put(&mut buf, text(facts.upstream.as_ref()));
        put(&mut buf, facts.tls_group.as_deref().map(str::as_bytes));
        let (n, policies) = strings(&facts.policies);
        put_list(&mut buf, n, policies);
        let limits = facts
            .limits
            .iter()
            .flat_map(|(name, outcome)| [name.as_str(), outcome]);
        put_list(&mut buf, 2 * facts.limits.len(), limits);
        let (n, findings) = strings(&facts.request_findings);
        put_list(&mut buf, n, findings);
        let (n, findings) = strings(&facts.response_findings);
        put_list(&mut buf, n, findings);
        put(&mut buf, prompt);
        put(&mut buf, Some(response));
        Self {
            buf,
            time_ms: facts.time_ms,
            allowed: facts.allowed,
            stream: facts.stream,
            status: facts.status,
            latency: facts.latency,
        }
    }

    /// Calls `complete` with the packed outcome (without digests, tokens or content), the
    /// prompt and the response.
    pub(crate) fn with<R>(
        &self,
        complete: impl FnOnce(Outcome<'_>, Option<&[u8]>, &[u8]) -> R,
    ) -> R {
        let mut f = Fields { buf: &self.buf };
        let request_id = f.text().unwrap_or_default();
        let principal = f.text();
        let action = f.text().unwrap_or_default();
        let (model, route, upstream, tls_group) = (f.text(), f.text(), f.text(), f.text());
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        let policies = owned(f.list());
        let limits: Vec<(&str, &str)> = f.list().chunks_exact(2).map(|p| (p[0], p[1])).collect();
        let request_findings = owned(f.list());
        let response_findings = owned(f.list());
        let prompt = f.bytes();
        let response = f.bytes().unwrap_or_default();
        let outcome = Outcome {
            time_ms: self.time_ms,
            request_id,
            principal,
            action,
            model,
            route,
            upstream,
            allowed: self.allowed,
            policies: &policies,
            limits: &limits,
            request_findings: &request_findings,
            response_findings: &response_findings,
            stream: self.stream,
            status: self.status,
            latency: self.latency,
            tls_group,
            ..Outcome::default()
        };
        complete(outcome, prompt, response)
    }
}

/// What one request's stages decided and observed; everything optional that a stage may
/// not have reached.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'a> {
    /// When the record was made (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// The `x-request-id` returned to the client.
    pub request_id: &'a str,
    /// Principal id, once identified.
    pub principal: Option<&'a str>,
    /// Endpoint (`chat.completions`, …) or the path for other requests.
    pub action: &'a str,
    /// Requested model.
    pub model: Option<&'a str>,
    /// Route that served it.
    pub route: Option<&'a str>,
    /// Upstream that answered.
    pub upstream: Option<&'a str>,
    /// `Some(true)` allowed by policy, `Some(false)` denied, `None` not reached.
    pub allowed: Option<bool>,
    /// The policies behind the decision.
    pub policies: &'a [String],
    /// Each limit checked and its outcome.
    pub limits: &'a [(&'a str, &'a str)],
    /// Guard finding types on the request.
    pub request_findings: &'a [String],
    /// Guard finding types on the response.
    pub response_findings: &'a [String],
    /// Prompt and completion tokens, when counted.
    pub tokens: Option<(u64, u64)>,
    /// Streamed response.
    pub stream: bool,
    /// The response ended early.
    pub partial: bool,
    /// Status returned to the client.
    pub status: u16,
    /// Status the upstream returned.
    pub upstream_status: Option<u16>,
    /// Time from request start to the record point.
    pub latency: Duration,
    /// TLS key-exchange group of the client connection.
    pub tls_group: Option<&'a str>,
    /// Keyed digest of the request body.
    pub prompt_digest: Option<String>,
    /// Keyed digest of the response body.
    pub response_digest: Option<String>,
    /// Reference of the sealed request and response (`content = "encrypted"` routes).
    pub content: Option<String>,
    /// Short free-form detail (why content was not sealed).
    pub detail: Option<&'a str>,
}

fn findings(kinds: &[String]) -> Vec<GuardFinding> {
    kinds
        .iter()
        .map(|k| GuardFinding {
            kind: k.clone(),
            action: None,
            span: None,
            score_milli: None,
        })
        .collect()
}

/// The audit event for one request, owned (a streamed request's, completed when its stream
/// ends); takes the outcome, so its digests move in uncopied.
pub(crate) fn event(o: Outcome<'_>) -> Event {
    let mut e = Event::new(EventKind::AiCall, o.request_id, o.action, o.time_ms);
    e.principal = o.principal.map(str::to_owned);
    e.model = o.model.map(str::to_owned);
    e.route = o.route.map(str::to_owned);
    e.upstream = o.upstream.map(str::to_owned);
    e.decision = o.allowed.map(|allowed| Decision {
        effect: effect(allowed).into(),
        policies: o.policies.to_vec(),
    });
    e.limits = o
        .limits
        .iter()
        .map(|(name, outcome)| LimitOutcome {
            name: (*name).to_owned(),
            outcome: (*outcome).to_owned(),
        })
        .collect();
    e.request_findings = findings(o.request_findings);
    e.response_findings = findings(o.response_findings);
    e.cap_findings();
    e.tokens = o
        .tokens
        .map(|(prompt, completion)| TokenUsage { prompt, completion });
    e.stream = o.stream;
    e.partial = o.partial;
    e.status = o.status;
    e.upstream_status = o.upstream_status;
    e.latency_us = Some(latency_us(o.latency));
    e.tls_group = o.tls_group.map(str::to_owned);
    e.prompt_digest = o.prompt_digest;
    e.response_digest = o.response_digest;
    e.content = o.content;
    e.detail = o.detail.map(str::to_owned);
    e
}

/// The same event encoded straight from the borrowed outcome (a complete response's, on every
/// request's path): the same bytes as `Encoded::new(event(o))` without building the event.
pub(crate) fn encoded(o: &Outcome<'_>) -> Encoded {
    let request_findings = findings(capped(o.request_findings));
    let response_findings = findings(capped(o.response_findings));
    let dropped = o.request_findings.len() - request_findings.len() + o.response_findings.len()
        - response_findings.len();
    let mut e = EventRef::new(EventKind::AiCall, o.request_id, o.action, o.time_ms);
    e.principal = o.principal;
    e.model = o.model;
    e.route = o.route;
    e.upstream = o.upstream;
    e.decision = o.allowed.map(|allowed| (effect(allowed), o.policies));
    e.limits = o.limits;
    e.request_findings = &request_findings;
    e.response_findings = &response_findings;
    e.findings_dropped = u32::try_from(dropped).unwrap_or(u32::MAX);
    e.tokens = o
        .tokens
        .map(|(prompt, completion)| TokenUsage { prompt, completion });
    e.stream = o.stream;
    e.partial = o.partial;
    e.status = o.status;
    e.upstream_status = o.upstream_status;
    e.latency_us = Some(latency_us(o.latency));
    e.tls_group = o.tls_group;
    e.prompt_digest = o.prompt_digest.as_deref();
    e.response_digest = o.response_digest.as_deref();
    e.content = o.content.as_deref();
    e.detail = o.detail;
    Encoded::from_ref(&e)
}

fn effect(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

fn capped(kinds: &[String]) -> &[String] {
    &kinds[..kinds.len().min(MAX_FINDINGS)]
}

fn latency_us(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// Completes a streamed request's event when its stream has ended.
pub(crate) fn with_response(mut e: Event, response_findings: &[String], partial: bool) -> Event {
    e.response_findings = findings(response_findings);
    e.cap_findings();
    e.partial = partial;
    e
}

/// An admin action as an audit event.
pub(crate) fn admin_event(
    operation_id: &str,
    principal: Option<&str>,
    action: &str,
    target: Option<&str>,
    status: u16,
) -> Event {
    let mut e = Event::new(
        EventKind::Admin,
        operation_id,
        action,
        aigis_ledger::now_ms(),
    );
    e.principal = principal.map(str::to_owned);
    e.target = target.map(str::to_owned);
    e.status = status;
    e
}

/// Origin of a ledger whose key the gateway created itself.
const DEFAULT_ORIGIN: &str = "aigis.local/ledger";

/// Loads the ledger key, creating it on a first start (mode 0600) and printing the public
/// verifier keys once, as the embedded default needs nothing set up beforehand.
fn load_or_create_key(path: &std::path::Path) -> Result<LedgerKeys, String> {
    if path.exists() {
        return LedgerKeys::load(path).map_err(|e| e.to_string());
    }
    let keys = LedgerKeys::create_files(path, DEFAULT_ORIGIN).map_err(|e| e.to_string())?;
    tracing::info!(key = %path.display(), origin = DEFAULT_ORIGIN, "created the audit ledger key");
    eprintln!(
        "\n  aigis: created the audit ledger key {}. Auditors verify receipts with these public keys\n  (also in {}.pub):\n\n    {}",
        path.display(),
        path.display(),
        keys.verifiers().to_text().replace('\n', "\n    ")
    );
    Ok(keys)
}

/// The running ledger of a gateway.
pub(crate) struct Recorder {
    ledger: Ledger,
    keys: Arc<LedgerKeys>,
    content: Option<Arc<ContentStore>>,
    /// Bytes of packed records in the queue.
    deferred: Arc<AtomicUsize>,
    /// Packed records' buffers, returned by the writer for the next requests: each record
    /// would otherwise allocate one on a request's thread and free it on the writer's, and
    /// the allocator gives such pages back after each batch, to be faulted in again.
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Most buffers kept for packed records, and the largest kept.
const POOLED: usize = 4096;
const POOLED_CAPACITY: usize = 16 << 10;

/// Most bytes packed records may hold in the queue at once. The queue is bounded in records,
/// not bytes, and a packed record holds copies of its bodies until the writer gets to it: past
/// this (a slow disk, large bodies) a record is completed on the request's thread and queues
/// only its encoded event.
const DEFER_BUDGET: usize = 8 << 20;

impl Recorder {
    /// Opens the store and key and starts the writer.
    pub(crate) async fn open(config: &LedgerConfig) -> Result<Self, String> {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&config))
            .await
            .map_err(|e| e.to_string())?
    }

    fn open_blocking(config: &LedgerConfig) -> Result<Self, String> {
        let keys = Arc::new(load_or_create_key(&config.signing_key)?);
        let store: Box<dyn Appender> = match &config.store {
            LedgerStore::File(p) => Box::new(
                aigis_ledger::store::file::FileStore::open(p, Some(keys.origin()))
                    .map_err(|e| e.to_string())?,
            ),
            LedgerStore::Sqlite(p) => Box::new(
                aigis_ledger::store::sqlite::SqliteStore::open(p, Some(keys.origin()))
                    .map_err(|e| e.to_string())?,
            ),
            LedgerStore::Postgres(url) => Box::new(
                aigis_ledger::store::postgres::PgStore::connect(url, Some(keys.origin()))
                    .map_err(|e| e.to_string())?,
            ),
        };
        let spool = match config.on_store_error {
            LedgerOnError::Spool => {
                Some(Spool::open(&config.spool, config.spool_max).map_err(|e| e.to_string())?)
            }
            LedgerOnError::FailClosed => None,
        };
        let writer = WriterConfig {
            checkpoint_every: config.checkpoint_every,
            linger: config.commit_interval,
            ..WriterConfig::default()
        };
        let ledger =
            Ledger::start(store, keys.clone(), spool, writer).map_err(|e| e.to_string())?;
        tracing::info!(
            origin = keys.origin(),
            size = ledger.size(),
            "audit ledger open"
        );
        Ok(Self {
            ledger,
            keys,
            content: config.capture.clone(),
            deferred: Arc::default(),
            pool: Arc::default(),
        })
    }

    /// Whether records can be made durable; when false the gateway refuses traffic.
    pub(crate) fn accepting(&self) -> bool {
        self.ledger.healthy()
    }

    /// The keyed digest of request or response content (`label` = `prompt` | `response`).
    pub(crate) fn digest(&self, label: &str, request_id: &str, content: &[u8]) -> String {
        self.keys.content().digest(label, request_id, content)
    }

    /// Whether content of `tenant` can be sealed (a route that captures refuses the request
    /// when not: never plaintext).
    pub(crate) fn can_seal(&self, tenant: &str) -> bool {
        self.content
            .as_ref()
            .is_some_and(|c| c.recipients_for(tenant).is_some())
    }

    /// Seals a call's request and response for `tenant` (off the async threads: age and an
    /// fsync per blob) and returns the reference to record.
    pub(crate) async fn seal(
        &self,
        tenant: String,
        request: bytes::Bytes,
        response: bytes::Bytes,
    ) -> Result<String, String> {
        let store = self
            .content
            .clone()
            .ok_or_else(|| "no [ledger.capture] configured".to_owned())?;
        let time_ms = aigis_ledger::now_ms();
        tokio::task::spawn_blocking(move || {
            store
                .seal(&tenant, time_ms, &request, &response)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// An incremental keyed digest (a response as it streams).
    pub(crate) fn digester(&self, label: &str, request_id: &str) -> Digester {
        self.keys.content().digester(label, request_id)
    }

    /// Queues the record of a complete response without a capture for the ledger's writer to
    /// complete in its batch: the keyed digests of `prompt` and `response`, the usage the
    /// response reports (unless `usage` is known), the encoding. The request's thread only
    /// packs its facts and the two bodies into one buffer ([`Packed`]).
    pub(crate) async fn defer(
        &self,
        facts: Facts,
        prompt: Option<&[u8]>,
        response: &[u8],
        usage: Option<crate::admit::Usage>,
    ) {
        let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
        let packed = Packed::new(spare.unwrap_or_default(), &facts, prompt, response);
        // The request's own strings are freed here, on their thread, not by the writer.
        drop(facts);
        let size = packed.buf.len();
        let keys = self.keys.clone();
        let pool = self.pool.clone();
        let complete = move || {
            let event = packed.with(|mut o, prompt, response| {
                let content = keys.content();
                o.prompt_digest = prompt.map(|p| content.digest("prompt", o.request_id, p));
                o.response_digest = Some(content.digest("response", o.request_id, response));
                o.tokens = usage
                    .or_else(|| crate::capture::reported_usage(response))
                    .map(|u| (u.prompt, u.completion));
                encoded(&o)
            });
            if packed.buf.capacity() <= POOLED_CAPACITY
                && let Ok(mut p) = pool.lock()
                && p.len() < POOLED
            {
                p.push(packed.buf);
            }
            event
        };
        if self.deferred.fetch_add(size, Ordering::Relaxed) + size > DEFER_BUDGET {
            self.deferred.fetch_sub(size, Ordering::Relaxed);
            self.append(complete()).await;
            return;
        }
        let deferred = self.deferred.clone();
        let queued = self
            .ledger
            .enqueue_deferred(Box::new(move || {
                let event = complete();
                deferred.fetch_sub(size, Ordering::Relaxed);
                event
            }))
            .await;
        if let Err(e) = queued {
            self.deferred.fetch_sub(size, Ordering::Relaxed);
            tracing::error!(target: "aigis::security", error = %e, "audit record could not be queued");
        }
    }

    /// Queues `event`, waiting while the queue is full.
    pub(crate) async fn append(&self, event: impl Into<Encoded>) {
        if let Err(e) = self.ledger.enqueue(event).await {
            tracing::error!(target: "aigis::security", error = %e, "audit record could not be queued");
        }
    }

    /// Commits what is queued, signs a final checkpoint and stops the writer.
    pub(crate) async fn close(&self) {
        let ledger = self.ledger.clone();
        let _ = tokio::task::spawn_blocking(move || ledger.close()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("kind \"{i}\"\n")).collect()
    }

    fn facts(full: bool) -> Facts {
        let text = |t: &str| full.then(|| t.to_owned());
        Facts {
            time_ms: 1_796_000_000_123,
            request_id: http::HeaderValue::from_static("0123abcd"),
            principal: text("alice \"a\""),
            action: Cow::Borrowed("chat_completions"),
            model: text("gpt-\u{e9}"),
            route: text("r"),
            upstream: text(""),
            allowed: full.then_some(false),
            policies: if full {
                vec!["p1".into(), String::new()]
            } else {
                Vec::new()
            },
            limits: if full {
                vec![("rpm".into(), "admitted"), ("tpm".into(), "refused")]
            } else {
                Vec::new()
            },
            request_findings: if full { kinds(3) } else { Vec::new() },
            response_findings: if full {
                kinds(MAX_FINDINGS + 1)
            } else {
                Vec::new()
            },
            stream: full,
            status: 429,
            latency: Duration::from_micros(98_765),
            tls_group: full.then(|| Arc::from("X25519MLKEM768")),
        }
    }

    #[test]
    fn a_packed_record_unpacks_to_its_facts_and_bodies() {
        for (full, prompt) in [
            (true, Some(&b"{\"messages\":[]}"[..])),
            (false, None),
            (true, Some(&b""[..])),
        ] {
            let expected = facts(full);
            let limits = expected.limit_pairs();
            let expected = encoded(&expected.outcome(&limits)).canonical();
            let response = "{\"usage\":{}}\u{0}\u{ff}".as_bytes();
            // A buffer back from the pool still holds its last record.
            let packed = Packed::new(b"stale record".to_vec(), &facts(full), prompt, response);
            let (got, got_prompt, got_response) =
                packed.with(|o, p, r| (encoded(&o).canonical(), p.map(<[u8]>::to_vec), r.to_vec()));
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            assert_eq!(got_prompt.as_deref(), prompt);
            assert_eq!(got_response, response);
        }
    }

    #[test]
    fn the_borrowed_encoding_is_the_events() {
        let policies = ["p1".to_owned(), "team \\ admins".to_owned()];
        let limits = [("rpm", "admitted"), ("tpm", "refused")];
        let (few, many) = (kinds(2), kinds(MAX_FINDINGS + 5));
        let outcomes = [
            Outcome {
                time_ms: 1,
                request_id: "r1",
                action: "/v1/other",
                ..Outcome::default()
            },
            Outcome {
                time_ms: 1_796_000_000_000,
                request_id: "0123abcd",
                principal: Some("alice"),
                action: "chat_completions",
                model: Some("gpt-\u{e9}"),
                route: Some("r"),
                upstream: Some("u"),
                allowed: Some(true),
                policies: &policies,
                limits: &limits,
                request_findings: &few,
                response_findings: &many,
                tokens: Some((3, 4)),
                stream: true,
                partial: true,
                status: 200,
                upstream_status: Some(201),
                latency: Duration::from_micros(1234),
                tls_group: Some("X25519MLKEM768"),
                prompt_digest: Some("ab".repeat(32)),
                response_digest: Some("cd".repeat(32)),
                content: Some("tenant/blob".into()),
                detail: Some("a \"detail\""),
            },
            Outcome {
                request_id: "r3",
                action: "embeddings",
                allowed: Some(false),
                request_findings: &many,
                status: 403,
                ..Outcome::default()
            },
        ];
        for o in outcomes {
            let borrowed = encoded(&o).canonical();
            let owned = Encoded::new(event(o)).canonical();
            assert_eq!(
                String::from_utf8(borrowed).unwrap(),
                String::from_utf8(owned).unwrap()
            );
        }
    }
}
