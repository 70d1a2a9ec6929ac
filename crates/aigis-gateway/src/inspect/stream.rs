//! The `inspect` stage on streamed responses: server-sent events are read incrementally,
//! each text channel (a choice, a content block, an output part) goes through the guard's
//! [`TextStream`] with its bounded hold-back, and tool-call events are held until the call
//! is complete and checked.
//!
//! A `block` ends the stream with an error event the SDKs raise (OpenAI's followed by
//! `[DONE]`), never a silent truncation. Malformed upstream SSE (invalid UTF-8, an oversized
//! or unterminated event, data that is not JSON) ends it the same way with an upstream error.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use aigis_guard::output::TextStream;
use bytes::Bytes;
use http_body::Frame;
use serde_json::{Value, json};

use super::response::Inspection;
use super::sse::{self, Event};
use crate::body::Body;
use crate::error::{Family, GatewayError};
use crate::parse::Endpoint;

/// A text channel: (choice or output index, content index).
type Key = (u64, u64);

/// The content index of a chat choice's refusal channel.
const REFUSAL: u64 = u64::MAX;

/// What a text channel carries, when it is not an answer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// A refusal (`delta.refusal`, `response.refusal.delta`).
    Refusal,
    /// A Responses API reasoning summary.
    Summary,
    /// An Anthropic thinking block: signed by the provider, so never changed (see
    /// [`Inspection::note_unchangeable`]).
    Thinking,
}

/// The Responses API's streamed texts: the delta and done events, what the channel carries,
/// the field that indexes it within its output item, and the done event's text field.
const RESPONSE_TEXTS: [(&str, &str, Option<Channel>, &str, &str); 3] = [
    (
        "response.output_text.delta",
        "response.output_text.done",
        None,
        "content_index",
        "text",
    ),
    (
        "response.refusal.delta",
        "response.refusal.done",
        Some(Channel::Refusal),
        "content_index",
        "refusal",
    ),
    (
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        Some(Channel::Summary),
        "summary_index",
        "text",
    ),
];

/// A tool call being assembled from deltas.
#[derive(Default)]
struct Call {
    name: String,
    arguments: String,
}

/// The inspection state of one streamed response.
pub(crate) struct Processor {
    insp: Inspection,
    texts: BTreeMap<Key, TextStream>,
    /// Channels that are not an answer's text.
    kinds: BTreeMap<Key, Channel>,
    /// Released text per channel, for events that repeat the whole text (Responses API).
    released: BTreeMap<Key, String>,
    /// Upstream text per channel, when the output must be JSON.
    full: BTreeMap<Key, String>,
    calls: BTreeMap<Key, Call>,
    /// Events held until their tool calls are checked.
    held: Vec<Bytes>,
    /// The last chat chunk, as the template for an event the gateway adds.
    template: Option<Value>,
    ended: bool,
    /// An upstream error event was passed on; its `[DONE]` follows it.
    errored: bool,
    /// The upstream's stream broke or was malformed: the response is partial.
    partial: bool,
}

impl Processor {
    pub(crate) fn new(insp: Inspection) -> Self {
        Self {
            insp,
            texts: BTreeMap::new(),
            kinds: BTreeMap::new(),
            released: BTreeMap::new(),
            full: BTreeMap::new(),
            calls: BTreeMap::new(),
            held: Vec::new(),
            template: None,
            ended: false,
            errored: false,
            partial: false,
        }
    }

    fn family(&self) -> Family {
        self.insp.endpoint.family()
    }

    /// Handles one upstream event; returns what to send the client.
    pub(crate) fn event(&mut self, ev: Event) -> Vec<Bytes> {
        if self.ended {
            if self.errored && ev.data == "[DONE]" {
                self.errored = false;
                return vec![ev.raw];
            }
            return Vec::new();
        }
        if ev.data.is_empty() {
            return vec![ev.raw];
        }
        if ev.data == "[DONE]" {
            let mut out = self.flush_all();
            if !self.ended {
                out.push(ev.raw);
            }
            return out;
        }
        let Ok(json) = serde_json::from_str::<Value>(&ev.data) else {
            return self.fail("an event's data is not JSON");
        };
        if json.get("error").is_some() || json.get("type").and_then(Value::as_str) == Some("error")
        {
            // An upstream (or settle) error event: pass it on and stop.
            let mut out = self.flush_all();
            out.push(ev.raw);
            self.ended = true;
            self.errored = true;
            self.partial = true;
            return out;
        }
        let result = match self.insp.endpoint {
            Endpoint::Messages => self.anthropic(ev.name.as_deref(), json),
            Endpoint::Responses => self.responses(ev.name.as_deref(), json),
            _ => self.chat(json),
        };
        match result {
            Ok(out) => out,
            Err(e) => self.block(&e),
        }
    }

    /// The upstream ended (cleanly or not).
    pub(crate) fn end(&mut self, error: Option<&sse::SseError>) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        if let Some(e) = error {
            return self.fail(&e.to_string());
        }
        let out = self.flush_all();
        self.ended = true;
        out
    }

    /// Ends the stream with an upstream error event.
    fn fail(&mut self, detail: &str) -> Vec<Bytes> {
        tracing::warn!(target: "aigis::security", event = "malformed_upstream_stream", detail, "upstream stream is malformed; ended with an error event");
        self.insp.findings.push(super::GuardFinding {
            kind: "stream:malformed".into(),
            action: Some("block".into()),
            span: None,
            score_milli: None,
        });
        let err = GatewayError::Upstream {
            upstream: "upstream".into(),
            detail: format!("malformed stream: {detail}"),
        };
        self.block(&err)
    }

    fn block(&mut self, e: &GatewayError) -> Vec<Bytes> {
        self.ended = true;
        self.held.clear();
        vec![e.sse_event(self.family())]
    }

    /// Pushes text into a channel; returns the releasable (restored) text.
    fn push(&mut self, key: Key, text: &str) -> Result<String, GatewayError> {
        if self.insp.json.is_some() && !self.kinds.contains_key(&key) {
            self.full.entry(key).or_default().push_str(text);
        }
        let scope = self.insp.scope();
        let step = self.texts.entry(key).or_default().push(&scope, text);
        self.settle_step(key, step)
    }

    /// Ends a channel; returns its remaining text.
    fn finish(&mut self, key: Key) -> Result<String, GatewayError> {
        let Some(mut stream) = self.texts.remove(&key) else {
            return Ok(String::new());
        };
        let step = stream.finish(&self.insp.scope());
        let text = self.settle_step(key, step)?;
        if let Some(full) = self.full.remove(&key)
            && let Some(e) = self.insp.json_output(&full)
        {
            return Err(e);
        }
        Ok(text)
    }

    fn settle_step(
        &mut self,
        key: Key,
        step: aigis_guard::output::Step,
    ) -> Result<String, GatewayError> {
        let thinking = self.kinds.get(&key) == Some(&Channel::Thinking);
        let blocked = if thinking {
            self.insp.note_unchangeable(&step.findings)
        } else {
            self.insp.note(&step.findings)
        };
        if let Some(e) = blocked {
            return Err(e);
        }
        let text = if thinking {
            step.text
        } else {
            self.insp.restore(step.text)
        };
        if self.insp.endpoint == Endpoint::Responses {
            self.released.entry(key).or_default().push_str(&text);
        }
        Ok(text)
    }

    /// Checks the complete tool calls of `choice`.
    fn check_calls(&mut self, choice: Option<u64>) -> Result<(), GatewayError> {
        let keys: Vec<Key> = self
            .calls
            .keys()
            .filter(|k| choice.is_none_or(|c| k.0 == c))
            .copied()
            .collect();
        for key in keys {
            if let Some(call) = self.calls.remove(&key)
                && let Some(e) = self.insp.tool_call(&call.name, &call.arguments)
            {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Releases everything still held (end of stream or `[DONE]`).
    fn flush_all(&mut self) -> Vec<Bytes> {
        let keys: Vec<Key> = self.texts.keys().copied().collect();
        let mut out = Vec::new();
        for key in keys {
            match self.finish(key) {
                Ok(text) if !text.is_empty() => out.push(self.text_event(key, &text)),
                Ok(_) => {}
                Err(e) => return self.block(&e),
            }
        }
        if let Err(e) = self.check_calls(None) {
            return self.block(&e);
        }
        out.append(&mut self.held);
        out
    }

    /// An event the gateway adds to carry released text.
    fn text_event(&self, key: Key, text: &str) -> Bytes {
        let kind = self.kinds.get(&key).copied();
        match self.insp.endpoint {
            Endpoint::Messages => {
                let delta = if kind == Some(Channel::Thinking) {
                    json!({"type": "thinking_delta", "thinking": text})
                } else {
                    json!({"type": "text_delta", "text": text})
                };
                sse_bytes(
                    Some("content_block_delta"),
                    &json!({"type": "content_block_delta", "index": key.0, "delta": delta}),
                )
            }
            Endpoint::Responses => {
                let &(name, _, _, index, _) = RESPONSE_TEXTS
                    .iter()
                    .find(|t| t.2 == kind)
                    .unwrap_or(&RESPONSE_TEXTS[0]);
                sse_bytes(
                    Some(name),
                    &json!({"type": name, "output_index": key.0, index: key.1, "delta": text}),
                )
            }
            _ => {
                let mut v = self
                    .template
                    .clone()
                    .unwrap_or_else(|| json!({"object": "chat.completion.chunk"}));
                let field = if self.insp.endpoint == Endpoint::Completions {
                    json!({"index": key.0, "text": text, "finish_reason": null})
                } else if kind == Some(Channel::Refusal) {
                    json!({"index": key.0, "delta": {"refusal": text}, "finish_reason": null})
                } else {
                    json!({"index": key.0, "delta": {"content": text}, "finish_reason": null})
                };
                v["choices"] = json!([field]);
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("usage");
                }
                sse_bytes(None, &v)
            }
        }
    }

    /// OpenAI chat completions and completions chunks.
    fn chat(&mut self, mut json: Value) -> Result<Vec<Bytes>, GatewayError> {
        let mut holds_call = false;
        let mut finished = Vec::new();
        let choices = json.get_mut("choices").and_then(Value::as_array_mut);
        for choice in choices.into_iter().flatten() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            for pointer in ["/delta/content", "/text"] {
                if let Some(Value::String(s)) = choice.pointer_mut(pointer) {
                    let released = self.push((index, 0), s)?;
                    *s = released;
                }
            }
            if let Some(Value::String(s)) = choice.pointer_mut("/delta/refusal") {
                self.kinds.insert((index, REFUSAL), Channel::Refusal);
                let released = self.push((index, REFUSAL), s)?;
                *s = released;
            }
            for (i, call) in choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let n = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(i as u64);
                self.delta_call(
                    (index, n + 1),
                    call.pointer("/function/name"),
                    call.pointer("/function/arguments"),
                );
                holds_call = true;
            }
            if let Some(f) = choice.pointer("/delta/function_call") {
                self.delta_call((index, 0), f.get("name"), f.get("arguments"));
                holds_call = true;
            }
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                finished.push(index);
            }
        }
        if json
            .get("choices")
            .is_some_and(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            self.template = Some(json.clone());
        }
        for index in &finished {
            for (channel, field) in [(0, "content"), (REFUSAL, "refusal")] {
                let rest = self.finish((*index, channel))?;
                if !rest.is_empty() {
                    append_text(&mut json, *index, field, &rest);
                }
            }
            self.check_calls(Some(*index))?;
        }
        let bytes = sse_bytes(None, &json);
        if holds_call && finished.is_empty() {
            self.held.push(bytes);
            return Ok(Vec::new());
        }
        let mut out = std::mem::take(&mut self.held);
        out.push(bytes);
        Ok(out)
    }

    fn delta_call(&mut self, key: Key, name: Option<&Value>, args: Option<&Value>) {
        let call = self.calls.entry(key).or_default();
        if let Some(n) = name.and_then(Value::as_str) {
            call.name.push_str(n);
        }
        if let Some(a) = args.and_then(Value::as_str) {
            call.arguments.push_str(a);
        }
    }

    /// Anthropic Messages events.
    fn anthropic(
        &mut self,
        name: Option<&str>,
        mut json: Value,
    ) -> Result<Vec<Bytes>, GatewayError> {
        let index = json.get("index").and_then(Value::as_u64).unwrap_or(0);
        let key = (index, 0);
        match json.get("type").and_then(Value::as_str).unwrap_or_default() {
            "content_block_start"
                if json.pointer("/content_block/type").and_then(Value::as_str)
                    == Some("tool_use") =>
            {
                let tool = json.pointer("/content_block/name").cloned();
                self.delta_call(key, tool.as_ref(), None);
                self.held.push(sse_bytes(name, &json));
                return Ok(Vec::new());
            }
            "content_block_delta" => {
                if let Some(Value::String(s)) = json.pointer_mut("/delta/text") {
                    let released = self.push(key, s)?;
                    *s = released;
                } else if let Some(Value::String(s)) = json.pointer_mut("/delta/thinking") {
                    self.kinds.insert(key, Channel::Thinking);
                    let released = self.push(key, s)?;
                    *s = released;
                } else if json.pointer("/delta/type").and_then(Value::as_str)
                    == Some("signature_delta")
                {
                    // The thinking text held back goes before its signature.
                    let rest = self.finish(key)?;
                    let mut out = Vec::new();
                    if !rest.is_empty() {
                        out.push(self.text_event(key, &rest));
                    }
                    out.push(sse_bytes(name, &json));
                    return Ok(out);
                } else if let Some(partial) = json.pointer("/delta/partial_json").cloned() {
                    self.delta_call(key, None, Some(&partial));
                    self.held.push(sse_bytes(name, &json));
                    return Ok(Vec::new());
                }
            }
            "content_block_stop" => {
                let mut out = Vec::new();
                let rest = self.finish(key)?;
                if !rest.is_empty() {
                    out.push(self.text_event(key, &rest));
                }
                if self.calls.contains_key(&key) {
                    let call = self.calls.remove(&key).unwrap_or_default();
                    if let Some(e) = self.insp.tool_call(&call.name, &call.arguments) {
                        return Err(e);
                    }
                    out.append(&mut self.held);
                }
                out.push(sse_bytes(name, &json));
                return Ok(out);
            }
            _ => {}
        }
        Ok(vec![sse_bytes(name, &json)])
    }

    /// OpenAI Responses API events.
    fn responses(
        &mut self,
        name: Option<&str>,
        mut json: Value,
    ) -> Result<Vec<Bytes>, GatewayError> {
        let at = |j: &Value, f: &str| j.get(f).and_then(Value::as_u64).unwrap_or(0);
        let key = (at(&json, "output_index"), at(&json, "content_index"));
        let mut out = Vec::new();
        let kind = json.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(&(delta, _, channel, index, field)) =
            RESPONSE_TEXTS.iter().find(|t| t.0 == kind || t.1 == kind)
        {
            let key = (key.0, at(&json, index));
            if let Some(c) = channel {
                self.kinds.insert(key, c);
            }
            if kind == delta {
                if let Some(Value::String(s)) = json.get_mut("delta") {
                    let released = self.push(key, s)?;
                    *s = released;
                }
            } else {
                let rest = self.finish(key)?;
                if !rest.is_empty() {
                    out.push(self.text_event(key, &rest));
                }
                json[field] = Value::String(self.released.remove(&key).unwrap_or_default());
            }
            return Ok(self.pass(name, &json, out));
        }
        match kind {
            "response.function_call_arguments.done" => {
                let item = json
                    .get("item_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let args = json
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let tool = json
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&item)
                    .to_owned();
                self.calls.remove(&(key.0, 0));
                if let Some(e) = self.insp.tool_call(&tool, &args) {
                    return Err(e);
                }
                out.append(&mut self.held);
            }
            // A call's arguments are held back until the whole call has been checked, with
            // every event that arrives meanwhile, so the order is kept; they are also gathered,
            // so a stream that ends before `.done` is checked by `flush_all`.
            "response.output_item.added"
                if json.pointer("/item/type").and_then(Value::as_str) == Some("function_call") =>
            {
                self.delta_call((key.0, 0), json.pointer("/item/name"), None);
            }
            "response.function_call_arguments.delta" => {
                self.delta_call((key.0, 0), None, json.get("delta"));
                self.held.push(sse_bytes(name, &json));
                return Ok(out);
            }
            "response.output_item.done"
            | "response.content_part.done"
            | "response.reasoning_summary_part.done"
            | "response.completed" => {
                redact_texts(&mut self.insp, &mut json)?;
            }
            _ => {}
        }
        Ok(self.pass(name, &json, out))
    }

    /// Sends `json` after `out`, or holds it behind events held for a tool call.
    fn pass(&mut self, name: Option<&str>, json: &Value, mut out: Vec<Bytes>) -> Vec<Bytes> {
        let bytes = sse_bytes(name, json);
        if self.held.is_empty() {
            out.push(bytes);
        } else {
            self.held.push(bytes);
        }
        out
    }
}

/// Redacts every `text` and `refusal` string in a Responses API event that repeats whole
/// texts.
fn redact_texts(insp: &mut Inspection, json: &mut Value) -> Result<(), GatewayError> {
    match json {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if (k == "text" || k == "refusal")
                    && let Value::String(s) = v
                {
                    // Same detectors, fresh state: equal to what the deltas released.
                    let mut quiet = std::mem::take(&mut insp.findings);
                    let r = insp.text(s);
                    std::mem::swap(&mut insp.findings, &mut quiet);
                    *s = r?;
                } else {
                    redact_texts(insp, v)?;
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                redact_texts(insp, v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Adds `text` to choice `index`'s `field` (`content` or `refusal`) in a chunk (the gateway's
/// held-back tail).
fn append_text(json: &mut Value, index: u64, field: &str, text: &str) {
    let choices = json.get_mut("choices").and_then(Value::as_array_mut);
    for choice in choices.into_iter().flatten() {
        if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != index {
            continue;
        }
        let slot = if field == "content" && choice.get("text").is_some() {
            choice.get_mut("text")
        } else {
            choice
                .get_mut("delta")
                .and_then(Value::as_object_mut)
                .map(|d| d.entry(field).or_insert(Value::String(String::new())))
        };
        if let Some(slot) = slot {
            let mut s = slot.as_str().unwrap_or_default().to_owned();
            s.push_str(text);
            *slot = Value::String(s);
        }
    }
}

fn sse_bytes(name: Option<&str>, json: &Value) -> Bytes {
    let data = json.to_string();
    Bytes::from(match name {
        Some(n) => format!("event: {n}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    })
}

/// How an inspected stream ended, for the request's record.
#[derive(Debug, Default)]
pub(crate) struct StreamEnd {
    /// Every finding on the response.
    pub findings: Vec<super::GuardFinding>,
    /// The upstream's stream broke or was malformed.
    pub partial: bool,
}

/// Receives the [`StreamEnd`]; dropped unsent when the client went away first.
pub(crate) type OnEnd = tokio::sync::oneshot::Sender<StreamEnd>;

/// A streamed response body inspected on the way to the client.
pub(crate) struct Inspected {
    inner: Body,
    reader: sse::Reader,
    processor: Processor,
    out: VecDeque<Bytes>,
    done: bool,
    on_end: Option<OnEnd>,
}

impl Inspected {
    /// Wraps `inner`; `on_end` receives the findings when the stream ends.
    pub(crate) fn new(inner: Body, insp: Inspection, on_end: OnEnd) -> Self {
        Self {
            inner,
            reader: sse::Reader::default(),
            processor: Processor::new(insp),
            out: VecDeque::new(),
            done: false,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, error: Option<&sse::SseError>) {
        self.out.extend(self.processor.end(error));
        self.done = true;
        if let Some(tx) = self.on_end.take() {
            let _ = tx.send(StreamEnd {
                findings: std::mem::take(&mut self.processor.insp.findings),
                partial: self.processor.partial,
            });
        }
    }
}

impl http_body::Body for Inspected {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => match this.reader.finish() {
                    Ok(last) => {
                        if let Some(ev) = last {
                            let out = this.processor.event(ev);
                            this.out.extend(out);
                        }
                        this.finish(None);
                    }
                    Err(e) => this.finish(Some(&e)),
                },
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match this.reader.push(&data) {
                        Ok(events) => {
                            for ev in events {
                                let out = this.processor.event(ev);
                                this.out.extend(out);
                            }
                            if this.processor.ended {
                                this.finish(None);
                            }
                        }
                        Err(e) => this.finish(Some(&e)),
                    }
                }
                Poll::Ready(Some(Err(never))) => match never {},
            }
        }
    }
}

#[cfg(test)]
mod tests;
