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
    if let Some(intervals) = as_intervals(order, &range.events) {
        return intervals
            .iter()
            .any(|(start, end)| interval_contains(order, start, *end, &v));
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
            (Event::Introduced(_), Some(at)) if le(at, &v) => affected = true,
            (Event::Fixed(_), Some(at)) if le(at, &v) => affected = false,
            (Event::LastAffected(_), Some(at)) if lt(at, &v) => affected = false,
            _ => {}
        }
    }
    affected
}

/// The events as `introduced` / closing pairs in record order, when they are written that way
/// (as nearly all records are): each `introduced` followed by at most one `fixed` or
/// `last_affected`, each end at or above its start. `None` when they are not (a conflicting
/// record such as `introduced: 2.0, fixed: 1.0`), and the sorted walk of the schema decides.
fn as_intervals(order: Ecosystem, events: &[Event]) -> Option<Vec<(&str, Option<&Event>)>> {
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
                    let backwards = order
                        .parse_version(last.0)
                        .zip(order.parse_version(end))
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
fn interval_contains(order: Ecosystem, start: &str, end: Option<&Event>, v: &Version) -> bool {
    let after_start = start == "0" || order.parse_version(start).is_some_and(|s| le(&s, v));
    if !after_start {
        return false;
    }
    match end {
        None => true,
        Some(Event::Fixed(f)) => order.parse_version(f).is_some_and(|f| lt(v, &f)),
        Some(Event::LastAffected(l)) => order.parse_version(l).is_some_and(|l| le(v, &l)),
        Some(_) => false,
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
