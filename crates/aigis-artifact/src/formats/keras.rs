//! Keras model configurations: `config.json` inside `.keras` (v3) archives and the
//! `model_config` attribute of legacy `.h5` files (the JSON is the same shape, minus the
//! `module` keys in Keras 2).
//!
//! What runs code when Keras rebuilds a model from its config:
//! - **Lambda layers** (and `__lambda__` objects anywhere): base64 of `marshal.dumps(code)`,
//!   executed by `load_model` for `.h5` files and for `.keras` files with `safe_mode=False`.
//!   `high`; `critical` when the marshalled code names OS/interpreter functions. The decoded
//!   code's first bytes and the names it contains are the evidence.
//! - **Function references** (`{"module": m, "class_name": "function", "config": name}` and
//!   Lambda `function_type: "function"`): Keras imports `m` and looks `name` up; a dangerous
//!   module (`os`, `subprocess`, `builtins.exec`, …) is `critical` (the CVE-2025-1550 shape), a
//!   Keras gadget such as `keras.utils.get_file` (downloads and writes files even under
//!   `safe_mode`) is `high`.
//! - **Custom objects**: a `module` outside `keras`/`tensorflow`/`tf_keras`/`keras_hub`/
//!   `keras_nlp`/`keras_cv` makes Keras import that module: `medium`, with the `registered_name`.

use aigis_report::{Evidence, Finding, Location, Severity};
use base64::Engine as _;
use serde_json::Value;

use super::bounded;
use crate::{Input, Origin, Outcome};

/// Largest config read.
pub const MAX_CONFIG_LEN: u64 = 16 * 1024 * 1024;
/// Depth of the walk (serde_json itself refuses nesting deeper than 128).
const MAX_DEPTH: usize = 160;
/// Findings kept per config.
const MAX_FINDINGS: usize = 256;

const FIX: &str = "do not load this model; if it is yours, rebuild it without Lambda layers or \
                   custom code and save it again. Keras 3 `load_model(safe_mode=True)` (the \
                   default) refuses Lambda code, but legacy .h5 loading and safe_mode=False run it";

const KERAS_MODULES: &[&str] = &[
    "keras",
    "tensorflow",
    "tf_keras",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
];

/// Modules whose functions give a config the OS or the interpreter.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "pickle",
    "marshal",
    "runpy",
    "pty",
    "ctypes",
    "code",
    "codeop",
    "webbrowser",
    "pathlib",
    "io",
    "commands",
    "popen2",
    "asyncio",
    "multiprocessing",
    "tempfile",
    "urllib",
    "requests",
    "http",
    "ftplib",
    "smtplib",
];

/// Builtins that execute, import or touch files.
const DANGEROUS_BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "open",
    "__import__",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "vars",
    "breakpoint",
    "input",
    "execfile",
];

/// Functions in Keras/TensorFlow that read or write files or fetch URLs.
const KERAS_GADGETS: &[&str] = &[
    "get_file",
    "write_file",
    "read_file",
    "save_model",
    "load_model",
    "load_weights",
];

/// Names in marshalled code that mean OS or interpreter access.
const DANGEROUS_CODE_NAMES: &[&str] = &[
    "os",
    "system",
    "popen",
    "subprocess",
    "exec",
    "eval",
    "__import__",
    "__builtins__",
    "socket",
    "check_output",
    "Popen",
    "spawn",
    "execv",
    "compile",
    "open",
    "import_module",
    "getattr",
];

/// Whether `prefix` looks like a Keras model config.
pub fn sniff(prefix: &[u8]) -> bool {
    let t = prefix.trim_ascii_start();
    t.first() == Some(&b'{')
        && [&b"\"class_name\""[..], b"\"config\""]
            .iter()
            .all(|k| prefix.windows(k.len()).any(|w| w == *k))
}

/// Scans a config file read from `input` (a `config.json` member or a file on disk).
pub fn scan(input: &mut Input<'_>) -> Outcome {
    match bounded::read_at(input, 0, input.len, MAX_CONFIG_LEN, "Keras config") {
        Ok(bytes) => scan_config(&bytes, &input.origin),
        Err(e) => {
            let mut out = Outcome::default();
            out.not_scanned
                .push(input.origin.not_scanned(e.to_string()));
            out
        }
    }
}

/// Scans the JSON text of a Keras model config.
pub fn scan_config(json: &[u8], origin: &Origin) -> Outcome {
    let mut out = Outcome::default();
    match serde_json::from_slice::<Value>(json) {
        Ok(v) => {
            let mut walk = Walk {
                origin,
                out: &mut out,
            };
            walk.value(&v, &mut String::new(), 0);
        }
        Err(e) => out
            .not_scanned
            .push(origin.not_scanned(format!("Keras config is not JSON: {e}"))),
    }
    out
}

struct Walk<'a> {
    origin: &'a Origin,
    out: &'a mut Outcome,
}

fn is_keras_module(module: &str) -> bool {
    let root = module.split('.').next().unwrap_or(module);
    KERAS_MODULES.contains(&root)
}

impl Walk<'_> {
    fn at(&self, pointer: &str) -> Location {
        self.origin.location().with_key_path(if pointer.is_empty() {
            "/".to_owned()
        } else {
            pointer.to_owned()
        })
    }

    fn push(&mut self, finding: Finding) {
        if self.out.findings.len() < MAX_FINDINGS {
            self.out.findings.push(finding.with_help(FIX));
        }
    }

    fn value(&mut self, v: &Value, path: &mut String, depth: usize) {
        if depth > MAX_DEPTH {
            self.out.not_scanned.push(self.origin.not_scanned(format!(
                "Keras config nested deeper than {MAX_DEPTH} at {path}"
            )));
            return;
        }
        match v {
            Value::Object(map) => {
                if self.object(map, path) {
                    return;
                }
                for (k, child) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    self.value(child, path, depth + 1);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    self.value(child, path, depth + 1);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// Classifies one object; returns true when its subtree is fully handled.
    fn object(&mut self, map: &serde_json::Map<String, Value>, path: &str) -> bool {
        let class = map.get("class_name").and_then(Value::as_str);
        let module = map.get("module").and_then(Value::as_str);
        let registered = map.get("registered_name").and_then(Value::as_str);
        if matches!(class, Some("Lambda" | "__lambda__")) {
            self.lambda(map, path);
            return true;
        }
        if class == Some("function") {
            let name = map.get("config").and_then(Value::as_str).unwrap_or("");
            self.function_reference(module.unwrap_or(""), name, path);
            return true;
        }
        if let Some(m) = module
            && !is_keras_module(m)
        {
            let (severity, why) = match dangerous_module(m, class.unwrap_or("")) {
                Some(s) => (s, "a module that reaches the OS or the interpreter"),
                None => (
                    Severity::Medium,
                    "custom code that Keras imports when it loads the model",
                ),
            };
            self.push(
                Finding::new(
                    "AIG-KERAS-003",
                    severity,
                    format!(
                        "custom object `{}` from module `{m}`: {why}",
                        class.unwrap_or("?")
                    ),
                    self.at(path),
                )
                .with_evidence(Evidence::text(format!(
                    "module={m} class_name={} registered_name={}",
                    class.unwrap_or("?"),
                    registered.unwrap_or("-")
                )))
                .with_tag("custom-code"),
            );
        }
        false
    }

    fn function_reference(&mut self, module: &str, name: &str, path: &str) {
        let (severity, why) = if let Some(s) = dangerous_module(module, name) {
            (s, "a function that reaches the OS or the interpreter")
        } else if KERAS_GADGETS.contains(&name) {
            (
                Severity::High,
                "a Keras/TensorFlow function that reads, writes or downloads files, even under safe_mode",
            )
        } else if is_keras_module(module) || module.is_empty() {
            return;
        } else {
            (
                Severity::Medium,
                "a function Keras imports from a custom module",
            )
        };
        self.push(
            Finding::new(
                "AIG-KERAS-002",
                severity,
                format!("config references `{module}.{name}`: {why}"),
                self.at(path),
            )
            .with_evidence(Evidence::text(format!("module={module} function={name}")))
            .with_tag("code-execution"),
        );
    }

    fn lambda(&mut self, map: &serde_json::Map<String, Value>, path: &str) {
        let config = map.get("config");
        let function_type = config
            .and_then(|c| c.get("function_type"))
            .and_then(Value::as_str);
        let function = config.and_then(|c| c.get("function"));
        if function_type == Some("function") {
            let module = config
                .and_then(|c| c.get("module"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = function.and_then(Value::as_str).unwrap_or("");
            self.function_reference(module, name, path);
            return;
        }
        let mut strings = Vec::new();
        collect_strings(map, &mut strings, 0);
        let code = strings.iter().find_map(|s| decode_code(s));
        let (severity, evidence, detail) = match &code {
            Some(bytes) => {
                let names = marshal_names(bytes);
                let bad: Vec<&str> = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| DANGEROUS_CODE_NAMES.contains(n))
                    .collect();
                let hex: String = bytes.iter().take(16).fold(String::new(), |mut s, b| {
                    use std::fmt::Write as _;
                    let _ = write!(s, "{b:02x}");
                    s
                });
                let severity = if bad.is_empty() {
                    Severity::High
                } else {
                    Severity::Critical
                };
                let detail = if bad.is_empty() {
                    String::new()
                } else {
                    format!("; the code names {}", bad.join(", "))
                };
                (
                    severity,
                    format!(
                        "{} bytes of marshalled code, starts {hex}; names: {}",
                        bytes.len(),
                        names.join(" ")
                    ),
                    detail,
                )
            }
            None => (
                Severity::High,
                "Lambda layer (code not decodable)".to_owned(),
                String::new(),
            ),
        };
        self.push(
            Finding::new(
                "AIG-KERAS-001",
                severity,
                format!("Lambda layer carries marshalled Python code that runs when the model is loaded{detail}"),
                self.at(path),
            )
            .with_evidence(Evidence::text(evidence))
            .with_tag("code-execution"),
        );
    }
}

/// The severity of a reference to `name` in `module`, when the module is dangerous.
fn dangerous_module(module: &str, name: &str) -> Option<Severity> {
    let root = module.split('.').next().unwrap_or(module);
    if matches!(root, "builtins" | "__builtin__") {
        return Some(if DANGEROUS_BUILTINS.contains(&name) {
            Severity::Critical
        } else {
            Severity::High
        });
    }
    DANGEROUS_MODULES
        .contains(&root)
        .then_some(Severity::Critical)
}

fn collect_strings<'v>(
    map: &'v serde_json::Map<String, Value>,
    out: &mut Vec<&'v str>,
    depth: usize,
) {
    fn value<'v>(v: &'v Value, out: &mut Vec<&'v str>, depth: usize) {
        if depth > 16 {
            return;
        }
        match v {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| value(i, out, depth + 1)),
            Value::Object(m) => collect_strings(m, out, depth + 1),
            _ => {}
        }
    }
    for v in map.values() {
        value(v, out, depth);
    }
}

/// Decodes a base64 string that holds a marshalled code object (type byte `c`, with or without
/// the reference flag).
fn decode_code(s: &str) -> Option<Vec<u8>> {
    if s.len() < 16 {
        return None;
    }
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .ok()?;
    matches!(bytes.first(), Some(0x63 | 0xe3)).then_some(bytes)
}

/// The short ASCII strings in a marshal stream (names, constants): marshal's
/// `TYPE_SHORT_ASCII(_INTERNED)` records, with or without the reference flag.
fn marshal_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let tag = bytes[i] & 0x7f;
        if tag == b'z' || tag == b'Z' {
            let len = usize::from(bytes[i + 1]);
            if let Some(s) = bytes.get(i + 2..i + 2 + len)
                && len > 0
                && s.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
            {
                let name = String::from_utf8_lossy(s).into_owned();
                if !names.contains(&name) && names.len() < 64 {
                    names.push(name);
                }
                i += 2 + len;
                continue;
            }
        }
        i += 1;
    }
    names
}

#[cfg(test)]
mod tests;
