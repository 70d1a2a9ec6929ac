//! Keys repeated within one JSON object. Parsers disagree on which value counts (most keep the
//! last, some the first, some refuse), so what the guard inspects and what a model reads could
//! differ: a body with a repeated key is refused. The typed scan keeps each object's keys
//! ([`Keys`]); the slow path names the object ([`check_unique`]).

use std::fmt::Write as _;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{invalid, stop};
use crate::error::GatewayError;

/// The keys of one object so far, for the typed scan. A key under 16 bytes is kept exactly
/// (its bytes and length packed into a `u128`); a longer one as a 64-bit FNV-1a hash, so a
/// repeated hash hands the body to the slow path, which compares the keys themselves (a
/// collision costs time, never a wrong answer). Most objects have a few keys and need no
/// allocation.
#[derive(Default)]
pub(super) struct Keys {
    few: [u128; 16],
    n: usize,
    many: Option<std::collections::HashSet<u128>>,
}

impl Keys {
    /// Adds `key`; false when it was there already.
    pub(super) fn insert(&mut self, key: &str) -> bool {
        let k = Self::fingerprint(key.as_bytes());
        if self.few[..self.n].contains(&k) {
            return false;
        }
        if self.n < self.few.len() {
            self.few[self.n] = k;
            self.n += 1;
            return true;
        }
        self.many.get_or_insert_default().insert(k)
    }

    fn fingerprint(key: &[u8]) -> u128 {
        if let Ok(len) = u8::try_from(key.len())
            && len < 16
        {
            let mut packed = [0u8; 16];
            packed[..key.len()].copy_from_slice(key);
            packed[15] = len;
            return u128::from_le_bytes(packed);
        }
        let h = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        // Top byte 0xff: never a packed short key (whose top byte is its length).
        (0xff << 120) | u128::from(h)
    }
}

/// A key that appears twice in one object: JSON parsers disagree on which value counts (most
/// keep the last, some the first, some refuse), so what the guard inspects and what a model
/// reads could differ. The parameter names the object (`body` for the top level).
pub(super) fn check_unique(raw: &[u8]) -> Result<(), GatewayError> {
    let mut path = String::new();
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(raw);
    let _ = Unique {
        path: &mut path,
        found: &mut found,
    }
    .deserialize(&mut de);
    match found {
        None => Ok(()),
        Some((object, key)) => Err(invalid(
            if object.is_empty() {
                "body".into()
            } else {
                object
            },
            format!("the key `{key}` appears twice in one object: send each key once"),
        )),
    }
}

/// Walks a value for [`check_unique`], keeping the path of the value it is in.
struct Unique<'a> {
    path: &'a mut String,
    found: &'a mut Option<(String, String)>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            let item = Unique {
                path: &mut *self.path,
                found: &mut *self.found,
            };
            let more = seq.next_element_seed(item)?.is_some();
            self.path.truncate(len);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                *self.found = Some((self.path.clone(), key));
                return Err(stop());
            }
            let len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(&key);
            keys.insert(key);
            map.next_value_seed(Unique {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.truncate(len);
        }
        Ok(())
    }
}
