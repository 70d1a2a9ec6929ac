//! OIDC / JWT bearer tokens. Each configured issuer has an algorithm allow-list (asymmetric
//! only: no `none`, no HS* that a public key could be abused to forge), exact `iss`, one of
//! its audiences, `exp`/`nbf`/`iat` within a bounded clock skew, and keys from its JWKS.
//!
//! The JWKS cache honours `Cache-Control: max-age` (clamped to 1 min – 24 h), refreshes when a
//! token names an unknown `kid` or the keys are stale (one fetch at a time, at most one attempt
//! every `MIN_REFRESH`), and keeps serving the keys it has when the IdP cannot be reached.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tokio::time::Instant;

use super::{Failure, Principal, PrincipalKind};
use crate::config::{JwksSource, OidcConfig};
use crate::forward::client::{self, UpstreamClient};

/// Shortest time between two JWKS fetches triggered by unknown `kid`s.
const MIN_REFRESH: Duration = Duration::from_secs(30);
/// Largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// Longest `kid` looked up.
const MAX_KID: usize = 256;

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    without_kid: Vec<DecodingKey>,
    fetched: Option<Instant>,
    max_age: Duration,
}

/// One trusted issuer and its key cache.
pub struct Issuer {
    config: OidcConfig,
    client: UpstreamClient,
    keys: RwLock<Keys>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// The last fetch of a remote JWKS failed: a token whose key is not cached cannot be
    /// judged, so it is refused as unavailable (503), not as invalid (which would count
    /// towards throttling its source while the IdP is down).
    fetch_failed: std::sync::atomic::AtomicBool,
}

fn invalid(reason: impl Into<String>) -> Failure {
    Failure::invalid(reason)
}

/// The unverified `iss` of a token, used only to pick the issuer whose keys verify it.
pub fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > super::MAX_CREDENTIAL_LEN {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

impl Issuer {
    /// Sets up an issuer; a static JWKS file is read now, a remote JWKS at first use.
    pub async fn new(config: OidcConfig) -> Result<Self, String> {
        let client = client::build(Duration::from_secs(5), None)?;
        let issuer = Self {
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                without_kid: Vec::new(),
                fetched: None,
                max_age: Duration::ZERO,
            }),
            refresh: tokio::sync::Mutex::new(None),
            fetch_failed: std::sync::atomic::AtomicBool::new(false),
            client,
            config,
        };
        if let JwksSource::File(path) = &issuer.config.jwks {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            issuer.install(&text, Duration::MAX)?;
        } else if let Err(e) = issuer.fetch_recorded().await {
            tracing::warn!(issuer = %issuer.config.name, error = %e, "JWKS not reachable yet; will retry on first token");
        }
        Ok(issuer)
    }

    /// The configuration it was set up with.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The exact `iss` value this issuer signs.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Verifies a token from this issuer and maps its claims to a principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, Failure> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid(format!("jwt: bad header: {e}")))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "jwt: algorithm {:?} is not allowed for issuer {}",
                header.alg, self.config.name
            )));
        }
        if let Some(kid) = &header.kid
            && (kid.len() > MAX_KID || !kid.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid("jwt: malformed kid"));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.config.clock_skew.as_secs();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<BTreeMap<String, Value>>(token, &key, &validation)
            .map_err(|e| invalid(format!("jwt: {e}")))?;
        let claims = data.claims;
        let now = super::api_key::now();
        let skew = i64::try_from(self.config.clock_skew.as_secs()).unwrap_or(0);
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now + skew)
        {
            return Err(invalid("jwt: issued in the future"));
        }
        self.principal(&claims)
    }

    fn principal(&self, claims: &BTreeMap<String, Value>) -> Result<Principal, Failure> {
        let names = &self.config.claims;
        let subject = claims
            .get(&names.subject)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("jwt: no `{}` claim", names.subject)))?;
        let list = |claim: &str| -> Vec<String> {
            match claims.get(claim) {
                Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut attributes = BTreeMap::from([
            ("issuer".to_owned(), self.config.name.clone()),
            ("subject".to_owned(), subject.to_owned()),
        ]);
        // Only an address the IdP says it verified: with IdPs where users set their own email,
        // an unverified one would let anyone satisfy a rule like `like "*@corp.example"`.
        let verified = claims.get("email_verified") == Some(&Value::Bool(true));
        if let Some(email) = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|_| verified)
        {
            attributes.insert("email".into(), email.to_owned());
        }
        Ok(Principal {
            id: format!("oidc:{}#{subject}", self.config.name),
            name: claims
                .get(&names.name)
                .and_then(Value::as_str)
                .unwrap_or(subject)
                .to_owned(),
            kind: PrincipalKind::User,
            teams: list(&names.teams),
            roles: self.granted(list(&names.roles)),
            attributes,
            auth: "oidc",
        })
    }

    /// `roles` less those this provider may not grant (`allowed_roles`).
    fn granted(&self, mut roles: Vec<String>) -> Vec<String> {
        if let Some(allowed) = &self.config.allowed_roles {
            roles.retain(|r| {
                let ok = allowed.contains(r);
                if !ok {
                    tracing::debug!(target: "aigis::security", provider = %self.config.name, role = %r, "role not in allowed_roles; dropped");
                }
                ok
            });
        }
        roles
    }

    fn cached(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match kid {
            Some(k) => keys.by_kid.get(k).cloned(),
            None => keys.without_kid.first().cloned().or_else(|| {
                (keys.by_kid.len() == 1)
                    .then(|| keys.by_kid.values().next().cloned())
                    .flatten()
            }),
        }
    }

    fn stale(&self) -> bool {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !matches!(self.config.jwks, JwksSource::File(_))
            && keys.fetched.is_none_or(|t| t.elapsed() > keys.max_age)
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, Failure> {
        if self.stale() {
            self.refresh().await;
        }
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if !matches!(self.config.jwks, JwksSource::File(_)) {
            self.refresh().await;
        }
        self.cached(kid).ok_or_else(|| {
            if self.fetch_failed.load(std::sync::atomic::Ordering::Relaxed) {
                Failure::unavailable("jwt: the issuer's keys could not be fetched")
            } else {
                invalid("jwt: no key with this kid")
            }
        })
    }

    /// One fetch at a time, and at most one attempt every `MIN_REFRESH`, whatever the reason
    /// (an unknown `kid`, stale keys) and whether it succeeded: an IdP that is down costs one
    /// timeout per interval, not one per request. While keys are cached, a request never waits
    /// for another's fetch; it uses them.
    async fn refresh(&self) {
        let has_keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fetched
            .is_some();
        let mut last = if has_keys {
            match self.refresh.try_lock() {
                Ok(last) => last,
                Err(_) => return,
            }
        } else {
            self.refresh.lock().await
        };
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_recorded().await {
            tracing::warn!(issuer = %self.config.name, error = %e, "JWKS refresh failed; serving cached keys");
        }
    }

    /// [`Issuer::fetch`], remembering whether it failed.
    async fn fetch_recorded(&self) -> Result<(), String> {
        let fetched = self.fetch().await;
        self.fetch_failed
            .store(fetched.is_err(), std::sync::atomic::Ordering::Relaxed);
        fetched
    }

    /// A document and its `max-age`, head and body within 10 s: a server that sends headers
    /// and then stalls would otherwise hold the refresh lock (and every request waiting for
    /// the first keys) forever.
    async fn get(&self, url: &str) -> Result<(Bytes, Option<Duration>), String> {
        tokio::time::timeout(Duration::from_secs(10), self.get_unbounded(url))
            .await
            .map_err(|_| format!("{url}: timed out"))?
    }

    async fn get_unbounded(&self, url: &str) -> Result<(Bytes, Option<Duration>), String> {
        let req = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
            })
            .map(Duration::from_secs);
        let body = http_body_util::Limited::new(resp.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok((body, max_age))
    }

    async fn fetch(&self) -> Result<(), String> {
        let url = match &self.config.jwks {
            JwksSource::File(_) => return Ok(()),
            JwksSource::Url(u) => u.clone(),
            JwksSource::Discovery => {
                let doc_url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let (doc, _) = self.get(&doc_url).await?;
                let doc: Value =
                    serde_json::from_slice(&doc).map_err(|e| format!("{doc_url}: {e}"))?;
                // OpenID Connect Discovery 1.0 §4.3: the document names exactly this issuer.
                let issuer = doc.get("issuer").and_then(Value::as_str);
                if issuer != Some(self.config.issuer.as_str()) {
                    return Err(format!(
                        "{doc_url}: the document is for issuer {issuer:?}, not {:?}",
                        self.config.issuer
                    ));
                }
                let jwks = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{doc_url}: no jwks_uri"))?;
                if !crate::config::secure_url(jwks) {
                    return Err(format!(
                        "{doc_url}: jwks_uri {jwks:?} is not an https:// URL"
                    ));
                }
                jwks.to_owned()
            }
        };
        let (body, max_age) = self.get(&url).await?;
        let max_age = max_age
            .unwrap_or(Duration::from_mins(10))
            .clamp(Duration::from_mins(1), Duration::from_hours(24));
        self.install(&body, max_age)
    }

    fn install(&self, jwks: &[u8], max_age: Duration) -> Result<(), String> {
        let set: JwkSet = serde_json::from_slice(jwks).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut by_kid = HashMap::new();
        let mut without_kid = Vec::new();
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    by_kid.insert(kid.clone(), key);
                }
                None => without_kid.push(key),
            }
        }
        if by_kid.is_empty() && without_kid.is_empty() {
            return Err("the JWKS holds no usable key".into());
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Keys {
            by_kid,
            without_kid,
            fetched: Some(Instant::now()),
            max_age,
        };
        Ok(())
    }
}
