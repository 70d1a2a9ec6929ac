//! Validation of `[[limits]]`, `[[prices]]` and the limit store in `[cluster]`.

use std::collections::HashSet;
use std::time::Duration;

use super::{Seg, Validator, key, raw};
use crate::config::limits::{parse_budget, parse_rate};
use crate::config::{
    BudgetUnit, Limit, LimitsConfig, OnStoreError, Price, Quantity, RedisStore, Route, Scope,
    TokenKind, parse_duration,
};

/// Default for `[cluster] store_timeout`: a store slower than this counts as unreachable.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(250);

impl Validator<'_> {
    /// Checks every limit and price; `routes` are the valid routes (for `routes = [...]`).
    pub(super) fn limits(
        &mut self,
        table: &toml::Table,
        cluster: Option<&raw::Cluster>,
        routes: Option<&[Route]>,
    ) -> Option<LimitsConfig> {
        let raw_limits: Vec<Option<raw::Limit>> = self.list(table, "limits");
        let raw_prices: Vec<Option<raw::Price>> = self.list(table, "prices");
        let mut ok =
            raw_limits.iter().all(Option::is_some) && raw_prices.iter().all(Option::is_some);
        let mut names = HashSet::new();
        let mut limits = Vec::new();
        for (i, l) in raw_limits
            .into_iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l?)))
        {
            let at = [Seg::Key("limits".into()), Seg::Index(i)];
            if !names.insert(l.name.clone()) {
                self.error(
                    &key(&at, "name"),
                    format!("duplicate limit name `{}`", l.name),
                    None,
                );
            }
            match self.limit(&at, l, routes) {
                Some(limit) => limits.push(limit),
                None => ok = false,
            }
        }
        let mut prices = Vec::new();
        for (i, p) in raw_prices
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p?)))
        {
            let at = [Seg::Key("prices".into()), Seg::Index(i)];
            let valid = |v: f64| v.is_finite() && (0.0..=1e6).contains(&v);
            if !valid(p.input_per_mtok) || !valid(p.output_per_mtok) {
                self.error(
                    &at,
                    "prices must be between 0 and 1,000,000 USD per million tokens",
                    None,
                );
                ok = false;
            }
            prices.push(Price {
                model: p.model,
                input_per_mtok: p.input_per_mtok,
                output_per_mtok: p.output_per_mtok,
            });
        }
        let cost_budget = limits
            .iter()
            .any(|l| matches!(l.quantity, Quantity::Budget(b) if b.unit == BudgetUnit::MicroUsd));
        if cost_budget && prices.is_empty() {
            self.error(
                &[Seg::Key("prices".into())],
                "a limit has a budget in USD but there is no [[prices]] entry",
                Some(
                    "add [[prices]] model = \"gpt-4o*\" input_per_mtok = 2.5 output_per_mtok = 10"
                        .into(),
                ),
            );
            ok = false;
        }
        let redis = cluster.and_then(|c| self.redis(c));
        ok.then_some(LimitsConfig {
            limits,
            prices,
            redis,
        })
    }

    fn limit(&mut self, at: &[Seg], l: raw::Limit, routes: Option<&[Route]>) -> Option<Limit> {
        let quantity = self.quantity(at, &l)?;
        let scope_names = l.scope.into_vec();
        let mut scope = Vec::new();
        for s in &scope_names {
            match Scope::parse(s) {
                Some(sc) if !scope.contains(&sc) => scope.push(sc),
                Some(_) => {}
                None if s == "global" && scope_names.len() == 1 => {}
                None => {
                    self.error(
                        &key(at, "scope"),
                        format!("unknown scope `{s}`"),
                        Some(
                            "use principal, team, model, route, ip, a list of them, or \"global\""
                                .into(),
                        ),
                    );
                    return None;
                }
            }
        }
        for r in l.routes.iter().flatten() {
            if routes.is_some_and(|rs| !rs.iter().any(|x| &x.name == r)) {
                self.error(
                    &key(at, "routes"),
                    format!("no route named `{r}`"),
                    Some("name a [[routes]] entry".into()),
                );
            }
        }
        let on_store_error = match l.on_store_error.as_deref() {
            None | Some("fail-closed") => OnStoreError::FailClosed,
            Some("fail-open") => OnStoreError::FailOpen,
            Some(other) => {
                self.error(
                    &key(at, "on_store_error"),
                    format!("`{other}` is not `fail-closed` or `fail-open`"),
                    None,
                );
                return None;
            }
        };
        Some(Limit {
            name: l.name,
            scope,
            quantity,
            models: l.models.unwrap_or_default(),
            routes: l.routes.unwrap_or_default(),
            on_store_error,
        })
    }

    /// Exactly one of requests, tokens, prompt_tokens, completion_tokens, concurrent, budget.
    fn quantity(&mut self, at: &[Seg], l: &raw::Limit) -> Option<Quantity> {
        let set: Vec<&str> = [
            ("requests", l.requests.is_some()),
            ("tokens", l.tokens.is_some()),
            ("prompt_tokens", l.prompt_tokens.is_some()),
            ("completion_tokens", l.completion_tokens.is_some()),
            ("concurrent", l.concurrent.is_some()),
            ("budget", l.budget.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect();
        if set.len() != 1 {
            self.error(
                at,
                format!(
                    "a limit sets exactly one of requests, tokens, prompt_tokens, \
                     completion_tokens, concurrent, budget (this one sets {})",
                    if set.is_empty() {
                        "none".into()
                    } else {
                        set.join(", ")
                    }
                ),
                Some("split it into several [[limits]] entries, one per quantity".into()),
            );
            return None;
        }
        let rate = |v: &Option<String>| v.as_deref().map(parse_rate);
        let (field, result) = match () {
            () if l.requests.is_some() => (
                "requests",
                rate(&l.requests).map(|r| r.map(Quantity::Requests)),
            ),
            () if l.tokens.is_some() => (
                "tokens",
                rate(&l.tokens).map(|r| r.map(|r| Quantity::Tokens(TokenKind::Total, r))),
            ),
            () if l.prompt_tokens.is_some() => (
                "prompt_tokens",
                rate(&l.prompt_tokens).map(|r| r.map(|r| Quantity::Tokens(TokenKind::Prompt, r))),
            ),
            () if l.completion_tokens.is_some() => (
                "completion_tokens",
                rate(&l.completion_tokens)
                    .map(|r| r.map(|r| Quantity::Tokens(TokenKind::Completion, r))),
            ),
            () if l.budget.is_some() => (
                "budget",
                l.budget
                    .as_deref()
                    .map(|b| parse_budget(b).map(Quantity::Budget)),
            ),
            () => (
                "concurrent",
                l.concurrent.map(|n| {
                    if n == 0 {
                        Err("must be at least 1".into())
                    } else {
                        Ok(Quantity::Concurrent(n))
                    }
                }),
            ),
        };
        match result? {
            Ok(q) => Some(q),
            Err(e) => {
                self.error(&key(at, field), e, None);
                None
            }
        }
    }

    fn redis(&mut self, c: &raw::Cluster) -> Option<RedisStore> {
        let at = [Seg::Key("cluster".into())];
        let url = c.redis.clone()?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            self.error(
                &key(&at, "redis"),
                format!("`{url}` is not a redis:// or rediss:// URL"),
                None,
            );
            return None;
        }
        let timeout = match c.store_timeout.as_deref().map(parse_duration) {
            None => DEFAULT_STORE_TIMEOUT,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.error(&key(&at, "store_timeout"), "must be above zero", None);
                return None;
            }
            Some(Err(e)) => {
                self.error(&key(&at, "store_timeout"), e, None);
                return None;
            }
        };
        let key_prefix = c.key_prefix.clone().unwrap_or_else(|| "aigis".into());
        if key_prefix.is_empty() || key_prefix.contains(['{', '}', ' ']) {
            self.error(
                &key(&at, "key_prefix"),
                "must be non-empty, without spaces or braces",
                None,
            );
            return None;
        }
        Some(RedisStore {
            url,
            key_prefix,
            timeout,
        })
    }
}
