//! Dates as OSV and the command line write them: RFC 3339 timestamps and `YYYY-MM-DD` days,
//! converted to and from seconds since the Unix epoch (proleptic Gregorian, UTC).

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn number<T: std::str::FromStr>(s: Option<&str>) -> Option<T> {
    let s = s?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD` to seconds since the epoch at 00:00 UTC.
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = number(parts.next())?;
    let m: u32 = number(parts.next())?;
    let d: u32 = number(parts.next())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject dates like 2025-02-30 that roll over.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    u64::try_from(days).ok().map(|d| d * 86_400)
}

/// Parses an RFC 3339 timestamp (`2021-03-26T20:01:00Z`, fractional seconds and offsets
/// accepted) to seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let day = parse_date(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let hh: u64 = number(rest.get(0..2))?;
    let mm: u64 = number(rest.get(3..5))?;
    let ss: u64 = number(rest.get(6..8))?;
    let mut offset: i64 = 0;
    let tail = rest.get(8..)?;
    let tz = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(sign) = tz.strip_prefix(['+', '-']) {
        let oh: i64 = number(sign.get(0..2))?;
        let om: i64 = number(sign.get(3..5))?;
        offset = (oh * 60 + om) * 60;
        if tz.starts_with('+') {
            offset = -offset;
        }
    }
    let secs = i64::try_from(day + hh * 3600 + mm * 60 + ss).ok()? + offset;
    u64::try_from(secs).ok()
}

/// `YYYY-MM-DD` of seconds since the epoch.
pub fn format_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A duration like `30d`, `12h`, `90m` or `45s` in seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}
