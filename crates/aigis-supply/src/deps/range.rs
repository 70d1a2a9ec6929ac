//! Whether a version is affected by an OSV `affected[]` entry, as the OSV schema's evaluation
//! algorithm says.
//!
//! A version is affected when it is listed in `versions`, or when any range contains it. Events
//! written as intervals (each `introduced` followed by at most one `fixed` or `last_affected`,
//! as nearly every record is) are read as intervals in record order: `[introduced, fixed)` and
//! `[introduced, last_affected]`, so a record whose intervals touch (`…fixed: 3.1.1, …,
//! introduced: 3.1.1`) affects the shared bound. Other event lists are sorted by version
//! (`introduced: "0"` first; stable, so ties keep record order) and walked: `introduced` at or
//! below the version opens the affected interval, `fixed` at or below closes it, and
//! `last_affected` strictly below closes it. `limit` events cap the whole range: the version
//! must be below one of them (`"*"` is no limit). Events whose version cannot be parsed in the
//! range's ordering are skipped (and the range is evaluated with the rest), so one malformed
//! event cannot make a range match everything; a range left with no `introduced` matches
//! nothing. Conflicting ranges (e.g. `fixed` below `introduced`) are evaluated literally.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::ecosystem::{Ecosystem, Version};
use super::osv::{Affected, Event, Range};

/// The versions named by advisories (events, listed versions), parsed once and kept for a
/// matching run: a package's advisories are evaluated for every installed version of it, and the
/// smallest-fix search evaluates all of them again for each candidate, so without this the same
/// few thousand strings would be parsed over and over.
#[derive(Debug, Default)]
pub struct Versions<'a> {
    parsed: HashMap<(Ecosystem, &'a str), Option<Version>>,
    /// The listed `versions` of an entry (by its address), sorted for binary search.
    listed: HashMap<usize, Listed<'a>>,
}

#[derive(Debug)]
struct Listed<'a> {
    /// Those that parse, sorted by the ecosystem's ordering.
    parsed: Vec<Version>,
    /// Those that do not (matched by their text only).
    unparsed: Vec<&'a str>,
}

impl<'a> Versions<'a> {
    /// `text` parsed in the ordering of `eco` (as [`Ecosystem::parse_version`]).
    pub fn get(&mut self, eco: Ecosystem, text: &'a str) -> Option<Version> {
        self.parsed
            .entry((eco, text))
            .or_insert_with(|| eco.parse_version(text))
            .clone()
    }

    fn listed(&mut self, entry: &'a Affected) -> &Listed<'a> {
        self.listed
            .entry(std::ptr::from_ref(entry) as usize)
            .or_insert_with(|| {
                let mut parsed = Vec::with_capacity(entry.versions.len());
                let mut unparsed = Vec::new();
                for text in &entry.versions {
                    match entry.ecosystem.parse_version(text) {
                        Some(v) => parsed.push(v),
                        None => unparsed.push(text.as_str()),
                    }
                }
                parsed.sort_by(|a, b| a.compare(b).unwrap_or(Ordering::Equal));
                Listed { parsed, unparsed }
            })
    }
}

/// Whether `version` (text as installed, and parsed) is affected by `entry`.
pub fn is_affected(entry: &Affected, text: &str, version: &Version) -> bool {
    is_affected_in(entry, text, version, &mut Versions::default())
}

/// [`is_affected`], with the advisory's versions parsed through `versions`.
pub fn is_affected_in<'a>(
    entry: &'a Affected,
    text: &str,
    version: &Version,
    versions: &mut Versions<'a>,
) -> bool {
    if !entry.versions.is_empty() && listed_contains(entry, text, version, versions) {
        return true;
    }
    entry
        .ranges
        .iter()
        .any(|r| range_contains_in(entry.ecosystem, r, text, Some(version), versions))
}

/// Listed versions compare by the ecosystem's equality (`1.0` == `1.0.0` in PEP 440); the same
/// text always matches.
fn listed_contains<'a>(
    entry: &'a Affected,
    text: &str,
    version: &Version,
    versions: &mut Versions<'a>,
) -> bool {
    if !same_kind(entry.ecosystem, version) {
        // Parsed in another ordering (a SEMVER range's fix on a PyPI entry): the orderings
        // cannot be compared, so only the same text matches.
        return entry.versions.iter().any(|v| v == text);
    }
    let listed = versions.listed(entry);
    listed.unparsed.contains(&text)
        || listed
            .parsed
            .binary_search_by(|l| l.compare(version).unwrap_or(Ordering::Less))
            .is_ok()
}

/// Whether `version` is what `order` parses versions into (PEP 440 for PyPI, SemVer else).
fn same_kind(order: Ecosystem, version: &Version) -> bool {
    matches!(
        (order, version),
        (Ecosystem::PyPi, Version::Pep440(_))
            | (
                Ecosystem::CratesIo | Ecosystem::Npm | Ecosystem::Go,
                Version::Semver(_)
            )
    )
}

/// The ordering a range uses: SEMVER ranges always SemVer; ECOSYSTEM ranges the ecosystem's.
fn ordering_for(eco: Ecosystem, range: &Range) -> Ecosystem {
    if range.semver && eco == Ecosystem::PyPi {
        Ecosystem::CratesIo // plain SemVer precedence
    } else {
        eco
    }
}

/// Whether `text` lies in `range`.
pub fn range_contains(eco: Ecosystem, range: &Range, text: &str) -> bool {
    range_contains_in(eco, range, text, None, &mut Versions::default())
}

/// [`range_contains`] with the range's versions parsed through `versions`; `parsed` is `text`
/// already parsed for `eco`, if the caller has it (used when the range orders that way).
fn range_contains_in<'a>(
    eco: Ecosystem,
    range: &'a Range,
    text: &str,
    parsed: Option<&Version>,
    versions: &mut Versions<'a>,
) -> bool {
    let order = ordering_for(eco, range);
    let own;
    let v = match parsed {
        Some(p) if order == eco && same_kind(order, p) => p,
        _ => match order.parse_version(text) {
            Some(p) => {
                own = p;
                &own
            }
            None => return false,
        },
    };
    if range.events.iter().any(|e| matches!(e, Event::Limit(_)))
        && !below_some_limit(order, range, v, versions)
    {
        return false;
    }
    if let Some(intervals) = as_intervals(order, &range.events, versions) {
        return intervals
            .iter()
            .any(|(start, end)| interval_contains(order, start, *end, v, versions));
    }
    let mut events: Vec<(Option<Version>, &Event)> = Vec::with_capacity(range.events.len());
    for event in &range.events {
        match event {
            Event::Limit(_) => {}
            Event::Introduced(i) if i == "0" => events.push((None, event)),
            Event::Introduced(s) | Event::Fixed(s) | Event::LastAffected(s) => {
                if let Some(parsed) = versions.get(order, s) {
                    events.push((Some(parsed), event));
                }
            }
        }
    }
    // Not written as intervals: sort by version (stable, so ties keep the record's order).
    events.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a.compare(b).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    for (at, event) in &events {
        match (event, at) {
            (Event::Introduced(_), None) => affected = true,
            (Event::Introduced(_), Some(at)) if le(at, v) => affected = true,
            (Event::Fixed(_), Some(at)) if le(at, v) => affected = false,
            (Event::LastAffected(_), Some(at)) if lt(at, v) => affected = false,
            _ => {}
        }
    }
    affected
}

/// The events as `introduced` / closing pairs in record order, when they are written that way
/// (as nearly all records are): each `introduced` followed by at most one `fixed` or
/// `last_affected`, each end at or above its start. `None` when they are not (a conflicting
/// record such as `introduced: 2.0, fixed: 1.0`), and the sorted walk of the schema decides.
fn as_intervals<'a>(
    order: Ecosystem,
    events: &'a [Event],
    versions: &mut Versions<'a>,
) -> Option<Vec<(&'a str, Option<&'a Event>)>> {
    let mut out: Vec<(&str, Option<&Event>)> = Vec::new();
    let mut open = false;
    for event in events {
        match event {
            Event::Limit(_) => {}
            Event::Introduced(start) => {
                out.push((start.as_str(), None));
                open = true;
            }
            Event::Fixed(end) | Event::LastAffected(end) if open => {
                if let Some(last) = out.last_mut() {
                    let backwards = versions
                        .get(order, last.0)
                        .zip(versions.get(order, end))
                        .is_some_and(|(s, e)| lt(&e, &s));
                    if backwards {
                        return None;
                    }
                    last.1 = Some(event);
                }
                open = false;
            }
            Event::Fixed(_) | Event::LastAffected(_) => return None,
        }
    }
    Some(out)
}

/// Whether `v` lies in `[start, fixed)` or `[start, last_affected]` (open-ended without an
/// end). An interval with a bound that does not parse is not evaluated.
fn interval_contains<'a>(
    order: Ecosystem,
    start: &'a str,
    end: Option<&'a Event>,
    v: &Version,
    versions: &mut Versions<'a>,
) -> bool {
    let after_start = start == "0" || versions.get(order, start).is_some_and(|s| le(&s, v));
    if !after_start {
        return false;
    }
    match end {
        None => true,
        Some(Event::Fixed(f)) => versions.get(order, f).is_some_and(|f| lt(v, &f)),
        Some(Event::LastAffected(l)) => versions.get(order, l).is_some_and(|l| le(v, &l)),
        Some(_) => false,
    }
}

fn below_some_limit<'a>(
    order: Ecosystem,
    range: &'a Range,
    v: &Version,
    versions: &mut Versions<'a>,
) -> bool {
    range.events.iter().any(|e| match e {
        Event::Limit(l) if l == "*" => true,
        Event::Limit(l) => versions.get(order, l).is_some_and(|lv| lt(v, &lv)),
        _ => false,
    })
}

fn le(a: &Version, b: &Version) -> bool {
    a.compare(b).is_some_and(Ordering::is_le)
}

fn lt(a: &Version, b: &Version) -> bool {
    a.compare(b).is_some_and(Ordering::is_lt)
}

/// The versions named by `fixed` events of `entry` that are above `version`, in the entry's
/// ordering: the candidates for "upgrade to".
pub fn fixed_above<'a>(
    entry: &'a Affected,
    version: &Version,
    versions: &mut Versions<'a>,
) -> Vec<(Version, String)> {
    let mut out = Vec::new();
    for range in &entry.ranges {
        let order = ordering_for(entry.ecosystem, range);
        for event in &range.events {
            if let Event::Fixed(f) = event
                && let Some(fv) = versions.get(order, f)
                && fv.compare(version).is_some_and(Ordering::is_gt)
            {
                out.push((fv, f.clone()));
            }
        }
    }
    out
}
