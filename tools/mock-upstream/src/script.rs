//! Scripted answers, steered from the request so end-to-end tests through the gateway can
//! make the "model" say exactly what a test needs. The script travels in a body field the
//! gateway forwards but does not inspect, so the request-side guard never sees it:
//!
//! - `"mock_script": {"say": TEXT}` answers TEXT;
//! - `"mock_script": {"refuse": TEXT}` refuses with TEXT (OpenAI's `refusal` fields; text for
//!   Anthropic);
//! - `"mock_script": {"think": TEXT}` puts a signed thinking block with TEXT before the answer
//!   (Anthropic), or a reasoning item whose summary is TEXT after it (Responses API);
//! - `"mock_script": {"call": JSON}` answers a call of the request's first tool with JSON as
//!   its arguments;
//! - a last user message `say-system` answers the request's system prompt (a prompt-leak
//!   model).
//!
//! Model directives: `mock-broken-1` sends invalid UTF-8, `mock-broken-2` ends in the middle
//! of an event, `mock-broken-3` sends an event that never ends (2 MiB without a line end).

use bytes::Bytes;
use serde_json::{Value, json};

/// What the model answers.
pub enum Answer {
    /// Text.
    Text(String),
    /// A refusal.
    Refusal(String),
    /// A call of `name` with `arguments`.
    Call { name: String, arguments: String },
}

/// The scripted answer of a request, or the default echo.
pub fn answer(json: &Value, user: &str) -> Answer {
    if let Some(text) = json.pointer("/mock_script/say").and_then(Value::as_str) {
        return Answer::Text(text.to_owned());
    }
    if let Some(text) = json.pointer("/mock_script/refuse").and_then(Value::as_str) {
        return Answer::Refusal(text.to_owned());
    }
    if user == "say-system" {
        let system = json
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| {
                m.iter()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("system"))
            })
            .and_then(|m| m.get("content"))
            .or_else(|| json.get("system"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Answer::Text(system.to_owned());
    }
    if let Some(arguments) = json.pointer("/mock_script/call").and_then(Value::as_str) {
        let name = json
            .pointer("/tools/0/function/name")
            .or_else(|| json.pointer("/tools/0/name"))
            .and_then(Value::as_str)
            .unwrap_or("tool")
            .to_owned();
        return Answer::Call {
            name,
            arguments: arguments.to_owned(),
        };
    }
    Answer::Text(format!("mock reply to: {user}"))
}

/// The thinking the script adds to the answer.
pub fn thinking(json: &Value) -> Option<&str> {
    json.pointer("/mock_script/think").and_then(Value::as_str)
}

/// The signature the mock gives every thinking block.
pub const SIGNATURE: &str = "mock-signature";

/// `text` cut into `n` pieces of (about) equal character counts.
pub fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let per = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(per).map(|c| c.iter().collect()).collect()
}

fn event(name: Option<&str>, v: &Value) -> Bytes {
    Bytes::from(match name {
        Some(n) => format!("event: {n}\ndata: {v}\n\n"),
        None => format!("data: {v}\n\n"),
    })
}

/// An OpenAI chat-completions stream.
pub fn chat(model: &str, answer: &Answer, n: usize) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value| {
        event(
            None,
            &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]}),
        )
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let finish = match answer {
        Answer::Text(text) | Answer::Refusal(text) => {
            let field = if matches!(answer, Answer::Refusal(_)) {
                "refusal"
            } else {
                "content"
            };
            out.extend(
                pieces(text, n)
                    .into_iter()
                    .map(|p| chunk(json!({ field: p }), Value::Null)),
            );
            "stop"
        }
        Answer::Call { name, arguments } => {
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_mock", "type": "function",
                                                  "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            out.extend(pieces(arguments, n).into_iter().map(|p| {
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                    Value::Null,
                )
            }));
            "tool_calls"
        }
    };
    out.push(chunk(json!({}), json!(finish)));
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// An Anthropic Messages stream, with a thinking block first when `thinking` is given.
pub fn anthropic(model: &str, answer: &Answer, thinking: Option<&str>, n: usize) -> Vec<Bytes> {
    let mut out = vec![event(
        Some("message_start"),
        &json!({"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 0}}}),
    )];
    let delta = |index: usize, delta: Value| {
        event(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    };
    let stop_block = |index: usize| {
        event(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": index}),
        )
    };
    let index = usize::from(thinking.is_some());
    if let Some(thought) = thinking {
        out.push(event(Some("content_block_start"), &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        out.extend(
            pieces(thought, n)
                .into_iter()
                .map(|p| delta(0, json!({"type": "thinking_delta", "thinking": p}))),
        );
        out.push(delta(
            0,
            json!({"type": "signature_delta", "signature": SIGNATURE}),
        ));
        out.push(stop_block(0));
    }
    let stop = match answer {
        Answer::Text(text) | Answer::Refusal(text) => {
            out.push(event(Some("content_block_start"), &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
            out.extend(
                pieces(text, n)
                    .into_iter()
                    .map(|p| delta(index, json!({"type": "text_delta", "text": p}))),
            );
            "end_turn"
        }
        Answer::Call { name, arguments } => {
            out.push(event(Some("content_block_start"), &json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}})));
            out.extend(pieces(arguments, n).into_iter().map(|p| {
                delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": p}),
                )
            }));
            "tool_use"
        }
    };
    out.push(stop_block(index));
    out.push(event(Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 5}})));
    out.push(event(
        Some("message_stop"),
        &json!({"type": "message_stop"}),
    ));
    out
}

/// A Responses API reasoning item at output index 1 whose summary is `summary` in `n` deltas:
/// its events and the item done.
fn reasoning(summary: &str, n: usize) -> (Vec<Bytes>, Value) {
    let ev = |name: &str, v: Value| event(Some(name), &v);
    let mut out = Vec::new();
    let part = |t: &str| json!({"type": "summary_text", "text": t});
    let item = |t: &[Value]| json!({"type": "reasoning", "id": "rs_mock", "summary": t});
    let at = json!({"item_id": "rs_mock", "output_index": 1, "summary_index": 0});
    let with = |name: &str, extra: Value| {
        let mut v = at.clone();
        v["type"] = json!(name);
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        ev(name, v)
    };
    out.push(ev(
        "response.output_item.added",
        json!({"type": "response.output_item.added", "output_index": 1, "item": item(&[])}),
    ));
    out.push(with(
        "response.reasoning_summary_part.added",
        json!({"part": part("")}),
    ));
    out.extend(
        pieces(summary, n)
            .into_iter()
            .map(|p| with("response.reasoning_summary_text.delta", json!({"delta": p}))),
    );
    out.push(with(
        "response.reasoning_summary_text.done",
        json!({"text": summary}),
    ));
    out.push(with(
        "response.reasoning_summary_part.done",
        json!({"part": part(summary)}),
    ));
    let done = item(&[part(summary)]);
    out.push(ev(
        "response.output_item.done",
        json!({"type": "response.output_item.done", "output_index": 1, "item": done}),
    ));
    (out, done)
}

/// A complete Anthropic message, with a thinking block first when `thinking` is given.
pub fn anthropic_message(model: &str, answer: &Answer, thinking: Option<&str>) -> Value {
    let mut content: Vec<Value> = thinking
        .map(|t| json!({"type": "thinking", "thinking": t, "signature": SIGNATURE}))
        .into_iter()
        .collect();
    content.push(match answer {
        Answer::Text(t) | Answer::Refusal(t) => json!({"type": "text", "text": t}),
        Answer::Call { name, arguments } => {
            json!({"type": "tool_use", "id": "toolu_mock", "name": name,
            "input": serde_json::from_str::<Value>(arguments).unwrap_or(Value::Null)})
        }
    });
    json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 5}})
}

/// A broken stream (see the module docs); `None` for an unknown kind.
pub fn broken(kind: u64) -> Option<Vec<Bytes>> {
    let first = Bytes::from_static(b"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello \"},\"finish_reason\":null}]}\n\n");
    let second = match kind {
        1 => Bytes::from_static(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\n",
        ),
        2 => Bytes::from_static(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"cont"),
        3 => Bytes::from(format!("data: \"{}", "a".repeat(2 << 20))),
        _ => return None,
    };
    Some(vec![first, second])
}

/// An OpenAI Responses API stream: a message, or a function call whose arguments come in `n`
/// deltas.
pub fn responses(model: &str, answer: &Answer, thinking: Option<&str>, n: usize) -> Vec<Bytes> {
    let ev = |name: &str, v: Value| event(Some(name), &v);
    // The output item in progress, the events that fill it, and the item done.
    let (added, body, done) = match answer {
        Answer::Text(text) | Answer::Refusal(text) => {
            // A refusal streams as its own part type, event names and text field.
            let (kind, field) = if matches!(answer, Answer::Refusal(_)) {
                ("refusal", "refusal")
            } else {
                ("output_text", "text")
            };
            let part = |t: &str| match kind {
                "refusal" => json!({"type": "refusal", "refusal": t}),
                _ => json!({"type": "output_text", "text": t, "annotations": []}),
            };
            let item = |t: &str| json!({"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant", "content": [part(t)]});
            let at = |name: &str, key: &str, value: Value| {
                let mut v = json!({"type": name, "item_id": "msg_mock", "output_index": 0, "content_index": 0});
                v[key] = value;
                ev(name, v)
            };
            let (delta, done) = (
                format!("response.{kind}.delta"),
                format!("response.{kind}.done"),
            );
            let mut body = vec![at("response.content_part.added", "part", part(""))];
            body.extend(
                pieces(text, n)
                    .into_iter()
                    .map(|p| at(&delta, "delta", json!(p))),
            );
            body.push(at(&done, field, json!(text)));
            body.push(at("response.content_part.done", "part", part(text)));
            let added = json!({"type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []});
            (added, body, item(text))
        }
        Answer::Call { name, arguments } => {
            let item = |args: &str, status: &str| json!({"type": "function_call", "id": "fc_mock", "call_id": "call_mock", "name": name, "arguments": args, "status": status});
            let mut body: Vec<Bytes> = pieces(arguments, n).into_iter().map(|p| {
                ev("response.function_call_arguments.delta", json!({"type": "response.function_call_arguments.delta", "item_id": "fc_mock", "output_index": 0, "delta": p}))
            }).collect();
            body.push(ev("response.function_call_arguments.done", json!({"type": "response.function_call_arguments.done", "item_id": "fc_mock", "output_index": 0, "arguments": arguments})));
            (item("", "in_progress"), body, item(arguments, "completed"))
        }
    };
    let mut out = vec![
        ev(
            "response.created",
            json!({"type": "response.created", "response": {"id": "resp_mock", "object": "response", "status": "in_progress", "model": model, "output": []}}),
        ),
        ev(
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
        ),
    ];
    out.extend(body);
    out.push(ev(
        "response.output_item.done",
        json!({"type": "response.output_item.done", "output_index": 0, "item": done}),
    ));
    let mut output = vec![done];
    if let Some(summary) = thinking {
        let (events, done) = reasoning(summary, n);
        out.extend(events);
        output.push(done);
    }
    out.push(ev("response.completed", json!({"type": "response.completed", "response": {"id": "resp_mock", "object": "response", "status": "completed", "model": model, "output": output,
        "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}}})));
    out
}
