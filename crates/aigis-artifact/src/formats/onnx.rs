//! ONNX `ModelProto`: operator domains and external-data locations, read with the streaming
//! protobuf reader (initializer bytes are skipped, never loaded).
//!
//! - **Custom operators** (`medium`): a node whose domain is not ONNX's (`""`, `ai.onnx*`), not
//!   an onnxruntime built-in (`com.microsoft*`, `com.ms.internal.*`, `org.pytorch.aten`) and not a
//!   function defined in the model. Running it needs a custom-op shared library registered with
//!   the runtime: native code that ships beside the model.
//! - **External data** (`high`): a tensor's `location` that is absolute, climbs out of the
//!   model's directory with `..` (CVE-2024-27318/27319 shape: the loader reads, and a saver
//!   writes, files anywhere), or, for a model on disk, resolves through a symlink outside it.
//!
//! Subgraphs (`If`/`Loop`/`Scan` attributes), model-local functions and training graphs are
//! walked too, to [`MAX_GRAPH_DEPTH`] levels.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path};

use aigis_report::{Evidence, Finding, Severity};

use super::bounded::Stream;
use super::protobuf::{Field, Wire, WireError};
use crate::{Input, Origin, Outcome};

/// Subgraph nesting followed.
pub const MAX_GRAPH_DEPTH: usize = 32;
/// Distinct (domain, op type) pairs, local functions and external-data tensors remembered; a
/// model with more is refused (real models have a few hundred at most).
pub const MAX_ENTRIES: usize = 1 << 16;

const OP_FIX: &str = "load this model only with the custom-op library from its publisher, \
                      after reviewing it; prefer models that use standard ONNX operators";
const PATH_FIX: &str = "do not load or re-save this model: its external data points outside \
                        the model directory; onnx >= 1.16's checker rejects such paths";

/// Whether `prefix` looks like an ONNX model: a `ModelProto` starting with `ir_version` (field
/// 1, varint) followed by a known field.
pub fn sniff(prefix: &[u8]) -> bool {
    matches!(prefix, [0x08, v, next, ..] if *v > 0 && *v < 0x20 && matches!(next, 0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42))
}

#[derive(Default)]
struct Model {
    /// (domain, op_type) -> (first offset, count)
    ops: BTreeMap<(String, String), (u64, u64)>,
    /// Functions defined in the model: (domain, name).
    functions: HashSet<(String, String)>,
    /// (tensor name, location, offset)
    externals: Vec<(String, String, u64)>,
}

/// Scans an ONNX model.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let origin = input.origin.clone();
    let mut out = Outcome::default();
    let mut model = Model::default();
    let len = input.len;
    let result = Stream::new(input, 0)
        .map_err(WireError::from)
        .and_then(|s| {
            let mut w = Wire::new(s);
            model_proto(&mut w, len, &mut model)
        });
    if let Err(e) = result {
        out.not_scanned
            .push(origin.not_scanned(format!("ONNX model: {e}")));
    }
    report(&model, &origin, &mut out);
    out
}

fn model_proto(w: &mut Wire<'_>, end: u64, m: &mut Model) -> Result<(), WireError> {
    while let Some((n, f)) = w.next(end)? {
        match n {
            7 => graph(w, f, m, 0)?,
            20 => {
                // TrainingInfoProto: initialization (1) and algorithm (2) graphs.
                let end = w.sub_end(f)?;
                while let Some((n, f)) = w.next(end)? {
                    match n {
                        1 | 2 => graph(w, f, m, 1)?,
                        _ => w.skip(f)?,
                    }
                }
            }
            25 => function(w, f, m)?,
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn graph(w: &mut Wire<'_>, f: Field, m: &mut Model, depth: usize) -> Result<(), WireError> {
    if depth > MAX_GRAPH_DEPTH {
        return Err(WireError::Malformed {
            offset: w.pos(),
            message: format!("subgraphs nested deeper than {MAX_GRAPH_DEPTH}"),
        });
    }
    let end = w.sub_end(f)?;
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 => node(w, f, m, depth)?,
            5 => tensor(w, f, m)?,
            15 => sparse_tensor(w, f, m)?,
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn function(w: &mut Wire<'_>, f: Field, m: &mut Model) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    let (mut name, mut domain) = (String::new(), String::new());
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 => name = w.string(f)?,
            10 => domain = w.string(f)?,
            7 => node(w, f, m, 1)?,
            _ => w.skip(f)?,
        }
    }
    if m.functions.len() >= MAX_ENTRIES {
        return Err(too_many(w, "functions"));
    }
    m.functions.insert((domain, name));
    Ok(())
}

fn node(w: &mut Wire<'_>, f: Field, m: &mut Model, depth: usize) -> Result<(), WireError> {
    let at = w.pos();
    let end = w.sub_end(f)?;
    let (mut op, mut domain) = (String::new(), String::new());
    while let Some((n, f)) = w.next(end)? {
        match n {
            4 => op = w.string(f)?,
            7 => domain = w.string(f)?,
            5 => attribute(w, f, m, depth)?,
            _ => w.skip(f)?,
        }
    }
    if !m.ops.contains_key(&(domain.clone(), op.clone())) && m.ops.len() >= MAX_ENTRIES {
        return Err(too_many(w, "distinct operators"));
    }
    m.ops.entry((domain, op)).or_insert((at, 0)).1 += 1;
    Ok(())
}

fn attribute(w: &mut Wire<'_>, f: Field, m: &mut Model, depth: usize) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    while let Some((n, f)) = w.next(end)? {
        match n {
            5 | 10 => tensor(w, f, m)?,
            6 | 11 => graph(w, f, m, depth + 1)?,
            22 | 23 => sparse_tensor(w, f, m)?,
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn sparse_tensor(w: &mut Wire<'_>, f: Field, m: &mut Model) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 | 2 => tensor(w, f, m)?,
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn tensor(w: &mut Wire<'_>, f: Field, m: &mut Model) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    let mut name = String::new();
    let mut location: Option<(String, u64)> = None;
    while let Some((n, f)) = w.next(end)? {
        match (n, f) {
            (8, _) => name = w.string(f)?,
            (13, _) => {
                let at = w.pos();
                let end = w.sub_end(f)?;
                let (mut key, mut value) = (String::new(), String::new());
                while let Some((n, f)) = w.next(end)? {
                    match n {
                        1 => key = w.string(f)?,
                        2 => value = w.string(f)?,
                        _ => w.skip(f)?,
                    }
                }
                if key == "location" {
                    location = Some((value, at));
                }
            }
            _ => w.skip(f)?,
        }
    }
    if let Some((loc, at)) = location {
        if m.externals.len() >= MAX_ENTRIES {
            return Err(too_many(w, "external-data tensors"));
        }
        m.externals.push((name, loc, at));
    }
    Ok(())
}

fn too_many(w: &Wire<'_>, what: &str) -> WireError {
    WireError::Malformed {
        offset: w.pos(),
        message: format!("more than {MAX_ENTRIES} {what}"),
    }
}

fn is_standard_domain(domain: &str) -> bool {
    domain.is_empty()
        || domain == "ai.onnx"
        || domain.starts_with("ai.onnx.")
        || domain == "com.microsoft"
        || domain.starts_with("com.microsoft.")
        || domain.starts_with("com.ms.internal.")
        || domain == "org.pytorch.aten"
}

fn report(m: &Model, origin: &Origin, out: &mut Outcome) {
    for ((domain, op), (at, count)) in &m.ops {
        if is_standard_domain(domain) || m.functions.contains(&(domain.clone(), op.clone())) {
            continue;
        }
        out.findings.push(
            Finding::new(
                "AIG-ONNX-001",
                Severity::Medium,
                format!("custom operator `{op}` in domain `{domain}` ({count} node(s)) needs a native custom-op library to run"),
                origin.at(*at),
            )
            .with_evidence(Evidence::text(format!("domain={domain} op_type={op}")))
            .with_help(OP_FIX)
            .with_tag("native-code"),
        );
    }
    for (name, location, at) in &m.externals {
        if let Some(why) = escape_reason(location, origin) {
            out.findings.push(
                Finding::new(
                    "AIG-ONNX-002",
                    Severity::High,
                    format!("tensor `{name}` external data location {why}"),
                    origin.at(*at),
                )
                .with_evidence(Evidence::text(format!("location={location}")))
                .with_help(PATH_FIX)
                .with_tag("path-traversal"),
            );
        }
    }
}

/// Why an external-data location escapes the model directory, if it does.
fn escape_reason(location: &str, origin: &Origin) -> Option<String> {
    let bytes = location.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if location.starts_with(['/', '\\']) || drive || location.contains("://") {
        return Some("is an absolute path or URL".into());
    }
    if location.split(['/', '\\']).any(|c| c == "..") {
        return Some("climbs out of the model directory with `..`".into());
    }
    if location.is_empty() {
        return Some("is empty".into());
    }
    // For a model file on disk, follow symlinks the way the loader would.
    if origin.member.is_none() {
        let dir = Path::new(&origin.file).parent()?;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let target = dir.join(location);
        let mut walked = dir.to_path_buf();
        for c in Path::new(location).components() {
            if let Component::Normal(part) = c {
                walked.push(part);
                if std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink()) {
                    let resolved = std::fs::canonicalize(&target).ok();
                    let base = std::fs::canonicalize(dir).ok();
                    let inside =
                        matches!((&resolved, &base), (Some(r), Some(b)) if r.starts_with(b));
                    if !inside {
                        return Some(format!(
                            "goes through the symlink `{}`, which leads outside the model directory",
                            walked.display()
                        ));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
