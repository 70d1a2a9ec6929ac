//! TensorFlow SavedModel (`saved_model.pb`): every `NodeDef` op in every meta graph and in the
//! function library, read with the streaming protobuf reader.
//!
//! A SavedModel cannot carry Python, but its graph runs whatever ops it names when served or
//! loaded: file reads and writes, directory listings, and bridges to Python. Each flagged op is
//! listed below with the reason. Checkpoint ops (`SaveV2`, `RestoreV2`, `ShardedFilename`, …)
//! are normal inside the model's own saver (the `save/` scope of a TF1 `saver_def`, TF2's
//! `__inference__traced_save_*` / `_traced_restore_*` functions) and flagged only elsewhere.

use std::collections::BTreeMap;

use aigis_report::{Evidence, Finding, Severity};

use super::bounded::Stream;
use super::protobuf::{Field, Wire, WireError};
use crate::{Input, Origin, Outcome};

const FIX: &str = "serve this model only after reviewing the graph (`saved_model_cli show \
                   --all`); rebuild it from source if the ops are not expected";

/// Ops flagged wherever they appear: (op, severity, reason).
const FLAGGED_OPS: &[(&str, Severity, &str)] = &[
    (
        "PyFunc",
        Severity::Critical,
        "calls a Python function in the serving process (tf.py_func graphs are not serialisable, so a saved one was crafted)",
    ),
    (
        "PyFuncStateless",
        Severity::Critical,
        "calls a Python function in the serving process",
    ),
    (
        "EagerPyFunc",
        Severity::Critical,
        "calls a Python function in the serving process (tf.py_function)",
    ),
    (
        "ReadFile",
        Severity::High,
        "reads any file the serving process can read into a tensor (exfiltration through outputs)",
    ),
    (
        "WriteFile",
        Severity::High,
        "writes a tensor to any path the serving process can write",
    ),
    (
        "WholeFileReader",
        Severity::High,
        "reads whole files named at run time",
    ),
    (
        "WholeFileReaderV2",
        Severity::High,
        "reads whole files named at run time",
    ),
    (
        "DatasetToTFRecord",
        Severity::High,
        "writes a dataset to a file path",
    ),
    (
        "ExperimentalDatasetToTFRecord",
        Severity::High,
        "writes a dataset to a file path",
    ),
    (
        "MatchingFiles",
        Severity::Medium,
        "lists files matching a glob (directory discovery)",
    ),
    (
        "ImmutableConst",
        Severity::Medium,
        "memory-maps a file named in the graph",
    ),
    (
        "PrintV2",
        Severity::Medium,
        "can print tensors to a file named in `output_stream`",
    ),
    (
        "DebugIdentity",
        Severity::Medium,
        "streams tensors to `debug_urls` (files or gRPC endpoints)",
    ),
    (
        "DebugIdentityV2",
        Severity::Medium,
        "streams tensors to debug dump directories",
    ),
    (
        "DebugIdentityV3",
        Severity::Medium,
        "streams tensors to `debug_urls` (files or gRPC endpoints)",
    ),
    (
        "DebugNanCount",
        Severity::Medium,
        "streams tensor statistics to `debug_urls`",
    ),
    (
        "DebugNumericSummary",
        Severity::Medium,
        "streams tensor statistics to `debug_urls`",
    ),
    (
        "DebugNumericSummaryV2",
        Severity::Medium,
        "streams tensor statistics to debug dump directories",
    ),
    (
        "CreateSummaryFileWriter",
        Severity::Medium,
        "opens an event file in a directory named by the graph",
    ),
    (
        "CreateSummaryDbWriter",
        Severity::Medium,
        "opens a database file named by the graph",
    ),
    (
        "FileSystemSetConfiguration",
        Severity::Medium,
        "changes file-system configuration of the serving process",
    ),
    (
        "LoadAndRemapMatrix",
        Severity::Medium,
        "reads a checkpoint file named at run time",
    ),
    (
        "TFRecordDataset",
        Severity::Medium,
        "reads files named at run time",
    ),
    (
        "TFRecordDatasetV2",
        Severity::Medium,
        "reads files named at run time",
    ),
    (
        "FixedLengthRecordDataset",
        Severity::Medium,
        "reads files named at run time",
    ),
    (
        "FixedLengthRecordDatasetV2",
        Severity::Medium,
        "reads files named at run time",
    ),
    (
        "TextLineDataset",
        Severity::Medium,
        "reads files named at run time",
    ),
    (
        "SaveDataset",
        Severity::Medium,
        "writes a dataset to a path",
    ),
    (
        "SaveDatasetV2",
        Severity::Medium,
        "writes a dataset to a path",
    ),
    (
        "SnapshotDataset",
        Severity::Medium,
        "writes dataset snapshots to a path",
    ),
    (
        "SnapshotDatasetV2",
        Severity::Medium,
        "writes dataset snapshots to a path",
    ),
];

/// Checkpoint I/O ops: expected in the saver, flagged elsewhere.
const SAVER_OPS: &[&str] = &[
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "ShardedFilespec",
];

/// Whether `prefix` could be a `SavedModel` message: `saved_model_schema_version` (field 1,
/// varint) then `meta_graphs` (field 2), or `meta_graphs` first.
pub fn sniff(prefix: &[u8]) -> bool {
    matches!(prefix, [0x08, 0x01, 0x12, ..])
        || matches!(prefix, [0x12, _, _, ..] if prefix.len() > 8 && prefix.windows(4).any(|w| w == b"serv" || w == b"tags"))
}

/// Where an op was found: the graph node name and, inside the function library, the function.
struct Site {
    node: String,
    function: Option<String>,
    offset: u64,
}

#[derive(Default)]
struct Graphs {
    sites: BTreeMap<String, Vec<Site>>,
    /// Name scopes of TF1 savers (`save/` from `save/Const:0`).
    saver_scopes: Vec<String>,
    /// Sites not kept because an op already had [`MAX_SITES`].
    dropped: u64,
}

/// Sites remembered per flagged op.
const MAX_SITES: usize = 4096;

/// Scans a `saved_model.pb`.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let origin = input.origin.clone();
    let len = input.len;
    let mut graphs = Graphs::default();
    let mut out = Outcome::default();
    let result = Stream::new(input, 0)
        .map_err(WireError::from)
        .and_then(|s| saved_model(&mut Wire::new(s), len, &mut graphs));
    if let Err(e) = result {
        out.not_scanned
            .push(origin.not_scanned(format!("SavedModel: {e}")));
    }
    report(&graphs, &origin, &mut out);
    out
}

fn saved_model(w: &mut Wire<'_>, end: u64, g: &mut Graphs) -> Result<(), WireError> {
    while let Some((n, f)) = w.next(end)? {
        match n {
            2 => meta_graph(w, f, g)?,
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn meta_graph(w: &mut Wire<'_>, f: Field, g: &mut Graphs) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    while let Some((n, f)) = w.next(end)? {
        match n {
            2 => graph_def(w, f, g)?,
            3 => {
                let end = w.sub_end(f)?;
                while let Some((n, f)) = w.next(end)? {
                    match n {
                        1 => {
                            let tensor = w.string(f)?;
                            if let Some((scope, _)) = tensor.rsplit_once('/') {
                                g.saver_scopes.push(format!("{scope}/"));
                            }
                        }
                        _ => w.skip(f)?,
                    }
                }
            }
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn graph_def(w: &mut Wire<'_>, f: Field, g: &mut Graphs) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 => node_def(w, f, g, None)?,
            2 => {
                let end = w.sub_end(f)?;
                while let Some((n, f)) = w.next(end)? {
                    match n {
                        1 => function_def(w, f, g)?,
                        _ => w.skip(f)?,
                    }
                }
            }
            _ => w.skip(f)?,
        }
    }
    Ok(())
}

fn function_def(w: &mut Wire<'_>, f: Field, g: &mut Graphs) -> Result<(), WireError> {
    let end = w.sub_end(f)?;
    let mut name = String::new();
    let mut local = Graphs::default();
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 => {
                // OpDef signature: name is field 1.
                let end = w.sub_end(f)?;
                while let Some((n, f)) = w.next(end)? {
                    match n {
                        1 => name = w.string(f)?,
                        _ => w.skip(f)?,
                    }
                }
            }
            3 => node_def(w, f, &mut local, Some(String::new()))?,
            _ => w.skip(f)?,
        }
    }
    // The signature usually comes first, but fields may appear in any order.
    g.dropped += local.dropped;
    for (op, sites) in local.sites {
        for mut site in sites {
            site.function = Some(name.clone());
            keep(g, op.clone(), site);
        }
    }
    Ok(())
}

fn node_def(
    w: &mut Wire<'_>,
    f: Field,
    g: &mut Graphs,
    function: Option<String>,
) -> Result<(), WireError> {
    let offset = w.pos();
    let end = w.sub_end(f)?;
    let (mut node, mut op) = (String::new(), String::new());
    while let Some((n, f)) = w.next(end)? {
        match n {
            1 => node = w.string(f)?,
            2 => op = w.string(f)?,
            _ => w.skip(f)?,
        }
    }
    let interesting =
        FLAGGED_OPS.iter().any(|(o, ..)| *o == op) || SAVER_OPS.contains(&op.as_str());
    if interesting {
        keep(
            g,
            op,
            Site {
                node,
                function,
                offset,
            },
        );
    }
    Ok(())
}

/// Remembers a site, keeping at most [`MAX_SITES`] per op (memory stays bounded; the
/// finding says when sites were dropped).
fn keep(g: &mut Graphs, op: String, site: Site) {
    let sites = g.sites.entry(op).or_default();
    if sites.len() < MAX_SITES {
        sites.push(site);
    } else {
        g.dropped += 1;
    }
}

fn in_saver(site: &Site, scopes: &[String]) -> bool {
    match &site.function {
        Some(f) => f.contains("traced_save") || f.contains("traced_restore"),
        None => scopes.iter().any(|s| site.node.starts_with(s.as_str())),
    }
}

fn report(g: &Graphs, origin: &Origin, out: &mut Outcome) {
    for (op, sites) in &g.sites {
        let (severity, reason) = match FLAGGED_OPS.iter().find(|(o, ..)| o == op) {
            Some((_, s, r)) => (*s, (*r).to_owned()),
            None => (
                Severity::Medium,
                "reads or writes checkpoint files outside the model's saver".to_owned(),
            ),
        };
        let flagged: Vec<&Site> = sites
            .iter()
            .filter(|s| FLAGGED_OPS.iter().any(|(o, ..)| o == op) || !in_saver(s, &g.saver_scopes))
            .collect();
        let Some(first) = flagged.first() else {
            continue;
        };
        let place = match &first.function {
            Some(f) => format!("node `{}` in function `{f}`", first.node),
            None => format!("node `{}`", first.node),
        };
        out.findings.push(
            Finding::new(
                "AIG-SAVEDMODEL-001",
                severity,
                format!(
                    "op `{op}` ({}{} node(s), first {place}) {reason}",
                    if g.dropped > 0 { "at least " } else { "" },
                    flagged.len()
                ),
                origin.at(first.offset),
            )
            .with_evidence(Evidence::text(format!("op={op} {place}")))
            .with_help(FIX)
            .with_tag("graph-op"),
        );
    }
}

#[cfg(test)]
mod tests;
