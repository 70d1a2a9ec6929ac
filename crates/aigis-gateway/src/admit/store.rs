//! Where limit counters live: in this process ([`Local`], the embedded default) or in Redis
//! shared by a fleet (`fleet::Fleet`). Both apply a batch of charges atomically: in
//! [`Op::Check`] mode either every charge fits and all are taken, or none is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::cell::{self, Kind, Reading, Refused};

/// Most live counters one process keeps; beyond it new keys are a store error (and the
/// limit's `on_store_error` decides), so a flood of distinct callers cannot exhaust memory.
pub const MAX_LOCAL_CELLS: usize = 1_000_000;
/// Expired counters are swept every this many operations.
const SWEEP_EVERY: u64 = 4096;

/// One charge against one counter.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The counter's key (limit name and scope values).
    pub key: String,
    /// Its kind and parameters.
    pub kind: Kind,
    /// Units to charge, refund or release.
    pub amount: u64,
    /// The counter is never given units back (a request rate, unlike token reservations,
    /// budgets and concurrency slots), so a refusal stays true until the refill time Redis
    /// names: only such counters may be refused by the fleet store's local first tier.
    pub monotone: bool,
}

/// What to do with a batch of charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Take every charge if all fit, else none.
    Check,
    /// Take every charge even past the limit (settling actual usage above a reservation).
    Force,
    /// Give units back (a reservation above actual usage).
    Refund,
    /// End in-flight requests (concurrency cells).
    Release,
    /// Only read.
    Peek,
}

/// The outcome of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Applied; one reading per charge, in order.
    Applied(Vec<Reading>),
    /// Nothing applied: the charge at `index` does not fit.
    Refused {
        /// Which charge.
        index: usize,
        /// Why and for how long.
        refused: Refused,
    },
}

/// The store cannot be reached or is full.
#[derive(Debug, thiserror::Error)]
#[error("limit store: {0}")]
pub struct StoreError(pub String);

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A counter: its value (`tat`, units used, or requests in flight) and when it may be dropped.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    value: u64,
    expires_us: u64,
}

/// Counters in this process. The map is keyed with foldhash, which is fast and randomly
/// seeded per process (keys hold caller-controlled values, so no unseeded hasher).
#[derive(Debug, Default)]
pub struct Local {
    slots: Mutex<HashMap<String, Slot, foldhash::fast::RandomState>>,
    ops: AtomicU64,
}

impl Local {
    /// Applies `charges` as one atomic batch at time `now`.
    pub fn apply(&self, op: Op, charges: &[Charge], now: u64) -> Result<Verdict, StoreError> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        if self
            .ops
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            slots.retain(|_, s| s.expires_us > now);
        }
        let current = |slots: &HashMap<String, Slot, _>, c: &Charge| {
            slots
                .get(&c.key)
                .copied()
                .filter(|s| s.expires_us > now)
                .unwrap_or_default()
        };
        let mut next = Vec::with_capacity(charges.len());
        for (index, c) in charges.iter().enumerate() {
            let slot = current(&slots, c);
            match step(op, c, slot.value, now) {
                Ok(value) => next.push(value),
                Err(refused) => return Ok(Verdict::Refused { index, refused }),
            }
        }
        // All or nothing: a batch that would pass the cap writes no counter (a half-applied
        // batch would hold slots no ticket settles).
        let new_keys = charges
            .iter()
            .filter(|c| !slots.contains_key(c.key.as_str()))
            .count();
        if op != Op::Peek && slots.len() + new_keys > MAX_LOCAL_CELLS {
            return Err(StoreError(format!(
                "more than {MAX_LOCAL_CELLS} live counters in this process"
            )));
        }
        let mut readings = Vec::with_capacity(charges.len());
        for (c, value) in charges.iter().zip(next) {
            readings.push(reading(c.kind, value, now));
            if op == Op::Peek {
                continue;
            }
            let slot = Slot {
                value,
                expires_us: expiry(c.kind, value),
            };
            // Overwrite in place when the counter exists (no key copy, one hash).
            if let Some(existing) = slots.get_mut(c.key.as_str()) {
                *existing = slot;
                continue;
            }
            slots.insert(c.key.clone(), slot);
        }
        Ok(Verdict::Applied(readings))
    }
}

/// The new value of one counter under `op`, or why the charge does not fit.
pub fn step(op: Op, c: &Charge, value: u64, now: u64) -> Result<u64, Refused> {
    match (op, c.kind) {
        (Op::Peek, _) | (Op::Release, Kind::Rate { .. } | Kind::Window { .. }) => Ok(value),
        (Op::Check, Kind::Rate { limit, period_us }) => {
            cell::rate_charge(value, now, limit, period_us, c.amount)
        }
        (Op::Check, Kind::Window { limit, ends_us }) => {
            cell::count_charge(value, limit, c.amount, ends_us.saturating_sub(now))
        }
        (Op::Check, Kind::Concurrency { limit }) => {
            cell::count_charge(value, limit, c.amount, CONCURRENCY_RETRY_US)
        }
        (Op::Force, Kind::Rate { limit, period_us }) => {
            Ok(cell::rate_force(value, now, limit, period_us, c.amount))
        }
        (Op::Force, _) => Ok(value.saturating_add(c.amount)),
        (Op::Refund, Kind::Rate { limit, period_us }) => {
            Ok(cell::rate_refund(value, now, limit, period_us, c.amount))
        }
        (Op::Refund | Op::Release, _) => Ok(value.saturating_sub(c.amount)),
    }
}

/// What a caller refused by a concurrency cap is told to wait.
pub const CONCURRENCY_RETRY_US: u64 = 1_000_000;

/// The reading of a counter holding `value`.
pub fn reading(kind: Kind, value: u64, now: u64) -> Reading {
    match kind {
        Kind::Rate { limit, period_us } => cell::rate_reading(value, now, limit, period_us),
        Kind::Window { limit, ends_us } => Reading {
            remaining: limit.saturating_sub(value),
            reset_us: ends_us.saturating_sub(now),
        },
        Kind::Concurrency { limit } => Reading {
            remaining: limit.saturating_sub(value),
            reset_us: 0,
        },
    }
}

/// When a counter holding `value` is back to its initial state and may be forgotten.
fn expiry(kind: Kind, value: u64) -> u64 {
    match kind {
        Kind::Rate { .. } => value,
        Kind::Window { ends_us, .. } => ends_us,
        Kind::Concurrency { .. } if value > 0 => u64::MAX,
        Kind::Concurrency { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(key: &str, limit: u64, amount: u64) -> Charge {
        Charge {
            key: key.into(),
            kind: Kind::Rate {
                limit,
                period_us: 3_600_000_000,
            },
            amount,
            monotone: true,
        }
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let local = Local::default();
        let now = 1_000;
        let batch = [rate("a", 10, 1), rate("b", 2, 1)];
        for _ in 0..2 {
            assert!(matches!(
                local.apply(Op::Check, &batch, now),
                Ok(Verdict::Applied(_))
            ));
        }
        // `b` is used up, so `a` must not be charged either.
        assert!(matches!(
            local.apply(Op::Check, &batch, now),
            Ok(Verdict::Refused { index: 1, .. })
        ));
        let Ok(Verdict::Applied(r)) = local.apply(Op::Peek, &batch[..1], now) else {
            panic!("peek");
        };
        assert_eq!(r[0].remaining, 8);
    }

    #[test]
    fn concurrency_is_released() {
        let local = Local::default();
        let c = [Charge {
            key: "c".into(),
            kind: Kind::Concurrency { limit: 1 },
            amount: 1,
            monotone: false,
        }];
        assert!(matches!(
            local.apply(Op::Check, &c, 5),
            Ok(Verdict::Applied(_))
        ));
        assert!(matches!(
            local.apply(Op::Check, &c, 5),
            Ok(Verdict::Refused { .. })
        ));
        assert!(matches!(
            local.apply(Op::Release, &c, 5),
            Ok(Verdict::Applied(_))
        ));
        assert!(matches!(
            local.apply(Op::Check, &c, 5),
            Ok(Verdict::Applied(_))
        ));
    }
}
