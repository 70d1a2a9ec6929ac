//! The `inspect` stage, request side: every input field of every endpoint goes through the guard
//! under the route's profile.
//!
//! | endpoint | fields (source) |
//! |---|---|
//! | chat completions | `messages[i].content` as text or `text` parts (system/developer → system, user, assistant, tool/function → tool) |
//! | completions | `prompt` (user) |
//! | embeddings | `input` strings (tool: embedded documents are indirect content) |
//! | responses | `instructions` (system); `input` as text, message items and their `input_text` parts, `function_call_output.output` (tool) |
//! | Anthropic messages | `system` (system); `messages[i].content` text and `text` blocks; `tool_result` blocks' content (tool) |
//!
//! A `block` becomes a 400 `content_policy_violation` that names the field and what was found,
//! never the offending text. `redact` and `pseudonymize` rewrite the fields in place and the
//! body is re-serialised before it is forwarded.

use aigis_guard::{Action, Decision, Detector, Guard, Part, Policy, Source, Vault};
use bytes::Bytes;
use serde_json::Value;

use crate::error::GatewayError;
use crate::parse::{Endpoint, Parsed};

/// Proof that the request passed the `inspect` stage; only this module can build it.
#[derive(Debug)]
#[allow(
    clippy::manual_non_exhaustive,
    reason = "the private field is the point: only this module can build it"
)]
pub struct RequestInspected {
    /// `detector:kind:action` of every finding (for the access log; never content).
    pub findings: Vec<String>,
    /// True when pseudonyms were issued that the response may carry.
    pub pseudonymized: bool,
    _private: (),
}

/// One inspected field: where it is (JSON pointer and display path) and who wrote it.
struct Field {
    pointer: String,
    path: String,
    source: Source,
}

/// Runs `guard` over `parsed` under the named profile's `policy`; `None` when the route's guard
/// is off (the guard is then never touched, so a gateway without guarded routes never builds it).
pub fn inspect(
    guarded: Option<(&Guard, &str, &Policy)>,
    vault: &Vault,
    caller: &str,
    parsed: &mut Parsed,
) -> Result<RequestInspected, GatewayError> {
    let Some((guard, profile, policy)) = guarded else {
        return Ok(RequestInspected {
            findings: Vec::new(),
            pseudonymized: false,
            _private: (),
        });
    };
    let mut fields = Vec::new();
    collect(parsed.endpoint, &parsed.json, &mut fields);
    let texts: Vec<Part<'_>> = fields
        .iter()
        .map(|f| Part {
            text: parsed
                .json
                .pointer(&f.pointer)
                .and_then(Value::as_str)
                .unwrap_or_default(),
            source: f.source,
        })
        .collect();
    let decision = guard.inspect(policy, &texts, Some((vault, caller)));
    let findings = summary(&decision);
    if decision.blocked {
        let first = decision.findings.iter().find(|f| f.action == Action::Block);
        let (param, what) = first.map_or_else(
            || (String::from("body"), String::from("content")),
            |f| {
                (
                    fields[f.part].path.clone(),
                    describe(f.detection.detector, &f.detection.kind),
                )
            },
        );
        return Err(GatewayError::ContentPolicy {
            message: format!(
                "the request was blocked by guard profile `{profile}`: {what} in `{param}`"
            ),
            param,
        });
    }
    let pseudonymized = decision
        .findings
        .iter()
        .any(|f| f.action == Action::Pseudonymize);
    if decision.rewritten.iter().any(Option::is_some) {
        for (field, text) in fields.iter().zip(decision.rewritten) {
            if let (Some(text), Some(slot)) = (text, parsed.json.pointer_mut(&field.pointer)) {
                *slot = Value::String(text);
            }
        }
        parsed.raw =
            Bytes::from(
                serde_json::to_vec(&parsed.json).map_err(|e| GatewayError::Invalid {
                    param: "body".into(),
                    message: format!("the rewritten body could not be serialised: {e}"),
                })?,
            );
    }
    Ok(RequestInspected {
        findings,
        pseudonymized,
        _private: (),
    })
}

fn summary(decision: &Decision) -> Vec<String> {
    decision
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}",
                f.detection.detector.as_str(),
                f.detection.kind,
                f.action.as_str()
            )
        })
        .collect()
}

fn describe(detector: Detector, kind: &str) -> String {
    match detector {
        Detector::Injection => kind.replace('-', " "),
        Detector::Secrets => format!("a credential ({kind})"),
        Detector::Pii => format!("personal data ({kind})"),
        Detector::Invisible => "hidden characters".into(),
        Detector::Banned => "banned content".into(),
        Detector::Topic => format!("a blocked topic ({kind})"),
    }
}

fn push(out: &mut Vec<Field>, pointer: String, path: String, source: Source) {
    out.push(Field {
        pointer,
        path,
        source,
    });
}

/// A string, or an array of text parts (`{"type": "text"|"input_text", "text": ...}`) and, for
/// Anthropic, `tool_result` blocks.
fn content(value: &Value, pointer: &str, path: &str, source: Source, out: &mut Vec<Field>) {
    match value {
        Value::String(_) => push(out, pointer.to_owned(), path.to_owned(), source),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                let (p, d) = (format!("{pointer}/{j}"), format!("{path}[{j}]"));
                match part.get("type").and_then(Value::as_str) {
                    Some("text" | "input_text" | "output_text")
                        if part.get("text").is_some_and(Value::is_string) =>
                    {
                        push(out, format!("{p}/text"), format!("{d}.text"), source);
                    }
                    Some("tool_result") => {
                        if let Some(inner) = part.get("content") {
                            content(
                                inner,
                                &format!("{p}/content"),
                                &format!("{d}.content"),
                                Source::Tool,
                                out,
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn role_source(role: Option<&str>) -> Source {
    match role {
        Some("system" | "developer") => Source::System,
        Some("assistant") => Source::Assistant,
        Some("tool" | "function") => Source::Tool,
        _ => Source::User,
    }
}

fn strings(value: &Value, name: &str, source: Source, out: &mut Vec<Field>) {
    match value {
        Value::String(_) => push(out, format!("/{name}"), name.to_owned(), source),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if item.is_string() {
                    push(out, format!("/{name}/{i}"), format!("{name}[{i}]"), source);
                }
            }
        }
        _ => {}
    }
}

fn messages(json: &Value, out: &mut Vec<Field>) {
    for (i, m) in json
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(c) = m.get("content") {
            let source = role_source(m.get("role").and_then(Value::as_str));
            content(
                c,
                &format!("/messages/{i}/content"),
                &format!("messages[{i}].content"),
                source,
                out,
            );
        }
    }
}

fn collect(endpoint: Endpoint, json: &Value, out: &mut Vec<Field>) {
    match endpoint {
        Endpoint::ChatCompletions => messages(json, out),
        Endpoint::Completions => strings(
            json.get("prompt").unwrap_or(&Value::Null),
            "prompt",
            Source::User,
            out,
        ),
        Endpoint::Embeddings => strings(
            json.get("input").unwrap_or(&Value::Null),
            "input",
            Source::Tool,
            out,
        ),
        Endpoint::Responses => {
            if json.get("instructions").is_some_and(Value::is_string) {
                push(
                    out,
                    "/instructions".into(),
                    "instructions".into(),
                    Source::System,
                );
            }
            match json.get("input") {
                Some(Value::String(_)) => push(out, "/input".into(), "input".into(), Source::User),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let (p, d) = (format!("/input/{i}"), format!("input[{i}]"));
                        if item.get("type").and_then(Value::as_str) == Some("function_call_output")
                        {
                            if item.get("output").is_some_and(Value::is_string) {
                                push(
                                    out,
                                    format!("{p}/output"),
                                    format!("{d}.output"),
                                    Source::Tool,
                                );
                            }
                        } else if let Some(c) = item.get("content") {
                            let source = role_source(item.get("role").and_then(Value::as_str));
                            content(
                                c,
                                &format!("{p}/content"),
                                &format!("{d}.content"),
                                source,
                                out,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        Endpoint::Messages => {
            if let Some(system) = json.get("system") {
                content(system, "/system", "system", Source::System, out);
            }
            messages(json, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(endpoint: Endpoint, json: &Value) -> Vec<(String, Source)> {
        let mut out = Vec::new();
        collect(endpoint, json, &mut out);
        out.into_iter().map(|f| (f.path, f.source)).collect()
    }

    #[test]
    fn finds_every_input_field() {
        let chat = serde_json::json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "u"}, {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "tool", "content": "t"}]});
        assert_eq!(
            paths(Endpoint::ChatCompletions, &chat),
            [
                ("messages[0].content".into(), Source::System),
                ("messages[1].content[0].text".into(), Source::User),
                ("messages[2].content".into(), Source::Tool)
            ]
        );
        let anthropic = serde_json::json!({"system": [{"type": "text", "text": "s"}], "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1", "content": [{"type": "text", "text": "r"}]}, {"type": "text", "text": "u"}]}]});
        assert_eq!(
            paths(Endpoint::Messages, &anthropic),
            [
                ("system[0].text".into(), Source::System),
                (
                    "messages[0].content[0].content[0].text".into(),
                    Source::Tool
                ),
                ("messages[0].content[1].text".into(), Source::User)
            ]
        );
        let responses = serde_json::json!({"instructions": "i", "input": [{"role": "user", "content": [{"type": "input_text", "text": "u"}]}, {"type": "function_call_output", "call_id": "c", "output": "o"}]});
        assert_eq!(
            paths(Endpoint::Responses, &responses),
            [
                ("instructions".into(), Source::System),
                ("input[0].content[0].text".into(), Source::User),
                ("input[1].output".into(), Source::Tool)
            ]
        );
        assert_eq!(
            paths(
                Endpoint::Completions,
                &serde_json::json!({"prompt": ["a", "b"]})
            )
            .len(),
            2
        );
        assert_eq!(
            paths(
                Endpoint::Embeddings,
                &serde_json::json!({"input": [[1, 2], "doc"]})
            ),
            [("input[1]".into(), Source::Tool)]
        );
    }
}
