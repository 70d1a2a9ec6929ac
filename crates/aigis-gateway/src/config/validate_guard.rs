//! Validation of `[guard]` and the routes' `guard` keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aigis_guard::Policy;
use aigis_guard::profile::{self, BUILTIN};

use super::{Seg, Validator, key, raw};
use crate::config::{GuardConfig, Level, Route, parse_size};

/// The profile a route without `guard` uses when `[guard] profile` is not set.
pub(crate) const DEFAULT_PROFILE: &str = "balanced";

impl Validator<'_> {
    /// Compiles the profiles and resolves every route's `guard` to a profile name (or off).
    pub(super) fn guard(
        &mut self,
        table: &toml::Table,
        routes: Option<&mut [Route]>,
    ) -> Option<GuardConfig> {
        let at = [Seg::Key("guard".into())];
        let raw: raw::Guard = match table.get("guard") {
            Some(_) => self.section(table, "guard")?,
            None => raw::Guard::default(),
        };
        let resolved = match profile::resolve(&raw.profiles) {
            Ok(p) => p,
            Err(errors) => {
                for e in errors {
                    let name = e
                        .strip_prefix("profile ")
                        .and_then(|r| r.split(':').next())
                        .unwrap_or_default();
                    self.error(
                        &key(&key(&at, "profiles"), name),
                        e.clone(),
                        Some("see docs/guard.md for the profile keys".into()),
                    );
                }
                return None;
            }
        };
        let mut policies = BTreeMap::new();
        for (name, p) in resolved {
            match Policy::new(p) {
                Ok(policy) => {
                    policies.insert(name, Arc::new(policy));
                }
                Err(e) => self.error(
                    &key(&key(&at, "profiles"), &name),
                    format!("invalid banned pattern: {e}"),
                    None,
                ),
            }
        }
        let known = |name: &str| name == "off" || policies.contains_key(name);
        let default = raw.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
        if !known(&default) {
            self.unknown_profile(&key(&at, "profile"), &default, &policies);
        }
        if default == "off" {
            self.push(
                Level::Warning,
                &key(&at, "profile"),
                "guard profile `off`: requests on routes without their own `guard` are not inspected".into(),
                Some("name a profile (strict, balanced, permissive) to inspect every request".into()),
            );
        }
        for (i, route) in routes.into_iter().flatten().enumerate() {
            let name = route.guard.clone().unwrap_or_else(|| default.clone());
            if !known(&name) {
                self.unknown_profile(
                    &[
                        Seg::Key("routes".into()),
                        Seg::Index(i),
                        Seg::Key("guard".into()),
                    ],
                    &name,
                    &policies,
                );
            }
            route.guard = (name != "off").then_some(name);
        }
        let vault = raw.vault.unwrap_or_default();
        let capacity = vault.capacity.unwrap_or(100_000) as usize;
        let ttl = self.duration(
            &key(&key(&at, "vault"), "ttl"),
            vault.ttl.as_deref(),
            Duration::from_hours(1),
        )?;
        let cache = match raw.cache.as_deref().map(parse_size) {
            None => aigis_guard::cache::DEFAULT_BUDGET,
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => {
                self.error(
                    &key(&at, "cache"),
                    e,
                    Some("a size in quotes, e.g. \"16MiB\", or \"0\" to turn the cache off".into()),
                );
                return None;
            }
        };
        Some(GuardConfig {
            policies,
            vault_capacity: capacity,
            vault_ttl: ttl,
            cache,
        })
    }

    fn unknown_profile(
        &mut self,
        at: &[Seg],
        name: &str,
        policies: &BTreeMap<String, Arc<Policy>>,
    ) {
        let user: Vec<&str> = policies
            .keys()
            .map(String::as_str)
            .filter(|n| !BUILTIN.contains(n))
            .collect();
        self.error(
            at,
            format!("unknown guard profile `{name}`"),
            Some(format!(
                "use off, {}{}{}",
                BUILTIN.join(", "),
                if user.is_empty() { "" } else { ", " },
                user.join(", ")
            )),
        );
    }
}
