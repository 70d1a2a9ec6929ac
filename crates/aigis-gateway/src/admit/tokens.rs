//! Counting prompt tokens before the upstream does: OpenAI models with their real tiktoken
//! encoding (`o200k_base`, `cl100k_base`), anything else with a cheap estimate that leans high
//! (reservations are settled against the upstream's reported usage afterwards, so a high
//! estimate costs nothing but a briefly larger reservation).

use serde_json::Value;

use crate::config::Tokenizer;
use crate::parse::{Endpoint, Parsed};

/// Tokens the chat format adds per message, and for priming the reply (OpenAI's published
/// counting recipe for current chat models).
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// Bytes per token of the estimate (English averages about 4.5, CJK about 3).
const ESTIMATE_BYTES_PER_TOKEN: usize = 3;

/// How a route's text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// tiktoken `o200k_base`.
    O200k,
    /// tiktoken `cl100k_base`.
    Cl100k,
    /// One token per three bytes, rounded up.
    Estimate,
}

impl Counter {
    /// The counter for `model` on a route configured with `tokenizer`.
    pub fn for_model(tokenizer: Tokenizer, model: &str) -> Self {
        match tokenizer {
            Tokenizer::O200k => Self::O200k,
            Tokenizer::Cl100k => Self::Cl100k,
            Tokenizer::Estimate => Self::Estimate,
            Tokenizer::Auto => match tiktoken_rs::tokenizer::get_tokenizer(model) {
                Some(tiktoken_rs::tokenizer::Tokenizer::O200kBase) => Self::O200k,
                Some(tiktoken_rs::tokenizer::Tokenizer::Cl100kBase) => Self::Cl100k,
                _ => Self::Estimate,
            },
        }
    }

    /// The encoding's name, as tiktoken spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::O200k => "o200k_base",
            Self::Cl100k => "cl100k_base",
            Self::Estimate => "estimate",
        }
    }

    /// Tokens in `text` (special-token text counts as ordinary text, as the API does).
    pub fn count(self, text: &str) -> u64 {
        let n = match self {
            Self::O200k => tiktoken_rs::o200k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Self::Cl100k => tiktoken_rs::cl100k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Self::Estimate => text.len().div_ceil(ESTIMATE_BYTES_PER_TOKEN),
        };
        n as u64
    }

    /// The text of token ids (as the API takes them in `prompt` and `input`), for the guard to
    /// read; an error names what is wrong: no vocabulary (the estimate), an id that is not a
    /// number or not in the vocabulary.
    pub fn decode(self, ids: &[Value]) -> Result<String, String> {
        let bpe = match self {
            Self::O200k => tiktoken_rs::o200k_base_singleton(),
            Self::Cl100k => tiktoken_rs::cl100k_base_singleton(),
            Self::Estimate => {
                return Err(
                    "token ids cannot be inspected: the model has no known tokenizer; \
                            send text, or set the route's `tokenizer`"
                        .into(),
                );
            }
        };
        let ranks = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| format!("item {i} is not a token id"))
            })
            .collect::<Result<Vec<u32>, String>>()?;
        let bytes = bpe
            .decode_bytes(&ranks)
            .map_err(|e| format!("{e} (not in {})", self.name()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Token ids of `text` (the estimate has none: its text is sent as a string).
    pub fn encode(self, text: &str) -> Value {
        let ids = match self {
            Self::O200k => tiktoken_rs::o200k_base_singleton().encode_ordinary(text),
            Self::Cl100k => tiktoken_rs::cl100k_base_singleton().encode_ordinary(text),
            Self::Estimate => return Value::String(text.to_owned()),
        };
        ids.into_iter().map(Value::from).collect()
    }

    /// Prompt tokens of a validated request.
    pub fn prompt(self, parsed: &Parsed) -> u64 {
        let json = &parsed.json;
        match parsed.endpoint {
            Endpoint::ChatCompletions => self.chat_prompt(json),
            Endpoint::Messages => {
                self.messages(json.get("messages"))
                    + self.text_in(json.get("system"))
                    + self.tools(json)
            }
            Endpoint::Completions => self.inputs(json.get("prompt")),
            Endpoint::Embeddings => self.inputs(json.get("input")),
            Endpoint::Responses => {
                self.inputs(json.get("input"))
                    + self.text_in(json.get("instructions"))
                    + self.tools(json)
            }
        }
    }

    /// Prompt tokens of a chat request body (messages and tools), as [`Self::prompt`] counts
    /// a `/v1/chat/completions` request.
    pub fn chat_prompt(self, body: &Value) -> u64 {
        self.messages(body.get("messages")) + self.tools(body)
    }

    /// Chat messages: per message a fixed overhead plus its role, name and text.
    fn messages(self, messages: Option<&Value>) -> u64 {
        let Some(Value::Array(messages)) = messages else {
            return 0;
        };
        let body: u64 = messages
            .iter()
            .map(|m| {
                let name = m.get("name").and_then(Value::as_str);
                PER_MESSAGE
                    + m.get("role")
                        .and_then(Value::as_str)
                        .map_or(0, |r| self.count(r))
                    + name.map_or(0, |n| self.count(n) + 1)
                    + self.text_in(m.get("content"))
                    + m.get("tool_calls")
                        .map_or(0, |t| self.count(&t.to_string()))
            })
            .sum();
        body + REPLY_PRIMING
    }

    /// Tool and function definitions, counted as their JSON text (an estimate; the API
    /// formats them differently, and settlement corrects the difference).
    fn tools(self, json: &Value) -> u64 {
        ["tools", "functions"]
            .iter()
            .filter_map(|k| json.get(*k))
            .map(|t| self.count(&t.to_string()))
            .sum()
    }

    /// `prompt`/`input`: a string, a list of strings, or token ids (counted one each).
    fn inputs(self, v: Option<&Value>) -> u64 {
        match v {
            Some(Value::String(s)) => self.count(s),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Number(_) => 1,
                    Value::Array(ids) if ids.iter().all(Value::is_number) => ids.len() as u64,
                    other => self.text_in(Some(other)),
                })
                .sum(),
            other => self.text_in(other),
        }
    }

    /// Text anywhere in a content value: a string, or parts/blocks with `text` (including
    /// nested `tool_result` content and Responses input items).
    fn text_in(self, v: Option<&Value>) -> u64 {
        match v {
            Some(Value::String(s)) => self.count(s),
            Some(Value::Array(items)) => items.iter().map(|i| self.text_in(Some(i))).sum(),
            Some(Value::Object(o)) => {
                o.get("text")
                    .and_then(Value::as_str)
                    .map_or(0, |t| self.count(t))
                    + self.text_in(o.get("content"))
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_their_encodings() {
        let auto = Tokenizer::Auto;
        assert_eq!(Counter::for_model(auto, "gpt-4o-mini"), Counter::O200k);
        assert_eq!(Counter::for_model(auto, "gpt-4"), Counter::Cl100k);
        assert_eq!(Counter::for_model(auto, "llama3:8b"), Counter::Estimate);
        assert_eq!(
            Counter::for_model(Tokenizer::Cl100k, "llama3"),
            Counter::Cl100k
        );
    }

    #[test]
    fn known_counts() {
        // Values from tiktoken: "hello world" is two tokens in both encodings.
        assert_eq!(Counter::O200k.count("hello world"), 2);
        assert_eq!(Counter::Cl100k.count("hello world"), 2);
        assert_eq!(Counter::Estimate.count("hello world"), 4);
        assert_eq!(Counter::O200k.count(""), 0);
    }
}
