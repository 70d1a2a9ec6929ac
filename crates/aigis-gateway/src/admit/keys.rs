//! Counter keys: one per combination of a limit's scope values, plus the calendar window
//! for budgets. Values a caller controls (model names on a glob route, IP addresses) are
//! hashed when they are long or unusual, so keys stay short and printable.

use std::fmt::Write as _;

use crate::config::{Limit, Quantity, Scope, Window};
use aigis_report::time::{civil_from_days, days_from_civil};

/// The scope values of one request (or of a status query, where some may be unknown).
#[derive(Debug, Default)]
pub(crate) struct Values {
    pub principal: Option<String>,
    pub teams: Vec<String>,
    pub model: Option<String>,
    pub route: Option<String>,
    pub ip: Option<String>,
}

impl Values {
    /// The values of a request.
    pub(super) fn of(req: &super::Request<'_>) -> Self {
        Self {
            principal: Some(req.principal.id.clone()),
            teams: req.principal.teams.clone(),
            model: Some(req.parsed.model.clone()),
            route: Some(req.route.name.clone()),
            ip: Some(req.ip.to_string()),
        }
    }
}

/// Longest scope value kept verbatim in a key.
const MAX_PLAIN_VALUE: usize = 64;

/// One counter a request touches.
pub(super) struct CellKey {
    pub key: String,
    /// When a budget's calendar window ends (0 for other limits).
    pub window_end_us: u64,
}

/// The counters `limit` keeps for `values`: the cross product of its scope values. A team
/// scope with a principal in no team yields none (team limits apply to team members), as
/// does a scope whose value is unknown.
pub(super) fn cell_keys(limit: &Limit, values: &Values, now_us: u64) -> Vec<CellKey> {
    let mut combos: Vec<String> = vec![String::new()];
    for scope in &limit.scope {
        let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
        let values: Vec<String> = match scope {
            Scope::Principal => one(&values.principal),
            Scope::Team => values.teams.clone(),
            Scope::Model => one(&values.model),
            Scope::Route => one(&values.route),
            Scope::Ip => one(&values.ip),
        };
        combos = combos
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let sep = if prefix.is_empty() { "" } else { "|" };
                    format!("{prefix}{sep}{}={}", scope.as_str(), plain(v))
                })
            })
            .collect();
    }
    let (suffix, window_end_us) = match limit.quantity {
        Quantity::Budget(b) => {
            let (id, end) = window(b.window, now_us);
            (format!(":{id}"), end)
        }
        _ => (String::new(), 0),
    };
    combos
        .into_iter()
        .map(|c| CellKey {
            key: format!("l:{}:{c}{suffix}", plain(&limit.name)),
            window_end_us,
        })
        .collect()
}

/// `v` itself when short and plain, else `#` and the first 32 hex digits of its SHA-256.
fn plain(v: &str) -> String {
    let ok = v.len() <= MAX_PLAIN_VALUE
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@/#+".contains(&b));
    if ok {
        return v.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
    let mut out = String::from("#");
    for b in &digest.as_ref()[..16] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The calendar window (UTC) containing `now_us`: its id (`2026-11` or `2026-11-28`) and
/// when it ends, in microseconds since the epoch.
pub(super) fn window(w: Window, now_us: u64) -> (String, u64) {
    const DAY_US: u64 = 86_400_000_000;
    let day = now_us / DAY_US;
    let (y, m, d) = civil_from_days(day);
    match w {
        Window::Day => (format!("{y:04}-{m:02}-{d:02}"), (day + 1) * DAY_US),
        Window::Month => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            // The first of a month after 1970 always exists.
            let end = days_from_civil(ny, nm, 1).unwrap_or(day + 1);
            (format!("{y:04}-{m:02}"), end * DAY_US)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_windows() {
        // 2026-11-28T21:00:00Z
        let now = 1_795_899_600 * 1_000_000;
        let (id, end) = window(Window::Day, now);
        assert_eq!(id, "2026-11-28");
        assert_eq!(end, 1_795_910_400 * 1_000_000); // 2026-11-29T00:00Z
        let (id, end) = window(Window::Month, now);
        assert_eq!(id, "2026-11");
        assert_eq!(end, 1_796_083_200 * 1_000_000); // 2026-12-01T00:00Z
        let (id, _) = window(Window::Month, 1_798_761_600 * 1_000_000); // 2027-01-01
        assert_eq!(id, "2027-01");
        for days in [0, 59, 365, 10_957, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days));
        }
    }

    #[test]
    fn odd_values_are_hashed() {
        assert_eq!(plain("key:abc-1"), "key:abc-1");
        let h = plain("model with spaces");
        assert!(h.starts_with('#') && h.len() == 33);
        assert_ne!(plain(&"a".repeat(65)), "a".repeat(65));
    }
}
