//! Matching one package version against the advisories of its name: which advisories affect
//! it, merged by alias into one vulnerability each, and the smallest version that fixes them.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use aigis_report::Severity;

use super::ecosystem::{Ecosystem, Version};
use super::osv::Advisory;
use super::range::{self, Versions};

/// One vulnerability affecting a package version: one or more advisories that name each other
/// as aliases (e.g. `PYSEC-2021-76`, `GHSA-v6wp-4m6f-gcjg` and `CVE-2021-21330`).
#[derive(Debug, Clone, PartialEq)]
pub struct Vulnerability {
    /// The database records' own ids, sorted (`GHSA-…`, `PYSEC-…`, `RUSTSEC-…`).
    pub ids: Vec<String>,
    /// Aliases that are not record ids here (`CVE-…`), sorted.
    pub aliases: Vec<String>,
    /// The worst severity among the merged records (no severity counts as high).
    pub severity: Severity,
    /// The CVSS score behind it, if any.
    pub score: Option<f64>,
    /// Where the severity came from (a CVSS vector, `database_specific: HIGH`, or `none`).
    pub severity_source: String,
    /// RustSec informational class, if any (`unmaintained`, `unsound`, `notice`).
    pub informational: Option<String>,
    /// One line.
    pub summary: String,
    /// The smallest version that fixes this vulnerability, if the records name one.
    pub fixed: Option<String>,
    /// When no named fix is unaffected: the smallest `fixed` version the records name, which
    /// they also list as affected (a conflicting record, e.g. a `versions` list that runs past
    /// the range's fix).
    pub conflicting_fix: Option<String>,
}

impl Vulnerability {
    /// Every id and alias, record ids first.
    pub fn all_ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().chain(&self.aliases).map(String::as_str)
    }

    /// The id shown first.
    pub fn primary(&self) -> &str {
        self.ids.first().map_or("", String::as_str)
    }
}

/// What matching one package version found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched {
    /// Vulnerabilities affecting the version.
    pub vulnerabilities: Vec<Vulnerability>,
    /// Advisories for this package that have only `GIT` ranges: not evaluated.
    pub git_only: Vec<String>,
    /// The smallest version above the installed one that none of the package's advisories
    /// affects (including advisories that do not affect the installed version), if the
    /// advisories name one.
    pub fix_all: Option<String>,
}

/// Matches `version` of a package against `advisories` (all naming that package).
pub fn match_version(
    eco: Ecosystem,
    text: &str,
    version: &Version,
    advisories: &[Advisory],
) -> Matched {
    match_version_in(eco, text, version, advisories, &mut Versions::default())
}

/// [`match_version`] with the advisories' versions parsed through `versions` (kept across
/// the versions of one package).
pub fn match_version_in<'a>(
    eco: Ecosystem,
    text: &str,
    version: &Version,
    advisories: &'a [Advisory],
    versions: &mut Versions<'a>,
) -> Matched {
    let mut hits: Vec<&Advisory> = Vec::new();
    let mut git_only = Vec::new();
    for advisory in advisories {
        let mut affected = false;
        let mut only_git = !advisory.affected.is_empty();
        for entry in &advisory.affected {
            only_git &= entry.git_only;
            if entry.ecosystem == eco && range::is_affected_in(entry, text, version, versions) {
                affected = true;
            }
        }
        if affected {
            hits.push(advisory);
        } else if only_git {
            git_only.push(advisory.id.clone());
        }
    }
    let groups = group_by_alias(&hits);
    let mut vulnerabilities: Vec<Vulnerability> = groups
        .iter()
        .map(|group| merge(group, version, versions))
        .collect();
    vulnerabilities.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.ids.cmp(&b.ids)));
    // The recommendation must not land in another advisory of the package, so every advisory
    // of the package is checked, not only those affecting the installed version.
    let fix_all = if hits.is_empty() {
        None
    } else {
        let all: Vec<&Advisory> = advisories.iter().collect();
        smallest_fix(&all, version, versions)
    };
    git_only.sort();
    Matched {
        vulnerabilities,
        git_only,
        fix_all,
    }
}

/// Groups advisories that share an id or alias (transitively).
fn group_by_alias<'a>(hits: &[&'a Advisory]) -> Vec<Vec<&'a Advisory>> {
    let mut groups: Vec<(BTreeSet<&'a str>, Vec<&'a Advisory>)> = Vec::new();
    for &advisory in hits {
        let names: BTreeSet<&str> = std::iter::once(advisory.id.as_str())
            .chain(advisory.aliases.iter().map(String::as_str))
            .collect();
        let mut merged_names = names;
        let mut merged = vec![advisory];
        let mut index = 0;
        while index < groups.len() {
            if groups[index].0.iter().any(|n| merged_names.contains(n)) {
                let (n, a) = groups.swap_remove(index);
                merged_names.extend(n);
                merged.extend(a);
            } else {
                index += 1;
            }
        }
        groups.push((merged_names, merged));
    }
    groups.into_iter().map(|(_, a)| a).collect()
}

fn merge<'a>(
    group: &[&'a Advisory],
    version: &Version,
    versions: &mut Versions<'a>,
) -> Vulnerability {
    let ids: BTreeSet<String> = group.iter().map(|a| a.id.clone()).collect();
    let aliases: BTreeSet<String> = group
        .iter()
        .flat_map(|a| a.aliases.iter().cloned())
        .filter(|a| !ids.contains(a))
        .collect();
    let worst = group
        .iter()
        .max_by(|a, b| {
            a.severity
                .effective()
                .cmp(&b.severity.effective())
                .then_with(|| {
                    a.severity
                        .score
                        .partial_cmp(&b.severity.score)
                        .unwrap_or(Ordering::Equal)
                })
        })
        .copied();
    let summary = group
        .iter()
        .map(|a| a.summary.as_str())
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned();
    let (severity, score, severity_source, informational) = match worst {
        Some(a) => (
            a.severity.effective(),
            a.severity.score,
            if a.severity.source.is_empty() {
                "none (counted as high)".to_owned()
            } else {
                a.severity.source.clone()
            },
            a.severity.informational.clone(),
        ),
        None => (Severity::High, None, String::new(), None),
    };
    Vulnerability {
        ids: ids.into_iter().collect(),
        aliases: aliases.into_iter().collect(),
        severity,
        score,
        severity_source,
        informational,
        summary,
        fixed: smallest_fix(group, version, versions),
        conflicting_fix: None,
    }
    .with_conflict(group, version, versions)
}

impl Vulnerability {
    fn with_conflict<'a>(
        mut self,
        group: &[&'a Advisory],
        version: &Version,
        versions: &mut Versions<'a>,
    ) -> Self {
        if self.fixed.is_none() {
            self.conflicting_fix = group
                .iter()
                .flat_map(|a| a.affected.iter())
                .flat_map(|entry| range::fixed_above(entry, version, versions))
                .min_by(|a, b| a.0.compare(&b.0).unwrap_or(Ordering::Equal))
                .map(|(_, text)| text);
        }
        self
    }
}

/// The smallest `fixed` version above `version`, among all the advisories' fixed events, that
/// none of the advisories affects.
fn smallest_fix<'a>(
    advisories: &[&'a Advisory],
    version: &Version,
    versions: &mut Versions<'a>,
) -> Option<String> {
    let mut candidates: Vec<(Version, String)> = Vec::new();
    for entry in advisories.iter().flat_map(|a| a.affected.iter()) {
        candidates.extend(range::fixed_above(entry, version, versions));
    }
    candidates.sort_by(|a, b| a.0.compare(&b.0).unwrap_or(Ordering::Equal));
    candidates.dedup_by(|a, b| a.0.compare(&b.0) == Some(Ordering::Equal));
    candidates
        .into_iter()
        .find(|(candidate, candidate_text)| {
            advisories.iter().all(|a| {
                !a.affected
                    .iter()
                    .any(|entry| range::is_affected_in(entry, candidate_text, candidate, versions))
            })
        })
        .map(|(_, text)| text)
}
