//! A whole scan: discover inputs, parse them in parallel, look their packages up in the
//! database once per ecosystem, match each distinct package version once, apply ignores, and
//! collect everything a report needs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;

use super::ai;
use super::db::{Database, DbError};
use super::discover::{Input, discover};
use super::ecosystem::Ecosystem;
use super::inputs::{self, InputKind, Parsed, Unpinned};
use super::markers::{self, Environment};
use super::matching::{self, Matched, Vulnerability};
use super::online::{self, Online, OnlineSummary};
use super::osv::Advisory;
use super::range::Versions;

/// An advisory id to leave out of the results, optionally until a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// The id or alias (any of a vulnerability's ids matches), compared case-insensitively.
    pub id: String,
    /// Seconds since the epoch from which the ignore no longer applies.
    pub until: Option<u64>,
}

/// How to scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Ids to ignore.
    pub ignores: Vec<Ignore>,
    /// "Now", for ignore expiry (seconds since the epoch).
    pub now: u64,
    /// Report typosquat-like names.
    pub typosquats: bool,
    /// The environment PEP 508 markers are evaluated for.
    pub environment: Environment,
    /// Also ask the OSV API (`aigis deps --online`).
    pub online: Option<Online>,
}

/// A pinned package or a requirement that the target environment would not install: its
/// environment marker is false there, so it is not matched (and reported as excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The input file.
    pub file: String,
    /// The line.
    pub line: Option<u64>,
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// The name.
    pub name: String,
    /// The pinned version, or the requirement as written when unpinned.
    pub version: String,
    /// The marker that is false.
    pub marker: String,
}

/// One vulnerable package occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnerablePackage {
    /// The input file.
    pub file: String,
    /// The line that pins it.
    pub line: Option<u64>,
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Name as the input spells it.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// The vulnerability.
    pub vulnerability: Vulnerability,
    /// The smallest version fixing every vulnerability of this package version.
    pub fix_all: Option<String>,
    /// A code-execution-on-load issue of an AI package.
    pub load_time_rce: bool,
}

/// A package whose name looks like a popular AI package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typosquat {
    /// The input file.
    pub file: String,
    /// The line.
    pub line: Option<u64>,
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// The name found.
    pub name: String,
    /// The popular package it resembles.
    pub resembles: &'static str,
}

/// Advisories for a package that could not be evaluated (`GIT` ranges only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEvaluated {
    /// The input file.
    pub file: String,
    /// Package name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Advisory ids.
    pub ids: Vec<String>,
}

/// Per-input summary.
#[derive(Debug, Clone)]
pub struct InputSummary {
    /// The file.
    pub file: String,
    /// Its kind.
    pub kind: InputKind,
    /// Pinned packages read.
    pub packages: usize,
    /// Requirement files it included.
    pub included: Vec<String>,
}

/// Everything a scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanResult {
    /// The inputs read.
    pub inputs: Vec<InputSummary>,
    /// Vulnerable packages (after ignores).
    pub vulnerable: Vec<VulnerablePackage>,
    /// Unpinned requirements, with their file.
    pub unpinned: Vec<(String, Unpinned)>,
    /// Typosquat-like names.
    pub typosquats: Vec<Typosquat>,
    /// Advisories that could not be evaluated offline.
    pub not_evaluated: Vec<NotEvaluated>,
    /// Vulnerabilities left out by an ignore: (ids, file, package@version).
    pub ignored: Vec<(Vec<String>, String, String)>,
    /// Ignores whose date has passed (they no longer apply).
    pub expired_ignores: Vec<Ignore>,
    /// Inputs or parts of inputs not scanned: (file, reason with line).
    pub not_scanned: Vec<(String, String)>,
    /// Distinct (ecosystem, name, version) checked.
    pub distinct_packages: usize,
    /// Package occurrences checked.
    pub package_occurrences: usize,
    /// Packages and requirements left out by their environment marker.
    pub excluded: Vec<Excluded>,
    /// The target environment markers were evaluated for (e.g. `CPython 3.12.0 on linux`).
    pub environment: String,
    /// What the OSV API contributed, when asked (`--online`).
    pub online: Option<OnlineSummary>,
}

/// Scans `paths` against `db`.
pub fn scan(
    paths: &[PathBuf],
    db: &Database,
    options: &ScanOptions,
) -> Result<ScanResult, DbError> {
    let discovered = discover(paths);
    let mut result = ScanResult {
        environment: options.environment.describe(),
        ..ScanResult::default()
    };
    for (path, reason) in discovered.unreadable {
        result
            .not_scanned
            .push((path.display().to_string(), reason));
    }
    let (parsed, excluded): (Vec<(Input, Parsed)>, Vec<Vec<Excluded>>) = discovered
        .inputs
        .into_par_iter()
        .map(|input| {
            let mut parsed = inputs::parse(input.kind, &input.path);
            let file = input.path.display().to_string();
            let excluded = apply_markers(&file, &mut parsed, &options.environment);
            ((input, parsed), excluded)
        })
        .unzip();
    result.excluded = excluded.into_iter().flatten().collect();
    let mut advisories = load_advisories(db, &parsed)?;
    if let Some(service) = &options.online {
        let (found, summary) = online::fetch(service, &online_queries(&parsed))?;
        merge_online(&mut advisories, found);
        result.online = Some(summary);
    }
    let matched = match_distinct(&parsed, &advisories);
    let (active, expired): (Vec<Ignore>, Vec<Ignore>) = options
        .ignores
        .iter()
        .cloned()
        .partition(|i| i.until.is_none_or(|until| until > options.now));
    result.expired_ignores = expired;
    let mut distinct = HashSet::new();
    for (input, parsed) in parsed {
        let file = input.path.display().to_string();
        collect_file(
            &file,
            &parsed,
            &matched,
            &active,
            options,
            &mut result,
            &mut distinct,
        );
        result.inputs.push(InputSummary {
            file,
            kind: input.kind,
            packages: parsed.packages.len(),
            included: parsed.included,
        });
    }
    result.distinct_packages = distinct.len();
    Ok(result)
}

type Key = (Ecosystem, String, String);

/// Removes from `parsed` the packages and requirements whose marker is false in `env` and
/// returns them. A marker that cannot be evaluated keeps its package (checked as if it
/// applied) and is reported as an issue with its line.
fn apply_markers(file: &str, parsed: &mut Parsed, env: &Environment) -> Vec<Excluded> {
    let mut excluded = Vec::new();
    let mut issues = Vec::new();
    let mut applies = |marker: Option<&String>, line: u64| -> bool {
        let Some(marker) = marker else { return true };
        match markers::evaluate(marker, env) {
            Ok(holds) => holds,
            Err(e) => {
                issues.push((
                    line,
                    format!("environment marker `{marker}`: {e}; checked as if it applied"),
                ));
                true
            }
        }
    };
    parsed.packages.retain(|p| {
        let keep = applies(p.marker.as_ref(), p.line.unwrap_or(0));
        if !keep {
            excluded.push(Excluded {
                file: file.to_owned(),
                line: p.line,
                ecosystem: p.ecosystem,
                name: p.name.clone(),
                version: p.version.clone(),
                marker: p.marker.clone().unwrap_or_default(),
            });
        }
        keep
    });
    parsed.unpinned.retain(|u| {
        let keep = applies(u.marker.as_ref(), u.line);
        if !keep {
            excluded.push(Excluded {
                file: file.to_owned(),
                line: Some(u.line),
                ecosystem: u.ecosystem,
                name: u.name.clone(),
                version: u.spec.clone(),
                marker: u.marker.clone().unwrap_or_default(),
            });
        }
        keep
    });
    for (line, message) in issues {
        parsed.issue(file, line, message);
    }
    excluded
}

fn load_advisories(
    db: &Database,
    parsed: &[(Input, Parsed)],
) -> Result<HashMap<Ecosystem, HashMap<String, Vec<Advisory>>>, DbError> {
    let mut names: BTreeMap<Ecosystem, HashSet<String>> = BTreeMap::new();
    for (_, p) in parsed {
        for package in &p.packages {
            names
                .entry(package.ecosystem)
                .or_default()
                .insert(package.ecosystem.normalize_name(&package.name));
        }
    }
    names
        .into_par_iter()
        .map(|(eco, names)| db.advisories_for(eco, &names).map(|a| (eco, a)))
        .collect()
}

/// Each distinct pinned (ecosystem, normalised name, version) once, with a parseable version
/// (the others cannot be matched, whatever the service says).
fn online_queries(parsed: &[(Input, Parsed)]) -> Vec<online::Query> {
    let mut seen = HashSet::new();
    let mut queries = Vec::new();
    for (_, p) in parsed {
        for package in &p.packages {
            let eco = package.ecosystem;
            let key = eco.normalize_name(&package.name);
            if eco.parse_version(&package.version).is_some()
                && seen.insert((eco, key.clone(), package.version.clone()))
            {
                queries.push(online::Query {
                    ecosystem: eco,
                    name: package.name.clone(),
                    key,
                    version: package.version.clone(),
                });
            }
        }
    }
    queries.sort();
    queries
}

/// Adds the service's advisories to the local ones; a record the database already has (same
/// id, same package) is kept once, in its local form.
fn merge_online(
    advisories: &mut HashMap<Ecosystem, HashMap<String, Vec<Advisory>>>,
    found: online::Found,
) {
    for (eco, by_name) in found {
        let local = advisories.entry(eco).or_default();
        for (name, list) in by_name {
            let known = local.entry(name).or_default();
            for advisory in list {
                if !known.iter().any(|a| a.id == advisory.id) {
                    known.push(advisory);
                }
            }
        }
    }
}

/// Matches each distinct (ecosystem, normalised name, version) once.
fn match_distinct(
    parsed: &[(Input, Parsed)],
    advisories: &HashMap<Ecosystem, HashMap<String, Vec<Advisory>>>,
) -> HashMap<Key, Option<Matched>> {
    let mut keys: HashSet<Key> = HashSet::new();
    for (_, p) in parsed {
        for package in &p.packages {
            let name = package.ecosystem.normalize_name(&package.name);
            let has = advisories
                .get(&package.ecosystem)
                .is_some_and(|m| m.contains_key(&name));
            if has {
                keys.insert((package.ecosystem, name, package.version.clone()));
            }
        }
    }
    // Grouped by package, so each advisory version string is parsed once per package.
    let mut packages: HashMap<(Ecosystem, String), Vec<String>> = HashMap::new();
    for (eco, name, version) in keys {
        packages.entry((eco, name)).or_default().push(version);
    }
    packages
        .into_par_iter()
        .flat_map_iter(|((eco, name), versions)| {
            let list = advisories
                .get(&eco)
                .and_then(|m| m.get(&name))
                .map_or(&[][..], Vec::as_slice);
            let mut parsed = Versions::default();
            versions
                .into_iter()
                .map(|version| {
                    let matched = eco
                        .parse_version(&version)
                        .map(|v| matching::match_version_in(eco, &version, &v, list, &mut parsed));
                    ((eco, name.clone(), version), matched)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn collect_file(
    file: &str,
    parsed: &Parsed,
    matched: &HashMap<Key, Option<Matched>>,
    ignores: &[Ignore],
    options: &ScanOptions,
    result: &mut ScanResult,
    distinct: &mut HashSet<Key>,
) {
    for issue in &parsed.issues {
        let reason = if issue.line > 0 {
            format!("line {}: {}", issue.line, issue.message)
        } else {
            issue.message.clone()
        };
        result.not_scanned.push((issue.file.clone(), reason));
    }
    for unpinned in &parsed.unpinned {
        result.unpinned.push((file.to_owned(), unpinned.clone()));
    }
    for package in &parsed.packages {
        result.package_occurrences += 1;
        let name = package.ecosystem.normalize_name(&package.name);
        let key = (package.ecosystem, name, package.version.clone());
        distinct.insert(key.clone());
        if options.typosquats
            && let Some(resembles) = ai::typosquat_of(package.ecosystem, &package.name)
        {
            result.typosquats.push(Typosquat {
                file: file.to_owned(),
                line: package.line,
                ecosystem: package.ecosystem,
                name: package.name.clone(),
                resembles,
            });
        }
        let Some(found) = matched.get(&key) else {
            continue; // no advisory names this package
        };
        let Some(found) = found else {
            result.not_scanned.push((
                file.to_owned(),
                format!(
                    "line {}: version `{}` of {} is not a valid {} version; not matched",
                    package.line.unwrap_or(0),
                    package.version,
                    package.name,
                    package.ecosystem
                ),
            ));
            continue;
        };
        if !found.git_only.is_empty() {
            result.not_evaluated.push(NotEvaluated {
                file: file.to_owned(),
                name: package.name.clone(),
                version: package.version.clone(),
                ids: found.git_only.clone(),
            });
        }
        for vulnerability in &found.vulnerabilities {
            if let Some(ignore) = ignores.iter().find(|i| {
                vulnerability
                    .all_ids()
                    .any(|id| id.eq_ignore_ascii_case(&i.id))
            }) {
                let _ = ignore;
                result.ignored.push((
                    vulnerability.all_ids().map(str::to_owned).collect(),
                    file.to_owned(),
                    format!("{}@{}", package.name, package.version),
                ));
                continue;
            }
            result.vulnerable.push(VulnerablePackage {
                file: file.to_owned(),
                line: package.line,
                ecosystem: package.ecosystem,
                name: package.name.clone(),
                version: package.version.clone(),
                load_time_rce: ai::is_load_time_rce(
                    package.ecosystem,
                    &package.name,
                    &vulnerability.summary,
                ),
                vulnerability: vulnerability.clone(),
                fix_all: found.fix_all.clone(),
            });
        }
    }
}
