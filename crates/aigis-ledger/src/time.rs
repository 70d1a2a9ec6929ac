//! Times as the ledger shows and takes them: RFC 3339 UTC with milliseconds out, and in
//! either a date (`2026-11-29`), a UTC timestamp (`2026-11-29T08:00:00Z`) or an age (`24h`,
//! `7d`, `30m`, `90s`: that long before now).

use aigis_report::time::days_from_civil;

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-29T08:00:00.123Z`.
pub fn rfc3339(ms: u64) -> String {
    aigis_report::time::rfc3339_millis(ms)
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a time given on the command line into ms since the epoch.
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a time: use a date (2026-11-29), a UTC time (2026-11-29T08:00:00Z) or an age (24h, 7d, 30m)"
        )
    };
    if let Some(unit) = s.chars().last().filter(|c| "smhd".contains(*c)) {
        let n = num(&s[..s.len() - 1]).ok_or_else(bad)?;
        let secs = match unit {
            's' => n,
            'm' => n.saturating_mul(60),
            'h' => n.saturating_mul(3600),
            _ => n.saturating_mul(86_400),
        };
        return Ok(now_ms.saturating_sub(secs.saturating_mul(1000)));
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let days = days_from_civil(
        num(year).ok_or_else(bad)?,
        num(month).ok_or_else(bad)?,
        num(day).ok_or_else(bad)?,
    )
    .ok_or_else(bad)?;
    let mut secs = days * 86_400;
    if let Some(t) = time {
        let t = t.split_once('.').map_or(t, |(whole, _)| whole);
        let mut hms = t.split(':');
        let (Some(hour), Some(minute), Some(second), None) =
            (hms.next(), hms.next(), hms.next(), hms.next())
        else {
            return Err(bad());
        };
        let hour = num(hour).ok_or_else(bad)?;
        let minute = num(minute).ok_or_else(bad)?;
        let second = num(second).ok_or_else(bad)?;
        if hour > 23 || minute > 59 || second > 60 {
            return Err(bad());
        }
        secs += hour * 3600 + minute * 60 + second;
    }
    Ok(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_forms() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        let t = parse_time("2026-11-29T08:09:10Z", 0).unwrap_or_default();
        assert_eq!(rfc3339(t + 5), "2026-11-29T08:09:10.005Z");
        assert_eq!(
            parse_time("2026-11-29", 0).unwrap_or_default() + 8 * 3_600_000 + 9 * 60_000 + 10_000,
            t
        );
        assert_eq!(parse_time("24h", 100_000_000), Ok(100_000_000 - 86_400_000));
        assert_eq!(
            parse_time("2d", 1_000_000_000),
            Ok(1_000_000_000 - 172_800_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-29T25:00:00Z",
            "2026-11-29T08:00:00",
            "-5h",
        ] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
