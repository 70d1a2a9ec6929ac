//! API keys: `aigis_<prefix>_<secret>`, 48 bits of public prefix for lookup and 256 bits of
//! secret. The store keeps `HMAC-SHA256(pepper, key)` and the pepper's version; verification
//! looks the record up by prefix (cached for `cache_ttl`) and compares HMACs in constant time.
//! Unknown prefixes cost the same HMAC as known ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::hmac;
use tokio::time::Instant;

use super::store::{KeyRecord, KeyStore, StoreError};
use super::{Failure, Principal, PrincipalKind};
use crate::config::Secret;

const PREFIX_HEX: usize = 12;
const SECRET_HEX: usize = 64;
/// Longest credential looked at; anything longer is refused before any work.
pub const MAX_KEY_LEN: usize = 6 + PREFIX_HEX + 1 + SECRET_HEX;
/// Cached lookups kept at most (a flood of random prefixes cannot grow memory without bound).
const MAX_CACHE: usize = 100_000;

/// Verifies API keys against a store.
pub struct ApiKeys {
    store: KeyStore,
    peppers: BTreeMap<u32, Secret>,
    current: u32,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Option<KeyRecord>, Instant)>>,
}

/// A newly created key: the secret (shown once) and its stored record.
pub struct NewKey {
    /// The full key, to hand to the caller once.
    pub secret: String,
    /// What was stored.
    pub record: KeyRecord,
}

/// What a new key is for.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Human name.
    pub name: String,
    /// `user` or `service`.
    pub kind: String,
    /// Teams.
    pub teams: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Lifetime; `None` = no expiry.
    pub expires_in: Option<Duration>,
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| StoreError("the system random generator failed".into()))?;
    Ok(super::to_hex(&buf))
}

/// Splits a presented key into its prefix, or `None` when it is not shaped like an aigis key.
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("aigis_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex(prefix, PREFIX_HEX) && hex(secret, SECRET_HEX)).then_some(prefix)
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ApiKeys {
    /// `peppers` maps version to pepper; `current` signs new keys.
    pub fn new(
        store: KeyStore,
        peppers: BTreeMap<u32, Secret>,
        current: u32,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            peppers,
            current,
            ttl,
            cache: Mutex::default(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    fn mac(&self, version: u32, key: &str) -> Option<hmac::Tag> {
        let pepper = self.peppers.get(&version)?;
        Some(hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, pepper.expose().as_bytes()),
            key.as_bytes(),
        ))
    }

    /// Creates and stores a key; the secret is returned once and never stored.
    pub async fn create(&self, spec: KeySpec) -> Result<NewKey, StoreError> {
        let secret = format!(
            "aigis_{}_{}",
            random_hex(PREFIX_HEX / 2)?,
            random_hex(SECRET_HEX / 2)?
        );
        let prefix = prefix_of(&secret).unwrap_or_default().to_owned();
        let hash = self
            .mac(self.current, &secret)
            .ok_or_else(|| StoreError("no current pepper".into()))?;
        let created_at = now();
        let record = KeyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            prefix,
            name: spec.name,
            kind: if spec.kind.is_empty() {
                "service".into()
            } else {
                spec.kind
            },
            teams: spec.teams,
            roles: spec.roles,
            hash: hash.as_ref().to_vec(),
            pepper_version: self.current,
            created_at,
            expires_at: spec
                .expires_in
                .map(|d| created_at.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
            revoked_at: None,
        };
        self.store.insert(&record).await?;
        Ok(NewKey { secret, record })
    }

    /// Replaces the active key named `which` (id, prefix or name) with a new key of the same
    /// name, kind, teams, roles and lifetime (a 90-day key rotates into a 90-day key), and
    /// revokes the old one. `None` when no active key matches: a revoked or expired key cannot
    /// be rotated back to life.
    pub async fn rotate(&self, which: &str) -> Result<Option<NewKey>, StoreError> {
        let list = self.store.list().await?;
        let t = now();
        let Some(old) = list.into_iter().find(|k| {
            k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > t) && k.is_named(which)
        }) else {
            return Ok(None);
        };
        let lifetime = old.expires_at.map(|e| {
            Duration::from_secs(u64::try_from(e.saturating_sub(old.created_at)).unwrap_or(0))
        });
        let spec = KeySpec {
            name: old.name,
            kind: old.kind,
            teams: old.teams,
            roles: old.roles,
            expires_in: lifetime,
        };
        let new = self.create(spec).await?;
        self.store.revoke(&old.id, now()).await?;
        Ok(Some(new))
    }

    /// Verifies a presented key. Every failure looks the same to the caller; the reason is
    /// for the log.
    pub async fn verify(&self, presented: &str) -> Result<Principal, Failure> {
        let Some(prefix) = prefix_of(presented) else {
            return Err(Failure::invalid("api key: malformed"));
        };
        let record = self.lookup(prefix).await?;
        let Some(record) = record else {
            // Spend the same HMAC as for a known prefix so timing does not tell them apart.
            let _ = self.mac(self.current, presented);
            return Err(Failure::invalid("api key: unknown prefix").with_prefix(prefix));
        };
        let tag = self
            .peppers
            .get(&record.pepper_version)
            .map(|p| hmac::Key::new(hmac::HMAC_SHA256, p.expose().as_bytes()));
        let matches =
            tag.is_some_and(|k| hmac::verify(&k, presented.as_bytes(), &record.hash).is_ok());
        if !matches {
            return Err(Failure::invalid("api key: wrong secret").with_prefix(prefix));
        }
        let t = now();
        if record.revoked_at.is_some_and(|r| r <= t) {
            return Err(Failure::invalid("api key: revoked").with_prefix(prefix));
        }
        if record.expires_at.is_some_and(|e| e <= t) {
            return Err(Failure::invalid("api key: expired").with_prefix(prefix));
        }
        Ok(Principal {
            id: format!("key:{}", record.id),
            name: record.name,
            kind: if record.kind == "user" {
                PrincipalKind::User
            } else {
                PrincipalKind::Service
            },
            teams: record.teams,
            roles: record.roles,
            attributes: BTreeMap::from([("key_prefix".to_owned(), record.prefix)]),
            auth: "api_key",
        })
    }

    async fn lookup(&self, prefix: &str) -> Result<Option<KeyRecord>, Failure> {
        if !self.ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((rec, at)) = cache.get(prefix)
                && at.elapsed() < self.ttl
            {
                return Ok(rec.clone());
            }
        }
        let rec = self
            .store
            .by_prefix(prefix)
            .await
            .map_err(|e| Failure::unavailable(e.to_string()))?;
        if !self.ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
            cache.insert(prefix.to_owned(), (rec.clone(), Instant::now()));
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parsing_is_strict() {
        let good = format!("aigis_{}_{}", "a".repeat(12), "0".repeat(64));
        assert_eq!(prefix_of(&good), Some("aaaaaaaaaaaa"));
        for bad in [
            String::new(),
            " ".into(),
            "aigis_".into(),
            format!("aigis_{}_{}", "A".repeat(12), "0".repeat(64)),
            format!("aigis_{}_{}", "a".repeat(12), "0".repeat(63)),
            format!("aigis_{}_{}x", "a".repeat(12), "0".repeat(64)),
            format!("aigis_{}_{}", "é".repeat(6), "0".repeat(64)),
            format!("sk-{}", "a".repeat(80)),
        ] {
            assert_eq!(prefix_of(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn rotation_keeps_the_lifetime_and_never_revives_an_expired_key() {
        let dir = std::env::temp_dir().join(format!("aigis-rotate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = KeyStore::open(&format!("sqlite:{}", dir.join("keys.db").display()))
            .await
            .unwrap();
        let peppers = BTreeMap::from([(1, Secret::new("test-pepper-0123456789abcdef0123456789"))]);
        let keys = ApiKeys::new(store, peppers, 1, Duration::from_secs(1));
        let spec = |name: &str, expires_in| KeySpec {
            name: name.into(),
            expires_in,
            ..KeySpec::default()
        };
        let ninety = Duration::from_hours(24 * 90);
        keys.create(spec("ci", Some(ninety))).await.unwrap();
        let new = keys.rotate("ci").await.unwrap().unwrap().record;
        assert_eq!(
            new.expires_at.map(|e| e - new.created_at),
            Some(90 * 86_400)
        );
        let expired = keys
            .create(spec("old", Some(Duration::ZERO)))
            .await
            .unwrap();
        assert!(expired.record.expires_at.is_some_and(|e| e <= now()));
        assert!(
            keys.rotate("old").await.unwrap().is_none(),
            "an expired key was rotated"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
