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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aigis_ledger::content::ContentStore;
use aigis_ledger::event::MAX_FINDINGS;
use aigis_ledger::event::{Decision, DigestHex, Digester, GuardFinding, LimitOutcome, TokenUsage};
use aigis_ledger::spool::Spool;
use aigis_ledger::store::Appender;
use aigis_ledger::writer::Batch;
use aigis_ledger::{Encoded, Event, EventKind, EventRef, Ledger, LedgerKeys, WriterConfig};

use crate::admit::Usage;
use crate::config::{LedgerConfig, LedgerOnError, LedgerStore};

mod pack;

use pack::{pack, packed_len, unpack};

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
    pub request_findings: Vec<GuardFinding>,
    pub response_findings: Vec<GuardFinding>,
    pub stream: bool,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub latency: Duration,
    pub client_ip: Option<Arc<str>>,
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
            upstream_status: self.upstream_status,
            latency: self.latency,
            client_ip: self.client_ip.as_deref(),
            tls_group: self.tls_group.as_deref(),
            ..Outcome::default()
        }
    }
}

/// Completes a complete response's record: the keyed digests of its content and the usage
/// the response reports (unless `usage` is known); `encode` encodes the event.
fn complete<R>(
    keys: &LedgerKeys,
    mut o: Outcome<'_>,
    usage: Option<Usage>,
    prompt: Option<&[u8]>,
    response: &[u8],
    encode: impl FnOnce(&EventRef<'_>) -> R,
) -> R {
    let content = keys.content();
    let prompt_digest = prompt.map(|p| content.digest_hex("prompt", o.request_id, p));
    let response_digest = content.digest_hex("response", o.request_id, response);
    o.tokens = usage
        .or_else(|| crate::capture::reported_usage(response))
        .map(|u| (u.prompt, u.completion));
    let digests = (
        prompt_digest.as_ref().map(DigestHex::as_str),
        Some(response_digest.as_str()),
    );
    with_event_ref(&o, digests, encode)
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
    /// Guard findings on the request.
    pub request_findings: &'a [GuardFinding],
    /// Guard finding types on the response.
    pub response_findings: &'a [GuardFinding],
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
    /// The client's address as `[ledger] client_ip` records it.
    pub client_ip: Option<&'a str>,
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
    e.request_findings = o.request_findings.to_vec();
    e.response_findings = o.response_findings.to_vec();
    e.cap_findings();
    e.tokens = o
        .tokens
        .map(|(prompt, completion)| TokenUsage { prompt, completion });
    e.stream = o.stream;
    e.partial = o.partial;
    e.status = o.status;
    e.upstream_status = o.upstream_status;
    e.latency_us = Some(latency_us(o.latency));
    e.client_ip = o.client_ip.map(str::to_owned);
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
    let digests = (o.prompt_digest.as_deref(), o.response_digest.as_deref());
    with_event_ref(o, digests, Encoded::from_ref)
}

/// Passes the event of `o` with the content `digests` (prompt, response), borrowed, to `f`.
fn with_event_ref<R>(
    o: &Outcome<'_>,
    (prompt_digest, response_digest): (Option<&str>, Option<&str>),
    f: impl FnOnce(&EventRef<'_>) -> R,
) -> R {
    let request_findings = capped(o.request_findings);
    let response_findings = capped(o.response_findings);
    let dropped = o.request_findings.len() - request_findings.len() + o.response_findings.len()
        - response_findings.len();
    let mut e = EventRef::new(EventKind::AiCall, o.request_id, o.action, o.time_ms);
    e.principal = o.principal;
    e.model = o.model;
    e.route = o.route;
    e.upstream = o.upstream;
    e.decision = o.allowed.map(|allowed| (effect(allowed), o.policies));
    e.limits = o.limits;
    e.request_findings = request_findings;
    e.response_findings = response_findings;
    e.findings_dropped = u32::try_from(dropped).unwrap_or(u32::MAX);
    e.tokens = o
        .tokens
        .map(|(prompt, completion)| TokenUsage { prompt, completion });
    e.stream = o.stream;
    e.partial = o.partial;
    e.status = o.status;
    e.upstream_status = o.upstream_status;
    e.latency_us = Some(latency_us(o.latency));
    e.client_ip = o.client_ip;
    e.tls_group = o.tls_group;
    e.prompt_digest = prompt_digest;
    e.response_digest = response_digest;
    e.content = o.content.as_deref();
    e.detail = o.detail;
    f(&e)
}

fn effect(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

fn capped(kinds: &[GuardFinding]) -> &[GuardFinding] {
    &kinds[..kinds.len().min(MAX_FINDINGS)]
}

fn latency_us(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// Completes a streamed request's event when its stream has ended.
pub(crate) fn with_response(
    mut e: Event,
    response_findings: &[GuardFinding],
    partial: bool,
) -> Event {
    e.response_findings = response_findings.to_vec();
    e.cap_findings();
    e.partial = partial;
    e
}

/// An admin action as an audit event; `client_ip` as `[ledger] client_ip` records it.
pub(crate) fn admin_event(
    operation_id: &str,
    principal: Option<&str>,
    client_ip: Option<&str>,
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
    e.client_ip = client_ip.map(str::to_owned);
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
    /// Complete responses' records gathered for the writer ([`Recorder::defer`]).
    gathered: Arc<Mutex<Gathered>>,
    /// How much of a client's address events record.
    client_ip: crate::config::ClientIp,
    /// Content seals running at once, at most [`MAX_SEALS`].
    seals: Arc<tokio::sync::Semaphore>,
}

/// Longest a call's content may take to be sealed (age encryption and an `fsync` per blob,
/// waiting for a turn included) before its response is refused.
const SEAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Most content seals running at once. A disk that stops answering holds a blocking thread
/// per seal until it answers; the bound keeps those from piling up to the runtime's limit,
/// which other blocking work (key checks, reloads, the ledger's close) shares.
const MAX_SEALS: usize = 64;

/// Records [`pack`]ed back to back on the requests' threads, waiting for one writer job to
/// take them all: per request a short lock and a copy, instead of a queue slot, a channel
/// message, a pooled buffer and a boxed job, the last two freed on the writer's thread
/// (`docs/BENCHMARKS.md`, recording round 9).
///
/// The records fill fixed chunks that are used again, never one buffer that grows: when the
/// store's sync stalls (a second, on the disks here), a growing buffer was reallocated and
/// copied on the requests' thread, and its fresh pages faulted in, while the gateway was
/// busiest (recording round 10).
#[derive(Default)]
struct Gathered {
    /// The packed records, oldest first; a record goes into the last chunk if it fits.
    chunks: Vec<Vec<u8>>,
    /// Bytes packed in `chunks`.
    bytes: usize,
    /// Records packed in `chunks`.
    records: usize,
    /// Emptied chunks of [`CHUNK`] bytes, at most [`SPARE_CHUNKS`], whose pages stay mapped.
    spare: Vec<Vec<u8>>,
    /// A writer job that takes `chunks` is queued.
    queued: bool,
}

impl Gathered {
    /// Packs a record of `len` bytes ([`packed_len`]): into the last chunk if it fits, else
    /// into a spare or new chunk (one of its own if it is larger than a chunk).
    fn pack(
        &mut self,
        len: usize,
        facts: &Facts,
        usage: Option<Usage>,
        prompt: Option<&[u8]>,
        response: &[u8],
    ) {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= len);
        if !fits {
            let chunk = if len <= CHUNK {
                self.spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK))
            } else {
                Vec::with_capacity(len)
            };
            self.chunks.push(chunk);
        }
        if let Some(chunk) = self.chunks.last_mut() {
            pack(chunk, facts, usage, prompt, response);
        }
        self.bytes += len;
        self.records += 1;
    }

    /// Takes the packed records, leaving none.
    fn take(&mut self) -> (Vec<Vec<u8>>, usize) {
        self.bytes = 0;
        let records = std::mem::take(&mut self.records);
        (std::mem::take(&mut self.chunks), records)
    }

    /// Keeps emptied chunks for the next records, up to [`SPARE_CHUNKS`].
    fn recycle(&mut self, chunks: Vec<Vec<u8>>) {
        for mut chunk in chunks {
            if chunk.capacity() == CHUNK && self.spare.len() < SPARE_CHUNKS {
                chunk.clear();
                self.spare.push(chunk);
            }
        }
    }
}

/// Most bytes of records gathered for the writer. Past this a record is completed on the
/// request's thread and queued alone, so the queue's bound (in records) applies back-pressure.
/// A store's `fdatasync` can stall for a second on a busy disk (seen here): at 30,000
/// requests/s of about 700 packed bytes each, this budget absorbs a stall of about 1.5 s
/// before requests take on the writer's work.
const GATHER_BUDGET: usize = 32 << 20;

/// Size of a chunk of gathered records: a batch at full load (about 300 records per commit
/// interval) fits in one.
const CHUNK: usize = 1 << 20;

/// Most emptied chunks kept for reuse (16 MiB): the records of a stall of about half a second
/// at the load above; the chunks beyond, gathered during a longer stall, are freed.
const SPARE_CHUNKS: usize = 16;

/// Runs `work` on a blocking thread while it holds one of `slots`' permits, and gives up
/// waiting (for a permit, then for the work) after `limit`. Work given up on keeps its thread
/// and its permit until it returns, so work that never returns holds at most as many threads
/// as `slots` has permits.
async fn bounded_blocking<T: Send + 'static>(
    slots: &Arc<tokio::sync::Semaphore>,
    limit: Duration,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let run = async {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| e.to_string())?
    };
    tokio::time::timeout(limit, run).await.map_err(|_| {
        format!(
            "did not finish within {} s (is the disk answering?)",
            limit.as_secs_f32()
        )
    })?
}

/// Locks the gathered records. Packing does not panic, so a lock poisoned by a panic
/// elsewhere holds whole records, and is taken as it is.
fn lock(gathered: &Mutex<Gathered>) -> MutexGuard<'_, Gathered> {
    gathered.lock().unwrap_or_else(PoisonError::into_inner)
}

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
            stall: config.store_timeout,
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
            client_ip: config.client_ip,
            gathered: Arc::default(),
            seals: Arc::new(tokio::sync::Semaphore::new(MAX_SEALS)),
        })
    }

    /// The text events record for a client at `ip` (`[ledger] client_ip`).
    pub(crate) fn client_ip(&self, ip: std::net::IpAddr) -> Option<Arc<str>> {
        self.client_ip.text(ip)
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
    /// fsync per blob) and returns the reference to record; an error after [`SEAL_TIMEOUT`].
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
        bounded_blocking(&self.seals, SEAL_TIMEOUT, move || {
            store
                .seal(&tenant, time_ms, &request, &response)
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// An incremental keyed digest (a response as it streams).
    pub(crate) fn digester(&self, label: &str, request_id: &str) -> Digester {
        self.keys.content().digester(label, request_id)
    }

    /// Queues the record of a complete response without a capture for the ledger's writer to
    /// complete in its batch ([`complete`]). The request's thread only packs its facts and the
    /// two bodies with the records gathered since the writer's last batch, and queues the job
    /// that takes them if it is the first.
    pub(crate) async fn defer(
        &self,
        facts: Facts,
        prompt: Option<&[u8]>,
        response: &[u8],
        usage: Option<Usage>,
    ) {
        let len = packed_len(&facts, prompt, response);
        let first = {
            let mut g = lock(&self.gathered);
            if g.bytes + len > GATHER_BUDGET {
                None
            } else {
                g.pack(len, &facts, usage, prompt, response);
                Some(!std::mem::replace(&mut g.queued, true))
            }
        };
        match first {
            None => {
                let limits = facts.limit_pairs();
                let outcome = facts.outcome(&limits);
                let event = complete(
                    &self.keys,
                    outcome,
                    usage,
                    prompt,
                    response,
                    Encoded::from_ref,
                );
                self.append(event).await;
            }
            Some(false) => {}
            Some(true) => {
                // The request's own strings are freed here, on their thread, not by the writer.
                drop(facts);
                if let Err(e) = self.ledger.enqueue_deferred(self.take_gathered()).await {
                    let lost = {
                        let mut g = lock(&self.gathered);
                        g.queued = false;
                        let lost = g.bytes;
                        let (chunks, _) = g.take();
                        g.recycle(chunks);
                        lost
                    };
                    tracing::error!(target: "aigis::security", error = %e, bytes = lost, "audit records could not be queued");
                }
            }
        }
    }

    /// The writer's job for gathered records: it takes every record gathered so far (the
    /// next record queues the next job), completes each, and hands the emptied chunks back.
    fn take_gathered(&self) -> aigis_ledger::writer::Deferred {
        let (gathered, keys) = (self.gathered.clone(), self.keys.clone());
        Box::new(move |batch: &mut Batch| {
            let (chunks, records) = {
                let mut g = lock(&gathered);
                g.queued = false;
                g.take()
            };
            batch.reserve(records);
            for chunk in &chunks {
                unpack(chunk, |o, usage, prompt, response| {
                    complete(&keys, o, usage, prompt, response, |e| batch.push_ref(e));
                });
            }
            lock(&gathered).recycle(chunks);
        })
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

    /// `n` findings; every third has no action, span or score.
    fn kinds(n: usize) -> Vec<GuardFinding> {
        (0..n as u64)
            .map(|i| {
                let full = i % 3 != 2;
                GuardFinding {
                    kind: format!("pii:kind \"{i}\"\n"),
                    action: full.then(|| "redact".to_owned()),
                    span: full.then_some([i, i + 7]),
                    score_milli: full.then_some(u32::try_from(i).unwrap_or(0) * 10),
                }
            })
            .collect()
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
            upstream_status: full.then_some(503),
            latency: Duration::from_micros(98_765),
            client_ip: full.then(|| Arc::from("2001:db8::1")),
            tls_group: full.then(|| Arc::from("X25519MLKEM768")),
        }
    }

    #[test]
    fn packed_records_unpack_to_their_facts_usage_and_bodies() {
        let records = [
            (true, Some(&b"{\"messages\":[]}"[..]), None),
            (
                false,
                None,
                Some(Usage {
                    prompt: 3,
                    completion: u64::MAX,
                }),
            ),
            (true, Some(&b""[..]), None),
        ];
        let response = "{\"usage\":{}}\u{0}\u{ff}".as_bytes();
        // Back to back in one buffer, as the requests gather them.
        let mut buf = Vec::new();
        for (full, prompt, usage) in records {
            let before = buf.len();
            pack(&mut buf, &facts(full), usage, prompt, response);
            assert_eq!(
                buf.len() - before,
                packed_len(&facts(full), prompt, response)
            );
        }
        let mut got = Vec::new();
        unpack(&buf, |o, usage, p, r| {
            got.push((
                encoded(&o).canonical(),
                usage,
                p.map(<[u8]>::to_vec),
                r.to_vec(),
            ));
        });
        assert_eq!(got.len(), records.len());
        for ((full, prompt, usage), (encoding, got_usage, got_prompt, got_response)) in
            records.into_iter().zip(got)
        {
            let expected = facts(full);
            let limits = expected.limit_pairs();
            let expected = encoded(&expected.outcome(&limits)).canonical();
            assert_eq!(
                String::from_utf8(encoding).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            assert_eq!(got_usage, usage);
            assert_eq!(got_prompt.as_deref(), prompt);
            assert_eq!(got_response, response);
        }
    }

    #[test]
    fn gathered_chunks_keep_records_in_order_and_are_reused() {
        let mut g = Gathered::default();
        let body = vec![b'b'; 300 << 10];
        let large = vec![b'l'; CHUNK + 1];
        let mut packed = Vec::new();
        // Enough records for several chunks, one of them larger than a chunk.
        for i in 0..40 {
            let response: &[u8] = if i == 7 { &large } else { &body[..i * 7_001] };
            let f = facts(i % 2 == 0);
            g.pack(packed_len(&f, None, response), &f, None, None, response);
            packed.push(response.len());
        }
        assert_eq!(g.records, 40);
        assert!(g.chunks.len() > 5);
        let (chunks, records) = g.take();
        assert_eq!((records, g.bytes, g.chunks.len()), (40, 0, 0));
        let mut got = Vec::new();
        for chunk in &chunks {
            assert!(chunk.len() <= chunk.capacity());
            unpack(chunk, |_, _, _, response| got.push(response.len()));
        }
        assert_eq!(got, packed);
        let own = chunks.iter().filter(|c| c.capacity() != CHUNK).count();
        assert_eq!(own, 1, "only the large record has a chunk of its own");
        g.recycle(chunks);
        assert!(!g.spare.is_empty() && g.spare.len() <= SPARE_CHUNKS);
        assert!(
            g.spare
                .iter()
                .all(|c| c.is_empty() && c.capacity() == CHUNK)
        );
        // The next record goes into a spare chunk.
        let spares = g.spare.len();
        let f = facts(true);
        g.pack(packed_len(&f, None, b"r"), &f, None, None, b"r");
        assert_eq!(g.spare.len(), spares - 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gathered_records_and_those_past_the_budget_all_reach_the_ledger() {
        let dir = std::env::temp_dir().join(format!("aigis-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = LedgerConfig {
            store: LedgerStore::File(dir.join("ledger")),
            signing_key: dir.join("ledger.key"),
            checkpoint_every: Duration::from_mins(1),
            commit_interval: Duration::from_millis(1),
            store_timeout: Duration::from_secs(10),
            on_store_error: LedgerOnError::FailClosed,
            client_ip: crate::config::ClientIp::Full,
            spool_max: 0,
            spool: dir.join("ledger.spool"),
            capture_default: false,
            capture: None,
        };
        let recorder = Recorder::open(&config).await.unwrap();
        // One response past the budget is completed on the request's thread; the others are
        // gathered, several to a writer job, one in a chunk of its own.
        let big = vec![b'x'; GATHER_BUDGET + 1];
        let large = vec![b'y'; CHUNK + 1];
        let usage = b"{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":9}}";
        let response = |i: usize| -> &[u8] {
            if i == 17 {
                &big
            } else if i == 41 {
                &large
            } else if i.is_multiple_of(50) {
                b""
            } else {
                usage
            }
        };
        let n = 300;
        for i in 0..n {
            let mut f = facts(i % 2 == 0);
            f.request_id = http::HeaderValue::from_str(&format!("req-{i}")).unwrap();
            recorder.defer(f, Some(b"prompt"), response(i), None).await;
        }
        recorder.close().await;

        let keys = LedgerKeys::load(&config.signing_key).unwrap();
        let url = aigis_ledger::store::StoreUrl::File(dir.join("ledger"));
        let mut store = aigis_ledger::store::open_reader(&url).unwrap();
        for i in 0..n {
            let id = format!("req-{i}");
            let rows = store.find_request(&id).unwrap();
            assert_eq!(rows.len(), 1, "{id}");
            let e = Event::from_canonical(&rows[0].event).unwrap();
            let digest = |d: &Option<String>| d.clone().unwrap();
            assert!(
                keys.content()
                    .matches("prompt", &id, b"prompt", &digest(&e.prompt_digest))
            );
            assert!(
                keys.content()
                    .matches("response", &id, response(i), &digest(&e.response_digest)),
                "{id}"
            );
            let tokens = e.tokens.map(|t| (t.prompt, t.completion));
            assert_eq!(tokens, (response(i) == usage).then_some((7, 9)), "{id}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
                client_ip: Some("192.0.2.0"),
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

    /// Work that never returns (a seal on a disk that stopped answering) gives an error after
    /// the limit, holds no more threads than the bound, and does not stop later work once it
    /// returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(
        clippy::await_holding_lock,
        reason = "the lock stands for the hung disk: blocking threads wait on it, not this task"
    )]
    async fn blocking_work_is_bounded_in_time_and_in_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let gate = Arc::new(Mutex::new(()));
        let started = Arc::new(AtomicUsize::new(0));
        let held = gate.lock().unwrap();
        let limit = Duration::from_millis(200);
        let hung = (0..3).map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            bounded_blocking(&slots, limit, move || {
                started.fetch_add(1, Ordering::SeqCst);
                drop(gate.lock());
                Ok(())
            })
        });
        for result in futures_util::future::join_all(hung).await {
            let e = result.unwrap_err();
            assert!(e.contains("did not finish within 0.2 s"), "{e}");
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            2,
            "the third never got a thread"
        );
        drop(held);
        let done = bounded_blocking(&slots, Duration::from_secs(10), || Ok(7)).await;
        assert_eq!(done, Ok(7));
    }
}
