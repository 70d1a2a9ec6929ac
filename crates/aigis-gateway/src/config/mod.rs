//! Configuration: `aigis.toml` is read in two steps, the raw serde mirror (`raw.rs`) and
//! validation (`validate.rs`) that collects every error with its key path, line and a hint,
//! then assembles the typed [`Config`] the gateway runs on. There is one loader: the CLI's
//! `config check`, startup and SIGHUP reload all call [`load`].

mod ledger;
mod limits;
mod raw;
mod units;
mod validate;
pub(crate) use validate::secure_url;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ledger::{ClientIp, LedgerConfig, LedgerOnError, LedgerStore};
pub use limits::{
    Budget, BudgetUnit, Limit, LimitsConfig, OnStoreError, Price, Quantity, Rate, RedisStore,
    Scope, TokenKind, Tokenizer, Window,
};
pub use units::{glob_match, parse_duration, parse_size};

/// The model signature file's name inside a model directory when `signature` is not given.
pub const DEFAULT_MODEL_SIGNATURE: &str = "model.sig";

/// A loaded, validated configuration and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Problems that do not stop the gateway (e.g. an unset `env:` secret).
    pub warnings: Vec<Diagnostic>,
}

/// The typed configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: Server,
    /// `[[upstreams]]`, in file order.
    pub upstreams: Vec<Upstream>,
    /// `[[routes]]`, in file order.
    pub routes: Vec<Route>,
    /// `[identity]`; `None` means every caller is anonymous (open mode, logged loudly).
    pub identity: Option<IdentityConfig>,
    /// `[policy]`; `None` without `[identity]` means everything is allowed (open mode), with
    /// `[identity]` it means everything is denied.
    pub policy: Option<std::sync::Arc<crate::authorize::Policies>>,
    /// `[guard]`: the compiled profiles routes use.
    pub guard: GuardConfig,
    /// `[[limits]]`, `[[prices]]` and the fleet's limit store.
    pub limits: LimitsConfig,
    /// `[ledger]`; `None` records nothing beyond the access log.
    pub ledger: Option<LedgerConfig>,
}

/// `[guard]`
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Every profile (built-in and user), compiled.
    pub policies: std::collections::BTreeMap<String, std::sync::Arc<aigis_guard::Policy>>,
    /// Entries the pseudonymisation vault holds at most.
    pub vault_capacity: usize,
    /// How long a caller's pseudonyms live after their last use.
    pub vault_ttl: std::time::Duration,
    /// Bytes the guard's findings cache holds at most (0: off).
    pub cache: usize,
}

/// `[identity]`
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `[identity.api_keys]`
    pub api_keys: Option<ApiKeysConfig>,
    /// `[[identity.oidc]]`
    pub oidc: Vec<OidcConfig>,
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    /// Unique name, part of principal ids (`oidc:NAME#SUB`).
    pub name: String,
    /// The exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values (one must match).
    pub audiences: Vec<String>,
    /// Where the signing keys come from.
    pub jwks: JwksSource,
    /// Accepted signature algorithms (asymmetric only).
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Claim names: subject, roles, teams, display name.
    pub claims: ClaimNames,
    /// The only roles this provider's tokens may grant (`allowed_roles`); others are dropped.
    /// `None`: any role, `admin` included.
    pub allowed_roles: Option<Vec<String>>,
    /// Tolerance for `exp`, `nbf` and `iat`.
    pub clock_skew: Duration,
}

/// Where an issuer's JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `ISSUER/.well-known/openid-configuration` names it.
    Discovery,
    /// A JWKS URL.
    Url(String),
    /// A local JWKS file (read at start and reload).
    File(PathBuf),
}

/// Which claims fill the principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// Subject claim (default `sub`).
    pub subject: String,
    /// Roles claim (default `roles`), a string or a list.
    pub roles: String,
    /// Teams claim (default `groups`), a string or a list.
    pub teams: String,
    /// Display-name claim (default `name`).
    pub name: String,
}

/// `[identity.api_keys]`
#[derive(Debug, Clone)]
pub struct ApiKeysConfig {
    /// `sqlite:PATH` (resolved against the config folder) or `postgres://…`.
    pub store: String,
    /// The pepper new keys are made with.
    pub pepper: Pepper,
    /// Its version (stored with each key).
    pub pepper_version: u32,
    /// Older peppers by version, so keys made with them keep working.
    pub previous_peppers: std::collections::BTreeMap<u32, Secret>,
    /// How long a key lookup is cached (revocation delay); zero = every request.
    pub cache_ttl: Duration,
    /// Create and print a first admin key when the store has no key.
    pub bootstrap_admin: bool,
}

/// Where the API-key pepper comes from.
#[derive(Debug, Clone)]
pub enum Pepper {
    /// From `env:` or `file:`.
    Secret(Secret),
    /// Not configured: a random pepper kept in this file (created on first use, mode 0600).
    Generated(PathBuf),
}

/// `[server]`: listeners and request limits.
#[derive(Debug, Clone)]
pub struct Server {
    /// The public API listener.
    pub listen: SocketAddr,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`). Never expose it publicly.
    pub admin_listen: SocketAddr,
    /// Limits applied to every request before anything else.
    pub limits: RequestLimits,
    /// Requests in flight at once; more are refused with 429.
    pub max_concurrent: usize,
    /// The largest non-streamed upstream response the gateway reads.
    pub max_response: usize,
    /// How long shutdown waits for in-flight requests and streams.
    pub shutdown_grace: Duration,
    /// Proxies in front of the gateway whose `X-Forwarded-For` names the client
    /// ([`crate::forwarded`]); none by default: the client is the connection's peer.
    pub trusted_proxies: Vec<IpRange>,
    /// Connections from `trusted_proxies` start with a PROXY protocol header naming the client
    /// ([`crate::proxy_protocol`]): for load balancers that pass TCP or TLS through.
    pub proxy_protocol: bool,
    /// TLS for the public listener; plain HTTP when absent.
    pub tls: Option<TlsFiles>,
}

/// An IP address range, `ADDRESS/BITS` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    bits: u8,
}

impl IpRange {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address; host bits must be zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or ADDRESS/BITS range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        let range = Self { addr, bits };
        if range.masked(addr) != addr {
            return Err(format!(
                "`{text}` has bits set past its /{bits} prefix (did you mean {}/{bits}?)",
                range.masked(addr)
            ));
        }
        Ok(range.unmapped())
    }

    /// `::ffff:10.0.0.0/104` as the `10.0.0.0/8` it denotes: addresses are matched in their
    /// canonical form (a mapped IPv4 address as IPv4), so a mapped range must be too.
    fn unmapped(self) -> Self {
        match self.addr {
            IpAddr::V6(v6) if self.bits >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Self {
                    addr: IpAddr::V4(v4),
                    bits: self.bits - 96,
                },
                None => self,
            },
            _ => self,
        }
    }

    /// Whether the range is wider than a /8 (IPv4) or a /16 (IPv6): more than any proxy fleet.
    pub fn is_broad(&self) -> bool {
        self.bits < if self.addr.is_ipv4() { 8 } else { 16 }
    }

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.addr
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                IpAddr::from((u32::from(v4) & mask).to_be_bytes())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                IpAddr::from((u128::from(v6) & mask).to_be_bytes())
            }
        }
    }
}

/// Request limits checked by the `parse` stage.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body: usize,
    /// Largest total size of request headers, in bytes (431 beyond).
    pub max_header: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
    /// Most messages (or embedding inputs) in one request.
    pub max_messages: usize,
    /// Longest single JSON string, in bytes.
    pub max_string: usize,
    /// Largest `n` (choices per request).
    pub max_n: u64,
}

/// PEM files for a TLS listener, resolved against the config's folder.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// CAs that issue client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// Certificate revocation lists (PEM or DER) for client certificates; when any is given,
    /// a client certificate whose revocation status they do not tell is refused.
    pub client_crls: Vec<PathBuf>,
}

/// Client-certificate policy of the TLS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Not asked for.
    Off,
    /// Verified when presented; callers may also authenticate otherwise.
    Optional,
    /// Every connection must present a certificate from `client_ca`.
    Required,
}

/// The wire protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// OpenAI-compatible: OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM, …
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Built in: answers with the last user message (no model needed).
    Echo,
}

impl UpstreamKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Echo => "echo",
        }
    }
}

/// One upstream provider.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Unique name.
    pub name: String,
    /// Wire protocol.
    pub kind: UpstreamKind,
    /// Base URL, e.g. `https://api.openai.com/v1` (absent for `echo`).
    pub base_url: Option<http::Uri>,
    /// The credential the gateway injects; `None` when not configured or not set.
    pub api_key: Option<Secret>,
    /// `true` when `api_key` was configured but its `env:` variable is unset.
    pub api_key_missing: bool,
    /// Extra CA certificates (PEM) trusted for this upstream, besides the system roots.
    pub ca: Option<PathBuf>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Requests in flight to this upstream at once.
    pub max_concurrent: usize,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses before letting one trial request through.
    pub breaker_cooldown: Duration,
}

/// Per-upstream timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP (and TLS) connection set-up.
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub first_byte: Duration,
    /// Longest silence between two chunks of a response body.
    pub idle: Duration,
    /// Whole exchange, streams included.
    pub total: Duration,
}

/// One route: which models go to which upstreams.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique name.
    pub name: String,
    /// Exact model names or globs (`*`, `?`).
    pub models: Vec<String>,
    /// Indices into [`Config::upstreams`], in failover order.
    pub upstreams: Vec<usize>,
    /// Cap on requested completion tokens.
    pub max_tokens: Option<u64>,
    /// Visible to policies as `resource.classification`.
    pub classification: Option<String>,
    /// Visible to policies as `resource.tags`.
    pub tags: Vec<String>,
    /// The guard profile inspecting this route's requests; `None` when `guard = "off"`.
    pub guard: Option<String>,
    /// How prompt tokens are counted for token limits and budgets.
    pub tokenizer: Tokenizer,
    /// `content`: `Some(true)` captures encrypted content, `Some(false)` only digests, `None`
    /// follows `[ledger] content`.
    pub content: Option<bool>,
    /// `[routes.model_check]`: the self-hosted model directory that must verify before the
    /// route serves (checked at start and at every reload).
    pub model_check: Option<ModelCheckSpec>,
}

/// `[routes.model_check]`: what a route's self-hosted model must pass (an OpenSSF model
/// signature over every file, and optionally a clean malicious-code scan) before the gateway
/// routes to it. Paths are resolved from the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelCheckSpec {
    /// The model directory (or single file) the upstream serves.
    pub dir: PathBuf,
    /// The signature bundle (default `DIR/model.sig`).
    pub signature: PathBuf,
    /// Who must have signed.
    pub trust: ModelTrust,
    /// Require a valid post-quantum (ML-DSA-65+Ed25519) signature too.
    pub require_pq: bool,
    /// Also require a clean malicious-code scan (`aigis scan`) of the directory.
    pub scan: bool,
    /// What a failed check does.
    pub on_failure: OnModelFailure,
}

/// The signers a model check trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelTrust {
    /// Public keys (PEM); each must have a valid signature in the bundle.
    Keys(Vec<PathBuf>),
    /// Trusted CA certificates (PEM) for the certificate-chain method.
    CertificateChain(Vec<PathBuf>),
}

/// What the gateway does when a route's model fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnModelFailure {
    /// Serve every other route; requests for this route's models get 503 `model_unverified`
    /// until a reload finds the model verified (the default).
    #[default]
    DisableRoute,
    /// Refuse the whole configuration: the gateway does not start, and a reload is rejected
    /// (the previous configuration keeps serving).
    RefuseStart,
}

impl Config {
    /// The route serving `model`: an exact name wins over a glob; among globs, file order.
    pub fn route_for(&self, model: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.models.iter().any(|m| m == model))
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| r.models.iter().any(|m| glob_match(m, model)))
            })
    }

    /// The upstream kind a route speaks (all its upstreams share one, checked at load).
    pub fn route_kind(&self, route: &Route) -> UpstreamKind {
        route
            .upstreams
            .first()
            .and_then(|&i| self.upstreams.get(i))
            .map_or(UpstreamKind::OpenAi, |u| u.kind)
    }
}

/// A secret value resolved from `env:` or `file:`. Never printed.
#[derive(Clone)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Box<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for injecting into an upstream request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How serious a config problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The config cannot be used.
    Error,
    /// The config works, with a caveat.
    Warning,
}

/// One problem found in a config file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// Dotted key path, e.g. `server.listen` or `upstreams[1].timeouts.idle`.
    pub path: String,
    /// 1-based line of the key in the file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        match self.line {
            Some(line) => write!(f, "line {line}: {level}: `{}`: {}", self.path, self.message)?,
            None => write!(f, "{level}: `{}`: {}", self.path, self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A config that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{} has {} error(s):\n{}", file.display(), errors.len(), render(errors))]
pub struct ConfigError {
    /// The file that was read.
    pub file: PathBuf,
    /// Every error (warnings are included when `--strict` turned them into errors).
    pub errors: Vec<Diagnostic>,
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and validates a config file. With `strict`, warnings are errors.
pub fn load(path: &Path, strict: bool) -> Result<Loaded, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        errors: vec![Diagnostic {
            level: Level::Error,
            path: String::new(),
            line: None,
            message: format!("cannot read the file: {e}"),
            hint: Some("check the path given to --config".into()),
        }],
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&src, base, strict).map_err(|errors| ConfigError {
        file: path.to_path_buf(),
        errors,
    })
}

/// Validates config text; relative `file:` paths resolve from `base`.
pub fn parse(src: &str, base: &Path, strict: bool) -> Result<Loaded, Vec<Diagnostic>> {
    validate::validate(src, base, strict)
}
