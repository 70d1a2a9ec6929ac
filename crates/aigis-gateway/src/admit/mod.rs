//! The `admit` stage: rate limits, token quotas, concurrency caps and budgets, checked after
//! authorization and before the request is inspected or forwarded.
//!
//! Every `[[limits]]` entry that applies to a request becomes one or more counters ("cells",
//! one per combination of its scope values: principal, each team, model, route, IP). The
//! request is charged against all of them in one atomic batch: requests count 1, token limits
//! and budgets are charged a **reservation** (prompt tokens counted now plus the completion
//! tokens the request may produce), concurrency caps hold a slot. Either every cell admits
//! and all are charged, or the request gets a 429 naming the limit it hit and none is charged.
//!
//! The resulting [`Ticket`] is settled when the response ends: with the upstream's reported
//! `usage` when there is one, otherwise with what was counted. Streams are metered as they
//! flow ([`Ticket::extend`]); a stream that would cross a hard limit is ended with an error
//! event. Dropping an unsettled ticket (a client that went away) releases its slots and keeps
//! what was charged.

pub mod cell;
mod fleet;
mod keys;
mod refusal;
pub mod store;
pub mod tokens;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use serde::Deserialize as _;

use crate::config::{
    BudgetUnit, Limit, LimitsConfig, OnStoreError, Price, Quantity, Route, TokenKind,
};
use crate::error::GatewayError;
use crate::identify::Principal;
use crate::metrics::Metrics;
use crate::parse::Parsed;
use cell::{Kind, Reading};
use fleet::Fleet;
use store::{Charge, Local, Op, StoreError, Verdict, now_us};
use tokens::Counter;

pub(crate) use keys::Values as ScopeValues;
pub(crate) use refusal::fmt_duration;
use refusal::{rate_headers, refusal, store_failed};

/// Completion tokens reserved for a request that sets no `max_tokens` on a route without a
/// `max_tokens` cap. Settlement charges what was actually produced.
pub const DEFAULT_COMPLETION_RESERVE: u64 = 1024;
/// A stream's reservation grows in steps of this many tokens as it runs past it.
const EXTEND_STEP: u64 = 32;

/// Proof that the `admit` stage let the request through; only this module can make one.
#[derive(Debug)]
pub struct Admitted(());

/// A 429: which limit, what the caller may do, and the `x-ratelimit-*` headers.
#[derive(Debug)]
pub struct Refusal {
    /// What the caller reads (its own limit only; never other tenants' data).
    pub message: String,
    /// Seconds until a retry can succeed (`Retry-After`).
    pub retry_after_secs: u64,
    /// `x-ratelimit-*` headers.
    pub headers: HeaderMap,
    /// A spending budget (`insufficient_quota`) rather than a rate.
    pub quota: bool,
    /// The limit's name.
    pub limit: String,
}

/// Where counters live: this process, and the fleet store when `[cluster] redis` is set.
/// Lives as long as the gateway (counters survive config reloads).
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    local: Arc<Local>,
    fleet: Mutex<Option<Arc<Fleet>>>,
}

#[derive(Debug, Clone)]
enum Store {
    Local(Arc<Local>),
    Fleet(Arc<Fleet>),
}

impl Store {
    async fn apply(&self, op: Op, ticket: &str, charges: &[Charge]) -> Result<Verdict, StoreError> {
        match self {
            Self::Local(l) => l.apply(op, charges, now_us()),
            Self::Fleet(f) => f.apply(op, ticket, charges).await,
        }
    }

    /// Applies a settlement batch (in Redis, grouped with other tickets' settlements).
    async fn settle(&self, op: Op, ticket: &str, charges: Vec<Charge>) -> Result<(), StoreError> {
        match self {
            Self::Local(l) => l.apply(op, &charges, now_us()).map(|_| ()),
            Self::Fleet(f) => settle_fleet(f, op, ticket, charges).await,
        }
    }
}

/// Longest wait between two tries of a failed release.
const RELEASE_RETRY_MAX: std::time::Duration = std::time::Duration::from_mins(1);

/// Settles a batch on the fleet store. A release that fails is tried again in the background,
/// with back-off, until it succeeds or the slot's lease would have ended anyway: lost to one
/// Redis hiccup, it kept the caller's slot taken for the whole lease (30 minutes). A release
/// names its ticket, so a repeat is harmless; refunds and extra charges are not tried again,
/// since one that went unanswered may have been applied.
async fn settle_fleet(
    fleet: &Arc<Fleet>,
    op: Op,
    ticket: &str,
    charges: Vec<Charge>,
) -> Result<(), StoreError> {
    let again = (op == Op::Release).then(|| charges.clone());
    let settled = fleet.settle(op, ticket, charges).await;
    if let (Err(_), Some(charges)) = (&settled, again) {
        let (fleet, ticket) = (fleet.clone(), ticket.to_owned());
        tokio::spawn(async move {
            let until = std::time::Instant::now() + fleet::CONCURRENCY_LEASE;
            let mut wait = std::time::Duration::from_secs(1);
            while std::time::Instant::now() + wait < until {
                tokio::time::sleep(wait).await;
                if fleet
                    .settle(Op::Release, &ticket, charges.clone())
                    .await
                    .is_ok()
                {
                    tracing::info!(
                        "released the concurrency slots of a ticket after a store error"
                    );
                    return;
                }
                wait = (wait * 2).min(RELEASE_RETRY_MAX);
            }
        });
    }
    settled
}

impl Limiter {
    /// The store `config` asks for (the fleet store is built once per Redis URL and prefix).
    fn store(&self, config: &LimitsConfig) -> Result<Store, StoreError> {
        let Some(redis) = &config.redis else {
            return Ok(Store::Local(self.local.clone()));
        };
        let mut fleet = self
            .fleet
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        match fleet.as_ref() {
            Some(f) if f.config().url == redis.url && f.config().key_prefix == redis.key_prefix => {
                Ok(Store::Fleet(f.clone()))
            }
            _ => {
                let f = Arc::new(Fleet::new(redis.clone())?);
                *fleet = Some(f.clone());
                Ok(Store::Fleet(f))
            }
        }
    }
}

/// Everything `admit` looks at.
pub(crate) struct Request<'a> {
    pub principal: &'a Principal,
    pub route: &'a Route,
    pub ip: IpAddr,
    pub parsed: &'a Parsed,
}

/// How one cell's charge follows from a request's token counts.
#[derive(Debug, Clone)]
enum Measure {
    Request,
    Tokens(TokenKind),
    Cost(Price),
    Held,
}

impl Measure {
    fn amount(&self, prompt: u64, completion: u64) -> u64 {
        match self {
            Self::Request | Self::Held => 1,
            Self::Tokens(TokenKind::Prompt) => prompt,
            Self::Tokens(TokenKind::Completion) => completion,
            Self::Tokens(TokenKind::Total) => prompt.saturating_add(completion),
            Self::Cost(price) => price.micro_usd(prompt, completion),
        }
    }

    /// Whether the charge changes with the completion (settled and metered).
    fn follows_completion(&self) -> bool {
        matches!(
            self,
            Self::Tokens(TokenKind::Completion | TokenKind::Total) | Self::Cost(_)
        )
    }
}

/// One charged cell of a ticket.
#[derive(Debug, Clone)]
struct Item {
    limit: Arc<Limit>,
    charge: Charge,
    measure: Measure,
}

/// The admission a request holds until its response ends; settle it with the actual usage.
#[must_use = "a ticket must be settled (or dropped, which keeps the reservation)"]
pub struct Ticket {
    store: Option<Store>,
    id: String,
    items: Vec<Item>,
    counter: Counter,
    prompt: u64,
    reserved_completion: u64,
    /// Completion tokens seen so far on a metered stream.
    streamed: Option<u64>,
    settled: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("cells", &self.items.len())
            .field("prompt", &self.prompt)
            .field("reserved_completion", &self.reserved_completion)
            .finish_non_exhaustive()
    }
}

/// Token usage an upstream reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt: u64,
    /// Completion (output) tokens.
    pub completion: u64,
}

impl Usage {
    /// Reads OpenAI (`prompt_tokens`/`completion_tokens`), Responses and Anthropic
    /// (`input_tokens`/`output_tokens`) usage objects.
    pub fn from_json(usage: &serde_json::Value) -> Option<Self> {
        Counts::deserialize(usage).ok()?.usage()
    }

    /// [`Usage::from_json`] on the JSON text that starts `text` (what follows it is not
    /// read); the object's other members are skipped, not built.
    pub fn from_json_prefix(text: &[u8]) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(text);
        Counts::deserialize(&mut de).ok()?.usage()
    }
}

/// The counts of a usage object, under either naming.
#[derive(serde::Deserialize)]
#[expect(clippy::struct_field_names, reason = "the providers' member names")]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl Counts {
    fn usage(self) -> Option<Usage> {
        let prompt = self.prompt_tokens.or(self.input_tokens);
        let completion = self.completion_tokens.or(self.output_tokens);
        (prompt.is_some() || completion.is_some()).then(|| Usage {
            prompt: prompt.unwrap_or(0),
            completion: completion.unwrap_or(0),
        })
    }
}

/// The `admit` stage: charges every applicable limit or refuses with the one that was hit.
/// `outcomes` receives each applicable limit's name and outcome (`admitted`, `refused`,
/// `not_charged` when another limit refused, `store_error_open` / `store_error_closed`).
pub(crate) async fn admit(
    limiter: &Limiter,
    config: &LimitsConfig,
    req: &Request<'_>,
    metrics: &Metrics,
    outcomes: &mut Vec<(String, &'static str)>,
) -> Result<(Admitted, Ticket, HeaderMap), GatewayError> {
    let model = req.parsed.model.as_str();
    let applicable: Vec<&Limit> = config
        .limits
        .iter()
        .filter(|l| {
            l.models.is_empty() || l.models.iter().any(|m| crate::config::glob_match(m, model))
        })
        .filter(|l| l.routes.is_empty() || l.routes.contains(&req.route.name))
        .collect();
    if applicable.is_empty() {
        // Nothing to count or charge: no tokenizer lookup, key values or ticket id.
        return Ok((Admitted(()), Ticket::empty(), HeaderMap::new()));
    }
    let counter = Counter::for_model(req.route.tokenizer, model);
    let counts_tokens = applicable
        .iter()
        .any(|l| matches!(l.quantity, Quantity::Tokens(..) | Quantity::Budget(_)));
    let prompt = if counts_tokens {
        counter.prompt(req.parsed)
    } else {
        0
    };
    let reserved_completion = reserve(req);
    let now = now_us();
    let values = keys::Values::of(req);
    let mut items = Vec::new();
    for limit in applicable {
        let limit = Arc::new(limit.clone());
        for key in keys::cell_keys(&limit, &values, now) {
            // A team listed twice (by an API key, or a token's groups) is one cell, charged once.
            if items.iter().any(|i: &Item| i.charge.key == key.key) {
                continue;
            }
            let (kind, measure) = cell_for(&limit, config, model, key.window_end_us)?;
            let amount = measure.amount(prompt, reserved_completion);
            items.push(Item {
                limit: limit.clone(),
                charge: Charge {
                    key: key.key,
                    kind,
                    amount,
                    monotone: matches!(measure, Measure::Request),
                },
                measure,
            });
        }
    }
    let mut ticket = Ticket {
        store: None,
        id: uuid::Uuid::new_v4().simple().to_string(),
        items,
        counter,
        prompt,
        reserved_completion,
        streamed: None,
        settled: false,
    };
    if ticket.items.is_empty() {
        return Ok((Admitted(()), ticket, HeaderMap::new()));
    }
    let charges: Vec<Charge> = ticket.items.iter().map(|i| i.charge.clone()).collect();
    let outcome = match limiter.store(config) {
        Ok(store) => {
            let verdict = store.apply(Op::Check, &ticket.id, &charges).await;
            ticket.store = Some(store);
            verdict
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Verdict::Applied(readings)) => {
            report(&ticket.items, None, "admitted", outcomes);
            let headers = rate_headers(&ticket.items, &readings);
            Ok((Admitted(()), ticket, headers))
        }
        Ok(Verdict::Refused { index, refused }) => {
            let items = std::mem::take(&mut ticket.items);
            let item = items.get(index).ok_or(GatewayError::LimitsUnavailable)?;
            report(&items, Some(item.limit.name.as_str()), "", outcomes);
            metrics.limit_event(&item.limit.name, "refused");
            Err(GatewayError::Limited(Box::new(refusal(item, refused))))
        }
        Err(e) => {
            let closed = ticket
                .items
                .iter()
                .any(|i| i.limit.on_store_error == OnStoreError::FailClosed);
            let all = if closed {
                "store_error_closed"
            } else {
                "store_error_open"
            };
            report(&ticket.items, None, all, outcomes);
            let items = std::mem::take(&mut ticket.items);
            release_held(ticket.store.clone(), &ticket.id, &items);
            store_failed(&items, &e, metrics)?;
            Ok((Admitted(()), ticket, HeaderMap::new()))
        }
    }
}

/// After a store error the charges may have been applied anyway (Redis timed out after the
/// script ran): the ticket's concurrency slots are released in the background, so they do
/// not stay taken until their lease ends.
fn release_held(store: Option<Store>, ticket: &str, items: &[Item]) {
    let held: Vec<Charge> = items
        .iter()
        .filter(|i| matches!(i.measure, Measure::Held))
        .map(|i| i.charge.clone())
        .collect();
    if let (Some(store), false) = (store, held.is_empty()) {
        let ticket = ticket.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.settle(Op::Release, &ticket, held).await {
                tracing::warn!(error = %e, "could not release the concurrency slots of a failed admission");
            }
        });
    }
}

/// Adds each limit of `items` once, with its outcome: `refused` for the one that refused,
/// `not_charged` for the others then, else `all`.
fn report(
    items: &[Item],
    refused: Option<&str>,
    all: &'static str,
    outcomes: &mut Vec<(String, &'static str)>,
) {
    for item in items {
        let name = &item.limit.name;
        if outcomes.iter().any(|(n, _)| n == name) {
            continue;
        }
        let outcome = match refused {
            Some(r) if r == name => "refused",
            Some(_) => "not_charged",
            None => all,
        };
        outcomes.push((name.clone(), outcome));
    }
}

/// Completion tokens to reserve: what the request asks for, else the route's cap, else the
/// default, for each completion it asks for (`n`, `best_of`); embeddings produce none.
fn reserve(req: &Request<'_>) -> u64 {
    if req.parsed.endpoint == crate::parse::Endpoint::Embeddings {
        return 0;
    }
    req.parsed
        .requested_tokens()
        .map(|(_, n)| n)
        .or(req.route.max_tokens)
        .unwrap_or(DEFAULT_COMPLETION_RESERVE)
        .saturating_mul(req.parsed.choices())
}

/// The cell kind and measure of `limit` for a request for `model`.
fn cell_for(
    limit: &Limit,
    config: &LimitsConfig,
    model: &str,
    window_end_us: u64,
) -> Result<(Kind, Measure), GatewayError> {
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    Ok(match limit.quantity {
        Quantity::Requests(r) => (
            Kind::Rate {
                limit: r.amount,
                period_us: micros(r.period),
            },
            Measure::Request,
        ),
        Quantity::Tokens(kind, r) => (
            Kind::Rate {
                limit: r.amount,
                period_us: micros(r.period),
            },
            Measure::Tokens(kind),
        ),
        Quantity::Concurrent(n) => (
            Kind::Concurrency {
                limit: u64::from(n),
            },
            Measure::Held,
        ),
        Quantity::Budget(b) => {
            let measure = match b.unit {
                BudgetUnit::Tokens => Measure::Tokens(TokenKind::Total),
                BudgetUnit::MicroUsd => match config.price(model) {
                    Some(p) => Measure::Cost(p.clone()),
                    None => {
                        tracing::error!(
                            limit = %limit.name,
                            model,
                            "a USD budget applies but no [[prices]] entry matches the model; refusing (fail closed)"
                        );
                        return Err(GatewayError::LimitsUnavailable);
                    }
                },
            };
            (
                Kind::Window {
                    limit: b.amount,
                    ends_us: window_end_us,
                },
                measure,
            )
        }
    })
}

impl Ticket {
    /// Whether the ticket holds anything to settle (no limit applied: nothing to meter).
    pub fn is_metered(&self) -> bool {
        !self.items.is_empty()
    }

    /// Whether any limit follows this request's token usage (so its stream must be metered).
    pub fn meters_tokens(&self) -> bool {
        self.items.iter().any(|i| i.measure.follows_completion())
    }

    /// The counter streamed text is measured with.
    pub fn counter(&self) -> Counter {
        self.counter
    }

    /// Grows the reservation as a stream passes it; `Err` means a hard limit would be
    /// crossed and the stream must end. `completion` is the tokens streamed so far.
    pub async fn extend(&mut self, completion: u64) -> Result<(), Refusal> {
        self.streamed = Some(completion);
        if completion <= self.reserved_completion {
            return Ok(());
        }
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        // Grow by a step (fewer store round trips); near the limit, by exactly what is needed.
        let step = completion.max(self.reserved_completion.saturating_add(EXTEND_STEP));
        let mut last = None;
        for target in [step, completion] {
            let (indices, charges) = self.deltas(self.prompt, target);
            if charges.is_empty() {
                self.reserved_completion = target;
                return Ok(());
            }
            match store.apply(Op::Check, &self.id, &charges).await {
                Ok(Verdict::Applied(_)) => {
                    for (i, c) in indices.iter().zip(&charges) {
                        if let Some(item) = self.items.get_mut(*i) {
                            item.charge.amount += c.amount;
                        }
                    }
                    self.reserved_completion = target;
                    return Ok(());
                }
                Ok(Verdict::Refused { index, refused }) => {
                    last = indices
                        .get(index)
                        .and_then(|i| self.items.get(*i))
                        .map(|item| refusal(item, refused));
                }
                // The store is unreachable mid-stream: nothing meters the stream any more. A
                // fail-closed limit stops it; fail-open ones let it run unmetered.
                Err(e) => return self.store_lost(&e).map_or(Ok(()), Err),
            }
        }
        last.map_or(Ok(()), Err)
    }

    /// A stream's answer to losing the store: the refusal that stops it when a limit that
    /// follows its tokens is fail-closed.
    fn store_lost(&self, e: &StoreError) -> Option<Refusal> {
        let Some(item) = self.items.iter().find(|i| {
            i.measure.follows_completion() && i.limit.on_store_error == OnStoreError::FailClosed
        }) else {
            tracing::warn!(target: "aigis::security", event = "limit_store_error", error = %e, "limit store unreachable mid-stream; the stream goes on unmetered (on_store_error = fail-open)");
            return None;
        };
        tracing::error!(target: "aigis::security", event = "limit_store_error", error = %e, limit = %item.limit.name, "limit store unreachable mid-stream; stopping the stream (on_store_error = fail-closed)");
        Some(Refusal {
            message: format!(
                "The stream was stopped: the store of limit `{}` became unreachable and the \
                 limit fails closed. Retry shortly.",
                item.limit.name
            ),
            retry_after_secs: 1,
            headers: HeaderMap::new(),
            quota: false,
            limit: item.limit.name.clone(),
        })
    }

    /// Per completion-following item, the charge that brings it to (`prompt`, `completion`)
    /// — only the ones that grow.
    fn deltas(&self, prompt: u64, completion: u64) -> (Vec<usize>, Vec<Charge>) {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.measure.follows_completion())
            .filter_map(|(n, i)| {
                let target = i.measure.amount(prompt, completion);
                (target > i.charge.amount).then(|| {
                    (
                        n,
                        Charge {
                            amount: target - i.charge.amount,
                            ..i.charge.clone()
                        },
                    )
                })
            })
            .unzip()
    }

    /// Settles a request that never reached a model (refused by a later stage, or no upstream
    /// took it): it used no tokens. Returns `err` for the caller to pass on.
    pub async fn cancel<E>(&mut self, err: E) -> E {
        let ticket = std::mem::replace(self, Self::empty());
        ticket.settle(Some(Usage::default())).await;
        err
    }

    /// Settles a request an upstream may have run but whose answer never came (timed out,
    /// cut off, too large): charged as reserved, since the model may have used it all.
    /// Returns `err` for the caller to pass on.
    pub async fn abandon<E>(&mut self, err: E) -> E {
        let ticket = std::mem::replace(self, Self::empty());
        ticket.settle(None).await;
        err
    }

    /// A ticket that holds nothing.
    fn empty() -> Self {
        Self {
            store: None,
            id: String::new(),
            items: Vec::new(),
            counter: Counter::Estimate,
            prompt: 0,
            reserved_completion: 0,
            streamed: None,
            settled: true,
        }
    }

    /// Prompt tokens as counted at admission.
    pub fn prompt_tokens(&self) -> u64 {
        self.prompt
    }

    /// Settles the ticket with the upstream's usage (or, without one, the prompt estimate
    /// and the completion tokens counted on the stream, else the reservation).
    pub async fn settle(mut self, usage: Option<Usage>) {
        self.settled = true;
        let Some(store) = self.store.take() else {
            return;
        };
        for (op, charges) in self.settlement(usage) {
            if let Err(e) = store.settle(op, &self.id, charges).await {
                tracing::warn!(error = %e, "could not settle a limit ticket");
            }
        }
    }

    /// The batches that settle this ticket: releases, refunds and extra charges.
    fn settlement(&self, usage: Option<Usage>) -> Vec<(Op, Vec<Charge>)> {
        let (prompt, completion) = match usage {
            Some(u) => (u.prompt, u.completion),
            None => (
                self.prompt,
                self.streamed.unwrap_or(self.reserved_completion),
            ),
        };
        let (mut release, mut refund, mut force) = (Vec::new(), Vec::new(), Vec::new());
        for item in &self.items {
            let c = &item.charge;
            if matches!(item.measure, Measure::Held) {
                release.push(c.clone());
                continue;
            }
            let target = item.measure.amount(prompt, completion);
            match target.cmp(&c.amount) {
                std::cmp::Ordering::Less => refund.push(Charge {
                    amount: c.amount - target,
                    ..c.clone()
                }),
                std::cmp::Ordering::Greater => force.push(Charge {
                    amount: target - c.amount,
                    ..c.clone()
                }),
                std::cmp::Ordering::Equal => {}
            }
        }
        [
            (Op::Release, release),
            (Op::Refund, refund),
            (Op::Force, force),
        ]
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .collect()
    }
}

impl Drop for Ticket {
    /// A ticket dropped unsettled (the client went away): release its slots and settle a
    /// metered stream with what it streamed; a non-streamed reservation stays charged.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Some(store) = self.store.take() else {
            return;
        };
        let batches = self.settlement(None);
        let id = std::mem::take(&mut self.id);
        match store {
            Store::Local(local) => {
                for (op, charges) in batches {
                    let _ = local.apply(op, &charges, now_us());
                }
            }
            Store::Fleet(fleet) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        for (op, charges) in batches {
                            let _ = settle_fleet(&fleet, op, &id, charges).await;
                        }
                    });
                }
            }
        }
    }
}

/// Current usage of every limit for the given scope values (`aigis limits status`): one entry
/// per counter, or a note naming the values a limit needs that were not given.
pub(crate) async fn status(
    limiter: &Limiter,
    config: &LimitsConfig,
    values: &ScopeValues,
) -> Result<serde_json::Value, StoreError> {
    let store = limiter.store(config)?;
    let now = now_us();
    let mut out = Vec::new();
    for limit in &config.limits {
        let cells = keys::cell_keys(limit, values, now);
        if cells.is_empty() {
            let scope: Vec<&str> = limit.scope.iter().map(|s| s.as_str()).collect();
            out.push(serde_json::json!({
                "limit": limit.name, "scope": scope,
                "note": "no counter for the values given (pass the scope's values, e.g. --team)",
            }));
            continue;
        }
        for cell in cells {
            let model = values.model.as_deref().unwrap_or("");
            let Ok((kind, _)) = cell_for(limit, config, model, cell.window_end_us) else {
                continue;
            };
            let charge = Charge {
                key: cell.key.clone(),
                kind,
                amount: 0,
                monotone: false,
            };
            let reading = match store.apply(Op::Peek, "status", &[charge]).await? {
                Verdict::Applied(r) => r.first().copied().unwrap_or_default(),
                Verdict::Refused { .. } => Reading::default(),
            };
            let max = match kind {
                Kind::Rate { limit, .. }
                | Kind::Window { limit, .. }
                | Kind::Concurrency { limit } => limit,
            };
            out.push(serde_json::json!({
                "limit": limit.name,
                "counter": cell.key,
                "unit": limit.quantity.unit(),
                "max": max,
                "used": max.saturating_sub(reading.remaining),
                "remaining": reading.remaining,
                "resets_in": fmt_duration(std::time::Duration::from_micros(reading.reset_us)),
            }));
        }
    }
    Ok(serde_json::json!({
        "store": if config.redis.is_some() { "redis" } else { "local" },
        "limits": out,
    }))
}

#[cfg(test)]
mod tests;
