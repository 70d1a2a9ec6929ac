//! The `inspect` stage, request side: every input field of every endpoint goes through the guard
//! under the route's profile.
//!
//! Every string the model reads is inspected, wherever the API puts it: message contents and
//! names, every kind of content part and block (text, refusals, tool results, documents,
//! search results, tool-use inputs, thinking), tool-call arguments sent back, tool and function
//! definitions and output schemas, completions `suffix`, and token ids (decoded with the
//! route's tokenizer). Blocks of unknown types have all their strings inspected; images,
//! audio and files are not text. The table per endpoint is in `docs/guard.md`.
//!
//! A `block` becomes a 400 `content_policy_violation` that names the field and what was found,
//! never the offending text. `redact` and `pseudonymize` rewrite the fields in place and the
//! body is re-serialised before it is forwarded.

use aigis_guard::{Action, Decision, Detector, Guard, Part, Policy, Source, Vault};
use bytes::Bytes;
use serde_json::Value;

use crate::admit::tokens::Counter;
use crate::config::Tokenizer;
use crate::error::GatewayError;
use crate::parse::{Endpoint, Parsed};

use super::GuardFinding;

/// Proof that the request passed the `inspect` stage; only this module can build it.
#[derive(Debug)]
#[allow(
    clippy::manual_non_exhaustive,
    reason = "the private field is the point: only this module can build it"
)]
pub struct RequestInspected {
    /// True when pseudonyms were issued that the response may carry.
    pub pseudonymized: bool,
    _private: (),
}

/// One inspected field: where it is (JSON pointer and display path), who wrote it, and, for
/// token ids, the tokenizer that reads them.
struct Field {
    pointer: String,
    path: String,
    source: Source,
    tokens: Option<Tokenizer>,
    /// The object keys under `pointer`, one per line, inspected as one text: the model reads
    /// them too (schema property names, argument names), but they are not rewritten in place,
    /// so what the policy would redact in them blocks instead.
    keys: Option<String>,
}

/// Runs `guard` over `parsed` under the named profile's `policy`, putting what it finds (type,
/// action, span in its field and score: never content) in `findings`, also when it blocks; `None` when the route's guard
/// is off (the guard is then never touched, so a gateway without guarded routes never builds it).
/// `vault` holds the caller's pseudonyms; without one (an anonymous caller, whose scope every
/// other anonymous caller would share) `pseudonymize` redacts instead.
pub fn inspect(
    guarded: Option<(&Guard, &str, &Policy)>,
    vault: Option<(&Vault, &str)>,
    tokenizer: Tokenizer,
    parsed: &mut Parsed,
    findings: &mut Vec<GuardFinding>,
) -> Result<RequestInspected, GatewayError> {
    let Some((guard, profile, policy)) = guarded else {
        return Ok(RequestInspected {
            pseudonymized: false,
            _private: (),
        });
    };
    let mut fields = Vec::new();
    collect(parsed.endpoint, &parsed.json, tokenizer, &mut fields);
    let decoded = decode_tokens(&fields, parsed)?;
    let texts: Vec<Part<'_>> = fields
        .iter()
        .zip(&decoded)
        .map(|(f, decoded)| Part {
            text: decoded.as_deref().or(f.keys.as_deref()).unwrap_or_else(|| {
                parsed
                    .json
                    .pointer(&f.pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            }),
            source: f.source,
        })
        .collect();
    let decision = guard.inspect(policy, &texts, vault);
    *findings = summary(&decision);
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
    let unchangeable = decision.findings.iter().find(|f| {
        fields[f.part].keys.is_some() && matches!(f.action, Action::Redact | Action::Pseudonymize)
    });
    if let Some(f) = unchangeable {
        let param = fields[f.part].path.clone();
        return Err(GatewayError::ContentPolicy {
            message: format!(
                "the request was blocked by guard profile `{profile}`: {} in `{param}`, which the gateway does not rewrite",
                describe(f.detection.detector, &f.detection.kind)
            ),
            param,
        });
    }
    let pseudonymized = vault.is_some()
        && decision
            .findings
            .iter()
            .any(|f| f.action == Action::Pseudonymize);
    if decision.rewritten.iter().any(Option::is_some) {
        for (field, text) in fields.iter().zip(decision.rewritten) {
            if let (Some(text), Some(slot)) = (text, parsed.json.pointer_mut(&field.pointer)) {
                *slot = match field.tokens {
                    Some(t) => Counter::for_model(t, &parsed.model).encode(&text),
                    None => Value::String(text),
                };
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
        pseudonymized,
        _private: (),
    })
}

/// The text of each field that holds token ids, decoded with the route's tokenizer (`None`
/// for the others). Ids the gateway cannot read are refused, not passed on uninspected.
fn decode_tokens(fields: &[Field], parsed: &Parsed) -> Result<Vec<Option<String>>, GatewayError> {
    fields
        .iter()
        .map(|f| {
            let Some(tokenizer) = f.tokens else {
                return Ok(None);
            };
            let ids = parsed.json.pointer(&f.pointer).and_then(Value::as_array);
            let counter = Counter::for_model(tokenizer, &parsed.model);
            counter
                .decode(ids.map_or(&[][..], Vec::as_slice))
                .map(Some)
                .map_err(|message| GatewayError::Invalid {
                    param: f.path.clone(),
                    message,
                })
        })
        .collect()
}

fn summary(decision: &Decision) -> Vec<GuardFinding> {
    decision
        .findings
        .iter()
        .map(|f| {
            let d = &f.detection;
            super::noted(
                d.detector.as_str(),
                &d.kind,
                f.action,
                Some(&d.span),
                d.score,
            )
        })
        .collect()
}

fn describe(detector: Detector, kind: &str) -> String {
    match detector {
        Detector::Injection if kind == "decode-limit" => {
            "more encoded payloads than the guard decodes (some were left unread)".into()
        }
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
        tokens: None,
        keys: None,
    });
}

/// `value[key]` when it is a string (`value` at `pointer`, shown as `path`; both empty for the
/// body itself).
fn member(
    value: &Value,
    key: &str,
    pointer: &str,
    path: &str,
    source: Source,
    out: &mut Vec<Field>,
) {
    if value.get(key).is_some_and(Value::is_string) {
        let path = if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        };
        push(out, format!("{pointer}/{key}"), path, source);
    }
}

/// A JSON pointer's reference token for an object key (RFC 6901: `~` as `~0`, `/` as `~1`).
fn escape(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1").into()
    } else {
        key.into()
    }
}

/// Every string under `value`, and its object keys as one more field: tool definitions, JSON
/// schemas, tool-call arguments and blocks of unknown types, all of which the model reads.
fn leaves(value: &Value, pointer: &str, path: &str, source: Source, out: &mut Vec<Field>) {
    leaves_but(value, pointer, path, source, out, |_, _| false);
}

/// [`leaves`], leaving out the members `skip` picks (by key and value).
fn leaves_but(
    value: &Value,
    pointer: &str,
    path: &str,
    source: Source,
    out: &mut Vec<Field>,
    skip: fn(&str, &Value) -> bool,
) {
    let mut keys = String::new();
    strings(value, pointer, path, source, out, &mut keys, skip);
    if !keys.is_empty() {
        out.push(Field {
            pointer: pointer.to_owned(),
            path: format!("{path} (object keys)"),
            source,
            tokens: None,
            keys: Some(keys),
        });
    }
}

/// The strings under `value` as fields, but for the members `skip` picks; its object keys
/// appended to `keys`, one per line.
fn strings(
    value: &Value,
    pointer: &str,
    path: &str,
    source: Source,
    out: &mut Vec<Field>,
    keys: &mut String,
    skip: fn(&str, &Value) -> bool,
) {
    match value {
        Value::String(_) => push(out, pointer.to_owned(), path.to_owned(), source),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let (p, d) = (format!("{pointer}/{i}"), format!("{path}[{i}]"));
                strings(item, &p, &d, source, out, keys, skip);
            }
        }
        Value::Object(members) => {
            for (key, item) in members.iter().filter(|(k, v)| !skip(k, v)) {
                keys.push_str(key);
                keys.push('\n');
                let (p, d) = (
                    format!("{pointer}/{}", escape(key)),
                    format!("{path}.{key}"),
                );
                strings(item, &p, &d, source, out, keys, skip);
            }
        }
        _ => {}
    }
}

/// The opaque members of Anthropic's server-tool results: `encrypted_content` and
/// `encrypted_index` strings, which the provider encrypted and only it reads.
fn provider_encrypted(key: &str, value: &Value) -> bool {
    matches!(key, "encrypted_content" | "encrypted_index") && value.is_string()
}

/// Content part and block types that carry no text (images, audio, files; Anthropic's
/// encrypted `redacted_thinking`), or only an id: not inspected.
const OPAQUE_PARTS: [&str; 10] = [
    "image_url",
    "input_image",
    "image",
    "input_audio",
    "audio",
    "file",
    "input_file",
    "redacted_thinking",
    "item_reference",
    "computer_screenshot",
];

/// A string, or an array of content parts and blocks in any of the three APIs' shapes.
fn content(value: &Value, pointer: &str, path: &str, source: Source, out: &mut Vec<Field>) {
    match value {
        Value::String(_) => push(out, pointer.to_owned(), path.to_owned(), source),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                block(
                    part,
                    &format!("{pointer}/{j}"),
                    &format!("{path}[{j}]"),
                    source,
                    out,
                );
            }
        }
        _ => {}
    }
}

/// One content part or block. Text the model reads is inspected whatever block holds it;
/// a block of a type not known here has all its strings inspected (new API features fail
/// closed), except the opaque ones above.
fn block(part: &Value, p: &str, d: &str, source: Source, out: &mut Vec<Field>) {
    match part.get("type").and_then(Value::as_str) {
        Some("text" | "input_text" | "output_text") => member(part, "text", p, d, source, out),
        Some("refusal") => member(part, "refusal", p, d, Source::Assistant, out),
        Some("thinking") => member(part, "thinking", p, d, Source::Assistant, out),
        Some("reasoning_text" | "summary_text") => {
            member(part, "text", p, d, Source::Assistant, out);
        }
        // Anthropic's server tools (web search and fetch, MCP, code execution): what they
        // bring back is indirect, like a tool's answer.
        Some(kind) if kind.ends_with("_tool_result") => {
            leaves_but(part, p, d, Source::Tool, out, provider_encrypted);
        }
        // Anthropic: a tool's answer, a retrieved document or search result are indirect.
        Some("tool_result" | "search_result") => {
            member(part, "title", p, d, Source::Tool, out);
            if let Some(inner) = part.get("content") {
                let (cp, cd) = (format!("{p}/content"), format!("{d}.content"));
                content(inner, &cp, &cd, Source::Tool, out);
            }
        }
        Some("document") => {
            for key in ["title", "context"] {
                member(part, key, p, d, Source::Tool, out);
            }
            if let Some(source_block) = part.get("source") {
                let (sp, sd) = (format!("{p}/source"), format!("{d}.source"));
                match source_block.get("type").and_then(Value::as_str) {
                    Some("text") => member(source_block, "data", &sp, &sd, Source::Tool, out),
                    Some("content") => {
                        if let Some(inner) = source_block.get("content") {
                            let (cp, cd) = (format!("{sp}/content"), format!("{sd}.content"));
                            content(inner, &cp, &cd, Source::Tool, out);
                        }
                    }
                    // base64 (a PDF) and url sources are not text the gateway can read.
                    _ => {}
                }
            }
        }
        Some("tool_use" | "server_tool_use") => {
            if let Some(input) = part.get("input") {
                leaves(
                    input,
                    &format!("{p}/input"),
                    &format!("{d}.input"),
                    Source::Assistant,
                    out,
                );
            }
        }
        Some(kind) if OPAQUE_PARTS.contains(&kind) => {}
        _ => leaves(part, p, d, source, out),
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

/// `prompt` or `input` of completions and embeddings: a string, strings, or token ids (one
/// array, or an array of arrays), which are decoded with the route's tokenizer.
fn prompts(json: &Value, name: &str, source: Source, tokens: Tokenizer, out: &mut Vec<Field>) {
    let ids = |pointer: String, path: String| Field {
        pointer,
        path,
        source,
        tokens: Some(tokens),
        keys: None,
    };
    match json.get(name) {
        Some(Value::String(_)) => push(out, format!("/{name}"), name.to_owned(), source),
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_number) => {
            out.push(ids(format!("/{name}"), name.to_owned()));
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let (p, d) = (format!("/{name}/{i}"), format!("{name}[{i}]"));
                match item {
                    Value::String(_) => push(out, p, d, source),
                    Value::Array(_) => out.push(ids(p, d)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A chat or Anthropic message: its content, the name it gives, and (assistant turns sent
/// back) its tool calls' arguments and refusal.
fn message(m: &Value, p: &str, d: &str, out: &mut Vec<Field>) {
    let source = role_source(m.get("role").and_then(Value::as_str));
    if let Some(c) = m.get("content") {
        content(
            c,
            &format!("{p}/content"),
            &format!("{d}.content"),
            source,
            out,
        );
    }
    member(m, "name", p, d, source, out);
    member(m, "refusal", p, d, Source::Assistant, out);
    for (i, call) in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(f) = call.get("function") {
            let (cp, cd) = (
                format!("{p}/tool_calls/{i}/function"),
                format!("{d}.tool_calls[{i}].function"),
            );
            member(f, "arguments", &cp, &cd, Source::Assistant, out);
        }
        if let Some(c) = call.get("custom") {
            let (cp, cd) = (
                format!("{p}/tool_calls/{i}/custom"),
                format!("{d}.tool_calls[{i}].custom"),
            );
            member(c, "input", &cp, &cd, Source::Assistant, out);
        }
    }
    if let Some(f) = m.get("function_call") {
        let (cp, cd) = (format!("{p}/function_call"), format!("{d}.function_call"));
        member(f, "arguments", &cp, &cd, Source::Assistant, out);
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
        message(m, &format!("/messages/{i}"), &format!("messages[{i}]"), out);
    }
}

/// What the model reads of the tool and function definitions at `key` (source `definition`):
/// each one's name, description and parameter schema. Other
/// members (an MCP server's URL and headers, say) go to the provider, not the model.
fn tools(json: &Value, key: &str, out: &mut Vec<Field>) {
    for (i, tool) in json
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (mut p, mut d) = (format!("/{key}/{i}"), format!("{key}[{i}]"));
        // Chat nests a definition under `function` or `custom`; the other APIs do not.
        let nested = ["function", "custom"]
            .into_iter()
            .find_map(|k| tool.get(k).filter(|v| v.is_object()).map(|v| (k, v)));
        let definition = match nested {
            Some((k, v)) => {
                p.push('/');
                p.push_str(k);
                d.push('.');
                d.push_str(k);
                v
            }
            None => tool,
        };
        schema(definition, &p, &d, out);
    }
}

/// A definition's name and description (an MCP server's `server_description`), and the schema
/// under `parameters` (OpenAI), `input_schema` (Anthropic), `schema` (structured output) or
/// `format` (a custom tool's grammar).
fn schema(definition: &Value, p: &str, d: &str, out: &mut Vec<Field>) {
    for key in ["name", "description", "server_description"] {
        member(definition, key, p, d, Source::Definition, out);
    }
    for key in ["parameters", "input_schema", "schema", "format"] {
        if let Some(s) = definition.get(key) {
            leaves(
                s,
                &format!("{p}/{key}"),
                &format!("{d}.{key}"),
                Source::Definition,
                out,
            );
        }
    }
}

/// One item of a Responses API `input` array.
fn input_item(item: &Value, p: &str, d: &str, out: &mut Vec<Field>) {
    match item.get("type").and_then(Value::as_str) {
        Some("function_call_output" | "custom_tool_call_output" | "mcp_call_output") => {
            if let Some(output) = item.get("output") {
                content(
                    output,
                    &format!("{p}/output"),
                    &format!("{d}.output"),
                    Source::Tool,
                    out,
                );
            }
        }
        Some("function_call") => member(item, "arguments", p, d, Source::Assistant, out),
        Some("custom_tool_call") => member(item, "input", p, d, Source::Assistant, out),
        Some("reasoning") => {
            if let Some(summary) = item.get("summary") {
                content(
                    summary,
                    &format!("{p}/summary"),
                    &format!("{d}.summary"),
                    Source::Assistant,
                    out,
                );
            }
        }
        Some("message") | None => message(item, p, d, out),
        Some(kind) if OPAQUE_PARTS.contains(&kind) => {}
        Some(_) => leaves(item, p, d, Source::Tool, out),
    }
}

fn collect(endpoint: Endpoint, json: &Value, tokens: Tokenizer, out: &mut Vec<Field>) {
    match endpoint {
        Endpoint::ChatCompletions => {
            messages(json, out);
            tools(json, "tools", out);
            tools(json, "functions", out);
            if let Some(format) = json
                .get("response_format")
                .and_then(|f| f.get("json_schema"))
            {
                let (p, d) = (
                    "/response_format/json_schema",
                    "response_format.json_schema",
                );
                schema(format, p, d, out);
            }
            if let Some(c) = json.get("prediction").and_then(|p| p.get("content")) {
                content(
                    c,
                    "/prediction/content",
                    "prediction.content",
                    Source::Assistant,
                    out,
                );
            }
        }
        Endpoint::Completions => {
            prompts(json, "prompt", Source::User, tokens, out);
            member(json, "suffix", "", "", Source::User, out);
        }
        Endpoint::Embeddings => prompts(json, "input", Source::Tool, tokens, out),
        Endpoint::Responses => {
            member(json, "instructions", "", "", Source::System, out);
            match json.get("input") {
                Some(Value::String(_)) => push(out, "/input".into(), "input".into(), Source::User),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        input_item(item, &format!("/input/{i}"), &format!("input[{i}]"), out);
                    }
                }
                _ => {}
            }
            tools(json, "tools", out);
            if let Some(format) = json.get("text").and_then(|t| t.get("format")) {
                schema(format, "/text/format", "text.format", out);
            }
            if let Some(variables) = json.get("prompt").and_then(|p| p.get("variables")) {
                leaves(
                    variables,
                    "/prompt/variables",
                    "prompt.variables",
                    Source::User,
                    out,
                );
            }
        }
        Endpoint::Messages => {
            if let Some(system) = json.get("system") {
                content(system, "/system", "system", Source::System, out);
            }
            messages(json, out);
            tools(json, "tools", out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(endpoint: Endpoint, json: &Value) -> Vec<(String, Source)> {
        let mut out = Vec::new();
        collect(endpoint, json, Tokenizer::Auto, &mut out);
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
            [
                ("input[0]".into(), Source::Tool),
                ("input[1]".into(), Source::Tool)
            ]
        );
    }

    fn sources(endpoint: Endpoint, json: &Value) -> Vec<(String, Source)> {
        let mut out = paths(endpoint, json);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn finds_text_outside_message_content() {
        let chat = serde_json::json!({
            "messages": [
                {"role": "user", "name": "n", "content": "u"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "r"}],
                 "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object", "properties": {"a/b": {"description": "p"}}}}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"title": "t"}}},
            "prediction": {"type": "content", "content": "x"}});
        let found = sources(Endpoint::ChatCompletions, &chat);
        for (path, source) in [
            ("messages[0].name", Source::User),
            ("messages[1].content[0].refusal", Source::Assistant),
            (
                "messages[1].tool_calls[0].function.arguments",
                Source::Assistant,
            ),
            ("tools[0].function.description", Source::Definition),
            (
                "tools[0].function.parameters.properties.a/b.description",
                Source::Definition,
            ),
            (
                "response_format.json_schema.schema.title",
                Source::Definition,
            ),
            ("prediction.content", Source::Assistant),
        ] {
            assert!(
                found.contains(&(path.into(), source)),
                "{path} not in {found:?}"
            );
        }
        let mut out = Vec::new();
        collect(Endpoint::ChatCompletions, &chat, Tokenizer::Auto, &mut out);
        let escaped = out.iter().find(|f| f.path.contains("a/b")).unwrap();
        assert_eq!(
            escaped.pointer,
            "/tools/0/function/parameters/properties/a~1b/description"
        );
        assert_eq!(chat.pointer(&escaped.pointer), Some(&Value::from("p")));

        let anthropic = serde_json::json!({
            "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
                {"type": "search_result", "title": "t", "source": "s", "content": [{"type": "text", "text": "r"}]},
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                {"type": "a_future_block", "words": ["w"]}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "th", "signature": "sig"},
                    {"type": "tool_use", "id": "1", "name": "n", "input": {"q": ["v"]}}]}]});
        assert_eq!(
            sources(Endpoint::Messages, &anthropic),
            [
                ("messages[0].content[0].source.data".into(), Source::Tool),
                (
                    "messages[0].content[1].source.content[0].text".into(),
                    Source::Tool
                ),
                (
                    "messages[0].content[3].content[0].text".into(),
                    Source::Tool
                ),
                ("messages[0].content[3].title".into(), Source::Tool),
                ("messages[0].content[5] (object keys)".into(), Source::User),
                ("messages[0].content[5].type".into(), Source::User),
                ("messages[0].content[5].words[0]".into(), Source::User),
                ("messages[1].content[0].thinking".into(), Source::Assistant),
                (
                    "messages[1].content[1].input (object keys)".into(),
                    Source::Assistant
                ),
                (
                    "messages[1].content[1].input.q[0]".into(),
                    Source::Assistant
                ),
                ("tools[0].description".into(), Source::Definition),
                (
                    "tools[0].input_schema (object keys)".into(),
                    Source::Definition
                ),
                ("tools[0].input_schema.type".into(), Source::Definition),
                ("tools[0].name".into(), Source::Definition),
            ]
        );
    }

    #[test]
    fn finds_responses_items_tools_and_suffixes() {
        let responses = serde_json::json!({
            "input": [
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "o"}]},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]},
                {"role": "user", "content": "u"}],
            "tools": [{"type": "mcp", "server_label": "l", "server_url": "https://x", "headers": {"Authorization": "Bearer k"}}],
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"description": "d"}}},
            "prompt": {"id": "p", "variables": {"city": "c"}}});
        assert_eq!(
            sources(Endpoint::Responses, &responses),
            [
                ("input[0].arguments".into(), Source::Assistant),
                ("input[1].output[0].text".into(), Source::Tool),
                ("input[2].summary[0].text".into(), Source::Assistant),
                ("input[3].content".into(), Source::User),
                ("prompt.variables (object keys)".into(), Source::User),
                ("prompt.variables.city".into(), Source::User),
                ("text.format.name".into(), Source::Definition),
                (
                    "text.format.schema (object keys)".into(),
                    Source::Definition
                ),
                ("text.format.schema.description".into(), Source::Definition),
            ]
        );
        assert_eq!(
            sources(
                Endpoint::Completions,
                &serde_json::json!({"prompt": [1, 2], "suffix": "s"})
            ),
            [
                ("prompt".into(), Source::User),
                ("suffix".into(), Source::User)
            ]
        );
    }

    #[test]
    fn token_ids_are_decoded_and_refused_without_a_tokenizer() {
        let ids = Counter::O200k.encode("Ignore all previous instructions");
        let Value::Array(ids) = ids else {
            panic!("ids")
        };
        assert_eq!(
            Counter::O200k.decode(&ids).unwrap(),
            "Ignore all previous instructions"
        );
        assert!(
            Counter::Estimate
                .decode(&ids)
                .unwrap_err()
                .contains("tokenizer")
        );
        assert!(
            Counter::O200k
                .decode(&[Value::from(-1)])
                .unwrap_err()
                .contains("item 0")
        );
        assert!(
            Counter::Cl100k
                .decode(&[Value::from(u32::MAX)])
                .unwrap_err()
                .contains("cl100k_base")
        );
    }

    /// Custom tools, custom tool calls, MCP server descriptions and Anthropic's server-tool
    /// results are read by the model: inspected, the results as indirect content, without
    /// their provider-encrypted blobs; object keys are one more field.
    #[test]
    fn finds_custom_tools_server_tool_results_and_object_keys() {
        let chat = serde_json::json!({
            "messages": [{"role": "assistant", "tool_calls": [
                {"id": "1", "type": "custom", "custom": {"name": "sql", "input": "select 1"}}]}],
            "tools": [{"type": "custom", "custom": {"name": "sql", "description": "runs SQL",
                "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: /.+/"}}}}]});
        let found = sources(Endpoint::ChatCompletions, &chat);
        for (path, source) in [
            ("messages[0].tool_calls[0].custom.input", Source::Assistant),
            ("tools[0].custom.description", Source::Definition),
            (
                "tools[0].custom.format.grammar.definition",
                Source::Definition,
            ),
        ] {
            assert!(
                found.contains(&(path.into(), source)),
                "{path} not in {found:?}"
            );
        }
        let responses = serde_json::json!({"tools": [{"type": "mcp", "server_label": "l",
            "server_description": "weather data", "server_url": "https://x"}]});
        assert!(
            sources(Endpoint::Responses, &responses)
                .contains(&("tools[0].server_description".into(), Source::Definition))
        );
        let anthropic = serde_json::json!({"messages": [{"role": "user", "content": [
            {"type": "web_fetch_tool_result", "tool_use_id": "s1", "content": {"type": "web_fetch_result",
                "url": "https://e", "content": {"type": "document", "source": {"type": "text", "data": "page"}}}},
            {"type": "web_search_tool_result", "tool_use_id": "s2", "content": [
                {"type": "web_search_result", "title": "t", "url": "https://e", "encrypted_content": "QUJD"}]}]}]});
        let found = sources(Endpoint::Messages, &anthropic);
        assert!(
            found.contains(&(
                "messages[0].content[0].content.content.source.data".into(),
                Source::Tool
            )),
            "{found:?}"
        );
        assert!(
            found.contains(&(
                "messages[0].content[1].content[0].title".into(),
                Source::Tool
            )),
            "{found:?}"
        );
        assert!(
            found.iter().all(|(p, _)| !p.contains("encrypted_content")),
            "{found:?}"
        );
        let mut out = Vec::new();
        collect(Endpoint::Messages, &anthropic, Tokenizer::Auto, &mut out);
        let keys = out.iter().find_map(|f| f.keys.as_deref()).unwrap();
        assert!(
            keys.contains("tool_use_id\n") && !keys.contains("encrypted"),
            "{keys}"
        );
        // Outside a server-tool result an `encrypted_…` member is text like any other.
        let tool = serde_json::json!({"tools": [{"name": "t", "description": "d", "input_schema":
            {"properties": {"encrypted_note": {"description": "x"}}}}]});
        assert!(sources(Endpoint::Messages, &tool).contains(&(
            "tools[0].input_schema.properties.encrypted_note.description".into(),
            Source::Definition
        )));
    }
}
