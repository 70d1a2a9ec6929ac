//! npm's range syntax (node-semver): `||`-separated sets of comparators, each set a conjunction.
//!
//! Desugaring follows node-semver: `*`/`x`/empty is any version; a partial `1.2` is
//! `>=1.2.0 <1.3.0-0`; `~1.2.3` is `>=1.2.3 <1.3.0-0`; `^1.2.3` is `>=1.2.3 <2.0.0-0`, `^0.2.3` is
//! `>=0.2.3 <0.3.0-0` and `^0.0.3` is `>=0.0.3 <0.0.4-0`; hyphen ranges `1.2.3 - 2.3.4` are
//! inclusive, a partial upper bound covering its whole span. A pre-release version satisfies a
//! set only when some comparator of that set names the same `major.minor.patch` with a
//! pre-release (so `^1.2.3-beta.1` admits `1.2.3-beta.2` but not `1.2.4-beta.1`).

use std::cmp::Ordering;

use semver::{Prerelease, Version};

/// Longest range text parsed.
pub const MAX_RANGE_CHARS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

impl Comparator {
    fn test(&self, v: &Version) -> bool {
        let ord = cmp(v, &self.version);
        match self.op {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Eq => ord == Ordering::Equal,
        }
    }
}

/// SemVer precedence (build metadata ignored).
fn cmp(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// A parsed npm range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmRange {
    sets: Vec<Vec<Comparator>>,
}

/// A partial version: missing or wildcard components are `None`.
#[derive(Debug, Clone)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

fn v(major: u64, minor: u64, patch: u64) -> Version {
    Version::new(major, minor, patch)
}

/// `X.Y.Z-0`: the lowest version of that release line, pre-releases included.
fn floor(major: u64, minor: u64, patch: u64) -> Version {
    let mut version = v(major, minor, patch);
    version.pre = Prerelease::new("0").unwrap_or(Prerelease::EMPTY);
    version
}

fn parse_partial(text: &str) -> Result<Partial, String> {
    let text = text.trim().trim_start_matches(['v', '=']).trim();
    let text = text.split('+').next().unwrap_or_default();
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, pre),
        None => (text, ""),
    };
    let mut parts = core.split('.');
    let mut next = || -> Result<Option<u64>, String> {
        match parts.next() {
            None | Some("x" | "X" | "*" | "") => Ok(None),
            Some(n) => n
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("`{n}` is not a version number")),
        }
    };
    let major = next()?;
    let minor = next()?;
    let patch = next()?;
    if parts.next().is_some() {
        return Err(format!("`{core}` has more than three components"));
    }
    let pre = if pre.is_empty() {
        Prerelease::EMPTY
    } else {
        Prerelease::new(pre).map_err(|e| format!("pre-release `{pre}`: {e}"))?
    };
    Ok(Partial {
        major,
        minor: major.and(minor),
        patch: major.and(minor).and(patch),
        pre,
    })
}

fn full(p: &Partial) -> Option<Version> {
    let mut version = v(p.major?, p.minor?, p.patch?);
    version.pre = p.pre.clone();
    Some(version)
}

fn cmp_op(op: Op, version: Version) -> Comparator {
    Comparator { op, version }
}

/// `>=low` of a partial (wildcards as zero).
fn lower(p: &Partial) -> Option<Comparator> {
    let major = p.major?;
    let mut version = v(major, p.minor.unwrap_or(0), p.patch.unwrap_or(0));
    version.pre = p.pre.clone();
    Some(cmp_op(Op::Ge, version))
}

/// `<` the first version past a partial's span (`1.2` -> `<1.3.0-0`).
fn past(p: &Partial) -> Option<Comparator> {
    let major = p.major?;
    Some(match (p.minor, p.patch) {
        (None, _) => cmp_op(Op::Lt, floor(major + 1, 0, 0)),
        (Some(minor), None) => cmp_op(Op::Lt, floor(major, minor + 1, 0)),
        (Some(_), Some(_)) => return None,
    })
}

fn primitive(op: &str, p: &Partial) -> Vec<Comparator> {
    let Some(major) = p.major else {
        // `>=*` and friends: any version; `<*` and `>*`: none.
        return match op {
            "<" | ">" => vec![cmp_op(Op::Lt, floor(0, 0, 0))],
            _ => Vec::new(),
        };
    };
    if let Some(exact) = full(p) {
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => Op::Eq,
        };
        return vec![cmp_op(op, exact)];
    }
    let minor = p.minor.unwrap_or(0);
    match op {
        ">" => vec![match p.minor {
            None => cmp_op(Op::Ge, v(major + 1, 0, 0)),
            Some(m) => cmp_op(Op::Ge, v(major, m + 1, 0)),
        }],
        ">=" => vec![cmp_op(Op::Ge, v(major, minor, 0))],
        "<" => vec![cmp_op(Op::Lt, floor(major, minor, 0))],
        "<=" => past(p).into_iter().collect(),
        _ => lower(p).into_iter().chain(past(p)).collect(),
    }
}

fn tilde(p: &Partial) -> Vec<Comparator> {
    let Some(major) = p.major else {
        return Vec::new();
    };
    let upper = match p.minor {
        None => floor(major + 1, 0, 0),
        Some(minor) => floor(major, minor + 1, 0),
    };
    lower(p)
        .into_iter()
        .chain([cmp_op(Op::Lt, upper)])
        .collect()
}

fn caret(p: &Partial) -> Vec<Comparator> {
    let Some(major) = p.major else {
        return Vec::new();
    };
    let upper = match (major, p.minor, p.patch) {
        (0, None, _) => floor(1, 0, 0),
        (0, Some(0), None) => floor(0, 1, 0),
        (0, Some(0), Some(patch)) => floor(0, 0, patch + 1),
        (0, Some(minor), _) => floor(0, minor + 1, 0),
        (major, _, _) => floor(major + 1, 0, 0),
    };
    lower(p)
        .into_iter()
        .chain([cmp_op(Op::Lt, upper)])
        .collect()
}

fn parse_set(text: &str) -> Result<Vec<Comparator>, String> {
    if let Some((low, high)) = text.split_once(" - ") {
        let low = parse_partial(low)?;
        let high = parse_partial(high)?;
        let mut set: Vec<Comparator> = lower(&low).into_iter().collect();
        match full(&high) {
            Some(exact) => set.push(cmp_op(Op::Le, exact)),
            None => set.extend(past(&high)),
        }
        return Ok(set);
    }
    // Operators may be separated from their version by spaces (`>= 1.2`): glue them first.
    let mut tokens: Vec<String> = Vec::new();
    let mut pending = String::new();
    for word in text.split_whitespace() {
        if matches!(word, "<" | "<=" | ">" | ">=" | "=" | "~" | "^" | "~>") {
            pending.push_str(word);
            continue;
        }
        tokens.push(format!("{pending}{word}"));
        pending.clear();
    }
    if !pending.is_empty() {
        return Err(format!("operator `{pending}` has no version"));
    }
    let mut set = Vec::new();
    for token in tokens {
        let token = token.as_str();
        let (op, rest) = ["<=", ">=", "~>", "<", ">", "=", "~", "^"]
            .iter()
            .find_map(|op| token.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("", token));
        let p = parse_partial(rest)?;
        set.extend(match op {
            "~" | "~>" => tilde(&p),
            "^" => caret(&p),
            _ => primitive(op, &p),
        });
    }
    Ok(set)
}

impl NpmRange {
    /// Parses a range (`^1.2.3`, `>=1.0.0 <2 || 3.x`, `1.2.3 - 2`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.chars().count() > MAX_RANGE_CHARS {
            return Err(format!("range longer than {MAX_RANGE_CHARS} characters"));
        }
        let sets = text
            .split("||")
            .map(|s| parse_set(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { sets })
    }

    /// Whether `version` satisfies the range.
    pub fn satisfies(&self, version: &Version) -> bool {
        self.sets.iter().any(|set| {
            set.iter().all(|c| c.test(version))
                && (version.pre.is_empty()
                    || set.iter().any(|c| {
                        !c.version.pre.is_empty()
                            && (c.version.major, c.version.minor, c.version.patch)
                                == (version.major, version.minor, version.patch)
                    }))
        })
    }

    /// Whether the range admits exactly one version (`1.2.3`, `=1.2.3`).
    pub fn is_exact(&self) -> bool {
        matches!(self.sets.as_slice(), [set] if matches!(set.as_slice(), [c] if c.op == Op::Eq))
    }
}
