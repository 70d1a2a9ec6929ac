//! GGUF (llama.cpp) v1–v3, either byte order: the header, every metadata key/value (all value
//! types, nested arrays), and every tensor info. Tensor data is never read, so a multi-GB model
//! scans in the time it takes to read its header and vocabulary.
//!
//! Checks: declared counts and lengths against caps and against the bytes actually left in the
//! file (the shape of the 2024 heap overflows in GGUF readers), duplicate keys and tensor
//! names, `general.alignment`, tensor dimensions, types, offsets (aligned, inside the file, not
//! overlapping), and every `tokenizer.chat_template*` string through the Jinja analysis. A
//! vocab-only file with zero tensors is normal.

use std::collections::HashSet;

use aigis_report::{Evidence, Finding, Severity};

use super::bounded::{ReadError, Stream};
use super::chat_template;
use crate::{Input, Origin, Outcome};

/// Metadata entries accepted; more is treated as a crafted header.
pub const MAX_KV: u64 = 1 << 20;
/// Tensor infos accepted.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Longest key or tensor name read into memory.
pub const MAX_NAME_LEN: u64 = 1 << 16;
/// Bytes of keys and tensor names held in memory in all (real models hold well under 1 MiB).
pub const MAX_NAME_BYTES: u64 = 256 * 1024 * 1024;
/// Nesting depth of arrays inside arrays.
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Dimensions of a tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// The alignment of the data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

const FIX: &str = "do not load this file; download the model again from a trusted source and \
                   compare its checksum with the publisher's";
const TEMPLATE_FIX: &str = "do not serve this model; replace the chat template with the \
                            publisher's original, and render templates only in a sandboxed \
                            Jinja environment (llama-cpp-python >= 0.2.72)";

/// Whether `prefix` starts with the GGUF magic.
pub fn sniff(prefix: &[u8]) -> bool {
    prefix.starts_with(b"GGUF")
}

/// Scans a GGUF header.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let origin = input.origin.clone();
    let mut scan = Scan {
        origin,
        out: Outcome::default(),
        alignment: DEFAULT_ALIGNMENT,
        names: 0,
    };
    match Stream::new(input, 0) {
        Ok(stream) => {
            let mut reader = Reader {
                stream,
                be: false,
                v1: false,
            };
            if let Err(stop) = scan.header(&mut reader) {
                scan.stop(stop);
            }
        }
        Err(e) => scan.stop(Stop::Read(e)),
    }
    scan.out
}

/// Why parsing stopped early.
enum Stop {
    Read(ReadError),
    /// A structural violation: report it as a finding and as not scanned.
    Invalid {
        offset: u64,
        severity: Severity,
        message: String,
    },
}

fn invalid(offset: u64, severity: Severity, message: impl Into<String>) -> Stop {
    Stop::Invalid {
        offset,
        severity,
        message: message.into(),
    }
}

struct Reader<'a> {
    stream: Stream<'a>,
    be: bool,
    v1: bool,
}

impl Reader<'_> {
    fn u32(&mut self, what: &'static str) -> Result<u32, ReadError> {
        let b = self.stream.array::<4>(what)?;
        Ok(if self.be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let b = self.stream.array::<8>(what)?;
        Ok(if self.be {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A count or length: 32 bits in v1, 64 bits after.
    fn len(&mut self, what: &'static str) -> Result<u64, ReadError> {
        if self.v1 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    fn remaining(&self) -> u64 {
        self.stream.len().saturating_sub(self.stream.pos())
    }

    /// A string's declared length, refused when it runs past the end of the file.
    fn string_len(&mut self, what: &'static str) -> Result<u64, Stop> {
        let at = self.stream.pos();
        let len = self.len(what).map_err(Stop::Read)?;
        if len > self.remaining() {
            return Err(invalid(
                at,
                Severity::High,
                format!(
                    "{what} declares {len} bytes but only {} remain in the file",
                    self.remaining()
                ),
            ));
        }
        Ok(len)
    }

    fn string(&mut self, max: u64, what: &'static str) -> Result<String, Stop> {
        let len = self.string_len(what)?;
        let bytes = self.stream.bytes(len, max, what).map_err(Stop::Read)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Value types of the GGUF spec.
mod ty {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

fn scalar_size(t: u32) -> Option<u64> {
    Some(match t {
        ty::U8 | ty::I8 | ty::BOOL => 1,
        ty::U16 | ty::I16 => 2,
        ty::U32 | ty::I32 | ty::F32 => 4,
        ty::U64 | ty::I64 | ty::F64 => 8,
        _ => return None,
    })
}

/// (block size in elements, bytes per block) of a ggml tensor type, or `None` for a type this
/// scanner does not know (the interop test checks the table against the `gguf` package's).
pub fn ggml_block(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 | 26 => (1, 4),      // F32, I32
        1 | 30 | 25 => (1, 2), // F16, BF16, I16
        2 | 20 => (32, 18),    // Q4_0, IQ4_NL
        3 => (32, 20),         // Q4_1
        6 => (32, 22),         // Q5_0
        7 => (32, 24),         // Q5_1
        8 => (32, 34),         // Q8_0
        9 => (32, 40),         // Q8_1
        10 => (256, 84),       // Q2_K
        11 | 21 => (256, 110), // Q3_K, IQ3_S
        12 => (256, 144),      // Q4_K
        13 => (256, 176),      // Q5_K
        14 => (256, 210),      // Q6_K
        15 => (256, 292),      // Q8_K
        16 | 35 => (256, 66),  // IQ2_XXS, TQ2_0
        17 => (256, 74),       // IQ2_XS
        18 => (256, 98),       // IQ3_XXS
        19 => (256, 50),       // IQ1_S
        22 => (256, 82),       // IQ2_S
        23 => (256, 136),      // IQ4_XS
        24 => (1, 1),          // I8
        27 | 28 => (1, 8),     // I64, F64
        29 => (256, 56),       // IQ1_M
        34 => (256, 54),       // TQ1_0
        39 => (32, 17),        // MXFP4
        40 => (64, 36),        // NVFP4
        41 => (128, 18),       // Q1_0
        _ => return None,
    })
}

struct TensorInfo {
    name: String,
    at: u64,
    offset: u64,
    /// Bytes of data, when the type is known and the shape is consistent.
    size: Option<u64>,
}

struct Scan {
    origin: Origin,
    out: Outcome,
    alignment: u64,
    /// Bytes of keys and tensor names held so far (duplicate detection keeps them).
    names: u64,
}

impl Scan {
    fn stop(&mut self, stop: Stop) {
        match stop {
            Stop::Read(e) => {
                self.out.findings.push(
                    Finding::new(
                        "AIG-GGUF-001",
                        Severity::Medium,
                        format!("GGUF header is truncated or unreadable: {e}"),
                        self.origin.location(),
                    )
                    .with_help(FIX),
                );
                self.out
                    .not_scanned
                    .push(self.origin.not_scanned(format!("GGUF header: {e}")));
            }
            Stop::Invalid {
                offset,
                severity,
                message,
            } => {
                self.out.findings.push(
                    Finding::new(
                        "AIG-GGUF-002",
                        severity,
                        format!("GGUF header: {message}"),
                        self.origin.at(offset),
                    )
                    .with_help(FIX)
                    .with_tag("parser-exploit"),
                );
                self.out.not_scanned.push(self.origin.not_scanned(format!(
                    "GGUF header parsing stopped at byte {offset}: {message}"
                )));
            }
        }
    }

    fn finding(
        &mut self,
        rule: &str,
        severity: Severity,
        message: String,
        offset: u64,
        evidence: Option<String>,
    ) {
        let mut f = Finding::new(rule, severity, message, self.origin.at(offset)).with_help(FIX);
        if let Some(e) = evidence {
            f = f.with_evidence(Evidence::text(e));
        }
        self.out.findings.push(f);
    }

    /// Accounts for a key or name kept in memory, refusing more than [`MAX_NAME_BYTES`] in all.
    fn hold(&mut self, name: &str, at: u64) -> Result<(), Stop> {
        self.names = self.names.saturating_add(name.len() as u64);
        if self.names > MAX_NAME_BYTES {
            return Err(invalid(
                at,
                Severity::Medium,
                format!("keys and tensor names exceed {MAX_NAME_BYTES} bytes in all"),
            ));
        }
        Ok(())
    }

    fn header(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        let magic = r.stream.array::<4>("GGUF magic").map_err(Stop::Read)?;
        if &magic != b"GGUF" {
            return Err(invalid(
                0,
                Severity::Medium,
                "the file does not start with the GGUF magic",
            ));
        }
        let raw = r.stream.array::<4>("GGUF version").map_err(Stop::Read)?;
        let (le, be) = (u32::from_le_bytes(raw), u32::from_be_bytes(raw));
        let version = if (1..=3).contains(&le) {
            le
        } else if (1..=3).contains(&be) {
            r.be = true;
            be
        } else {
            return Err(invalid(
                4,
                Severity::Medium,
                format!("unsupported GGUF version {le}"),
            ));
        };
        r.v1 = version == 1;
        let tensors = r.len("tensor count").map_err(Stop::Read)?;
        let kvs = r.len("metadata count").map_err(Stop::Read)?;
        // A tensor info is at least a name length, a dimension count, a type and an offset; a
        // key/value at least a key length, a type and one byte of value.
        let len_size: u64 = if r.v1 { 4 } else { 8 };
        for (count, max, min_size, what, at) in [
            (tensors, MAX_TENSORS, len_size + 16, "tensor count", 8),
            (kvs, MAX_KV, len_size + 5, "metadata count", 8 + len_size),
        ] {
            if count > max || count.saturating_mul(min_size) > r.remaining() {
                return Err(invalid(
                    at,
                    Severity::High,
                    format!(
                        "{what} {count} is impossible for a {}-byte file (limit {max})",
                        r.stream.len()
                    ),
                ));
            }
        }
        self.metadata(r, kvs)?;
        let infos = self.tensor_infos(r, tensors)?;
        self.check_tensors(r, &infos);
        Ok(())
    }

    fn metadata(&mut self, r: &mut Reader<'_>, count: u64) -> Result<(), Stop> {
        let mut keys = HashSet::new();
        for _ in 0..count {
            let at = r.stream.pos();
            let key = r.string(MAX_NAME_LEN, "metadata key")?;
            self.hold(&key, at)?;
            let value_at = r.stream.pos();
            let t = r.u32("metadata value type").map_err(Stop::Read)?;
            if !keys.insert(key.clone()) {
                self.finding(
                    "AIG-GGUF-003",
                    Severity::Medium,
                    format!(
                        "metadata key `{key}` appears twice; readers disagree on which value wins"
                    ),
                    at,
                    None,
                );
            }
            if key == "general.alignment" {
                self.alignment_value(r, t, value_at)?;
            } else if key == "tokenizer.chat_template"
                || key.starts_with("tokenizer.chat_template.")
            {
                self.template_value(r, t, &key, value_at)?;
            } else {
                skip_value(r, t, 0)?;
            }
        }
        Ok(())
    }

    fn alignment_value(&mut self, r: &mut Reader<'_>, t: u32, at: u64) -> Result<(), Stop> {
        if t != ty::U32 {
            skip_value(r, t, 0)?;
            self.finding(
                "AIG-GGUF-004",
                Severity::Medium,
                format!("`general.alignment` has value type {t}, not uint32"),
                at,
                None,
            );
            return Ok(());
        }
        let value = r.u32("general.alignment").map_err(Stop::Read)?;
        if value == 0 || !value.is_power_of_two() {
            self.finding(
                "AIG-GGUF-004",
                Severity::Medium,
                format!("`general.alignment` is {value}, not a power of two"),
                at,
                None,
            );
        } else {
            self.alignment = u64::from(value);
        }
        Ok(())
    }

    fn template_value(
        &mut self,
        r: &mut Reader<'_>,
        t: u32,
        key: &str,
        at: u64,
    ) -> Result<(), Stop> {
        if t != ty::STRING {
            return skip_value(r, t, 0);
        }
        let len = r.string_len("chat template")?;
        let max = chat_template::MAX_TEMPLATE_LEN as u64;
        if len > max {
            r.stream.skip(len, "chat template").map_err(Stop::Read)?;
            self.out.not_scanned.push(self.origin.not_scanned(format!(
                "`{key}` at byte {at} is {len} bytes, above the {max}-byte template limit"
            )));
            return Ok(());
        }
        let bytes = r
            .stream
            .bytes(len, max, "chat template")
            .map_err(Stop::Read)?;
        let template = String::from_utf8_lossy(&bytes);
        let location = self.origin.at(at).with_key_path(format!("/{key}"));
        self.out.merge(super::template_findings(
            &template,
            &location,
            &self.origin,
            TEMPLATE_FIX,
        ));
        Ok(())
    }

    fn tensor_infos(&mut self, r: &mut Reader<'_>, count: u64) -> Result<Vec<TensorInfo>, Stop> {
        let mut infos = Vec::new();
        let mut names = HashSet::new();
        for _ in 0..count {
            let at = r.stream.pos();
            let name = r.string(MAX_NAME_LEN, "tensor name")?;
            self.hold(&name, at)?;
            let n_dims = r.u32("tensor dimension count").map_err(Stop::Read)?;
            if n_dims > MAX_DIMS {
                return Err(invalid(
                    at,
                    Severity::High,
                    format!(
                        "tensor `{name}` declares {n_dims} dimensions (ggml allows {MAX_DIMS})"
                    ),
                ));
            }
            let mut dims = Vec::new();
            for _ in 0..n_dims {
                dims.push(r.len("tensor dimension").map_err(Stop::Read)?);
            }
            let t = r.u32("tensor type").map_err(Stop::Read)?;
            let offset = r.u64("tensor offset").map_err(Stop::Read)?;
            if !names.insert(name.clone()) {
                self.finding(
                    "AIG-GGUF-005",
                    Severity::Medium,
                    format!("tensor `{name}` is declared twice"),
                    at,
                    None,
                );
            }
            let size = self.tensor_size(&name, &dims, t, at);
            infos.push(TensorInfo {
                name,
                at,
                offset,
                size,
            });
        }
        Ok(infos)
    }

    fn tensor_size(&mut self, name: &str, dims: &[u64], t: u32, at: u64) -> Option<u64> {
        let Some((block, type_size)) = ggml_block(t) else {
            self.finding(
                "AIG-GGUF-006",
                Severity::Low,
                format!("tensor `{name}` has ggml type {t}, unknown to this scanner; its size is not checked"),
                at,
                None,
            );
            return None;
        };
        let elements = dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
        let first = dims.first().copied().unwrap_or(1);
        let size = elements.and_then(|e| (e / block).checked_mul(type_size));
        if size.is_none() {
            self.finding(
                "AIG-GGUF-007",
                Severity::High,
                format!("tensor `{name}` shape {dims:?} overflows 64 bits (an integer-overflow exploit shape)"),
                at,
                Some(format!("dims {dims:?} type {t}")),
            );
        } else if first % block != 0 {
            self.finding(
                "AIG-GGUF-007",
                Severity::Medium,
                format!("tensor `{name}` first dimension {first} is not a multiple of its type's block size {block}"),
                at,
                Some(format!("dims {dims:?} type {t}")),
            );
            return None;
        }
        size
    }

    fn check_tensors(&mut self, r: &Reader<'_>, infos: &[TensorInfo]) {
        if infos.is_empty() {
            return;
        }
        let end_of_infos = r.stream.pos();
        let align = self.alignment;
        let data_start = end_of_infos
            .checked_add(align - 1)
            .map_or(u64::MAX, |v| v / align * align);
        let data_len = r.stream.len().saturating_sub(data_start);
        let mut spans = Vec::new();
        for info in infos {
            if info.offset % align != 0 {
                self.finding(
                    "AIG-GGUF-008",
                    Severity::Medium,
                    format!(
                        "tensor `{}` offset {} is not aligned to {align}",
                        info.name, info.offset
                    ),
                    info.at,
                    None,
                );
            }
            let Some(size) = info.size else { continue };
            match info.offset.checked_add(size) {
                Some(end) if end <= data_len => spans.push((info.offset, end, &info.name)),
                _ => self.finding(
                    "AIG-GGUF-009",
                    Severity::High,
                    format!(
                        "tensor `{}` data [{}, +{size}] runs past the end of the {data_len}-byte data section",
                        info.name, info.offset
                    ),
                    info.at,
                    Some(format!("offset {} size {size}", info.offset)),
                ),
            }
        }
        spans.sort();
        for pair in spans.windows(2) {
            if let [(_, end_a, a), (begin_b, _, b)] = pair
                && begin_b < end_a
            {
                let message = format!("tensor `{b}` data overlaps tensor `{a}`");
                self.finding(
                    "AIG-GGUF-010",
                    Severity::Medium,
                    message,
                    data_start.saturating_add(*begin_b),
                    None,
                );
            }
        }
    }
}

/// Skips a value of type `t` (arrays recursively), checking every declared length first.
fn skip_value(r: &mut Reader<'_>, t: u32, depth: usize) -> Result<(), Stop> {
    let at = r.stream.pos();
    if let Some(size) = scalar_size(t) {
        return r.stream.skip(size, "metadata value").map_err(Stop::Read);
    }
    match t {
        ty::STRING => {
            let len = r.string_len("metadata string")?;
            r.stream.skip(len, "metadata string").map_err(Stop::Read)
        }
        ty::ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(invalid(
                    at,
                    Severity::Medium,
                    format!("arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
                ));
            }
            let item = r.u32("array item type").map_err(Stop::Read)?;
            let count_at = r.stream.pos();
            let count = r.len("array length").map_err(Stop::Read)?;
            let min_item =
                scalar_size(item).unwrap_or(if item == ty::STRING || item == ty::ARRAY {
                    if r.v1 { 4 } else { 8 }
                } else {
                    1
                });
            let total = count.checked_mul(min_item);
            if total.is_none_or(|t| t > r.remaining()) {
                return Err(invalid(
                    count_at,
                    Severity::High,
                    format!(
                        "array of {count} items of type {item} cannot fit in the {} bytes left",
                        r.remaining()
                    ),
                ));
            }
            if scalar_size(item).is_some() {
                return r
                    .stream
                    .skip(total.unwrap_or(0), "array data")
                    .map_err(Stop::Read);
            }
            for _ in 0..count {
                skip_value(r, item, depth + 1)?;
            }
            Ok(())
        }
        _ => Err(invalid(
            at,
            Severity::Medium,
            format!("unknown metadata value type {t}"),
        )),
    }
}

#[cfg(test)]
mod tests;
