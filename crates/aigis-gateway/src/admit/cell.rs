//! The arithmetic of one limit counter ("cell"), shared by the in-process store and mirrored
//! line for line by the Redis script (`limits.lua`), so a limit means the same in both modes.
//!
//! Time is in microseconds since the Unix epoch; amounts are whole units (requests, tokens,
//! micro-dollars). Rates use GCRA: a cell keeps its theoretical arrival time `tat`; admitting
//! `n` units moves it `n × period/limit` later, and a request fits while `tat - now` stays
//! within `period` — so up to `limit` units fit at once, refilling evenly, with no edge bursts.

/// What kind of counter a cell is, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// GCRA: `limit` units per `period_us`.
    Rate {
        /// Units per period.
        limit: u64,
        /// The period.
        period_us: u64,
    },
    /// A counter capped at `limit` until the calendar window ends at `ends_us`.
    Window {
        /// The cap.
        limit: u64,
        /// When the window (and the counter) ends.
        ends_us: u64,
    },
    /// Requests in flight, capped at `limit`.
    Concurrency {
        /// The cap.
        limit: u64,
    },
}

/// The state of a cell after an operation, for `x-ratelimit-*` headers and status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Units that would still fit now.
    pub remaining: u64,
    /// Microseconds until the cell is back to its full allowance.
    pub reset_us: u64,
}

/// A refused charge: how long until it would fit, and whether not even one unit fits now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Microseconds until the charge would fit (`u64::MAX`: never, it exceeds the limit).
    pub retry_us: u64,
    /// Nothing at all fits now (the first-tier cache may refuse locally until `retry_us`).
    pub exhausted: bool,
}

/// Microseconds one unit occupies in a rate cell.
fn interval(limit: u64, period_us: u64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "periods and limits below 2^52")]
    let t = period_us as f64 / limit as f64;
    t
}

/// Microseconds `amount` units occupy (rounded up, so rounding never grants extra).
fn span(amount: u64, limit: u64, period_us: u64) -> u64 {
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "amounts below 2^52; the product is clamped by the float-to-int cast"
    )]
    let s = (amount as f64 * interval(limit, period_us)).ceil() as u64;
    s
}

/// Rate cell: the new `tat` if `amount` fits, else how long until it would.
pub fn rate_charge(
    tat: u64,
    now: u64,
    limit: u64,
    period_us: u64,
    amount: u64,
) -> Result<u64, Refused> {
    if amount > limit {
        return Err(Refused {
            retry_us: u64::MAX,
            exhausted: false,
        });
    }
    let base = tat.max(now);
    let new_tat = base.saturating_add(span(amount, limit, period_us));
    let ahead = new_tat - now;
    if ahead <= period_us {
        Ok(new_tat)
    } else {
        let one = base.saturating_add(span(1, limit, period_us)) - now;
        Err(Refused {
            retry_us: ahead - period_us,
            exhausted: one > period_us,
        })
    }
}

/// Rate cell: what is left after the cell's `tat`.
pub fn rate_reading(tat: u64, now: u64, limit: u64, period_us: u64) -> Reading {
    let ahead = tat.saturating_sub(now);
    let free = period_us.saturating_sub(ahead);
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "free <= period, so the quotient is within 0..=limit"
    )]
    let remaining = (free as f64 / interval(limit, period_us)).floor() as u64;
    Reading {
        remaining: remaining.min(limit),
        reset_us: ahead,
    }
}

/// Rate cell: take `amount` units even past the limit (actual usage above a reservation).
pub fn rate_force(tat: u64, now: u64, limit: u64, period_us: u64, amount: u64) -> u64 {
    tat.max(now).saturating_add(span(amount, limit, period_us))
}

/// Rate cell: give back `amount` units (a reservation larger than the actual use).
pub fn rate_refund(tat: u64, now: u64, limit: u64, period_us: u64, amount: u64) -> u64 {
    tat.saturating_sub(span(amount, limit, period_us)).max(now)
}

/// Counter cells (window, concurrency): the new count if `amount` fits under `limit`.
pub fn count_charge(used: u64, limit: u64, amount: u64, reset_us: u64) -> Result<u64, Refused> {
    let new = used.saturating_add(amount);
    if new <= limit {
        Ok(new)
    } else {
        Err(Refused {
            retry_us: if amount > limit { u64::MAX } else { reset_us },
            exhausted: used >= limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000_000;

    #[test]
    fn a_rate_admits_exactly_its_limit_at_once_then_refills_evenly() {
        let (limit, now) = (50, 1_000_000);
        let mut tat = 0;
        let mut admitted = 0;
        for _ in 0..200 {
            if let Ok(t) = rate_charge(tat, now, limit, HOUR, 1) {
                tat = t;
                admitted += 1;
            }
        }
        assert_eq!(admitted, 50);
        let refused = rate_charge(tat, now, limit, HOUR, 1).unwrap_err();
        assert!(refused.exhausted);
        assert_eq!(refused.retry_us, HOUR / 50);
        // One interval later exactly one more fits.
        assert!(rate_charge(tat, now + HOUR / 50, limit, HOUR, 1).is_ok());
        assert!(rate_charge(tat, now + HOUR / 50 - 1, limit, HOUR, 1).is_err());
    }

    #[test]
    fn weighted_charges_and_refunds_keep_the_books() {
        let now = 10;
        let tat = rate_charge(0, now, 1000, HOUR, 600).unwrap();
        assert_eq!(rate_reading(tat, now, 1000, HOUR).remaining, 400);
        assert!(rate_charge(tat, now, 1000, HOUR, 401).is_err());
        let refused = rate_charge(tat, now, 1000, HOUR, 401).unwrap_err();
        assert!(
            !refused.exhausted,
            "400 still fit, so the cell is not used up"
        );
        let tat = rate_refund(tat, now, 1000, HOUR, 500);
        assert_eq!(rate_reading(tat, now, 1000, HOUR).remaining, 900);
        // A refund never grants more than the full allowance.
        assert_eq!(rate_refund(tat, now, 1000, HOUR, 5000), now);
        // More than the limit can never fit.
        assert_eq!(
            rate_charge(0, now, 1000, HOUR, 1001).unwrap_err().retry_us,
            u64::MAX
        );
    }

    #[test]
    fn counters_cap_at_their_limit() {
        assert_eq!(count_charge(9, 10, 1, 5), Ok(10));
        let refused = count_charge(10, 10, 1, 5).unwrap_err();
        assert!(refused.exhausted);
        assert_eq!(refused.retry_us, 5);
        assert!(!count_charge(5, 10, 6, 5).unwrap_err().exhausted);
    }
}
