//! One module per model file format. Each exposes `sniff(prefix: &[u8]) -> bool` (does this
//! look like the format, by content) and `scan(input: &mut Input) -> Outcome`, reads only
//! headers and metadata through bounded reads, and reports what it cannot read as not scanned.
//!
//! | module | content signal | extra entry points |
//! |---|---|---|
//! | [`safetensors`] | 8-byte header length ≤ 100 MB, then `{` | |
//! | [`gguf`] | `GGUF` magic | [`gguf::ggml_block`] |
//! | [`hf`] | JSON object naming `chat_template` / `auto_map` / `custom_pipelines` | [`hf::applies_to`] (file names), [`hf::scan_json`] |
//! | [`keras`] | JSON object with `class_name` and `config` | [`keras::scan_config`] for a `.keras` zip's `config.json` |
//! | [`hdf5`] | HDF5 signature | |
//! | [`onnx`] | `ModelProto` starting with `ir_version` | |
//! | [`savedmodel`] | weak: dispatch on the name `saved_model.pb` | |
//! | [`pickle`] | protocol 2+ header, else tried on anything unrecognised | joblib, nested pickles |
//! | [`numpy`] | `\x93NUMPY` | `.npz` through the zip reader |
//! | [`torch`] | legacy magic-number pickles, TorchScript `code/` | |
//!
//! Chat templates found by [`gguf`] and [`hf`] share one analysis (minijinja's parser, never
//! rendered); findings use the `AIG-CHATTEMPLATE-*` rule ids.

mod bounded;
mod chat_template;
mod json_entries;
mod protobuf;

pub mod gguf;
pub mod hdf5;
pub mod hf;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod pickle;
pub mod safetensors;
pub mod savedmodel;
pub mod torch;

use aigis_report::{Evidence, Finding, Location, Severity};

use crate::{Origin, Outcome};

/// Turns the chat-template analysis of `template` (found at `location`) into findings.
fn template_findings(template: &str, location: &Location, origin: &Origin, fix: &str) -> Outcome {
    let mut out = Outcome::default();
    let analysis = chat_template::analyse(template);
    if let Some(reason) = analysis.unreadable {
        out.not_scanned
            .push(origin.not_scanned(format!("chat template at {location}: {reason}")));
        return out;
    }
    if let Some(err) = analysis.parse_error {
        out.findings.push(
            Finding::new(
                "AIG-CHATTEMPLATE-005",
                Severity::Info,
                "minijinja cannot parse this chat template; it was analysed token by token",
                location.clone(),
            )
            .with_evidence(Evidence::text(err)),
        );
    }
    for signal in analysis.signals {
        out.findings.push(
            Finding::new(
                format!("AIG-CHATTEMPLATE-{}", signal.rule),
                signal.severity,
                signal.message,
                location.clone(),
            )
            .with_evidence(Evidence::text(signal.evidence))
            .with_help(fix)
            .with_tag("template-injection"),
        );
    }
    out
}
