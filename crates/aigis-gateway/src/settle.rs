//! The `settle` stage: reconcile a request's limit [`Ticket`] with what it actually used.
//!
//! A complete response is settled with its `usage`. A stream is metered as it flows
//! ([`Metered`]): completion text is counted event by event, the reservation grows as the
//! stream passes it, and when a hard limit would be crossed the stream ends with an error
//! event (and `[DONE]`) instead of the text that would cross it. The upstream's final usage,
//! when it sends one, settles the ticket exactly. A client that goes away drops the body and
//! with it the ticket, which settles with what was streamed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt as _;
use serde_json::Value;

use crate::admit::{Refusal, Ticket, Usage};
use crate::body::{self, Body};
use crate::error::{Family, GatewayError};
use crate::metrics::{LimitEvents, Metrics};

/// Longest incomplete server-sent event held while waiting for its end; a longer one stops
/// metering (the ticket then settles with the upstream's usage or its reservation).
const MAX_PENDING_EVENT: usize = 1 << 20;

/// The `settle` stage: adds the admission's `x-ratelimit-*` headers, then settles a complete
/// response now, or meters a stream until it ends. A request no limit applied to passes as is.
///
/// `slot`, when given, receives the usage the ticket settles with (for the audit record).
pub(crate) async fn settle(
    ticket: Ticket,
    mut response: Response<Body>,
    rate_headers: http::HeaderMap,
    family: Family,
    strip_usage: bool,
    metrics: &Metrics,
    slot: Option<UsageSlot>,
) -> Response<Body> {
    response.headers_mut().extend(rate_headers);
    if !ticket.is_metered() {
        return response;
    }
    if is_event_stream(&response) {
        let events = metrics.limits.clone();
        return response.map(|body| {
            let mut metered = Metered::new(body, ticket, family, strip_usage, events);
            metered.slot = slot;
            http_body_util::BodyExt::boxed(metered)
        });
    }
    settle_complete(ticket, response, slot).await
}

/// Where the `settle` stage leaves the token usage it settled with: the upstream's report, or
/// the stream meter's count (with the prompt as counted at admission).
pub(crate) type UsageSlot = std::sync::Arc<std::sync::OnceLock<Usage>>;

/// Follows a server-sent-event stream for the usage it reports (an unmetered stream whose
/// client asked for usage).
#[derive(Default)]
pub(crate) struct UsageScan {
    pending: BytesMut,
    usage: Usage,
    seen: bool,
    off: bool,
}

impl UsageScan {
    /// Reads the next piece of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.off {
            return;
        }
        self.pending.extend_from_slice(chunk);
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if !event.windows(7).any(|w| w == b"\"usage\"") {
                continue;
            }
            if let Some(json) = event_json(&event) {
                self.seen |= read_usage(&json, &mut self.usage).is_some();
            }
        }
        if self.pending.len() > MAX_PENDING_EVENT {
            self.off = true;
            self.pending = BytesMut::new();
        }
    }

    /// The usage reported so far.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.seen.then_some(self.usage)
    }
}

/// True for a server-sent-events response.
pub(crate) fn is_event_stream<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Settles `ticket` with the `usage` of a complete JSON response.
async fn settle_complete(
    ticket: Ticket,
    response: Response<Body>,
    slot: Option<UsageSlot>,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(never) => match never {},
    };
    let usage = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("usage").and_then(Usage::from_json));
    if let (Some(slot), Some(u)) = (slot, usage) {
        let _ = slot.set(u);
    }
    // Off the response path: the caller does not wait for the store's round trip. A request
    // admitted meanwhile sees the reservation (usually more than was used): conservative.
    tokio::spawn(ticket.settle(usage));
    Response::from_parts(parts, body::full(bytes))
}

/// Asks an OpenAI upstream to report usage at the end of a stream; returns whether the client
/// had not asked itself (then the usage-only event is not passed on).
pub(crate) fn request_stream_usage(parsed: &mut crate::parse::Parsed) -> bool {
    use crate::parse::Endpoint;
    if !matches!(
        parsed.endpoint,
        Endpoint::ChatCompletions | Endpoint::Completions
    ) {
        return false;
    }
    let asked = parsed
        .json
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    if asked {
        return false;
    }
    let Some(obj) = parsed.json.as_object_mut() else {
        return false;
    };
    let options = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let Some(options) = options.as_object_mut() else {
        return false;
    };
    options.insert("include_usage".into(), Value::Bool(true));
    parsed.raw = Bytes::from(parsed.json.to_string());
    true
}

type Extension = Pin<Box<dyn Future<Output = (Ticket, Result<(), Refusal>)> + Send>>;

enum State {
    /// Relaying; the ticket is here.
    Flowing(Ticket),
    /// Waiting for the reservation to grow before releasing `held`. (The mutex only makes the
    /// future `Sync`, as response bodies must be; it is reached through `get_mut`, never locked.)
    Extending(std::sync::Mutex<Extension>, Bytes),
    /// Ended (or cut off).
    Done,
}

/// A streamed response body metered against a limit ticket.
pub(crate) struct Metered {
    inner: Body,
    state: State,
    family: Family,
    pending: BytesMut,
    completion: u64,
    usage: Usage,
    reported: bool,
    strip_usage: bool,
    metering: bool,
    events: LimitEvents,
    slot: Option<UsageSlot>,
}

impl Metered {
    /// Wraps `inner`; `strip_usage` drops the usage-only event the gateway asked for.
    pub(crate) fn new(
        inner: Body,
        ticket: Ticket,
        family: Family,
        strip_usage: bool,
        events: LimitEvents,
    ) -> Self {
        Self {
            inner,
            state: State::Flowing(ticket),
            family,
            pending: BytesMut::new(),
            completion: 0,
            usage: Usage {
                prompt: 0,
                completion: 0,
            },
            reported: false,
            strip_usage,
            metering: true,
            events,
            slot: None,
        }
    }

    /// Splits complete events off `pending`, meters them, and returns the bytes to pass on.
    fn take_events(&mut self, ticket: &Ticket) -> Bytes {
        if !self.metering {
            return self.pending.split().freeze();
        }
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if self.meter(ticket, &event) {
                out.extend_from_slice(&event);
            }
        }
        if self.pending.len() > MAX_PENDING_EVENT {
            self.metering = false;
            out.extend_from_slice(&self.pending.split());
        }
        out.freeze()
    }

    /// Counts one event; returns whether it is passed on.
    fn meter(&mut self, ticket: &Ticket, event: &[u8]) -> bool {
        let Some(json) = event_json(event) else {
            return true;
        };
        let counter = ticket.counter();
        for text in delta_texts(&json) {
            self.completion += counter.count(text);
        }
        let usage_only = read_usage(&json, &mut self.usage);
        if usage_only.is_some() {
            self.reported = true;
        }
        !(self.strip_usage && usage_only == Some(true))
    }

    fn settle_in_background(&self, ticket: Ticket) {
        let usage = self.reported.then_some(self.usage);
        if let Some(slot) = &self.slot {
            let _ = slot.set(usage.unwrap_or(Usage {
                prompt: ticket.prompt_tokens(),
                completion: self.completion,
            }));
        }
        tokio::spawn(ticket.settle(usage));
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Extending(mut fut, held) => match fut
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_mut()
                    .poll(cx)
                {
                    Poll::Pending => {
                        this.state = State::Extending(fut, held);
                        return Poll::Pending;
                    }
                    Poll::Ready((ticket, Ok(()))) => {
                        this.state = State::Flowing(ticket);
                        if !held.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(held))));
                        }
                    }
                    Poll::Ready((ticket, Err(refusal))) => {
                        this.events.inc(&refusal.limit, "cut_off");
                        tracing::warn!(
                            target: "aigis::security",
                            event = "stream_cut_off",
                            limit = %refusal.limit,
                            "stream ended: a token limit or budget would be crossed"
                        );
                        this.settle_in_background(ticket);
                        let err = GatewayError::Limited(Box::new(refusal));
                        return Poll::Ready(Some(Ok(Frame::data(err.sse_event(this.family)))));
                    }
                },
                State::Flowing(mut ticket) => match Pin::new(&mut this.inner).poll_frame(cx) {
                    Poll::Pending => {
                        this.state = State::Flowing(ticket);
                        return Poll::Pending;
                    }
                    Poll::Ready(None | Some(Err(_))) => {
                        if !this.pending.is_empty() {
                            let rest = this.pending.split().freeze();
                            this.state = State::Flowing(ticket);
                            return Poll::Ready(Some(Ok(Frame::data(rest))));
                        }
                        this.settle_in_background(ticket);
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(data) = frame.into_data() else {
                            this.state = State::Flowing(ticket);
                            continue;
                        };
                        this.pending.extend_from_slice(&data);
                        let out = this.take_events(&ticket);
                        if ticket.meters_tokens() {
                            let completion = this.completion;
                            let fut = async move {
                                let result = ticket.extend(completion).await;
                                (ticket, result)
                            };
                            this.state =
                                State::Extending(std::sync::Mutex::new(Box::pin(fut)), out);
                            continue;
                        }
                        this.state = State::Flowing(ticket);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                },
            }
        }
    }
}

/// End (exclusive) of the first complete event in `buf`: after a blank line.
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The JSON of an event's `data:` lines, if it has any that parse.
fn event_json(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n");
    if data.is_empty() || data == "[DONE]" {
        return None;
    }
    serde_json::from_str(&data).ok()
}

/// Completion text in one streamed event, for every API family aigis relays.
fn delta_texts(json: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(choices) = json.get("choices").and_then(Value::as_array) {
        for c in choices {
            let delta = c.get("delta");
            let content = delta.and_then(|d| d.get("content")).and_then(Value::as_str);
            out.extend(content);
            out.extend(c.get("text").and_then(Value::as_str));
            let calls = delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                out.extend(call.pointer("/function/arguments").and_then(Value::as_str));
            }
        }
    }
    match json.get("type").and_then(Value::as_str) {
        Some("content_block_delta") => {
            let d = json.get("delta");
            out.extend(d.and_then(|d| d.get("text")).and_then(Value::as_str));
            out.extend(
                d.and_then(|d| d.get("partial_json"))
                    .and_then(Value::as_str),
            );
        }
        Some(t) if t.rsplit('.').next() == Some("delta") => {
            out.extend(json.get("delta").and_then(Value::as_str));
        }
        _ => {}
    }
    out
}

/// Folds the usage an event reports into `usage`. `Some(true)` when the event carries only
/// usage (OpenAI's final `choices: []` chunk), `Some(false)` when it carries usage among
/// other things, `None` when it has none.
fn read_usage(json: &Value, usage: &mut Usage) -> Option<bool> {
    match json.get("type").and_then(Value::as_str) {
        Some("message_start") => {
            let u = json.pointer("/message/usage").and_then(Usage::from_json)?;
            usage.prompt = u.prompt;
            return Some(false);
        }
        Some("message_delta") => {
            let u = json.get("usage").and_then(Usage::from_json)?;
            usage.completion = u.completion;
            return Some(false);
        }
        _ => {}
    }
    let u = json
        .get("usage")
        .or_else(|| json.pointer("/response/usage"))
        .filter(|u| !u.is_null())
        .and_then(Usage::from_json)?;
    *usage = u;
    let only = json
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    Some(only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\n"), Some(11));
        assert_eq!(event_end(b"data: a\n"), None);
    }

    #[test]
    fn texts_and_usage_of_each_family() {
        let chat = event_json(br#"data: {"choices":[{"delta":{"content":"hi"}}]}"#).unwrap();
        assert_eq!(delta_texts(&chat), ["hi"]);
        let anthropic =
            event_json(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"yo\"}}").unwrap();
        assert_eq!(delta_texts(&anthropic), ["yo"]);
        let responses =
            event_json(br#"data: {"type":"response.output_text.delta","delta":"x"}"#).unwrap();
        assert_eq!(delta_texts(&responses), ["x"]);
        let mut usage = Usage {
            prompt: 0,
            completion: 0,
        };
        let last = event_json(
            br#"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(read_usage(&last, &mut usage), Some(true));
        assert_eq!(
            usage,
            Usage {
                prompt: 7,
                completion: 3
            }
        );
        assert!(event_json(b"data: [DONE]").is_none());
    }
}
