//! Failed-authentication throttling. Each source address and each key prefix has a failure
//! count; from `FREE_FAILURES` on, every further failure doubles a block (1 s, 2 s, 4 s, … up
//! to 15 min) during which that source or prefix is refused without checking. Crossing the
//! threshold raises a structured security event. A success clears the count.

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
/// Entries kept at most (oldest evicted in bulk beyond it).
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
        self.remaining(&Subject::Source(source))
    }

    /// How long `prefix` is still blocked, if it is.
    pub fn blocked_prefix(&self, prefix: &str) -> Option<Duration> {
        self.remaining(&Subject::Prefix(prefix.to_owned()))
    }

    /// Records a failed authentication.
    pub fn failure(&self, source: IpAddr, prefix: Option<&str>) {
        let mut subjects = vec![Subject::Source(source)];
        subjects.extend(prefix.map(|p| Subject::Prefix(p.to_owned())));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
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
        entries.remove(&Subject::Source(source));
        if let Some(p) = prefix {
            entries.remove(&Subject::Prefix(p.to_owned()));
        }
    }

    /// Security events raised since the last call (`source` or `key_prefix`), for metrics.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
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
}
