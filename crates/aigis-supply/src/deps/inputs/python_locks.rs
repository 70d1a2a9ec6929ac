//! Python lockfiles: `poetry.lock`, `pdm.lock`, `uv.lock` (TOML), `Pipfile.lock` (JSON), and the
//! `pip:` section of a conda `environment.yml`.
//!
//! Only packages that come from a package index are matched: poetry's `source.type` of `git`,
//! `directory`, `file` or `url` and uv's `editable`, `virtual`, `directory`, `path`, `git` and
//! `url` sources are local or VCS code with no PyPI release to compare.

use serde::Deserialize;
use toml::Spanned;

use super::python::requirements_text;
use super::{Parsed, Unpinned, find_line, line_at};
use crate::deps::ecosystem::Ecosystem;
use crate::deps::yaml;

#[derive(Deserialize)]
struct TomlLock {
    #[serde(default)]
    package: Vec<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
struct TomlPackage {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    source: Option<toml::Value>,
    /// poetry's package-level marker: a string, or a table of marker per dependency group.
    #[serde(default)]
    markers: Option<toml::Value>,
    /// pdm's package-level marker.
    #[serde(default)]
    marker: Option<String>,
    /// uv's forks: the package applies where any of these holds.
    #[serde(default, rename = "resolution-markers")]
    resolution_markers: Option<Vec<String>>,
}

impl TomlPackage {
    /// The marker conditioning this package, if the lock records one.
    /// Adds the package (under its environment condition) to `out`, or says it has no version.
    fn report(self, file: &str, line: u64, out: &mut Parsed) {
        let marker = self.condition();
        match self.version {
            Some(v) => out.conditional_package(
                file,
                Ecosystem::PyPi,
                &self.name,
                &v,
                Some(line),
                marker.as_deref(),
            ),
            None => out.issue(
                file,
                line,
                format!("package `{}` has no version", self.name),
            ),
        }
    }

    fn condition(&self) -> Option<String> {
        if let Some(any) = self.resolution_markers.as_ref().filter(|m| !m.is_empty()) {
            let alternatives: Vec<String> = any.iter().map(|m| format!("({m})")).collect();
            return Some(alternatives.join(" or "));
        }
        match &self.markers {
            Some(toml::Value::String(m)) => Some(m.clone()),
            // Per group: installed where any group's marker holds.
            Some(toml::Value::Table(groups)) => {
                let any: Vec<String> = groups
                    .values()
                    .filter_map(toml::Value::as_str)
                    .map(|m| format!("({m})"))
                    .collect();
                (!any.is_empty()).then(|| any.join(" or "))
            }
            _ => self.marker.clone(),
        }
    }
}

fn read_toml_lock(file: &str, text: &str, kind: &str, out: &mut Parsed) -> Vec<(u64, TomlPackage)> {
    let lock: TomlLock = match toml::from_str(text) {
        Ok(lock) => lock,
        Err(e) => {
            let line = e.span().map_or(0, |s| line_at(text, s.start));
            out.issue(file, line, format!("not a valid {kind}: {}", e.message()));
            return Vec::new();
        }
    };
    let mut packages = Vec::with_capacity(lock.package.len());
    for (index, spanned) in lock.package.into_iter().enumerate() {
        let line = line_at(text, spanned.span().start);
        match spanned.into_inner().try_into::<TomlPackage>() {
            Ok(p) => packages.push((line, p)),
            Err(e) => out.issue(
                file,
                line,
                format!("[[package]] #{}: {}", index + 1, e.message()),
            ),
        }
    }
    packages
}

/// `poetry.lock` and `pdm.lock`: `[[package]]` tables with `name` and `version`.
pub(crate) fn toml_packages(file: &str, text: &str, out: &mut Parsed) {
    for (line, p) in read_toml_lock(file, text, "poetry/pdm lock", out) {
        let source_type = p
            .source
            .as_ref()
            .and_then(|s| s.get("type"))
            .and_then(toml::Value::as_str)
            .unwrap_or("legacy");
        if matches!(source_type, "git" | "directory" | "file" | "url") {
            continue;
        }
        p.report(file, line, out);
    }
}

/// `uv.lock`: `[[package]]` with `source = { registry = "…" }` are index packages.
pub(crate) fn uv_lock(file: &str, text: &str, out: &mut Parsed) {
    for (line, p) in read_toml_lock(file, text, "uv.lock", out) {
        let from_registry = p
            .source
            .as_ref()
            .is_none_or(|s| s.get("registry").is_some());
        if !from_registry {
            continue;
        }
        p.report(file, line, out);
    }
}

/// `Pipfile.lock`: `default` and `develop` maps of name -> `{ "version": "==X" }`.
pub(crate) fn pipfile_lock(file: &str, text: &str, out: &mut Parsed) {
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.issue(file, e.line() as u64, format!("not valid JSON: {e}"));
            return;
        }
    };
    for section in ["default", "develop"] {
        let Some(map) = doc.get(section).and_then(serde_json::Value::as_object) else {
            continue;
        };
        for (name, entry) in map {
            let line = find_line(text, &format!("\"{name}\""), 0).map(|(l, _)| l);
            let marker = entry.get("markers").and_then(serde_json::Value::as_str);
            match entry.get("version").and_then(serde_json::Value::as_str) {
                Some(spec) if spec.starts_with("==") => {
                    out.conditional_package(file, Ecosystem::PyPi, name, &spec[2..], line, marker);
                }
                Some(spec) => out.unpinned.push(Unpinned {
                    ecosystem: Ecosystem::PyPi,
                    name: name.clone(),
                    spec: spec.to_owned(),
                    line: line.unwrap_or(0),
                    marker: marker.map(str::to_owned),
                }),
                // VCS, path or file entries carry no version.
                None => {}
            }
        }
    }
}

/// `environment.yml`: the strings of `dependencies[].pip` are pip requirement lines. Conda
/// packages themselves have no OSV ecosystem and are not matched.
pub(crate) fn conda_environment(file: &str, text: &str, out: &mut Parsed) {
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.issue(file, e.line, format!("not valid YAML: {}", e.message));
            return;
        }
    };
    let Some(deps) = doc
        .get("dependencies")
        .and_then(serde_json::Value::as_array)
    else {
        return;
    };
    for dep in deps {
        let Some(pip) = dep.get("pip").and_then(serde_json::Value::as_array) else {
            continue;
        };
        let mut from = 0;
        for item in pip {
            let Some(line_text) = item.as_str() else {
                continue;
            };
            let (line, at) = find_line(text, line_text, from).unwrap_or((0, from));
            from = at;
            let mut one = Parsed::default();
            requirements_text(file, line_text, None, &mut one);
            for mut p in one.packages {
                p.line = Some(line);
                out.packages.push(p);
            }
            for mut u in one.unpinned {
                u.line = line;
                out.unpinned.push(u);
            }
            for mut i in one.issues {
                i.line = line;
                out.issues.push(i);
            }
        }
    }
}
