//! Failed-authentication throttling. Each source address and each key prefix has a failure
//! count; from `FREE_FAILURES` on, every further failure doubles a block (1 s, 2 s, 4 s, … up
//! to 15 min) during which that source or prefix is refused without checking. Crossing the
//! threshold raises a structured security event. A success clears the count. IPv6 sources
//! count per /64, the block a single host usually holds. The table is bounded: beyond
//! `MAX_ENTRIES` the least recently seen entries are forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Failures allowed before blocking starts.
pub const FREE_FAILURES: u32 = 5;
const MAX_BLOCK: Duration = Duration::from_mins(15);
/// A quiet period after which the count starts over.
const FORGET_AFTER: Duration = Duration::from_mins(15);
/// Entries kept at most: past it, entries quiet for `FORGET_AFTER` go, and if that is not
/// enough, the least recently seen down to three quarters of it (in one pass, so a flood pays
/// for a sort once per 25,000 new entries, not per failure).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Source(IpAddr),
    Prefix(String),
}

/// Failure counts per source and prefix.
#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Subject, Entry>>,
    events: Mutex<Vec<String>>,
}

impl Throttle {
    fn remaining(&self, subject: &Subject) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let until = entries.get(subject)?.blocked_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// How long `source` is still blocked, if it is.
    pub fn blocked_source(&self, source: IpAddr) -> Option<Duration> {
        self.remaining(&source_subject(source))
    }

    /// How long `prefix` is still blocked, if it is.
    pub fn blocked_prefix(&self, prefix: &str) -> Option<Duration> {
        self.remaining(&Subject::Prefix(prefix.to_owned()))
    }

    /// Records a failed authentication.
    pub fn failure(&self, source: IpAddr, prefix: Option<&str>) {
        let mut subjects = vec![source_subject(source)];
        subjects.extend(prefix.map(|p| Subject::Prefix(p.to_owned())));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            shrink(&mut entries);
        }
        for subject in subjects {
            let now = Instant::now();
            let e = entries.entry(subject.clone()).or_insert(Entry {
                failures: 0,
                last: now,
                blocked_until: None,
            });
            if now.duration_since(e.last) > FORGET_AFTER {
                *e = Entry {
                    failures: 0,
                    last: now,
                    blocked_until: None,
                };
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if e.failures >= FREE_FAILURES {
                let exp = (e.failures - FREE_FAILURES).min(20);
                let block = Duration::from_secs(1u64 << exp).min(MAX_BLOCK);
                e.blocked_until = Some(now + block);
                let (kind, who) = match &subject {
                    Subject::Source(ip) => ("source", ip.to_string()),
                    Subject::Prefix(p) => ("key_prefix", p.clone()),
                };
                tracing::warn!(
                    target: "aigis::security",
                    event = "auth_failure_burst",
                    subject = kind,
                    who = %who,
                    failures = e.failures,
                    blocked_for_s = block.as_secs(),
                    "repeated authentication failures"
                );
                if e.failures == FREE_FAILURES {
                    self.events
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(kind.to_owned());
                }
            }
        }
    }

    /// Records a success: the source's and the prefix's counts start over.
    pub fn success(&self, source: IpAddr, prefix: Option<&str>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.is_empty() {
            return;
        }
        entries.remove(&source_subject(source));
        if let Some(p) = prefix {
            entries.remove(&Subject::Prefix(p.to_owned()));
        }
    }

    /// Security events raised since the last call (`source` or `key_prefix`), for metrics.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The subject a source address counts under: itself, or for IPv6 its /64.
fn source_subject(source: IpAddr) -> Subject {
    Subject::Source(match source.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 @ IpAddr::V4(_) => v4,
    })
}

/// Makes room in a full table (see [`MAX_ENTRIES`]).
fn shrink(entries: &mut HashMap<Subject, Entry>) {
    let now = Instant::now();
    entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
    let keep = MAX_ENTRIES / 4 * 3;
    if entries.len() > keep {
        let mut by_age: Vec<(Instant, Subject)> =
            entries.iter().map(|(k, e)| (e.last, k.clone())).collect();
        let cut = by_age.len() - keep;
        by_age.select_nth_unstable_by_key(cut, |(last, _)| *last);
        for (_, subject) in &by_age[..cut] {
            entries.remove(subject);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backs_off_exponentially_and_forgives_success() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..FREE_FAILURES - 1 {
            t.failure(ip, Some("abc"));
            assert!(t.blocked_source(ip).is_none());
        }
        t.failure(ip, Some("abc"));
        assert_eq!(t.blocked_source(ip), Some(Duration::from_secs(1)));
        assert!(t.blocked_prefix("abc").is_some());
        assert_eq!(t.take_events(), ["source", "key_prefix"]);
        t.failure(ip, None);
        assert_eq!(t.blocked_source(ip), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(t.blocked_source(ip).is_none());
        t.success(ip, Some("abc"));
        t.failure(ip, None);
        assert!(
            t.blocked_source(ip).is_none(),
            "a success started the count over"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_counts_per_64_and_the_table_stays_bounded() {
        let t = Throttle::default();
        for i in 0..FREE_FAILURES {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            t.failure(ip, None);
        }
        let neighbour: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert!(t.blocked_source(neighbour).is_some(), "one /64, one count");
        assert!(
            t.blocked_source("2001:db8:0:1::1".parse().unwrap())
                .is_none()
        );
        // A flood of fresh sources, none quiet long enough to be forgotten.
        for i in 0..u32::try_from(MAX_ENTRIES + 10).unwrap() {
            t.failure(IpAddr::from(i.to_be_bytes()), None);
        }
        let len = t.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
    }
}
