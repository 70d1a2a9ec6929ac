//! A bounded YAML reader: the first document of a YAML text as a `serde_json::Value`.
//!
//! Built on `yaml-rust2`'s event parser (not its loader, which recurses once per nesting level
//! and expands aliases by copying), so nesting depth and node count are capped here
//! ([`MAX_DEPTH`], [`MAX_NODES`]) and aliases are refused: OSV records, `pnpm-lock.yaml` and
//! `environment.yml` never need them, and refusing them rules out "billion laughs" expansion.
//!
//! Scalars stay strings (`1.10` is the version "1.10", not the float 1.1); only the plain
//! scalars `null`/`~`/empty, `true` and `false` become JSON null and booleans.

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, sequences, mappings) in one document.
pub const MAX_NODES: usize = 2_000_000;

/// Why a YAML text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// Parses the first document of `text`. An empty text is `null`.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| YamlError {
            line: e.marker().line() as u64,
            message: e.info().to_owned(),
        })?;
        let line = mark.line() as u64;
        let err = |message: &str| YamlError {
            line,
            message: message.to_owned(),
        };
        let finished = match event {
            Event::StreamEnd | Event::DocumentEnd => return Ok(Value::Null),
            Event::Nothing | Event::StreamStart | Event::DocumentStart => continue,
            Event::Alias(_) => {
                return Err(err(
                    "YAML aliases are not accepted here (no lockfile or advisory needs them)",
                ));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(&format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map(Map::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Some(Value::Array(items)),
                Some(Frame::Map(map, _)) => Some(Value::Object(map)),
                None => return Err(err("unbalanced YAML structure")),
            },
            Event::Scalar(text, style, _, _) => Some(scalar(text, style)),
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(err(&format!("more than {MAX_NODES} YAML nodes")));
        }
        let Some(value) = finished else { continue };
        match stack.last_mut() {
            None => return Ok(value),
            Some(Frame::Seq(items)) => items.push(value),
            Some(Frame::Map(map, key)) => match key.take() {
                None => *key = Some(key_string(value)),
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
    }
}

fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => Value::String(text),
    }
}

fn key_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
