//! The `identify` stage: who is calling. A request carries exactly one credential: an aigis
//! API key (`Authorization: Bearer aigis_…` or `x-api-key`), or an OIDC/JWT bearer token, or
//! a client certificate. Any failure is the same 401 to the caller; the reason goes to the
//! log. Repeated failures from one source address or against one key prefix are throttled with
//! exponential back-off and raise a security event.

pub mod api_key;
pub mod jwt;
pub mod mtls;
pub mod store;
mod throttle;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

pub use api_key::{ApiKeys, KeySpec, NewKey};
pub use store::{KeyRecord, KeyStore, StoreError};
pub use throttle::Throttle;

/// Longest credential header accepted (a large JWT fits; anything longer is refused unread).
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id, e.g. `key:<uuid>`, `oidc:<issuer>#<sub>`, `spiffe://…`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// A person or a workload.
    pub kind: PrincipalKind,
    /// Teams.
    pub teams: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Other attributes (string-valued), visible to policies as tags.
    pub attributes: BTreeMap<String, String>,
    /// How it authenticated: `api_key`, `oidc`, `mtls` or `anonymous`.
    pub auth: &'static str,
}

impl Principal {
    /// The caller when no `[identity]` is configured.
    pub fn anonymous() -> Self {
        Self {
            id: "anonymous".into(),
            name: "anonymous".into(),
            kind: PrincipalKind::Service,
            teams: Vec::new(),
            roles: Vec::new(),
            attributes: BTreeMap::new(),
            auth: "anonymous",
        }
    }

    /// Whether the principal holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// A person or a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A workload.
    Service,
}

impl PrincipalKind {
    /// `user` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
        }
    }
}

/// Why identification failed. Only [`Failure::kind`] reaches the caller.
#[derive(Debug)]
pub struct Failure {
    /// What the caller is told.
    pub kind: FailureKind,
    /// What the log is told (never the credential).
    pub reason: String,
    /// The key prefix involved, for throttling and the log.
    pub prefix: Option<String>,
}

/// The caller-visible failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No credential at all.
    Missing,
    /// A credential that is not accepted, for whatever reason.
    Invalid,
    /// Too many recent failures from this source or for this key.
    Throttled,
    /// The key store cannot be reached (fail closed).
    Unavailable,
}

impl Failure {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Invalid,
            reason: reason.into(),
            prefix: None,
        }
    }
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Unavailable,
            reason: reason.into(),
            prefix: None,
        }
    }
    pub(crate) fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_owned());
        self
    }
}

/// The configured ways to identify callers.
pub struct Identity {
    /// API keys, when `[identity.api_keys]` is configured.
    pub api_keys: Option<ApiKeys>,
    /// Trusted OIDC issuers.
    pub issuers: Vec<Arc<jwt::Issuer>>,
}

/// The one credential a request presents.
enum Credential<'a> {
    ApiKey(&'a str),
    /// A bearer token that is not an aigis key (an OIDC/JWT token).
    Bearer(&'a str),
}

fn credential(headers: &HeaderMap) -> Result<Credential<'_>, Failure> {
    let read = |name: &str| -> Result<Option<&str>, Failure> {
        let Some(v) = headers.get(name) else {
            return Ok(None);
        };
        if v.len() > MAX_CREDENTIAL_LEN {
            return Err(Failure::invalid(format!(
                "{name}: longer than {MAX_CREDENTIAL_LEN} bytes"
            )));
        }
        let s = v
            .to_str()
            .map_err(|_| Failure::invalid(format!("{name}: not visible ASCII")))?;
        Ok(Some(s.trim()))
    };
    let bearer = match read("authorization")? {
        None => None,
        Some(v) => {
            let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Failure::invalid("authorization: not a Bearer credential"));
            }
            Some(token.trim())
        }
    };
    let key = read("x-api-key")?;
    match (bearer, key) {
        (Some(a), Some(b)) if a != b => {
            Err(Failure::invalid("two different credentials presented"))
        }
        (Some(""), _) | (None, Some("")) => Err(Failure::invalid("empty credential")),
        (Some(t), _) if t.starts_with("aigis_") => Ok(Credential::ApiKey(t)),
        (Some(t), _) => Ok(Credential::Bearer(t)),
        (None, Some(k)) => Ok(Credential::ApiKey(k)),
        (None, None) => Err(Failure {
            kind: FailureKind::Missing,
            reason: "no credential".into(),
            prefix: None,
        }),
    }
}

impl Identity {
    /// Opens the configured identity methods (the key store, the pepper). An OIDC issuer of
    /// `previous` (the identity a reload replaces) whose configuration is unchanged is kept,
    /// with its cached keys: a reload during an IdP outage must not swap working keys for
    /// none. An issuer reading a JWKS file reads it again.
    pub async fn open(
        config: &crate::config::IdentityConfig,
        previous: Option<&Self>,
    ) -> Result<Self, StoreError> {
        let api_keys = match &config.api_keys {
            Some(k) => Some(open_api_keys(k).await?),
            None => None,
        };
        let mut issuers = Vec::new();
        for o in &config.oidc {
            let kept = previous
                .into_iter()
                .flat_map(|p| &p.issuers)
                .find(|i| i.config() == o && !matches!(o.jwks, crate::config::JwksSource::File(_)));
            let issuer = match kept {
                Some(i) => i.clone(),
                None => Arc::new(
                    jwt::Issuer::new(o.clone())
                        .await
                        .map_err(|e| StoreError(format!("oidc issuer `{}`: {e}", o.name)))?,
                ),
            };
            issuers.push(issuer);
        }
        Ok(Self { api_keys, issuers })
    }

    /// Identifies the caller of a request from `source`; `client_cert` is the principal of a
    /// verified client certificate, used when no header credential is present.
    pub async fn identify(
        &self,
        throttle: &Throttle,
        headers: &HeaderMap,
        source: IpAddr,
        client_cert: Option<&Principal>,
    ) -> Result<Principal, Failure> {
        if let Some(wait) = throttle.blocked_source(source) {
            return Err(Failure {
                kind: FailureKind::Throttled,
                reason: format!("source throttled for {wait:?}"),
                prefix: None,
            });
        }
        let result = match (self.check(throttle, headers).await, client_cert) {
            // No header credential: a verified client certificate identifies the caller.
            (Err(f), Some(p)) if f.kind == FailureKind::Missing => Ok(p.clone()),
            (r, _) => r,
        };
        match &result {
            Ok(p) => throttle.success(source, p.attributes.get("key_prefix").map(String::as_str)),
            Err(f) if f.kind == FailureKind::Invalid => {
                throttle.failure(source, f.prefix.as_deref());
            }
            Err(_) => {}
        }
        result
    }

    async fn check(&self, throttle: &Throttle, headers: &HeaderMap) -> Result<Principal, Failure> {
        match credential(headers)? {
            Credential::ApiKey(key) => {
                let keys = self
                    .api_keys
                    .as_ref()
                    .ok_or_else(|| Failure::invalid("api keys are not configured"))?;
                // A throttled prefix still lets its owner in: prefixes are not secret (logs,
                // `keys list`), so refusing the right key too would let anyone lock a key out.
                let blocked = api_key::prefix_of(key)
                    .and_then(|prefix| Some((prefix, throttle.blocked_prefix(prefix)?)));
                let verified = keys.verify(key).await;
                match (verified, blocked) {
                    (Err(_), Some((prefix, wait))) => Err(Failure {
                        kind: FailureKind::Throttled,
                        reason: format!("key prefix throttled for {wait:?}"),
                        prefix: Some(prefix.to_owned()),
                    }),
                    (verified, _) => verified,
                }
            }
            Credential::Bearer(token) => {
                let iss = jwt::peek_issuer(token).ok_or_else(|| {
                    Failure::invalid("bearer token is neither an aigis key nor a JWT")
                })?;
                let issuer = self
                    .issuers
                    .iter()
                    .find(|i| i.issuer() == iss)
                    .ok_or_else(|| Failure::invalid(format!("jwt: untrusted issuer {iss:?}")))?;
                issuer.verify(token).await
            }
        }
    }
}

/// Opens the API-key store with its peppers (creating a generated pepper file if needed).
pub async fn open_api_keys(config: &crate::config::ApiKeysConfig) -> Result<ApiKeys, StoreError> {
    let store = KeyStore::open(&config.store).await?;
    let pepper = match &config.pepper {
        crate::config::Pepper::Secret(s) => s.clone(),
        crate::config::Pepper::Generated(path) => generated_pepper(path)?,
    };
    let mut peppers = config.previous_peppers.clone();
    peppers.insert(config.pepper_version, pepper);
    Ok(ApiKeys::new(
        store,
        peppers,
        config.pepper_version,
        config.cache_ttl,
    ))
}

/// Reads the pepper kept in `path`, creating it (32 random bytes, mode 0600) the first time.
fn generated_pepper(path: &std::path::Path) -> Result<crate::config::Secret, StoreError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim();
        if text.len() < 32 {
            return Err(StoreError(format!(
                "the pepper in {} is too short",
                path.display()
            )));
        }
        return Ok(crate::config::Secret::new(text));
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| StoreError("the system random generator failed".into()))?;
    let hex = to_hex(&bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            StoreError(format!(
                "cannot create the pepper file {}: {e}",
                path.display()
            ))
        })?;
    file.write_all(hex.as_bytes())
        .map_err(|e| StoreError(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "created a new API-key pepper file; back it up with the key store");
    Ok(crate::config::Secret::new(hex))
}

/// Lower-case hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
