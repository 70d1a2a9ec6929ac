//! PyTorch specifics beyond the pickles themselves: TorchScript archives carry Python-like
//! source under `code/`, which `torch.jit.load` compiles. Imports of anything outside
//! TorchScript's own namespaces and calls that reach the interpreter or the OS are flagged with
//! their line. (Zip and legacy checkpoints are handled by the zip, tar and pickle readers.)

use std::io::Read;

use aigis_report::{Evidence, Finding, Severity};

use crate::reader::{Budget, MAX_SOURCE_BYTES, Window, read_bounded};
use crate::{Input, Origin, Outcome};

/// Words in TorchScript source that reach the Python interpreter or the operating system.
const SUSPICIOUS: &[(&str, &str)] = &[
    ("exec", "runs Python source"),
    ("eval", "evaluates Python source"),
    ("compile", "compiles Python source"),
    ("__import__", "imports modules"),
    ("__builtins__", "reaches Python builtins"),
    ("builtins", "reaches Python builtins"),
    ("os", "reaches the os module"),
    ("subprocess", "runs commands"),
    ("system", "runs commands"),
    ("popen", "runs commands"),
    ("getattr", "reaches attributes by name"),
    ("open", "opens files"),
    ("socket", "opens connections"),
];

/// Scans one TorchScript source member (`code/…/*.py`).
pub fn scan_code_member(
    input: &mut Input,
    offset: u64,
    csize: u64,
    method: u16,
    origin: &Origin,
) -> Outcome {
    let mut out = Outcome::default();
    let budget = Budget::new();
    let mut win = Window::new(input.source, offset, csize);
    let data = match method {
        0 => read_bounded(
            &mut (&mut win).take(MAX_SOURCE_BYTES + 1),
            MAX_SOURCE_BYTES,
            &budget,
        ),
        8 => read_bounded(
            &mut flate2::read::DeflateDecoder::new(&mut win),
            MAX_SOURCE_BYTES,
            &budget,
        ),
        m => {
            out.not_scanned.push(
                origin.not_scanned(format!("TorchScript source with compression method {m}")),
            );
            return out;
        }
    };
    match data {
        Ok(d) => out
            .findings
            .extend(scan_source(&String::from_utf8_lossy(&d), origin)),
        Err(e) => out
            .not_scanned
            .push(origin.not_scanned(format!("TorchScript source: {e}"))),
    }
    out
}

/// Findings for suspicious imports and calls in TorchScript source text.
pub fn scan_source(text: &str, origin: &Origin) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let lineno = n as u64 + 1;
        if let Some(rest) = t
            .strip_prefix("import ")
            .or_else(|| t.strip_prefix("from "))
        {
            let module = rest.split([' ', ',', '.']).next().unwrap_or("");
            if !matches!(module, "__torch__" | "torch" | "typing" | "__future__") {
                findings.push(code_finding(
                    origin,
                    lineno,
                    line,
                    format!("TorchScript source imports `{module}`"),
                ));
                continue;
            }
        }
        for (word, why) in SUSPICIOUS {
            if contains_call_or_attr(t, word) {
                findings.push(code_finding(
                    origin,
                    lineno,
                    line,
                    format!("TorchScript source uses `{word}`: {why}"),
                ));
                break;
            }
        }
    }
    findings
}

/// `word` as a whole identifier followed by `(` or `.`.
fn contains_call_or_attr(line: &str, word: &str) -> bool {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(i) = line.get(from..).and_then(|s| s.find(word)) {
        let at = from + i;
        let before = at.checked_sub(1).and_then(|j| bytes.get(j).copied());
        let after = bytes.get(at + word.len()).copied();
        let boundary = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
        if boundary && matches!(after, Some(b'(' | b'.')) {
            return true;
        }
        from = at + word.len();
    }
    false
}

fn code_finding(origin: &Origin, line: u64, text: &str, message: String) -> Finding {
    Finding::new("AIG-TORCHSCRIPT-CODE", Severity::High, message, origin.location().with_line(line))
        .with_evidence(Evidence::text(text.trim().chars().take(160).collect::<String>()))
        .with_help("TorchScript archives are compiled and run by torch.jit.load; source that reaches the interpreter or the OS is not produced by torch.jit.script/trace. Do not load it.")
        .with_tag("torchscript")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_os_calls_but_not_tensor_ops() {
        let o = Origin::file("m.pt");
        assert_eq!(scan_source("    _0 = torch.add(x, pos.y)\n", &o).len(), 0);
        assert_eq!(scan_source("  import os\n", &o).len(), 1);
        assert_eq!(scan_source("    os.system(\"id\")\n", &o).len(), 1);
        assert_eq!(scan_source("    ops.prim.exec(x)\n", &o).len(), 0);
    }
}
