//! What a caller hears when a limit refuses it, or when the limit store fails: the 429 with
//! its `Retry-After`, the OpenAI-style `x-ratelimit-*` headers, and the fail-open or
//! fail-closed verdict of a store error.

use http::{HeaderMap, HeaderValue};

use super::cell::{Kind, Reading, Refused};
use super::store::StoreError;
use super::{Item, Measure, Refusal};
use crate::config::{BudgetUnit, OnStoreError, Quantity, TokenKind};
use crate::error::GatewayError;
use crate::metrics::Metrics;

/// The caller-facing 429 for a refused charge.
pub(super) fn refusal(item: &Item, refused: Refused) -> Refusal {
    let limit = &item.limit;
    let scope = if limit.scope.is_empty() {
        "for everyone".to_owned()
    } else {
        let names: Vec<&str> = limit.scope.iter().map(|s| s.as_str()).collect();
        format!("per {}", names.join(" and "))
    };
    let what = match limit.quantity {
        Quantity::Requests(r) => format!("{} requests per {}", r.amount, fmt_duration(r.period)),
        Quantity::Tokens(k, r) => {
            let kind = match k {
                TokenKind::Prompt => "prompt tokens",
                TokenKind::Completion => "completion tokens",
                TokenKind::Total => "tokens",
            };
            format!("{} {kind} per {}", r.amount, fmt_duration(r.period))
        }
        Quantity::Concurrent(n) => format!("{n} concurrent requests"),
        Quantity::Budget(b) => {
            let window = match b.window {
                crate::config::Window::Day => "day",
                crate::config::Window::Month => "month",
            };
            #[expect(clippy::cast_precision_loss, reason = "display only")]
            let usd = b.amount as f64 / 1e6;
            match b.unit {
                BudgetUnit::MicroUsd => format!("{usd:.2} USD per {window}"),
                BudgetUnit::Tokens => format!("{} tokens per {window}", b.amount),
            }
        }
    };
    let quota = matches!(limit.quantity, Quantity::Budget(_));
    let never = refused.retry_us == u64::MAX;
    let retry_after_secs = if never {
        0
    } else {
        refused.retry_us.div_ceil(1_000_000).max(1)
    };
    let message = if never {
        format!(
            "limit `{}` ({what} {scope}) can never admit this request: it needs {} at once; \
             lower max_tokens or shorten the prompt",
            limit.name, item.charge.amount
        )
    } else if quota {
        format!(
            "budget `{}` ({what} {scope}) is used up; it resets in {}",
            limit.name,
            fmt_duration(std::time::Duration::from_micros(refused.retry_us))
        )
    } else {
        format!(
            "rate limit `{}` reached ({what} {scope}); retry in {retry_after_secs} s",
            limit.name
        )
    };
    let mut headers = HeaderMap::new();
    if let Some(unit) = header_unit(&item.measure) {
        let (limit_n, reset) = match limit.quantity {
            Quantity::Requests(r) | Quantity::Tokens(_, r) => (r.amount, refused.retry_us),
            _ => (0, refused.retry_us),
        };
        insert_rate_headers(&mut headers, unit, limit_n, 0, reset);
    }
    Refusal {
        message,
        retry_after_secs,
        headers,
        quota,
        limit: limit.name.clone(),
    }
}

/// The limit store failed: refuse if any limit involved fails closed, else let the request
/// through unmetered. Both are counted and logged.
pub(super) fn store_failed(
    items: &[Item],
    e: &StoreError,
    metrics: &Metrics,
) -> Result<(), GatewayError> {
    let closed = items
        .iter()
        .find(|i| i.limit.on_store_error == OnStoreError::FailClosed);
    let mut seen = std::collections::HashSet::new();
    for item in items.iter().filter(|i| seen.insert(i.limit.name.clone())) {
        let outcome = if closed.is_some() {
            "store_error_closed"
        } else {
            "store_error_open"
        };
        metrics.limit_event(&item.limit.name, outcome);
    }
    match closed {
        Some(item) => {
            tracing::error!(
                target: "aigis::security",
                event = "limit_store_error",
                error = %e,
                limit = %item.limit.name,
                "limit store unreachable; refusing requests (on_store_error = fail-closed)"
            );
            Err(GatewayError::LimitsUnavailable)
        }
        None => {
            tracing::warn!(
                target: "aigis::security",
                event = "limit_store_error",
                error = %e,
                "limit store unreachable; letting the request through UNMETERED (on_store_error = fail-open)"
            );
            Ok(())
        }
    }
}

/// Which `x-ratelimit-*-{unit}` family a measure reports under.
pub(super) fn header_unit(measure: &Measure) -> Option<&'static str> {
    match measure {
        Measure::Request => Some("requests"),
        Measure::Tokens(_) => Some("tokens"),
        Measure::Cost(_) | Measure::Held => None,
    }
}

/// OpenAI-style `x-ratelimit-*` headers from the tightest rate cell of each unit.
pub(super) fn rate_headers(items: &[Item], readings: &[Reading]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for unit in ["requests", "tokens"] {
        let tightest = items
            .iter()
            .zip(readings)
            .filter(|(i, _)| header_unit(&i.measure) == Some(unit))
            .filter(|(i, _)| matches!(i.charge.kind, Kind::Rate { .. }))
            .min_by_key(|(_, r)| r.remaining);
        if let Some((item, r)) = tightest
            && let Kind::Rate { limit, .. } = item.charge.kind
        {
            insert_rate_headers(&mut headers, unit, limit, r.remaining, r.reset_us);
        }
    }
    headers
}

pub(super) fn insert_rate_headers(
    h: &mut HeaderMap,
    unit: &str,
    limit: u64,
    remaining: u64,
    reset_us: u64,
) {
    let mut put = |name: String, value: String| {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name),
            HeaderValue::from_str(&value),
        ) {
            h.insert(n, v);
        }
    };
    if limit > 0 {
        put(format!("x-ratelimit-limit-{unit}"), limit.to_string());
        put(
            format!("x-ratelimit-remaining-{unit}"),
            remaining.to_string(),
        );
    }
    put(
        format!("x-ratelimit-reset-{unit}"),
        fmt_duration(std::time::Duration::from_micros(reset_us)),
    );
}

/// `17ms`, `1.5s`, `6m0s`, `2h0m0s`, `3d2h`: the shape OpenAI's reset headers use.
pub(crate) fn fmt_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    match s {
        _ if ms < 1000 => format!("{ms}ms"),
        0..60 => {
            let tenths = (ms % 1000) / 100;
            if tenths == 0 {
                format!("{s}s")
            } else {
                format!("{s}.{tenths}s")
            }
        }
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m{}s", s / 3600, s % 3600 / 60, s % 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}
