//! One module per model file format. Each exposes `sniff(prefix: &[u8]) -> bool` (does this
//! look like the format, by content) and `scan(input: &mut Input) -> Outcome`.

mod bounded;
mod chat_template;
mod json_entries;
mod protobuf;

pub mod gguf;
pub mod hdf5;
pub mod hf;
pub mod keras;
pub mod onnx;
pub mod safetensors;
pub mod savedmodel;

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
