//! The `parse` stage: which endpoint a request is for, and strict validation of its body
//! before anything else looks at it: JSON nesting depth (checked on the raw bytes, before
//! any allocation), shape, message count, string sizes and `n`. Each violation is a 400 that
//! names the field.

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::Value;

use crate::config::RequestLimits;
use crate::error::{Family, GatewayError};

/// The model endpoints the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/messages` (Anthropic)
    Messages,
}

impl Endpoint {
    /// The endpoint for a request path, if it is one.
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path.trim_end_matches('/') {
            "/v1/chat/completions" => Self::ChatCompletions,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/responses" => Self::Responses,
            "/v1/messages" => Self::Messages,
            _ => return None,
        })
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
            Self::Messages => "messages",
        }
    }

    /// The Cedar action the endpoint performs.
    pub fn action(self) -> &'static str {
        match self {
            Self::ChatCompletions | Self::Messages => "chat",
            Self::Completions => "complete",
            Self::Embeddings => "embed",
            Self::Responses => "responses",
        }
    }

    /// Which API family (and error shape) the endpoint belongs to.
    pub fn family(self) -> Family {
        match self {
            Self::Messages => Family::Anthropic,
            _ => Family::OpenAi,
        }
    }

    /// The path below the upstream's base URL (OpenAI bases end in `/v1`, Anthropic's do not).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::Responses => "/responses",
            Self::Messages => "/v1/messages",
        }
    }

    /// The field holding the list whose length `max_messages` caps, and whether it is required.
    fn list_field(self) -> (&'static str, bool) {
        match self {
            Self::ChatCompletions | Self::Messages => ("messages", true),
            Self::Completions => ("prompt", true),
            Self::Embeddings | Self::Responses => ("input", self == Self::Embeddings),
        }
    }

    /// Fields that request a number of completion tokens.
    pub fn max_tokens_fields(self) -> &'static [&'static str] {
        match self {
            Self::ChatCompletions => &["max_tokens", "max_completion_tokens"],
            Self::Completions | Self::Messages => &["max_tokens"],
            Self::Responses => &["max_output_tokens"],
            Self::Embeddings => &[],
        }
    }
}

/// A validated request body.
#[derive(Debug)]
pub struct Parsed {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The requested model.
    pub model: String,
    /// Whether the client asked for a server-sent-events stream.
    pub stream: bool,
    /// The parsed body (for the stages that inspect it).
    pub json: Value,
    /// The original bytes, forwarded unchanged.
    pub raw: Bytes,
}

impl Parsed {
    /// The largest completion-token count the request asks for, with the field that asked.
    pub fn requested_tokens(&self) -> Option<(&'static str, u64)> {
        self.endpoint
            .max_tokens_fields()
            .iter()
            .filter_map(|f| self.json.get(*f).and_then(Value::as_u64).map(|n| (*f, n)))
            .max_by_key(|(_, n)| *n)
    }
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::Invalid {
        param: param.into(),
        message: message.into(),
    }
}

/// Validates a request body for `endpoint` against `limits`.
pub fn parse(
    endpoint: Endpoint,
    raw: Bytes,
    limits: &RequestLimits,
) -> Result<Parsed, GatewayError> {
    check_depth(&raw, limits.max_json_depth)?;
    let json: Value = serde_json::from_slice(&raw).map_err(|e| {
        invalid(
            "body",
            format!(
                "the body is not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(obj) = json.as_object() else {
        return Err(invalid("body", "the body must be a JSON object"));
    };
    check_strings(&json, limits.max_string, &mut String::new())?;
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= 256 => m.clone(),
        Some(_) => {
            return Err(invalid(
                "model",
                "`model` must be a non-empty string of at most 256 bytes",
            ));
        }
        None => return Err(invalid("model", "you must provide a model parameter")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "`stream` must be a boolean")),
    };
    if stream && endpoint == Endpoint::Embeddings {
        return Err(invalid("stream", "embeddings cannot be streamed"));
    }
    check_list(endpoint, obj, limits)?;
    check_counts(endpoint, obj, limits)?;
    Ok(Parsed {
        endpoint,
        model,
        stream,
        json,
        raw,
    })
}

/// The list field (`messages`, `prompt` or `input`): present when required, the right type,
/// not empty, and at most `max_messages` long.
fn check_list(
    endpoint: Endpoint,
    obj: &serde_json::Map<String, Value>,
    limits: &RequestLimits,
) -> Result<(), GatewayError> {
    let (list, required) = endpoint.list_field();
    let array_only = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages);
    match obj.get(list) {
        Some(Value::Array(items)) if items.len() > limits.max_messages => Err(invalid(
            list,
            format!(
                "`{list}` has {} items; the limit is {} (server.max_messages)",
                items.len(),
                limits.max_messages
            ),
        )),
        Some(Value::Array(items)) if items.is_empty() && endpoint != Endpoint::Responses => {
            Err(invalid(list, format!("`{list}` must not be empty")))
        }
        Some(Value::Array(_)) => Ok(()),
        Some(Value::String(_)) if !array_only => Ok(()),
        Some(Value::Null) | None if !required => Ok(()),
        None => Err(invalid(
            list,
            format!("missing required parameter `{list}`"),
        )),
        Some(_) if array_only => Err(invalid(list, format!("`{list}` must be an array"))),
        Some(_) => Err(invalid(
            list,
            format!("`{list}` must be a string or an array"),
        )),
    }
}

/// Token counts are positive integers (`max_tokens` is required by Anthropic), and `n` is
/// within `max_n`.
fn check_counts(
    endpoint: Endpoint,
    obj: &serde_json::Map<String, Value>,
    limits: &RequestLimits,
) -> Result<(), GatewayError> {
    if endpoint == Endpoint::Messages && !obj.contains_key("max_tokens") {
        return Err(invalid(
            "max_tokens",
            "missing required parameter `max_tokens`",
        ));
    }
    for field in endpoint.max_tokens_fields() {
        match obj.get(*field) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
            Some(_) => {
                return Err(invalid(
                    *field,
                    format!("`{field}` must be a positive integer"),
                ));
            }
        }
    }
    match obj.get("n") {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| (1..=limits.max_n).contains(&n)) => Ok(()),
        Some(_) => Err(invalid(
            "n",
            format!(
                "`n` must be an integer from 1 to {} (server.max_n)",
                limits.max_n
            ),
        )),
    }
}

/// Rejects JSON nested deeper than `max` by scanning the bytes, so a hostile body cannot make
/// the parser recurse or allocate before it is refused.
fn check_depth(raw: &[u8], max: usize) -> Result<(), GatewayError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (offset, &b) in raw.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(invalid(
                        "body",
                        format!(
                            "JSON nesting deeper than {max} levels at byte {offset} (server.max_json_depth)"
                        ),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Rejects any string (or object key) longer than `max` bytes, naming its JSON path.
fn check_strings(v: &Value, max: usize, path: &mut String) -> Result<(), GatewayError> {
    let too_long = |path: &str, len: usize| {
        let param = if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        };
        invalid(
            param,
            format!("a string of {len} bytes exceeds the limit of {max} (server.max_string)"),
        )
    };
    match v {
        Value::String(s) if s.len() > max => Err(too_long(path, s.len())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                check_strings(item, max, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if k.len() > max {
                    return Err(too_long(path, k.len()));
                }
                check_strings(item, max, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits {
            max_body: 1 << 20,
            max_header: 1 << 15,
            max_json_depth: 8,
            max_messages: 3,
            max_string: 64,
            max_n: 2,
        }
    }

    fn param(body: &str, endpoint: Endpoint) -> String {
        match parse(endpoint, Bytes::from(body.to_owned()), &limits()) {
            Err(GatewayError::Invalid { param, .. }) => param,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_normal_chat_request() {
        let p = parse(
            Endpoint::ChatCompletions,
            Bytes::from_static(br#"{"model":"m","stream":true,"max_tokens":5,"max_completion_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#),
            &limits(),
        )
        .unwrap();
        assert!(p.stream);
        assert_eq!(p.model, "m");
        assert_eq!(p.requested_tokens(), Some(("max_completion_tokens", 9)));
    }

    #[test]
    fn each_violation_names_its_field() {
        let chat = Endpoint::ChatCompletions;
        assert_eq!(param("[1]", chat), "body");
        assert_eq!(param("{\"model\":", chat), "body");
        assert_eq!(param(r#"{"messages":[{}]}"#, chat), "model");
        assert_eq!(param(r#"{"model":"m"}"#, chat), "messages");
        assert_eq!(param(r#"{"model":"m","messages":[]}"#, chat), "messages");
        assert_eq!(param(r#"{"model":"m","messages":"hi"}"#, chat), "messages");
        assert_eq!(
            param(r#"{"model":"m","messages":[{},{},{},{}]}"#, chat),
            "messages"
        );
        assert_eq!(param(r#"{"model":"m","messages":[{}],"n":3}"#, chat), "n");
        assert_eq!(
            param(r#"{"model":"m","messages":[{}],"max_tokens":-1}"#, chat),
            "max_tokens"
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{}],"stream":"yes"}"#, chat),
            "stream"
        );
        let long = "x".repeat(65);
        assert_eq!(
            param(
                &format!(r#"{{"model":"m","messages":[{{"content":"{long}"}}]}}"#),
                chat
            ),
            "messages[0].content"
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[[[[[[[[[]]]]]]]]]}"#, chat),
            "body"
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{}]}"#, Endpoint::Messages),
            "max_tokens"
        );
        assert_eq!(param(r#"{"model":"m"}"#, Endpoint::Embeddings), "input");
        assert_eq!(
            param(
                r#"{"model":"m","input":"x","stream":true}"#,
                Endpoint::Embeddings
            ),
            "stream"
        );
    }

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        let body = r#"{"model":"m","messages":[{"content":"[[[[[[[[[[[[[[[[\"{{{{{{{{{{{"}]}"#;
        assert!(
            parse(
                Endpoint::ChatCompletions,
                Bytes::from_static(body.as_bytes()),
                &limits()
            )
            .is_ok()
        );
    }

    #[test]
    fn paths_map_to_endpoints() {
        assert_eq!(
            Endpoint::from_path("/v1/chat/completions"),
            Some(Endpoint::ChatCompletions)
        );
        assert_eq!(
            Endpoint::from_path("/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(Endpoint::from_path("/v2/anything"), None);
    }
}
