//! CycloneDX JSON SBOMs (1.2–1.6): every component, nested or not, with a package URL of a
//! supported type (`pkg:pypi`, `pkg:cargo`, `pkg:npm`, `pkg:golang`) and a version.

use super::{MAX_TREE_DEPTH, Parsed, find_line};
use crate::deps::ecosystem::Ecosystem;

pub(crate) fn sbom(file: &str, text: &str, out: &mut Parsed) {
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.issue(file, e.line() as u64, format!("not valid JSON: {e}"));
            return;
        }
    };
    if doc.get("bomFormat").and_then(serde_json::Value::as_str) != Some("CycloneDX") {
        out.issue(
            file,
            1,
            "not a CycloneDX SBOM (no \"bomFormat\": \"CycloneDX\")",
        );
        return;
    }
    if let Some(components) = doc.get("components") {
        walk(file, text, components, 0, out);
    }
}

fn walk(file: &str, text: &str, components: &serde_json::Value, depth: usize, out: &mut Parsed) {
    if depth > MAX_TREE_DEPTH {
        out.issue(
            file,
            0,
            format!("components nested deeper than {MAX_TREE_DEPTH}"),
        );
        return;
    }
    let Some(list) = components.as_array() else {
        return;
    };
    for component in list {
        if let Some(purl) = component.get("purl").and_then(serde_json::Value::as_str) {
            let line = find_line(text, purl, 0).map(|(l, _)| l);
            match parse_purl(purl) {
                Some((eco, name, version)) => out.package(file, eco, &name, &version, line),
                None if purl.starts_with("pkg:") => {}
                None => out.issue(
                    file,
                    line.unwrap_or(0),
                    format!("`{purl}` is not a package URL"),
                ),
            }
        }
        if let Some(nested) = component.get("components") {
            walk(file, text, nested, depth + 1, out);
        }
    }
}

/// `pkg:TYPE/NAMESPACE/NAME@VERSION?qualifiers#subpath` for the supported types.
pub(crate) fn parse_purl(purl: &str) -> Option<(Ecosystem, String, String)> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split(['?', '#']).next()?;
    let (kind, path) = rest.split_once('/')?;
    let eco = match kind.to_ascii_lowercase().as_str() {
        "pypi" => Ecosystem::PyPi,
        "cargo" => Ecosystem::CratesIo,
        "npm" => Ecosystem::Npm,
        "golang" => Ecosystem::Go,
        _ => return None,
    };
    let (name, version) = path.rsplit_once('@')?;
    let name = percent_decode(name.trim_start_matches('/'));
    let version = percent_decode(version);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    Some((eco, name, version))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
