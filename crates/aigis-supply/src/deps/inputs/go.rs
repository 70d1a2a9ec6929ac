//! Go modules: `go.mod` (`require` lines and blocks, with `replace` directives applied) and
//! `go.sum` (each module version once; `/go.mod`-only hash lines are not built, so they are
//! skipped).
//!
//! Since Go 1.17 `go.mod` lists every module the build needs (direct and `// indirect`), so it is
//! the input of choice; a `go.sum` is scanned only where no `go.mod` sits beside it (discovery
//! decides that).

use std::collections::HashMap;

use super::Parsed;
use crate::deps::ecosystem::Ecosystem;

fn strip_comment(line: &str) -> &str {
    line.split("//").next().unwrap_or_default().trim()
}

pub(crate) fn go_mod(file: &str, text: &str, out: &mut Parsed) {
    let mut requires: Vec<(String, String, u64)> = Vec::new();
    let mut replaces: HashMap<String, Option<(String, String)>> = HashMap::new();
    let mut block: Option<&str> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index as u64 + 1;
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        if block.is_some() && line == ")" {
            block = None;
            continue;
        }
        let (directive, body) = match block {
            Some(d) => (d, line),
            None => {
                let (d, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(match d {
                        "require" => "require",
                        "replace" => "replace",
                        _ => "other",
                    });
                    continue;
                }
                (d, rest)
            }
        };
        match directive {
            "require" => {
                let parts: Vec<&str> = body.split_whitespace().collect();
                if let [module, version] = parts.as_slice() {
                    requires.push((unquote(module), (*version).to_owned(), number));
                } else {
                    out.issue(
                        file,
                        number,
                        format!("`require {body}` is not `MODULE VERSION`"),
                    );
                }
            }
            "replace" => {
                let Some((from, to)) = body.split_once("=>") else {
                    out.issue(file, number, format!("`replace {body}` has no `=>`"));
                    continue;
                };
                let from_module = from
                    .split_whitespace()
                    .next()
                    .map(unquote)
                    .unwrap_or_default();
                let target: Vec<&str> = to.split_whitespace().collect();
                let replacement = match target.as_slice() {
                    [module, version] => Some((unquote(module), (*version).to_owned())),
                    _ => None, // a local directory: not a published module
                };
                replaces.insert(from_module, replacement);
            }
            _ => {}
        }
    }
    for (module, version, line) in requires {
        match replaces.get(&module) {
            Some(Some((to, to_version))) => {
                out.package(file, Ecosystem::Go, to, to_version, Some(line));
            }
            Some(None) => {}
            None => out.package(file, Ecosystem::Go, &module, &version, Some(line)),
        }
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').trim_matches('`').to_owned()
}

pub(crate) fn go_sum(file: &str, text: &str, out: &mut Parsed) {
    for (index, raw) in text.lines().enumerate() {
        let number = index as u64 + 1;
        let parts: Vec<&str> = raw.split_whitespace().collect();
        match parts.as_slice() {
            [] => {}
            [module, version, _hash] => {
                if !version.ends_with("/go.mod") {
                    out.package(file, Ecosystem::Go, module, version, Some(number));
                }
            }
            _ => out.issue(file, number, "not a `MODULE VERSION HASH` line"),
        }
    }
}
