//! The serde mirror of `aigis.toml`: plain strings and numbers, every key optional where a
//! default exists, unknown keys rejected. Nothing here is validated; see `validate.rs`.

use serde::Deserialize;

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub max_body: Option<String>,
    pub max_header: Option<String>,
    pub max_json_depth: Option<u32>,
    pub max_messages: Option<u32>,
    pub max_string: Option<String>,
    pub max_n: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub max_response: Option<String>,
    pub shutdown_grace: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub proxy_protocol: Option<bool>,
    pub tls: Option<Tls>,
}

/// `[server.tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
    pub client_auth: Option<String>,
    pub client_crls: Option<Vec<String>>,
}

/// One `[[upstreams]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub ca: Option<String>,
    pub timeouts: Option<Timeouts>,
    pub max_concurrent: Option<u32>,
    pub circuit_breaker: Option<CircuitBreaker>,
}

/// `timeouts = { connect, first_byte, idle, total }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub connect: Option<String>,
    pub first_byte: Option<String>,
    pub idle: Option<String>,
    pub total: Option<String>,
}

/// `circuit_breaker = { failures, cooldown }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    pub failures: Option<u32>,
    pub cooldown: Option<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    pub models: Vec<String>,
    pub upstream: OneOrMany,
    pub max_tokens: Option<u32>,
    pub classification: Option<String>,
    pub tags: Option<Vec<String>>,
    pub guard: Option<String>,
    pub tokenizer: Option<String>,
    pub content: Option<String>,
    pub model_check: Option<ModelCheck>,
}

/// `[routes.model_check]`: the self-hosted model a route serves must verify first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCheck {
    pub dir: String,
    pub signature: Option<String>,
    pub keys: Option<Vec<String>>,
    pub certificate_chain: Option<Vec<String>>,
    pub require_pq: Option<bool>,
    pub scan: Option<bool>,
    pub on_failure: Option<String>,
}

/// One `[[limits]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub name: String,
    pub scope: OneOrMany,
    pub requests: Option<String>,
    pub tokens: Option<String>,
    pub prompt_tokens: Option<String>,
    pub completion_tokens: Option<String>,
    pub concurrent: Option<u32>,
    pub budget: Option<String>,
    pub models: Option<Vec<String>>,
    pub routes: Option<Vec<String>>,
    pub on_store_error: Option<String>,
}

/// One `[[prices]]` entry (USD per million tokens).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// `[guard]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    pub profile: Option<String>,
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, aigis_guard::profile::ProfileSpec>,
    pub vault: Option<Vault>,
    pub cache: Option<String>,
}

/// `[guard.vault]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vault {
    pub capacity: Option<u32>,
    pub ttl: Option<String>,
}

/// `[identity]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub api_keys: Option<ApiKeys>,
    pub oidc: Option<Vec<Oidc>>,
}

/// One `[[identity.oidc]]` issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks: String,
    pub algorithms: Vec<String>,
    pub claims: Option<Claims>,
    pub allowed_roles: Option<Vec<String>>,
    pub clock_skew: Option<String>,
}

/// `claims = { subject, roles, teams, name }`: which token claims fill the principal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub subject: Option<String>,
    pub roles: Option<String>,
    pub teams: Option<String>,
    pub name: Option<String>,
}

/// `[identity.api_keys]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeys {
    pub store: String,
    pub pepper: Option<String>,
    pub pepper_version: Option<u32>,
    pub previous_peppers: Option<std::collections::BTreeMap<String, String>>,
    pub cache_ttl: Option<String>,
    pub bootstrap_admin: Option<bool>,
}

/// `[policy]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub policies: Vec<String>,
}

/// `[cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub postgres: Option<String>,
    pub redis: Option<String>,
    pub key_prefix: Option<String>,
    pub store_timeout: Option<String>,
}

/// `[ledger]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub store: Option<String>,
    pub signing_key: String,
    pub checkpoint_every: Option<String>,
    pub commit_interval: Option<String>,
    pub store_timeout: Option<String>,
    pub content: Option<String>,
    pub on_store_error: Option<String>,
    pub spool_max: Option<String>,
    pub client_ip: Option<String>,
    pub capture: Option<LedgerCapture>,
}

/// `[ledger.capture]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerCapture {
    pub dir: Option<String>,
    pub recipients: std::collections::BTreeMap<String, Vec<String>>,
}

/// `upstream = "a"` or `upstream = ["a", "b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}
