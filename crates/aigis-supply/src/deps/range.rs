//! Whether a version is affected by an OSV `affected[]` entry, as the OSV schema's evaluation
//! algorithm says.
//!
//! A version is affected when it is listed in `versions`, or when any range contains it. Within
//! one range the events are sorted by version (`introduced: "0"` first) and walked: `introduced`
//! at or below the version opens the affected interval, `fixed` at or below closes it, and
//! `last_affected` strictly below closes it. `limit` events cap the whole range: the version
//! must be below one of them (`"*"` is no limit). Events whose version cannot be parsed in the
//! range's ordering are skipped (and the range is evaluated with the rest), so one malformed
//! event cannot make a range match everything; a range left with no `introduced` matches
//! nothing. Conflicting ranges (e.g. `fixed` below `introduced`) are evaluated literally.

use std::cmp::Ordering;

use super::ecosystem::{Ecosystem, Version};
use super::osv::{Affected, Event, Range};

/// Whether `version` (text as installed, and parsed) is affected by `entry`.
pub fn is_affected(entry: &Affected, text: &str, version: &Version) -> bool {
    if entry
        .versions
        .iter()
        .any(|v| listed_equal(entry.ecosystem, v, text, version))
    {
        return true;
    }
    entry
        .ranges
        .iter()
        .any(|r| range_contains(entry.ecosystem, r, text))
}

/// Listed versions compare by the ecosystem's equality (`1.0` == `1.0.0` in PEP 440).
fn listed_equal(eco: Ecosystem, listed: &str, text: &str, version: &Version) -> bool {
    if listed == text {
        return true;
    }
    eco.parse_version(listed)
        .and_then(|l| l.compare(version))
        .is_some_and(Ordering::is_eq)
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
    let order = ordering_for(eco, range);
    let Some(v) = order.parse_version(text) else {
        return false;
    };
    if range.events.iter().any(|e| matches!(e, Event::Limit(_)))
        && !below_some_limit(order, range, &v)
    {
        return false;
    }
    let mut events: Vec<(Option<Version>, &Event)> = Vec::with_capacity(range.events.len());
    for event in &range.events {
        match event {
            Event::Limit(_) => {}
            Event::Introduced(i) if i == "0" => events.push((None, event)),
            Event::Introduced(s) | Event::Fixed(s) | Event::LastAffected(s) => {
                if let Some(parsed) = order.parse_version(s) {
                    events.push((Some(parsed), event));
                }
            }
        }
    }
    events.sort_by(|(a, ea), (b, eb)| match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a
            .compare(b)
            .unwrap_or(Ordering::Equal)
            .then_with(|| rank(ea).cmp(&rank(eb))),
    });
    let mut affected = false;
    for (at, event) in &events {
        match (event, at) {
            (Event::Introduced(_), None) => affected = true,
            (Event::Introduced(_), Some(at)) if le(at, &v) => affected = true,
            (Event::Fixed(_), Some(at)) if le(at, &v) => affected = false,
            (Event::LastAffected(_), Some(at)) if lt(at, &v) => affected = false,
            _ => {}
        }
    }
    affected
}

/// At equal versions: `introduced` is applied before `fixed`/`last_affected`, so
/// `introduced: X, fixed: X` affects nothing.
fn rank(event: &Event) -> u8 {
    match event {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

fn below_some_limit(order: Ecosystem, range: &Range, v: &Version) -> bool {
    range.events.iter().any(|e| match e {
        Event::Limit(l) if l == "*" => true,
        Event::Limit(l) => order.parse_version(l).is_some_and(|lv| lt(v, &lv)),
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
pub fn fixed_above(entry: &Affected, version: &Version) -> Vec<(Version, String)> {
    let mut out = Vec::new();
    for range in &entry.ranges {
        let order = ordering_for(entry.ecosystem, range);
        for event in &range.events {
            if let Event::Fixed(f) = event
                && let Some(fv) = order.parse_version(f)
                && fv.compare(version).is_some_and(Ordering::is_gt)
            {
                out.push((fv, f.clone()));
            }
        }
    }
    out
}
