//! Validation of `[identity]`, `[policy]` and `[cluster]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Seg, Validator, key, raw};
use crate::authorize::Policies;
use crate::config::{ApiKeysConfig, IdentityConfig, Level, Pepper};

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
        let at = [Seg::Key("identity".into()), Seg::Key("api_keys".into())];
        let Some(k) = raw.api_keys else {
            self.error(
                &[Seg::Key("identity".into())],
                "no identity method configured",
                Some("add [identity.api_keys] with a `store`".into()),
            );
            return None;
        };
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
