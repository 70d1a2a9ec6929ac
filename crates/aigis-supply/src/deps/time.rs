//! Dates as OSV and the command line write them (RFC 3339 timestamps and `YYYY-MM-DD` days, from
//! the workspace's one calendar in `aigis_report::time`) and ages like `30d`.

pub use aigis_report::time::{format_date, parse_date, parse_rfc3339};

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
