//! Validation of `[identity]`, `[policy]` and `[cluster]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Seg, Validator, key, raw};
use crate::authorize::Policies;
use crate::config::{
    ApiKeysConfig, ClaimNames, IdentityConfig, JwksSource, Level, OidcConfig, Pepper,
};

impl Validator<'_> {
    /// Deserializes an optional top-level table.
    pub(super) fn section<T: DeserializeOwned>(
        &mut self,
        table: &toml::Table,
        name: &str,
    ) -> Option<T> {
        let value = table.get(name)?.clone();
        self.de(&[Seg::Key(name.to_owned())], value)
    }

    pub(super) fn identity(
        &mut self,
        raw: raw::Identity,
        cluster: Option<&raw::Cluster>,
    ) -> Option<IdentityConfig> {
        let oidc: Vec<OidcConfig> = raw
            .oidc
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, o)| self.oidc(i, o))
            .collect();
        self.distinct_issuers(&oidc);
        let Some(k) = raw.api_keys else {
            if oidc.is_empty() {
                self.error(
                    &[Seg::Key("identity".into())],
                    "no identity method configured",
                    Some(
                        "add [identity.api_keys] with a `store`, or an [[identity.oidc]] issuer"
                            .into(),
                    ),
                );
                return None;
            }
            return Some(IdentityConfig {
                api_keys: None,
                oidc,
            });
        };
        let at = [Seg::Key("identity".into()), Seg::Key("api_keys".into())];
        let store = if let Some(path) = k.store.strip_prefix("sqlite:") {
            if cluster.is_some() {
                self.error(
                    &key(&at, "store"),
                    "a sqlite: key store cannot be shared by a fleet ([cluster] is set)",
                    Some(
                        "use the PostgreSQL URL of [cluster], e.g. \"postgres://aigis@db/aigis\""
                            .into(),
                    ),
                );
                return None;
            }
            format!("sqlite:{}", self.base.join(path).display())
        } else if k.store.starts_with("postgres://") || k.store.starts_with("postgresql://") {
            k.store.clone()
        } else {
            self.error(
                &key(&at, "store"),
                "unsupported key store",
                Some("use \"sqlite:PATH\" or \"postgres://USER@HOST/DB\"".into()),
            );
            return None;
        };
        let pepper = match &k.pepper {
            Some(r) => match self.secret(&key(&at, "pepper"), r)? {
                (Some(s), _) => Pepper::Secret(s),
                (None, _) => {
                    self.error(
                        &key(&at, "pepper"),
                        "the pepper must be set: keys cannot be checked without it",
                        None,
                    );
                    return None;
                }
            },
            None if store.starts_with("sqlite:") => {
                Pepper::Generated(format!("{}.pepper", &store["sqlite:".len()..]).into())
            }
            None => {
                self.error(
                    &key(&at, "pepper"),
                    "a shared store needs a configured pepper, the same on every gateway",
                    Some("pepper = \"env:AIGIS_KEY_PEPPER\" (32 random bytes or more)".into()),
                );
                return None;
            }
        };
        let mut previous = BTreeMap::new();
        for (version, r) in k.previous_peppers.unwrap_or_default() {
            let vat = key(&key(&at, "previous_peppers"), &version);
            let Ok(n) = version.parse::<u32>() else {
                self.error(&vat, "pepper versions are numbers", None);
                continue;
            };
            if let Some((Some(s), _)) = self.secret(&vat, &r) {
                previous.insert(n, s);
            }
        }
        let cache_ttl = self.duration(
            &key(&at, "cache_ttl"),
            k.cache_ttl.as_deref(),
            Duration::from_secs(5),
        )?;
        Some(IdentityConfig {
            api_keys: Some(ApiKeysConfig {
                store,
                pepper,
                pepper_version: k.pepper_version.unwrap_or(1),
                previous_peppers: previous,
                cache_ttl,
                bootstrap_admin: k.bootstrap_admin.unwrap_or(false),
            }),
            oidc,
        })
    }

    /// Two providers with one name would share their log and metric labels and one policy
    /// `issuer` tag; two with one issuer would accept each other's tokens under two
    /// configurations. Either is a configuration error.
    fn distinct_issuers(&mut self, oidc: &[OidcConfig]) {
        for (i, o) in oidc.iter().enumerate() {
            let at = [
                Seg::Key("identity".into()),
                Seg::Key("oidc".into()),
                Seg::Index(i),
            ];
            let earlier = &oidc[..i];
            if earlier.iter().any(|e| e.name == o.name) {
                self.error(
                    &key(&at, "name"),
                    format!("another [[identity.oidc]] is already named `{}`", o.name),
                    Some("give each provider its own name".into()),
                );
            }
            if earlier.iter().any(|e| e.issuer == o.issuer) {
                self.error(
                    &key(&at, "issuer"),
                    format!("the issuer `{}` is configured twice", o.issuer),
                    Some("list each issuer once, with all its audiences".into()),
                );
            }
            if oidc.len() > 1 && o.allowed_roles.is_none() {
                self.push(
                    Level::Warning,
                    &at,
                    format!(
                        "`{}` may grant any role, `admin` included, as may every provider without allowed_roles",
                        o.name
                    ),
                    Some("limit what each IdP's tokens may claim: allowed_roles = [\"reader\"] (or [] for none)".into()),
                );
            }
        }
    }

    /// Whether `allowed_roles` holds role names (no spaces: a token's roles may be one
    /// space-separated string); errors otherwise.
    fn role_names(&mut self, at: &[Seg], roles: Option<&[String]>) -> bool {
        let bad = roles
            .into_iter()
            .flatten()
            .find(|r| r.is_empty() || r.contains(char::is_whitespace));
        if let Some(bad) = bad {
            self.error(
                &key(at, "allowed_roles"),
                format!("`{bad}` is not a role name (empty, or with spaces)"),
                Some("e.g. allowed_roles = [\"reader\"], or [] to grant none".into()),
            );
        }
        bad.is_none()
    }

    fn oidc(&mut self, i: usize, o: raw::Oidc) -> Option<OidcConfig> {
        let at = [
            Seg::Key("identity".into()),
            Seg::Key("oidc".into()),
            Seg::Index(i),
        ];
        if !secure_url(&o.issuer) {
            self.error(
                &key(&at, "issuer"),
                "the issuer must be an https:// URL",
                Some("plain http is accepted for loopback test issuers only".into()),
            );
            return None;
        }
        if o.audiences.is_empty() {
            self.error(
                &key(&at, "audiences"),
                "at least one audience is required",
                Some("the `aud` your IdP puts in tokens for aigis".into()),
            );
            return None;
        }
        let mut algorithms = Vec::new();
        for a in &o.algorithms {
            match a.as_str() {
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384"
                | "EdDSA" => {
                    if let Ok(alg) = a.parse::<jsonwebtoken::Algorithm>() {
                        algorithms.push(alg);
                    }
                }
                "HS256" | "HS384" | "HS512" => {
                    self.error(
                        &key(&at, "algorithms"),
                        format!("`{a}` is refused: a symmetric algorithm cannot be verified with an issuer's public keys"),
                        Some("use RS256, PS256, ES256 or EdDSA".into()),
                    );
                    return None;
                }
                other => {
                    self.error(
                        &key(&at, "algorithms"),
                        format!("`{other}` is not an accepted signature algorithm"),
                        Some(
                            "one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
                                .into(),
                        ),
                    );
                    return None;
                }
            }
        }
        if algorithms.is_empty() {
            self.error(
                &key(&at, "algorithms"),
                "list the accepted algorithms",
                Some("e.g. [\"ES256\", \"RS256\"]".into()),
            );
            return None;
        }
        let jwks = match o.jwks.as_str() {
            "discovery" => JwksSource::Discovery,
            u if secure_url(u) => JwksSource::Url(u.to_owned()),
            f if f.starts_with("file:") => JwksSource::File(self.file(&key(&at, "jwks"), f)?),
            _ => {
                self.error(
                    &key(&at, "jwks"),
                    "unknown JWKS source",
                    Some("\"discovery\", an https:// URL or \"file:PATH\"".into()),
                );
                return None;
            }
        };
        if !self.role_names(&at, o.allowed_roles.as_deref()) {
            return None;
        }
        let c = o.claims.unwrap_or_default();
        Some(OidcConfig {
            name: o.name,
            issuer: o.issuer,
            audiences: o.audiences,
            jwks,
            algorithms,
            claims: ClaimNames {
                subject: c.subject.unwrap_or_else(|| "sub".into()),
                roles: c.roles.unwrap_or_else(|| "roles".into()),
                teams: c.teams.unwrap_or_else(|| "groups".into()),
                name: c.name.unwrap_or_else(|| "name".into()),
            },
            allowed_roles: o.allowed_roles,
            clock_skew: self.duration(
                &key(&at, "clock_skew"),
                o.clock_skew.as_deref(),
                Duration::from_mins(1),
            )?,
        })
    }

    pub(super) fn policy(&mut self, raw: &raw::Policy) -> Option<Arc<Policies>> {
        let at = [Seg::Key("policy".into()), Seg::Key("policies".into())];
        let files = match crate::authorize::read_files(&raw.policies, self.base) {
            Ok(f) => f,
            Err(e) => {
                self.error(
                    &at,
                    e,
                    Some("relative paths resolve from the config file's folder".into()),
                );
                return None;
            }
        };
        match Policies::load(&files) {
            Ok(p) => {
                if p.is_empty() {
                    self.push(
                        Level::Warning,
                        &at,
                        "the policy files hold no policy: everything is denied".into(),
                        None,
                    );
                }
                Some(Arc::new(p))
            }
            Err(errors) => {
                for e in errors {
                    self.error(
                        &at,
                        e.to_string(),
                        Some("`aigis policy check` explains decisions".into()),
                    );
                }
                None
            }
        }
    }
}

/// Whether keys may be fetched from `url`: https, or plain http to a loopback test issuer.
pub(crate) fn secure_url(url: &str) -> bool {
    let loopback = || {
        url.parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
    };
    url.starts_with("https://") || (url.starts_with("http://") && loopback())
}
