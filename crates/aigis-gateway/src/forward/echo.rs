//! The built-in `echo` upstream: answers every endpoint with the last user message, streamed
//! word by word when asked, so policies, limits and guards can be tried with no model at all.
//! Token counts are whitespace-separated words.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};

use crate::body::{self, Body};
use crate::parse::{Endpoint, Parsed};

/// Answers `parsed` as an upstream would.
pub fn answer(parsed: &Parsed, request_id: &str) -> Response<Body> {
    let text = last_user_text(parsed);
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let limit = parsed.requested_tokens().map_or(usize::MAX, |(_, n)| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let truncated = words.len() > limit;
    let words = &words[..words.len().min(limit)];
    let a = Answer {
        id: request_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect(),
        model: &parsed.model,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        words,
        truncated,
        prompt_tokens: text.split_whitespace().count(),
    };
    let (content_type, body) = match (parsed.endpoint, parsed.stream) {
        (Endpoint::Embeddings, _) => (
            "application/json",
            body::full(embeddings(parsed).to_string()),
        ),
        (endpoint, false) => (
            "application/json",
            body::full(a.complete(endpoint).to_string()),
        ),
        (endpoint, true) => (
            "text/event-stream",
            body::stream(a.events(endpoint, parsed)),
        ),
    };
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

struct Answer<'a> {
    id: String,
    model: &'a str,
    created: u64,
    words: &'a [&'a str],
    truncated: bool,
    prompt_tokens: usize,
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or(p.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn last_user_text(parsed: &Parsed) -> String {
    let j = &parsed.json;
    let from_messages = |list: &Value| {
        list.as_array()
            .and_then(|m| {
                m.iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .and_then(|m| m.get("content"))
            .map(text_of)
    };
    match parsed.endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages => j.get("messages").and_then(from_messages),
        Endpoint::Completions => j.get("prompt").map(|p| match p {
            Value::Array(a) => a.first().map(text_of).unwrap_or_default(),
            p => text_of(p),
        }),
        Endpoint::Responses => j.get("input").map(|i| match i {
            Value::String(s) => s.clone(),
            list => from_messages(list).unwrap_or_default(),
        }),
        Endpoint::Embeddings => None,
    }
    .unwrap_or_default()
}

impl Answer<'_> {
    fn text(&self) -> String {
        self.words.concat()
    }

    fn finish(&self, endpoint: Endpoint) -> &'static str {
        match (endpoint, self.truncated) {
            (Endpoint::Messages, true) => "max_tokens",
            (Endpoint::Messages, false) => "end_turn",
            (_, true) => "length",
            (_, false) => "stop",
        }
    }

    fn complete(&self, endpoint: Endpoint) -> Value {
        let (p, c) = (self.prompt_tokens, self.words.len());
        match endpoint {
            Endpoint::ChatCompletions => json!({
                "id": format!("chatcmpl-{}", self.id), "object": "chat.completion",
                "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text()},
                             "logprobs": null, "finish_reason": self.finish(endpoint)}],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            }),
            Endpoint::Completions => json!({
                "id": format!("cmpl-{}", self.id), "object": "text_completion",
                "created": self.created, "model": self.model,
                "choices": [{"index": 0, "text": self.text(), "logprobs": null,
                             "finish_reason": self.finish(endpoint)}],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            }),
            Endpoint::Responses => json!({
                "id": format!("resp_{}", self.id), "object": "response", "created_at": self.created,
                "status": "completed", "model": self.model,
                "output": [{"type": "message", "id": format!("msg_{}", self.id), "status": "completed",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": self.text(), "annotations": []}]}],
                "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c},
            }),
            Endpoint::Messages | Endpoint::Embeddings => json!({
                "id": format!("msg_{}", self.id), "type": "message", "role": "assistant",
                "model": self.model, "content": [{"type": "text", "text": self.text()}],
                "stop_reason": self.finish(endpoint), "stop_sequence": null,
                "usage": {"input_tokens": p, "output_tokens": c},
            }),
        }
    }

    fn events(&self, endpoint: Endpoint, parsed: &Parsed) -> Vec<Bytes> {
        let data = |v: Value| Bytes::from(format!("data: {v}\n\n"));
        let event = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
        let mut out = Vec::new();
        match endpoint {
            Endpoint::ChatCompletions | Endpoint::Completions => {
                let chat = endpoint == Endpoint::ChatCompletions;
                let chunk = |delta: Value, finish: Value| {
                    let choice = if chat {
                        json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
                    } else {
                        json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")),
                               "logprobs": null, "finish_reason": finish})
                    };
                    json!({"id": format!("chatcmpl-{}", self.id),
                           "object": if chat { "chat.completion.chunk" } else { "text_completion" },
                           "created": self.created, "model": self.model, "choices": [choice]})
                };
                if chat {
                    out.push(data(chunk(
                        json!({"role": "assistant", "content": ""}),
                        Value::Null,
                    )));
                }
                for w in self.words {
                    out.push(data(chunk(json!({"content": w}), Value::Null)));
                }
                out.push(data(chunk(json!({}), json!(self.finish(endpoint)))));
                let include_usage = parsed.json.pointer("/stream_options/include_usage")
                    == Some(&Value::Bool(true));
                if include_usage {
                    let mut usage = self.complete(endpoint);
                    usage["choices"] = json!([]);
                    usage["object"] = json!("chat.completion.chunk");
                    out.push(data(usage));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            Endpoint::Responses => {
                let done = self.complete(endpoint);
                let mut created = done.clone();
                created["status"] = json!("in_progress");
                created["output"] = json!([]);
                out.push(event(
                    "response.created",
                    json!({"type": "response.created", "sequence_number": 0, "response": created}),
                ));
                for (i, w) in self.words.iter().enumerate() {
                    out.push(event("response.output_text.delta", json!({
                        "type": "response.output_text.delta", "sequence_number": i + 1,
                        "item_id": format!("msg_{}", self.id), "output_index": 0, "content_index": 0, "delta": w})));
                }
                out.push(event(
                    "response.completed",
                    json!({"type": "response.completed",
                    "sequence_number": self.words.len() + 1, "response": done}),
                ));
            }
            Endpoint::Messages | Endpoint::Embeddings => {
                let mut start = self.complete(endpoint);
                start["content"] = json!([]);
                start["stop_reason"] = Value::Null;
                out.push(event(
                    "message_start",
                    json!({"type": "message_start", "message": start}),
                ));
                out.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ));
                for w in self.words {
                    out.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": w}}),
                    ));
                }
                out.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ));
                out.push(event(
                    "message_delta",
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": self.finish(endpoint), "stop_sequence": null},
                    "usage": {"output_tokens": self.words.len()}}),
                ));
                out.push(event("message_stop", json!({"type": "message_stop"})));
            }
        }
        out
    }
}

/// Deterministic unit vectors derived from each input's bytes (FNV-1a seeded).
fn embeddings(parsed: &Parsed) -> Value {
    let inputs: Vec<String> = match parsed.json.get("input") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let dims = parsed
        .json
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .clamp(1, 4096);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let raw: Vec<f64> = (0..dims)
                .map(|d| {
                    for b in text.bytes().chain(d.to_le_bytes()) {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                    #[expect(
                        clippy::cast_precision_loss,
                        reason = "a pseudo-random value in [-1, 1)"
                    )]
                    let x = (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
                    x
                })
                .collect();
            let norm = raw
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(f64::EPSILON);
            let embedding: Vec<f64> = raw.iter().map(|x| x / norm).collect();
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
    json!({"object": "list", "data": data, "model": parsed.model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}
