//! The `parse` stage: which endpoint a request is for, and strict validation of its body
//! before anything else looks at it: JSON nesting depth (checked on the raw bytes, before
//! any allocation), shape, message count, string sizes, keys repeated within an object, and
//! `n`. Each violation is a 400 that names the field.

use std::fmt::Write as _;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::config::RequestLimits;
use crate::error::{Family, GatewayError};

mod unique;
use unique::{Keys, check_unique};

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
    /// Every endpoint, in [`Self::index`] order.
    pub const ALL: [Self; 5] = [
        Self::ChatCompletions,
        Self::Completions,
        Self::Embeddings,
        Self::Responses,
        Self::Messages,
    ];

    /// The endpoint's position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

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
    /// The parsed body (for the stages that inspect it), built when first used.
    pub json: Json,
    /// The original bytes, forwarded unchanged.
    pub raw: Bytes,
    /// The largest completion-token count the request asks for, with the field that asked.
    tokens: Option<(&'static str, u64)>,
    /// How many completions the model generates: the largest of `n` and `best_of` (1 when
    /// neither is set).
    choices: u64,
}

impl Parsed {
    /// The largest completion-token count the request asks for, with the field that asked.
    pub fn requested_tokens(&self) -> Option<(&'static str, u64)> {
        self.tokens
    }

    /// How many completions the model generates for this request (`n`, `best_of`).
    pub fn choices(&self) -> u64 {
        self.choices
    }
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::Invalid {
        param: param.into(),
        message: message.into(),
    }
}

/// Validates a request body for `endpoint` against `limits`. A typed scan of the body decides
/// a valid request without building a `serde_json::Value`; a body it does not accept goes
/// through `parse_value`, which names the violation.
pub fn parse(
    endpoint: Endpoint,
    raw: Bytes,
    limits: &RequestLimits,
) -> Result<Parsed, GatewayError> {
    if let Some(mut top) = scan(&raw, limits)
        && let Some((model, stream)) = top.accept(endpoint, limits)
    {
        return Ok(Parsed {
            endpoint,
            model,
            stream,
            json: Json::lazy(raw.clone()),
            raw,
            tokens: top.requested_tokens(endpoint),
            choices: top.choices(),
        });
    }
    parse_value(endpoint, raw, limits)
}

/// Validates a request body by parsing it into a `serde_json::Value` (after checking its depth
/// on the raw bytes); each violation is a 400 naming the field.
fn parse_value(
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
    check_unique(&raw)?;
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
    let tokens = endpoint
        .max_tokens_fields()
        .iter()
        .filter_map(|f| obj.get(*f).and_then(Value::as_u64).map(|n| (*f, n)))
        .max_by_key(|(_, n)| *n);
    let choices = ["n", "best_of"]
        .iter()
        .filter_map(|f| obj.get(*f).and_then(Value::as_u64))
        .fold(1, u64::max);
    Ok(Parsed {
        endpoint,
        model,
        stream,
        json: Json::built(json, raw.clone()),
        raw,
        tokens,
        choices,
    })
}

/// The request body as a [`serde_json::Value`], built from the raw bytes the first time a stage
/// asks for it. A passthrough request never does: the typed scan in [`parse`] already found
/// everything the pipeline needs.
pub struct Json {
    raw: Bytes,
    shared: OnceLock<Value>,
    /// The value after a stage took it to change it.
    owned: Option<Value>,
}

impl Json {
    fn lazy(raw: Bytes) -> Self {
        Self {
            raw,
            shared: OnceLock::new(),
            owned: None,
        }
    }

    fn built(value: Value, raw: Bytes) -> Self {
        Self {
            raw,
            shared: OnceLock::from(value),
            owned: None,
        }
    }

    /// The body was validated as a JSON object before a `Json` is made, so this cannot fail.
    fn build(raw: &[u8]) -> Value {
        serde_json::from_slice(raw).unwrap_or(Value::Null)
    }
}

impl Deref for Json {
    type Target = Value;

    fn deref(&self) -> &Value {
        match &self.owned {
            Some(v) => v,
            None => self.shared.get_or_init(|| Self::build(&self.raw)),
        }
    }
}

impl DerefMut for Json {
    fn deref_mut(&mut self) -> &mut Value {
        let value = match self.owned.take() {
            Some(v) => v,
            None => self.shared.take().unwrap_or_else(|| Self::build(&self.raw)),
        };
        self.owned.insert(value)
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// The top-level fields [`parse`] checks, in [`TopKey`] order.
const TOP_KEYS: [&str; 10] = [
    "model",
    "stream",
    "messages",
    "prompt",
    "input",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "n",
    "best_of",
];

/// What the typed scan keeps of one top-level value (nothing of nested ones).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Summary {
    Null,
    Bool(bool),
    /// A non-negative integer (what `Value::as_u64` would return).
    U64(u64),
    /// Any other number.
    Number,
    /// A string; its text only for `model`, and only when it is a valid model name.
    Str(Option<String>),
    Array(usize),
    Object,
}

/// The top-level fields of a body the scan accepted (it accepts no repeated key).
#[derive(Default)]
struct Top([Option<Summary>; TOP_KEYS.len()]);

impl Top {
    fn get(&self, key: &str) -> Option<&Summary> {
        let i = TOP_KEYS.iter().position(|k| *k == key)?;
        self.0[i].as_ref()
    }

    /// The model and `stream` when every check of the slow path would pass; `None` when any
    /// might not (the slow path then names the violation).
    fn accept(&mut self, endpoint: Endpoint, limits: &RequestLimits) -> Option<(String, bool)> {
        let stream = match self.get("stream") {
            None | Some(Summary::Null) => false,
            Some(Summary::Bool(b)) => *b,
            Some(_) => return None,
        };
        if stream && endpoint == Endpoint::Embeddings {
            return None;
        }
        let (list, required) = endpoint.list_field();
        let array_only = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages);
        let list_ok = match self.get(list) {
            Some(Summary::Array(n)) => {
                *n <= limits.max_messages && (*n > 0 || endpoint == Endpoint::Responses)
            }
            Some(Summary::Str(_)) => !array_only,
            Some(Summary::Null) | None => !required,
            Some(_) => false,
        };
        if !list_ok {
            return None;
        }
        if endpoint == Endpoint::Messages && self.get("max_tokens").is_none() {
            return None;
        }
        let count_ok = |v: Option<&Summary>, ok: &dyn Fn(u64) -> bool| match v {
            None | Some(Summary::Null) => true,
            Some(Summary::U64(n)) => ok(*n),
            Some(_) => false,
        };
        let tokens_ok = endpoint
            .max_tokens_fields()
            .iter()
            .all(|f| count_ok(self.get(f), &|n| n > 0));
        if !tokens_ok || !count_ok(self.get("n"), &|n| (1..=limits.max_n).contains(&n)) {
            return None;
        }
        match self.0[0].take() {
            Some(Summary::Str(Some(model))) => Some((model, stream)),
            _ => None,
        }
    }

    fn choices(&self) -> u64 {
        ["n", "best_of"]
            .iter()
            .filter_map(|f| match self.get(f) {
                Some(Summary::U64(n)) => Some(*n),
                _ => None,
            })
            .fold(1, u64::max)
    }

    fn requested_tokens(&self, endpoint: Endpoint) -> Option<(&'static str, u64)> {
        endpoint
            .max_tokens_fields()
            .iter()
            .filter_map(|f| match self.get(f) {
                Some(Summary::U64(n)) => Some((*f, *n)),
                _ => None,
            })
            .max_by_key(|(_, n)| *n)
    }
}

/// One pass over the body without building a `Value` or allocating: syntax, nesting within
/// `max_json_depth`, strings and keys within `max_string`, no key twice in one object, and a
/// [`Summary`] of the top-level fields. `None` when the body is not valid JSON, not an object,
/// too deep, has a string over the limit or may repeat a key (serde_json's own recursion limit
/// bounds the stack before that).
fn scan(raw: &[u8], limits: &RequestLimits) -> Option<Top> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let seed = TopSeed {
        max: limits.max_string,
        max_depth: limits.max_json_depth,
    };
    let top = seed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(top)
}

/// The error the scan stops with; the slow path finds the real one.
fn stop<E: de::Error>() -> E {
    E::custom("")
}

/// Walks any value, checking its strings and keys against `max` and its nesting against
/// `max_depth`.
#[derive(Clone, Copy)]
struct Walk {
    max: usize,
    max_depth: usize,
    /// How many arrays and objects enclose the value.
    depth: usize,
    /// Keep the text of a valid model name (the top-level `model` field).
    model: bool,
}

impl Walk {
    /// The walk of the items of this value, an array or object: one level deeper.
    fn inside<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(stop());
        }
        Ok(Self {
            depth: self.depth + 1,
            model: false,
            ..self
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Summary;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Summary, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Summary;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Summary, E> {
        Ok(Summary::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Summary, E> {
        Ok(Summary::Bool(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Summary, E> {
        Ok(Summary::U64(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Summary, E> {
        Ok(u64::try_from(n).map_or(Summary::Number, Summary::U64))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Summary, E> {
        Ok(Summary::Number)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Summary, E> {
        if s.len() > self.max {
            return Err(stop());
        }
        let valid_model = self.model && !s.is_empty() && s.len() <= 256;
        Ok(Summary::Str(valid_model.then(|| s.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Summary, A::Error> {
        let item = self.inside()?;
        let mut n = 0;
        while seq.next_element_seed(item)?.is_some() {
            n += 1;
        }
        Ok(Summary::Array(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Summary, A::Error> {
        let item = self.inside()?;
        let mut seen = Keys::default();
        while map
            .next_key_seed(KeySeed {
                max: self.max,
                seen: &mut seen,
            })?
            .is_some()
        {
            map.next_value_seed(item)?;
        }
        Ok(Summary::Object)
    }
}

/// A key: checked against `max` and against the object's earlier keys, and which of
/// [`TOP_KEYS`] it is.
struct KeySeed<'k> {
    max: usize,
    seen: &'k mut Keys,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        if s.len() > self.max || !self.seen.insert(s) {
            return Err(stop());
        }
        Ok(TOP_KEYS.iter().position(|k| *k == s))
    }
}

/// The body: an object whose top-level fields are summarised.
struct TopSeed {
    max: usize,
    max_depth: usize,
}

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Top;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        if self.max_depth == 0 {
            return Err(stop());
        }
        let mut top = Top::default();
        let mut seen = Keys::default();
        while let Some(key) = map.next_key_seed(KeySeed {
            max: self.max,
            seen: &mut seen,
        })? {
            let walk = Walk {
                max: self.max,
                max_depth: self.max_depth,
                depth: 1,
                model: key == Some(0),
            };
            let value = map.next_value_seed(walk)?;
            if let Some(i) = key {
                top.0[i] = Some(value);
            }
        }
        Ok(top)
    }
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
mod tests;
