//! Dates and timestamps as reports, logs and records write them: RFC 3339 in UTC and
//! `YYYY-MM-DD` days, to and from seconds since the Unix epoch (proleptic Gregorian, years from
//! 1970). The one calendar conversion the workspace uses (H. Hinnant's `civil_from_days` /
//! `days_from_civil`).

/// (year, month, day) of `days` since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date; `None` before 1970, for a month outside 1–12 or a
/// day that does not exist in its month (2025-02-30).
pub fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy / 400;
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// `2026-11-29T08:09:10Z`
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `2026-11-29T08:09:10.005Z`, from milliseconds since the epoch.
pub fn rfc3339_millis(ms: u64) -> String {
    let secs = rfc3339(ms / 1000);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms % 1000)
}

/// The current time as [`rfc3339`].
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// `YYYY-MM-DD` of seconds since the epoch.
pub fn format_date(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

fn number(s: Option<&str>) -> Option<u64> {
    let s = s?;
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD` to seconds since the epoch at 00:00 UTC.
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (
        number(parts.next())?,
        number(parts.next())?,
        number(parts.next())?,
    );
    days_from_civil(y, m, d).map(|days| days * 86_400)
}

/// Parses an RFC 3339 timestamp (`2021-03-26T20:01:00Z`; `t` or a space as separator,
/// fractional seconds and `±HH:MM` offsets accepted) to seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let day = parse_date(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let hh = number(rest.get(0..2))?;
    let mm = number(rest.get(3..5))?;
    let ss = number(rest.get(6..8))?;
    if hh > 23 || mm > 59 || ss > 60 || rest.get(2..3) != Some(":") || rest.get(5..6) != Some(":") {
        return None;
    }
    let tail = rest.get(8..)?;
    let tz = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let secs = i64::try_from(day + hh * 3600 + mm * 60 + ss).ok()?;
    let offset = match tz.strip_prefix(['+', '-']) {
        Some(sign) => {
            let oh = i64::try_from(number(sign.get(0..2))?).ok()?;
            let om = i64::try_from(number(sign.get(3..5))?).ok()?;
            let offset = (oh * 60 + om) * 60;
            if tz.starts_with('+') { -offset } else { offset }
        }
        None if matches!(tz, "Z" | "z" | "") => 0,
        None => return None,
    };
    u64::try_from(secs + offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        let t = 1_795_939_750; // 2026-11-29T08:09:10Z
        assert_eq!(rfc3339(t), "2026-11-29T08:09:10Z");
        assert_eq!(rfc3339_millis(t * 1000 + 5), "2026-11-29T08:09:10.005Z");
        assert_eq!(format_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("1969-12-31"), None);
        assert_eq!(parse_date("2025-13-01"), None);
        assert_eq!(parse_date("99999999999-01-01"), None);
        assert_eq!(parse_rfc3339("2026-11-29T08:09:10Z"), Some(1_795_939_750));
        assert_eq!(
            parse_rfc3339("2026-11-29T10:09:10.123+02:00"),
            Some(1_795_939_750)
        );
        assert_eq!(parse_rfc3339("2026-11-29 08:09:10"), Some(1_795_939_750));
        assert_eq!(parse_rfc3339("2026-11-29T25:09:10Z"), None);
        assert_eq!(parse_rfc3339("2026-11-29T08:09:10Q"), None);
        assert_eq!(parse_rfc3339("2026-11-29"), None);
    }

    #[test]
    fn round_trips() {
        for days in [0, 59, 365, 10_957, 11_016, 20_000, 100_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days));
            assert_eq!(parse_date(&format_date(days * 86_400)), Some(days * 86_400));
        }
    }
}
