//! safetensors: an 8-byte little-endian header length, a JSON header naming every tensor's
//! dtype, shape and `data_offsets` into the data region that follows, and the data itself.
//!
//! The format cannot carry code, so a finding here means the file is malformed in a way that the
//! reference loader refuses or that a less careful loader would mis-read (out-of-range offsets,
//! overlapping tensors, hidden trailing bytes, duplicate names resolved differently by different
//! JSON parsers). Only the header is read: the scan costs O(header), whatever the file size.
//!
//! Severities: data offsets outside the file are `high` (a loader that trusts them reads out of
//! bounds); every other inconsistency is `medium` or `low` (the reference loader rejects it, and
//! no writer produces it, so someone crafted or damaged the file).

use std::collections::HashSet;

use aigis_report::{Evidence, Finding, Severity};
use serde_json::Value;

use super::bounded::{self, ReadError};
use super::json_entries::Entries;
use crate::{Input, Origin, Outcome};

/// The largest header the reference implementation accepts (`MAX_HEADER_SIZE`).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
const N_LEN: u64 = 8;

const FIX: &str = "re-export the tensors with the reference `safetensors` library from a \
                   trusted copy of the weights; do not load this file with a custom reader";

/// Whether `prefix` starts like a safetensors file: a plausible header length followed by `{`.
pub fn sniff(prefix: &[u8]) -> bool {
    let Some(len) = prefix.get(..8).and_then(|b| b.try_into().ok()) else {
        return false;
    };
    let n = u64::from_le_bytes(len);
    (2..=MAX_HEADER_LEN).contains(&n) && prefix.get(8) == Some(&b'{')
}

/// Scans the header of a safetensors file.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    let header = match read_header(input) {
        Ok(h) => h,
        Err(HeaderError::Malformed(finding)) => {
            let reason = format!(
                "the safetensors header is unreadable: {}",
                finding.message()
            );
            out.findings.push(*finding);
            out.not_scanned.push(origin.not_scanned(reason));
            return out;
        }
        Err(HeaderError::Read(e)) => {
            out.not_scanned.push(origin.not_scanned(e.to_string()));
            return out;
        }
    };
    // read_header checked that 8 + header length fits in the input.
    let data_len = input.len.saturating_sub(N_LEN + header.len);
    check_entries(
        &header.entries,
        data_len,
        N_LEN + header.len,
        &origin,
        &mut out,
    );
    out
}

struct Header {
    len: u64,
    entries: Vec<(String, Value)>,
}

enum HeaderError {
    Read(ReadError),
    Malformed(Box<Finding>),
}

fn malformed(origin: &Origin, offset: u64, what: &str) -> HeaderError {
    HeaderError::Malformed(Box::new(
        Finding::new(
            "AIG-SAFETENSORS-001",
            Severity::Medium,
            format!("safetensors header is malformed: {what}"),
            origin.at(offset),
        )
        .with_help(FIX),
    ))
}

fn read_header(input: &mut Input<'_>) -> Result<Header, HeaderError> {
    let origin = input.origin.clone();
    let n_bytes = bounded::read_at(input, 0, N_LEN, N_LEN, "safetensors header length")
        .map_err(HeaderError::Read)?;
    let mut len_le = [0; 8];
    len_le.copy_from_slice(&n_bytes);
    let len = u64::from_le_bytes(len_le);
    if len > MAX_HEADER_LEN {
        return Err(malformed(
            &origin,
            0,
            &format!(
                "header length {len} is above the reference loader's {MAX_HEADER_LEN}-byte limit"
            ),
        ));
    }
    if N_LEN.checked_add(len).is_none_or(|end| end > input.len) {
        return Err(malformed(
            &origin,
            0,
            &format!(
                "header length {len} runs past the end of the {}-byte file",
                input.len
            ),
        ));
    }
    let bytes = bounded::read_at(input, N_LEN, len, MAX_HEADER_LEN, "safetensors JSON header")
        .map_err(HeaderError::Read)?;
    if bytes.first() != Some(&b'{') {
        return Err(malformed(
            &origin,
            N_LEN,
            "the JSON header does not start with `{`",
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        malformed(
            &origin,
            N_LEN + e.valid_up_to() as u64,
            "header is not UTF-8",
        )
    })?;
    let parsed: Entries = serde_json::from_str(text)
        .map_err(|e| malformed(&origin, N_LEN, &format!("header is not a JSON object: {e}")))?;
    Ok(Header {
        len,
        entries: parsed.entries,
    })
}

/// A tensor entry that passed the shape checks: its name and byte range in the data region.
struct Span {
    name: String,
    begin: u64,
    end: u64,
}

fn check_entries(
    entries: &[(String, Value)],
    data_len: u64,
    data_start: u64,
    origin: &Origin,
    out: &mut Outcome,
) {
    let at_header = |key: &str| origin.at(N_LEN).with_key_path(pointer(key));
    let mut spans = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in entries {
        if !seen.insert(name.as_str()) {
            out.findings.push(
                Finding::new(
                    "AIG-SAFETENSORS-002",
                    Severity::Medium,
                    format!(
                        "the header names `{name}` twice; JSON parsers disagree on which entry wins"
                    ),
                    at_header(name),
                )
                .with_evidence(Evidence::text(format!("duplicate key {name:?}")))
                .with_help(FIX),
            );
        }
        if name == "__metadata__" {
            check_metadata(value, origin, out);
            continue;
        }
        match tensor_span(name, value) {
            Ok(span) => spans.push(span),
            Err((rule, severity, why)) => out.findings.push(
                Finding::new(
                    rule,
                    severity,
                    format!("tensor `{name}`: {why}"),
                    at_header(name),
                )
                .with_evidence(Evidence::text(value.to_string()))
                .with_help(FIX),
            ),
        }
    }
    check_layout(&mut spans, data_len, data_start, origin, out);
}

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn check_metadata(value: &Value, origin: &Origin, out: &mut Outcome) {
    let ok = value
        .as_object()
        .is_some_and(|m| m.values().all(Value::is_string));
    if !ok {
        out.findings.push(
            Finding::new(
                "AIG-SAFETENSORS-003",
                Severity::Low,
                "`__metadata__` is not a map of strings to strings; the reference loader rejects it",
                origin.at(N_LEN).with_key_path("/__metadata__"),
            )
            .with_evidence(Evidence::text(value.to_string()))
            .with_help(FIX),
        );
    }
}

type Problem = (&'static str, Severity, String);

/// Size in bits of one element of each dtype the reference implementation knows.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

fn tensor_span(name: &str, value: &Value) -> Result<Span, Problem> {
    let bad = |why: &str| ("AIG-SAFETENSORS-004", Severity::Medium, why.to_owned());
    let obj = value
        .as_object()
        .ok_or_else(|| bad("entry is not an object"))?;
    let dtype = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`dtype` is missing or not a string"))?;
    let bits = dtype_bits(dtype).ok_or_else(|| {
        (
            "AIG-SAFETENSORS-005",
            Severity::Medium,
            format!("unknown dtype `{dtype}`"),
        )
    })?;
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`shape` is missing or not a list"))?;
    let dims: Option<Vec<u64>> = shape.iter().map(Value::as_u64).collect();
    let dims =
        dims.ok_or_else(|| bad("`shape` holds something other than non-negative integers"))?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|a| match a.as_slice() {
            [b, e] => Some((b.as_u64()?, e.as_u64()?)),
            _ => None,
        })
        .ok_or_else(|| bad("`data_offsets` is not a pair of non-negative integers"))?;
    let size_problem = |why: String| ("AIG-SAFETENSORS-006", Severity::Medium, why);
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| size_problem(format!("shape {dims:?} overflows 64 bits")))?;
    let total_bits = elements
        .checked_mul(bits)
        .ok_or_else(|| size_problem(format!("shape {dims:?} of {dtype} overflows 64 bits")))?;
    if total_bits % 8 != 0 {
        return Err(size_problem(format!(
            "{elements} elements of {dtype} do not fill whole bytes"
        )));
    }
    let (begin, end) = offsets;
    if end < begin {
        return Err((
            "AIG-SAFETENSORS-007",
            Severity::High,
            format!("data_offsets [{begin}, {end}] end before they begin"),
        ));
    }
    if end - begin != total_bits / 8 {
        return Err(size_problem(format!(
            "data_offsets [{begin}, {end}] span {} bytes but shape {dims:?} of {dtype} needs {}",
            end - begin,
            total_bits / 8
        )));
    }
    Ok(Span {
        name: name.to_owned(),
        begin,
        end,
    })
}

fn check_layout(
    spans: &mut [Span],
    data_len: u64,
    data_start: u64,
    origin: &Origin,
    out: &mut Outcome,
) {
    spans.sort_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    let mut cursor = 0u64;
    let mut previous: Option<&str> = None;
    for span in spans.iter() {
        let at = origin.at(data_start.saturating_add(span.begin));
        if span.end > data_len {
            out.findings.push(
                Finding::new(
                    "AIG-SAFETENSORS-007",
                    Severity::High,
                    format!(
                        "tensor `{}` data [{}, {}] runs past the end of the {data_len}-byte data region",
                        span.name, span.begin, span.end
                    ),
                    at.clone(),
                )
                .with_evidence(Evidence::text(format!("data_offsets [{}, {}]", span.begin, span.end)))
                .with_help(FIX)
                .with_tag("out-of-bounds"),
            );
        }
        if span.begin < cursor {
            out.findings.push(
                Finding::new(
                    "AIG-SAFETENSORS-008",
                    Severity::Medium,
                    format!(
                        "tensor `{}` data [{}, {}] overlaps tensor `{}` (which ends at {cursor})",
                        span.name,
                        span.begin,
                        span.end,
                        previous.unwrap_or("?")
                    ),
                    at,
                )
                .with_help(FIX),
            );
        } else if span.begin > cursor {
            out.findings.push(
                Finding::new(
                    "AIG-SAFETENSORS-009",
                    Severity::Low,
                    format!(
                        "{} unreferenced bytes before tensor `{}` (data [{cursor}, {}]); the reference loader requires contiguous tensors",
                        span.begin - cursor,
                        span.name,
                        span.begin
                    ),
                    origin.at(data_start.saturating_add(cursor)),
                )
                .with_help(FIX),
            );
        }
        if span.end >= cursor {
            cursor = span.end;
            previous = Some(&span.name);
        }
    }
    if cursor < data_len {
        out.findings.push(
            Finding::new(
                "AIG-SAFETENSORS-010",
                Severity::Medium,
                format!(
                    "{} bytes after the last tensor are not referenced by the header (hidden payload or a polyglot file)",
                    data_len - cursor
                ),
                origin.at(data_start.saturating_add(cursor)),
            )
            .with_help(FIX),
        );
    }
}

#[cfg(test)]
mod tests;
