//! The pseudonymisation vault: placeholders that are restored in the response for the same
//! caller, bounded in size and time.
//!
//! A caller (the gateway uses the principal id) gets the same placeholder for the same value
//! across requests for as long as the entry lives, so a conversation stays coherent; another
//! caller can never restore it. Each value expires `ttl` after it was last pseudonymised, and
//! when the vault holds more than `capacity` values the least recently used caller's go first
//! (a caller alone in the vault loses its own least recently used ones). While a caller has
//! values in the vault, a placeholder number is never given to another of its values, so an
//! evicted placeholder can only fail to restore, never restore the wrong value; a caller whose
//! values have all gone starts afresh. Values live only in memory and are wiped (overwritten)
//! when evicted.

use std::collections::{HashMap, VecDeque};
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

#[derive(Debug, Default)]
struct Caller {
    /// (kind, value) → placeholder.
    by_value: HashMap<(String, String), String>,
    /// placeholder → (kind, value) and its last use.
    by_placeholder: HashMap<String, ((String, String), Instant)>,
    /// Placeholders in order of use, oldest first; a record whose time is not its entry's
    /// last use is stale and skipped.
    order: VecDeque<(Instant, String)>,
    counters: HashMap<String, u32>,
    used: Option<Instant>,
}

impl Caller {
    /// Drops the least recently used value; false when none is left.
    fn drop_oldest(&mut self) -> bool {
        while let Some((at, placeholder)) = self.order.pop_front() {
            if self
                .by_placeholder
                .get(&placeholder)
                .is_some_and(|(_, used)| *used == at)
            {
                self.forget(&placeholder);
                return true;
            }
        }
        false
    }

    /// Drops the values last used before `cutoff`; how many.
    fn expire(&mut self, cutoff: Instant) -> usize {
        let mut dropped = 0;
        while let Some((at, placeholder)) = self.order.front() {
            if *at >= cutoff {
                break;
            }
            let current = self
                .by_placeholder
                .get(placeholder)
                .is_some_and(|(_, used)| used == at);
            let placeholder = placeholder.clone();
            self.order.pop_front();
            if current {
                self.forget(&placeholder);
                dropped += 1;
            }
        }
        dropped
    }

    fn forget(&mut self, placeholder: &str) {
        if let Some((mut key, _)) = self.by_placeholder.remove(placeholder) {
            if let Some(((mut kind, mut value), _)) = self.by_value.remove_entry(&key) {
                wipe(&mut kind);
                wipe(&mut value);
            }
            wipe(&mut key.1);
        }
    }

    /// Marks `placeholder` used at `now`, keeping the order queue within twice the entries.
    fn touch(&mut self, placeholder: &str, now: Instant) {
        if let Some((_, used)) = self.by_placeholder.get_mut(placeholder) {
            *used = now;
            self.order.push_back((now, placeholder.to_owned()));
        }
        if self.order.len() > 2 * self.by_placeholder.len() + 16 {
            let entries = &self.by_placeholder;
            self.order
                .retain(|(at, p)| entries.get(p).is_some_and(|(_, used)| used == at));
        }
        self.used = Some(now);
    }
}

impl Vault {
    /// A vault holding at most `capacity` values, each for `ttl` after its last use.
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
        let Inner { callers, size } = &mut *inner;
        let entry = callers.entry(caller.to_owned()).or_default();
        let key = (kind.to_owned(), value.to_owned());
        if let Some(p) = entry.by_value.get(&key).cloned() {
            entry.touch(&p, now);
            return p;
        }
        let n = entry.counters.entry(kind.to_owned()).or_default();
        *n += 1;
        let placeholder = format!("[{kind}_{n}]");
        entry.by_value.insert(key.clone(), placeholder.clone());
        entry.by_placeholder.insert(placeholder.clone(), (key, now));
        entry.touch(&placeholder, now);
        *size += 1;
        while inner.size > self.capacity {
            if inner.callers.len() > 1 {
                evict_oldest(&mut inner, caller);
            } else if inner
                .callers
                .get_mut(caller)
                .is_some_and(Caller::drop_oldest)
            {
                inner.size -= 1;
            } else {
                break;
            }
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
                Some((c, ((_, value), _))) => {
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
        let Some(cutoff) = now.checked_sub(self.ttl) else {
            return;
        };
        let mut dropped = 0;
        inner.callers.retain(|_, c| {
            dropped += c.expire(cutoff);
            !c.by_placeholder.is_empty()
        });
        inner.size -= dropped;
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
        let placeholders: Vec<String> = c.by_placeholder.keys().cloned().collect();
        for p in placeholders {
            c.forget(&p);
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

    #[test]
    fn a_lone_caller_is_bounded_too_and_numbers_are_never_reused() {
        let vault = Vault::new(3, Duration::from_mins(1));
        for i in 0..1000 {
            vault.pseudonym("a", "EMAIL", &format!("{i}@example.com"));
            // Keeping the first value in use keeps it from being evicted.
            vault.pseudonym("a", "EMAIL", "0@example.com");
        }
        assert_eq!(vault.len(), 3);
        assert_eq!(vault.restore("a", "[EMAIL_1]"), "0@example.com");
        assert_eq!(vault.restore("a", "[EMAIL_2]"), "[EMAIL_2]");
        assert_eq!(vault.restore("a", "[EMAIL_1000]"), "999@example.com");
        assert_eq!(
            vault.pseudonym("a", "EMAIL", "1@example.com"),
            "[EMAIL_1001]"
        );
        let order = vault.lock().callers["a"].order.len();
        assert!(order <= 2 * 3 + 16, "the use queue grew to {order}");
    }

    #[test]
    fn values_expire_one_by_one_after_their_last_use() {
        let vault = Vault::new(10, Duration::from_millis(300));
        vault.pseudonym("a", "EMAIL", "old");
        vault.pseudonym("a", "EMAIL", "kept");
        std::thread::sleep(Duration::from_millis(200));
        vault.pseudonym("a", "EMAIL", "kept");
        std::thread::sleep(Duration::from_millis(200));
        vault.pseudonym("a", "EMAIL", "new");
        assert_eq!(vault.len(), 2);
        assert_eq!(
            vault.restore("a", "[EMAIL_1] [EMAIL_2] [EMAIL_3]"),
            "[EMAIL_1] kept new"
        );
    }
}
