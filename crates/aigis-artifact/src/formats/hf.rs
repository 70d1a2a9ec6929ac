//! Hugging Face repository side files that make a loader run code or render templates:
//! `tokenizer_config.json` / `chat_template.json` (`chat_template` as a string or a list of
//! `{name, template}`), `chat_template.jinja`, and `config.json` (or any other `*config.json`)
//! with `auto_map` or `custom_pipelines`, which make `transformers` import Python modules from
//! the repository when `trust_remote_code=True`.
//!
//! Severities: chat templates as in the shared template analysis; an `auto_map` reference to
//! code in *another* repository (`owner/repo--module.Class`) is `high` (code the model's
//! publisher does not control); a reference to a module shipped in the same repository is
//! `medium` (review that module before passing `trust_remote_code=True`); a
//! `trust_remote_code: true` key inside a config file is `medium`.

use aigis_report::{Evidence, Finding, Location, Severity};
use std::path::Path;

use serde_json::Value;

use super::bounded;
use super::json_entries::Entries;
use crate::{Input, Origin, Outcome};

/// Largest side file read (tokenizer configs embed added-token tables of a few MB).
pub const MAX_SIDE_FILE_LEN: u64 = 64 * 1024 * 1024;

const TEMPLATE_FIX: &str = "do not serve this model with this chat template; compare it with \
                            the publisher's original and render templates only in a sandboxed \
                            Jinja environment";
const REMOTE_CODE_FIX: &str = "read the referenced Python module before loading with \
                               trust_remote_code=True, pin the repository revision, or use a \
                               model that needs no remote code";

/// Whether a file with this name (the last path component) is a side file this module reads.
pub fn applies_to(file_name: &str) -> bool {
    let name = file_name
        .rsplit(['/', '\\', '!'])
        .next()
        .unwrap_or(file_name);
    let lower = name.to_ascii_lowercase();
    lower.ends_with("config.json")
        || lower == "chat_template.json"
        || Path::new(&lower).extension().is_some_and(|e| e == "jinja")
}

/// Whether `prefix` looks like a JSON side file that matters: an object mentioning a chat
/// template, an `auto_map` or remote code. (Names matter more; see [`applies_to`].)
pub fn sniff(prefix: &[u8]) -> bool {
    let trimmed = prefix.trim_ascii_start();
    trimmed.first() == Some(&b'{')
        && [
            &b"\"chat_template\""[..],
            b"\"auto_map\"",
            b"\"custom_pipelines\"",
        ]
        .iter()
        .any(|key| prefix.windows(key.len()).any(|w| w == *key))
}

/// Scans one side file; `.jinja` files are analysed as a template, everything else as JSON.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let origin = input.origin.clone();
    let bytes = match bounded::read_at(input, 0, input.len, MAX_SIDE_FILE_LEN, "side file") {
        Ok(b) => b,
        Err(e) => {
            let mut out = Outcome::default();
            out.not_scanned.push(origin.not_scanned(e.to_string()));
            return out;
        }
    };
    let name = origin.member.as_deref().unwrap_or(&origin.file);
    if name.to_ascii_lowercase().ends_with(".jinja") {
        let text = String::from_utf8_lossy(&bytes);
        return super::template_findings(&text, &origin.at(0), &origin, TEMPLATE_FIX);
    }
    scan_json(&bytes, &origin)
}

/// Scans the bytes of a JSON side file.
pub fn scan_json(bytes: &[u8], origin: &Origin) -> Outcome {
    let mut out = Outcome::default();
    let entries: Entries = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("not a JSON object: {e}")));
            return out;
        }
    };
    let text = String::from_utf8_lossy(bytes);
    let at = |key: &str, pointer: &str| {
        let offset = text.find(&format!("\"{key}\"")).unwrap_or(0) as u64;
        origin.at(offset).with_key_path(pointer.to_owned())
    };
    for (key, value) in &entries.entries {
        match key.as_str() {
            "chat_template" => templates(value, &at(key, "/chat_template"), origin, &mut out),
            "auto_map" => auto_map(value, &at(key, "/auto_map"), &mut out),
            "custom_pipelines" => custom_pipelines(value, &at(key, "/custom_pipelines"), &mut out),
            "trust_remote_code" if value.as_bool() == Some(true) => out.findings.push(
                Finding::new(
                    "AIG-HF-003",
                    Severity::Medium,
                    "the config sets `trust_remote_code: true`, asking loaders to run the repository's Python code",
                    at(key, "/trust_remote_code"),
                )
                .with_help(REMOTE_CODE_FIX),
            ),
            _ => {}
        }
    }
    out
}

fn templates(value: &Value, location: &Location, origin: &Origin, out: &mut Outcome) {
    match value {
        Value::String(t) => out.merge(super::template_findings(t, location, origin, TEMPLATE_FIX)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                if let Some(t) = item.get("template").and_then(Value::as_str) {
                    let loc = location
                        .clone()
                        .with_key_path(format!("/chat_template/{i}/template"));
                    let mut found = super::template_findings(t, &loc, origin, TEMPLATE_FIX);
                    for f in &mut found.findings {
                        *f = Finding::new(
                            f.rule_id(),
                            f.severity(),
                            format!("template `{name}`: {}", f.message()),
                            f.location().clone(),
                        )
                        .with_evidence(f.evidence().cloned().unwrap_or_else(|| Evidence::text("")))
                        .with_help(TEMPLATE_FIX)
                        .with_tag("template-injection");
                    }
                    out.merge(found);
                }
            }
        }
        _ => {}
    }
}

fn code_reference(reference: &str, what: &str, location: Location, out: &mut Outcome) {
    let (severity, message) = match reference.split_once("--") {
        Some((repo, code)) => (
            Severity::High,
            format!(
                "{what} loads `{code}` from another repository, `{repo}`, when trust_remote_code=True"
            ),
        ),
        None => {
            let module = reference.rsplit_once('.').map_or(reference, |(m, _)| m);
            (
                Severity::Medium,
                format!(
                    "{what} makes loaders import `{module}.py` from this repository when trust_remote_code=True"
                ),
            )
        }
    };
    out.findings.push(
        Finding::new("AIG-HF-001", severity, message, location)
            .with_evidence(Evidence::text(reference))
            .with_help(REMOTE_CODE_FIX)
            .with_tag("remote-code"),
    );
}

fn auto_map(value: &Value, location: &Location, out: &mut Outcome) {
    let Some(map) = value.as_object() else { return };
    for (class, target) in map {
        let loc = location.clone().with_key_path(format!("/auto_map/{class}"));
        let refs: Vec<&str> = match target {
            Value::String(s) => vec![s],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for r in refs {
            code_reference(r, &format!("auto_map `{class}`"), loc.clone(), out);
        }
    }
}

fn custom_pipelines(value: &Value, location: &Location, out: &mut Outcome) {
    let Some(map) = value.as_object() else { return };
    for (task, spec) in map {
        for key in ["impl", "pt", "tf"] {
            let refs: Vec<&str> = match spec.get(key) {
                Some(Value::String(s)) => vec![s],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for r in refs {
                let loc = location
                    .clone()
                    .with_key_path(format!("/custom_pipelines/{task}/{key}"));
                code_reference(r, &format!("custom pipeline `{task}`"), loc, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
