//! `Cargo.lock` (versions 1–4): every `[[package]]` from crates.io.
//!
//! Packages without a `source` are workspace members or path dependencies and `git+` sources are
//! git checkouts: neither is a crates.io release, so neither is matched (cargo-audit matches by
//! name whatever the source; see docs/deps.md). Registry mirrors (`registry+…`, `sparse+…`) are
//! crates.io releases.

use serde::Deserialize;
use toml::Spanned;

use super::{Parsed, line_at};
use crate::deps::ecosystem::Ecosystem;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
}

pub(crate) fn cargo_lock(file: &str, text: &str, out: &mut Parsed) {
    let lock: Lock = match toml::from_str(text) {
        Ok(lock) => lock,
        Err(e) => {
            let line = e.span().map_or(0, |s| line_at(text, s.start));
            out.issue(
                file,
                line,
                format!("not a valid Cargo.lock: {}", e.message()),
            );
            return;
        }
    };
    // Entries are validated one by one, so a bad one is an issue, not the end of the file.
    for (index, spanned) in lock.package.into_iter().enumerate() {
        let line = line_at(text, spanned.span().start);
        match spanned.into_inner().try_into::<LockPackage>() {
            Ok(p) => {
                let from_registry = p
                    .source
                    .as_deref()
                    .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"));
                if from_registry {
                    out.package(file, Ecosystem::CratesIo, &p.name, &p.version, Some(line));
                }
            }
            Err(e) => out.issue(
                file,
                line,
                format!("[[package]] #{}: {}", index + 1, e.message()),
            ),
        }
    }
}
