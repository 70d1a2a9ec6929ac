//! The unpickler's memo. CPython keeps it as a dict, and MEMOIZE stores under `len(memo)`, so
//! the number of distinct keys decides where every later MEMOIZE lands: a count that drifts
//! from CPython's lets a GET read a different value than the real loader does.

use std::collections::HashMap;

use crate::formats::pickle::value::V;

/// Keys below this (or below twice the dense part's length) are held densely.
const DENSE_FLOOR: usize = 1024;

/// Pickles number their entries densely from 0 (MEMOIZE always does), so a vector serves
/// them; sparse keys (PUT with arbitrary numbers) go to a map.
///
/// Invariant: a key is held in at most one of `dense` and `sparse`, and `len` is the number
/// of distinct keys held, as `len(memo)` is in CPython.
#[derive(Default)]
pub(super) struct Memo {
    dense: Vec<Option<V>>,
    sparse: HashMap<u64, V>,
    len: usize,
}

impl Memo {
    /// Distinct keys held (the key MEMOIZE stores under).
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&self, key: u64) -> Option<&V> {
        usize::try_from(key)
            .ok()
            .and_then(|i| self.dense.get(i))
            .and_then(Option::as_ref)
            .or_else(|| self.sparse.get(&key))
    }

    pub(super) fn insert(&mut self, key: u64, v: V) {
        let dense_limit = self.dense.len().max(DENSE_FLOOR).saturating_mul(2);
        match usize::try_from(key) {
            Ok(i) if i < dense_limit => {
                if i >= self.dense.len() {
                    self.dense.resize(i + 1, None);
                }
                // A key first stored sparsely may fall inside the dense range once it has
                // grown: move it rather than hold (and count) it twice.
                let was_sparse = !self.sparse.is_empty() && self.sparse.remove(&key).is_some();
                if let Some(slot) = self.dense.get_mut(i)
                    && slot.replace(v).is_none()
                    && !was_sparse
                {
                    self.len += 1;
                }
            }
            _ => {
                if self.sparse.insert(key, v).is_none() {
                    self.len += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_sparse_key_reached_by_the_dense_range_counts_once() {
        let mut m = Memo::default();
        m.insert(3000, V::Int(1));
        m.insert(2047, V::Int(2));
        m.insert(3000, V::Int(3));
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(3000).and_then(V::as_int), Some(3));
    }

    fn key() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..64,
            1000u64..5000,
            4000u64..20_000,
            Just(u64::from(u32::MAX)),
            any::<u64>(),
        ]
    }

    proptest! {
        /// The memo behaves exactly like a dict: same values, same `len`.
        #[test]
        fn matches_a_plain_map(ops in proptest::collection::vec((key(), any::<bool>()), 0..200)) {
            let mut memo = Memo::default();
            let mut model: HashMap<u64, i64> = HashMap::new();
            for (n, (k, put)) in ops.into_iter().enumerate() {
                let n = i64::try_from(n).unwrap_or(0);
                if put {
                    memo.insert(k, V::Int(n));
                    model.insert(k, n);
                }
                prop_assert_eq!(memo.get(k).and_then(V::as_int), model.get(&k).copied());
                prop_assert_eq!(memo.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(memo.get(*k).and_then(V::as_int), Some(*v));
            }
        }
    }
}
