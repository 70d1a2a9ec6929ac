//! pip requirement files (`requirements*.txt`, `pip freeze` output) and installed distributions
//! (`*.dist-info/METADATA`).
//!
//! A requirement is pinned when its only version clause is `==X` (without a `.*` wildcard) or
//! `===X`; everything else (`>=`, `~=`, no version, a direct `@ URL` reference, `-e` editable
//! installs) is reported as unpinned, because what gets installed is decided at install time.
//! Extras (`name[a,b]`) and per-requirement options (`--hash=…`) are read and ignored;
//! environment markers (`; python_version < "3.10"`) are kept with the requirement and evaluated
//! by the scan against its target environment (`deps::markers`).
//! `-r`/`--requirement` and `-c`/`--constraint` includes are followed relative to the including
//! file, up to [`MAX_INCLUDE_DEPTH`] deep, each file once.

use std::path::{Path, PathBuf};

use super::{MAX_INCLUDE_DEPTH, Parsed, Unpinned, read_text};
use crate::deps::ecosystem::Ecosystem;

/// Options that take a value and do not name a requirement.
const VALUE_OPTIONS: [&str; 10] = [
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    "--use-feature",
    "--config-settings",
];

pub(crate) fn requirements_file(
    path: &Path,
    depth: usize,
    seen: &mut Vec<PathBuf>,
    out: &mut Parsed,
) {
    let file = path.display().to_string();
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if seen.contains(&canonical) {
        return;
    }
    seen.push(canonical);
    let text = match read_text(path) {
        Ok(text) => text,
        Err(message) => {
            out.issue(&file, 0, message);
            return;
        }
    };
    if depth > 0 {
        out.included.push(file.clone());
    }
    let includes = requirements_text(&file, &text, Some(path), out);
    for (line, target) in includes {
        if depth + 1 > MAX_INCLUDE_DEPTH {
            out.issue(
                &file,
                line,
                format!("include nested deeper than {MAX_INCLUDE_DEPTH} files; not followed"),
            );
            continue;
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let target_path = base.join(&target);
        if target.contains("://") {
            out.issue(
                &file,
                line,
                format!("remote include `{target}` is not fetched"),
            );
        } else if target_path.is_file() {
            requirements_file(&target_path, depth + 1, seen, out);
        } else {
            out.issue(
                &file,
                line,
                format!(
                    "included file `{target}` not found (relative to {})",
                    base.display()
                ),
            );
        }
    }
}

/// Logical lines: `\` continuations joined, comments removed; each with its first line number.
fn logical_lines(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0u64;
    for (index, raw) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if current.is_empty() {
            start = number;
        }
        let without_comment = strip_comment(raw);
        if let Some(body) = without_comment.trim_end().strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(without_comment);
        let line = current.trim().to_owned();
        current.clear();
        if !line.is_empty() {
            out.push((start, line));
        }
    }
    let line = current.trim().to_owned();
    if !line.is_empty() {
        out.push((start, line));
    }
    out
}

/// `#` starts a comment at the start of a line or after whitespace (pip's rule), so URL
/// fragments (`…#egg=name`) survive.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Reads requirement lines into `out`; returns the includes to follow (line, target). Without
/// `origin` (text only, as the fuzz target reads it) includes are issues.
pub(crate) fn requirements_text(
    file: &str,
    text: &str,
    origin: Option<&Path>,
    out: &mut Parsed,
) -> Vec<(u64, String)> {
    let mut includes = Vec::new();
    for (line, content) in logical_lines(text) {
        if let Some(target) = include_target(&content) {
            if origin.is_some() {
                includes.push((line, target));
            } else {
                out.issue(file, line, format!("include `{target}` not followed"));
            }
            continue;
        }
        if let Some(rest) = content
            .strip_prefix("-e ")
            .or_else(|| content.strip_prefix("--editable "))
            .or_else(|| content.strip_prefix("--editable="))
        {
            let target = rest.trim();
            out.unpinned.push(Unpinned {
                ecosystem: Ecosystem::PyPi,
                name: egg_name(target).unwrap_or_else(|| target.to_owned()),
                spec: format!("-e {target}"),
                line,
                marker: None,
            });
            continue;
        }
        if content.starts_with('-') {
            // Global options (`--index-url URL`, `--pre`, …) carry no requirement.
            let first = content.split([' ', '=']).next().unwrap_or_default();
            if !(VALUE_OPTIONS.contains(&first) || first.starts_with("--")) {
                out.issue(
                    file,
                    line,
                    format!("unknown option `{first}`; line ignored"),
                );
            }
            continue;
        }
        requirement(file, line, &content, out);
    }
    includes
}

fn include_target(content: &str) -> Option<String> {
    let forms = [
        ("--requirement", false),
        ("--constraint", false),
        ("-r", true),
        ("-c", true),
    ];
    for (prefix, short) in forms {
        let Some(rest) = content.strip_prefix(prefix) else {
            continue;
        };
        let target = if let Some(r) = rest.strip_prefix('=') {
            r
        } else if short || rest.starts_with(char::is_whitespace) {
            rest
        } else {
            continue;
        };
        let target = target.trim();
        if !target.is_empty() {
            return Some(target.to_owned());
        }
    }
    None
}

fn egg_name(target: &str) -> Option<String> {
    let fragment = target.split_once("#egg=")?.1;
    Some(fragment.split(['&', ' ']).next()?.to_owned())
}

/// One requirement line (PEP 508 with pip's per-requirement options).
fn requirement(file: &str, line: u64, content: &str, out: &mut Parsed) {
    // Per-requirement options start at the first ` --`.
    let body = content.split(" --").next().unwrap_or_default().trim();
    let (body, marker) = match body.split_once(';') {
        Some((requirement, marker)) => (requirement.trim(), Some(marker.trim())),
        None => (body, None),
    };
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.issue(
            file,
            line,
            format!("`{content}` is not a requirement (expected NAME[extras]==VERSION)"),
        );
        return;
    }
    let mut rest = body[name_end..].trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            out.issue(file, line, format!("unclosed extras in `{content}`"));
            return;
        };
        rest = after[close + 1..].trim_start();
    }
    let spec = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    if let Some(version) = pinned_version(spec) {
        out.conditional_package(file, Ecosystem::PyPi, name, version, Some(line), marker);
    } else {
        out.unpinned.push(Unpinned {
            ecosystem: Ecosystem::PyPi,
            name: name.to_owned(),
            spec: if spec.is_empty() {
                "(any version)".to_owned()
            } else {
                spec.to_owned()
            },
            line,
            marker: marker.filter(|m| !m.is_empty()).map(str::to_owned),
        });
    }
}

/// The version of a specifier that pins exactly one version.
fn pinned_version(spec: &str) -> Option<&str> {
    if spec.contains(',') {
        return None;
    }
    let version = if let Some(v) = spec.strip_prefix("===") {
        v
    } else {
        let v = spec.strip_prefix("==")?;
        if v.trim_end().ends_with(".*") {
            return None;
        }
        v
    };
    let version = version.trim();
    (!version.is_empty()).then_some(version)
}

/// `METADATA`/`PKG-INFO`: the `Name:` and `Version:` headers.
pub(crate) fn metadata(file: &str, text: &str, out: &mut Parsed) {
    let mut name = None;
    let mut version = None;
    let mut name_line = 1;
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() {
            break; // the body (long description) starts
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_owned());
            name_line = index as u64 + 1;
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_owned());
        }
    }
    match (name, version) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
            out.package(file, Ecosystem::PyPi, &name, &version, Some(name_line));
        }
        _ => out.issue(
            file,
            0,
            "no Name: and Version: headers; not a distribution's metadata",
        ),
    }
}
