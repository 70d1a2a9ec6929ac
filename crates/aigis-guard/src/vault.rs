//! The pseudonymisation vault: placeholders that are restored in the response for the same
//! caller, bounded in size and time.
//!
//! A caller (the gateway uses the principal id) gets the same placeholder for the same value
//! across requests for as long as the entry lives, so a conversation stays coherent; another
//! caller can never restore it. Entries expire `ttl` after their last use, and when the vault
//! holds `capacity` values the least recently used caller's entries go first. Values live only
//! in memory and are wiped (overwritten) when evicted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Placeholders per caller.
#[derive(Debug)]
pub struct Vault {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    callers: HashMap<String, Caller>,
    size: usize,
}

#[derive(Debug)]
struct Caller {
    by_value: HashMap<(String, String), String>,
    by_placeholder: HashMap<String, String>,
    counters: HashMap<String, u32>,
    used: Instant,
}

impl Vault {
    /// A vault holding at most `capacity` values, each for `ttl` after its caller's last use.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The placeholder for `value` of type `kind` for `caller`, creating it when new.
    pub fn pseudonym(&self, caller: &str, kind: &str, value: &str) -> String {
        let mut inner = self.lock();
        let now = Instant::now();
        self.expire(&mut inner, now);
        if !inner.callers.contains_key(caller) {
            inner.callers.insert(
                caller.to_owned(),
                Caller {
                    by_value: HashMap::new(),
                    by_placeholder: HashMap::new(),
                    counters: HashMap::new(),
                    used: now,
                },
            );
        }
        let Inner { callers, size } = &mut *inner;
        let Some(entry) = callers.get_mut(caller) else {
            return format!("[{kind}]");
        };
        entry.used = now;
        let key = (kind.to_owned(), value.to_owned());
        if let Some(p) = entry.by_value.get(&key) {
            return p.clone();
        }
        let n = entry.counters.entry(kind.to_owned()).or_default();
        *n += 1;
        let placeholder = format!("[{kind}_{n}]");
        entry.by_value.insert(key, placeholder.clone());
        entry
            .by_placeholder
            .insert(placeholder.clone(), value.to_owned());
        *size += 1;
        while inner.size > self.capacity && inner.callers.len() > 1 {
            evict_oldest(&mut inner, caller);
        }
        placeholder
    }

    /// `text` with every placeholder of `caller` replaced by its value.
    pub fn restore(&self, caller: &str, text: &str) -> String {
        let mut inner = self.lock();
        self.expire(&mut inner, Instant::now());
        let Some(entry) = inner.callers.get(caller) else {
            return text.to_owned();
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let close = tail.find(']').filter(|&c| c <= 64);
            match close.and_then(|c| entry.by_placeholder.get(&tail[..=c]).map(|v| (c, v))) {
                Some((c, value)) => {
                    out.push_str(value);
                    rest = &tail[c + 1..];
                }
                None => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Values currently held.
    pub fn len(&self) -> usize {
        self.lock().size
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        let ttl = self.ttl;
        let expired: Vec<String> = inner
            .callers
            .iter()
            .filter(|(_, c)| now.duration_since(c.used) > ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            remove(inner, &k);
        }
    }
}

fn evict_oldest(inner: &mut Inner, keep: &str) {
    let oldest = inner
        .callers
        .iter()
        .filter(|(k, _)| *k != keep)
        .min_by_key(|(_, c)| c.used)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        remove(inner, &k);
    }
}

fn remove(inner: &mut Inner, caller: &str) {
    if let Some(mut c) = inner.callers.remove(caller) {
        inner.size -= c.by_placeholder.len();
        for v in c.by_placeholder.values_mut() {
            wipe(v);
        }
    }
}

/// Overwrites a string's bytes before it is freed.
fn wipe(s: &mut String) {
    let len = s.len();
    s.clear();
    s.extend(std::iter::repeat_n('\0', len));
    s.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_only_for_the_same_caller() {
        let vault = Vault::new(100, Duration::from_mins(1));
        let p = vault.pseudonym("alice", "EMAIL", "a@example.com");
        assert_eq!(p, "[EMAIL_1]");
        assert_eq!(
            vault.pseudonym("alice", "EMAIL", "a@example.com"),
            "[EMAIL_1]"
        );
        assert_eq!(
            vault.pseudonym("alice", "EMAIL", "b@example.com"),
            "[EMAIL_2]"
        );
        assert_eq!(
            vault.restore(
                "alice",
                "write to [EMAIL_1] and [EMAIL_2], not [EMAIL_3] [x"
            ),
            "write to a@example.com and b@example.com, not [EMAIL_3] [x"
        );
        assert_eq!(
            vault.restore("bob", "write to [EMAIL_1]"),
            "write to [EMAIL_1]"
        );
    }

    #[test]
    fn bounded_in_size_and_time() {
        let vault = Vault::new(2, Duration::from_mins(1));
        vault.pseudonym("a", "EMAIL", "1");
        vault.pseudonym("b", "EMAIL", "2");
        vault.pseudonym("c", "EMAIL", "3");
        assert_eq!(vault.len(), 2);
        assert_eq!(vault.restore("a", "[EMAIL_1]"), "[EMAIL_1]");
        let short = Vault::new(10, Duration::ZERO);
        short.pseudonym("a", "EMAIL", "1");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.restore("a", "[EMAIL_1]"), "[EMAIL_1]");
        assert!(short.is_empty());
    }
}
