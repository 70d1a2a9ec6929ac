//! npm lockfiles: `package-lock.json` (v1 `dependencies` tree, v2/v3 `packages` map),
//! `pnpm-lock.yaml` (v5–v9 package keys), and `yarn.lock` (classic v1 and berry).
//!
//! Linked workspace packages (`"link": true`, `workspace:`/`link:`/`portal:`/`file:` protocols)
//! and entries whose version is a URL or git reference are local code, not registry releases,
//! and are skipped.

use super::{MAX_TREE_DEPTH, Parsed, find_line};
use crate::deps::ecosystem::Ecosystem;
use crate::deps::yaml;

/// A version string that names a registry release (not a URL, path or git reference).
fn is_release(version: &str) -> bool {
    Ecosystem::Npm.parse_version(version).is_some()
}

pub(crate) fn package_lock(file: &str, text: &str, out: &mut Parsed) {
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.issue(file, e.line() as u64, format!("not valid JSON: {e}"));
            return;
        }
    };
    if let Some(packages) = doc.get("packages").and_then(serde_json::Value::as_object) {
        let mut from = 0;
        for (key, entry) in packages {
            let Some(at) = key.rfind("node_modules/") else {
                continue; // "" is the root project; other keys are workspace folders
            };
            let line = find_line(text, &format!("\"{key}\""), from).map(|(l, offset)| {
                from = offset;
                l
            });
            if entry.get("link").and_then(serde_json::Value::as_bool) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(&key[at + "node_modules/".len()..]);
            match entry.get("version").and_then(serde_json::Value::as_str) {
                Some(v) if is_release(v) => out.package(file, Ecosystem::Npm, name, v, line),
                Some(_) => {}
                None => out.issue(file, line.unwrap_or(0), format!("`{key}` has no version")),
            }
        }
        return;
    }
    if let Some(deps) = doc.get("dependencies") {
        v1_tree(file, text, deps, 0, out);
    }
}

fn v1_tree(file: &str, text: &str, deps: &serde_json::Value, depth: usize, out: &mut Parsed) {
    let Some(map) = deps.as_object() else {
        out.issue(file, 0, "`dependencies` is not an object");
        return;
    };
    if depth > MAX_TREE_DEPTH {
        out.issue(
            file,
            0,
            format!("dependency tree deeper than {MAX_TREE_DEPTH}; the rest was not read"),
        );
        return;
    }
    for (name, entry) in map {
        let line = find_line(text, &format!("\"{name}\": {{"), 0).map(|(l, _)| l);
        match entry.get("version").and_then(serde_json::Value::as_str) {
            Some(v) if is_release(v) => out.package(file, Ecosystem::Npm, name, v, line),
            Some(_) => {}
            None => out.issue(file, line.unwrap_or(0), format!("`{name}` has no version")),
        }
        if let Some(nested) = entry.get("dependencies") {
            v1_tree(file, text, nested, depth + 1, out);
        }
    }
}

/// Splits `name@version` where the name may itself start with `@` (a scope).
fn split_at_version(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.find('@')? + 1;
    Some((&spec[..at], &spec[at + 1..]))
}

/// A pnpm package key: `/name/1.2.3`, `/@scope/name/1.2.3_peer` (v5), `/name@1.2.3(peer)`
/// (v6), `name@1.2.3(peer)` (v9).
fn pnpm_key(key: &str) -> Option<(String, String)> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let key = key.split('(').next()?;
    if let Some((name, version)) = split_at_version(key)
        && name.matches('/').count() == usize::from(name.starts_with('@'))
        && !version.contains('/')
    {
        return Some((name.to_owned(), version.to_owned()));
    }
    let slash = key.rfind('/')?;
    let version = key[slash + 1..].split('_').next()?;
    Some((key[..slash].to_owned(), version.to_owned()))
}

pub(crate) fn pnpm_lock(file: &str, text: &str, out: &mut Parsed) {
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.issue(file, e.line, format!("not valid YAML: {}", e.message));
            return;
        }
    };
    let Some(packages) = doc.get("packages").and_then(serde_json::Value::as_object) else {
        return;
    };
    for (key, entry) in packages {
        let line = find_line(text, key, 0).map(|(l, _)| l);
        let Some((mut name, mut version)) = pnpm_key(key) else {
            out.issue(
                file,
                line.unwrap_or(0),
                format!("package key `{key}` not understood"),
            );
            continue;
        };
        // Aliased or tarball entries spell the real name and version in the entry.
        if let Some(n) = entry.get("name").and_then(serde_json::Value::as_str) {
            n.clone_into(&mut name);
        }
        if let Some(v) = entry.get("version").and_then(serde_json::Value::as_str) {
            v.clone_into(&mut version);
        }
        if is_release(&version) {
            out.package(file, Ecosystem::Npm, &name, &version, line);
        }
    }
}

/// `yarn.lock`: a block starts with an unindented `spec[, spec…]:` line; its indented
/// `version "X"` (classic) or `version: X` (berry) line gives the version.
pub(crate) fn yarn_lock(file: &str, text: &str, out: &mut Parsed) {
    let mut current: Option<(String, u64, bool)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        if !raw.starts_with(' ') {
            current = None;
            let Some(keys) = raw.trim_end().strip_suffix(':') else {
                out.issue(file, number, format!("unexpected line `{}`", raw.trim()));
                continue;
            };
            let first = keys.split(", ").next().unwrap_or_default();
            let first = first.trim().trim_matches('"');
            if first == "__metadata" {
                continue;
            }
            let Some((name, range)) = split_at_version(first) else {
                out.issue(file, number, format!("entry `{first}` has no `@range`"));
                continue;
            };
            let local = ["workspace:", "link:", "portal:", "file:", "exec:"]
                .iter()
                .any(|p| range.starts_with(p) || range.starts_with(&format!("npm:{p}")));
            current = Some((name.to_owned(), number, local));
            continue;
        }
        let trimmed = raw.trim();
        let Some(value) = trimmed
            .strip_prefix("version: ")
            .or_else(|| trimmed.strip_prefix("version "))
        else {
            continue;
        };
        if raw.len() - raw.trim_start().len() != 2 {
            continue; // nested (dependencies of the entry), not the entry's own version
        }
        if let Some((name, line, local)) = current.take() {
            let version = value.trim().trim_matches('"');
            if !local && is_release(version) {
                out.package(file, Ecosystem::Npm, &name, version, Some(line));
            }
        }
    }
}
