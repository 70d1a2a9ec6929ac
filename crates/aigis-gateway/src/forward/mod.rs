//! The `forward` stage: send the request to the route's upstreams in order, failing over only
//! before the first byte reached the client, and relay the answer: streams chunk by chunk,
//! other bodies read whole (bounded) so a failure still becomes a clean error response.
//! A circuit breaker and a concurrency cap protect each upstream.

mod breaker;
pub(crate) mod client;
pub mod echo;
mod pool;
mod provider;

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body_util::Full;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::authorize::Authorized;
use crate::body::{self, Body, Keepalive, Relay};
use crate::config::{Upstream, UpstreamKind};
use crate::error::GatewayError;
use crate::metrics::{GaugeGuard, Metrics};
use crate::parse::{Endpoint, Parsed};

pub use breaker::Breaker;

/// An upstream with its live state: connection pool, breaker, concurrency permits.
pub struct UpstreamState {
    /// Its configuration.
    pub config: Upstream,
    client: Option<pool::Pool>,
    breaker: Breaker,
    permits: Arc<Semaphore>,
    /// The upstream URI of each endpoint (in [`Endpoint::ALL`] order), parsed once; `None`
    /// where it does not parse (the request then fails as it is built).
    uris: Vec<Option<http::Uri>>,
}

impl UpstreamState {
    /// Builds the live state (and the client pool) for an upstream.
    pub fn new(config: Upstream) -> Result<Self, String> {
        let client = match (&config.kind, &config.base_url) {
            (UpstreamKind::Echo, _) | (_, None) => None,
            (_, Some(base)) => {
                let tls = client::tls_config(config.ca.as_deref())?;
                Some(pool::Pool::new(base, tls, config.timeouts.connect)?)
            }
        };
        let uris = Endpoint::ALL
            .iter()
            .map(|e| upstream_uri(&config, *e).parse().ok())
            .collect();
        Ok(Self {
            breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            client,
            config,
            uris,
        })
    }

    /// Whether the breaker is refusing requests.
    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }
}

/// What `forward` produced.
pub struct Forwarded {
    /// The response for the client.
    pub response: Response<Body>,
    /// The upstream that answered.
    pub upstream: String,
}

/// Why no upstream's answer reached the client.
pub struct Unanswered {
    /// The error for the client (the last upstream's).
    pub error: GatewayError,
    /// Whether an upstream may have run the model (the request was sent and then timed out,
    /// was cut off or answered too much): it is then charged as reserved, not refunded.
    pub reached_model: bool,
}

/// One failed attempt: the error and whether the request may have reached the model.
type Failed = (GatewayError, bool);

/// One request's forwarding inputs.
pub struct Outbound<'a> {
    /// The validated request.
    pub parsed: &'a Parsed,
    /// The client's headers (filtered before use).
    pub headers: &'a HeaderMap,
    /// The gateway's request id.
    pub request_id: &'a HeaderValue,
    /// Largest non-streamed response read.
    pub max_response: usize,
}

/// Sends the request to the first upstream of `upstreams` that takes it. `keep` (the
/// gateway's admission permit) is held until the response or stream ends.
pub async fn forward(
    upstreams: &[&UpstreamState],
    out: Outbound<'_>,
    keep: Keepalive,
    _authorized: Authorized,
    _admitted: crate::admit::Admitted,
    _inspected: crate::inspect::RequestInspected,
    metrics: &Metrics,
) -> Result<Forwarded, Unanswered> {
    let mut last_err = GatewayError::Unavailable("the route has no upstream".into());
    let mut reached_model = false;
    let mut keep = Some(keep);
    for (i, up) in upstreams.iter().enumerate() {
        let is_last = i + 1 == upstreams.len();
        let name = &up.config.name;
        if !up.breaker.allow() {
            metrics.upstream_outcome(name, "circuit_open");
            last_err = GatewayError::Unavailable(format!("circuit open for `{name}`"));
            continue;
        }
        let Ok(permit) = up.permits.clone().try_acquire_owned() else {
            metrics.upstream_outcome(name, "busy");
            last_err = GatewayError::Unavailable(format!("`{name}` is at its max_concurrent"));
            continue;
        };
        match attempt(up, &out, permit, &mut keep, is_last, metrics).await {
            Ok(response) => {
                return Ok(Forwarded {
                    response,
                    upstream: name.clone(),
                });
            }
            Err((e, reached)) => {
                tracing::warn!(upstream = %name, error = %e, "upstream attempt failed");
                last_err = e;
                reached_model |= reached;
            }
        }
    }
    Err(Unanswered {
        error: last_err,
        reached_model,
    })
}

/// One try at one upstream. `Err` means "try the next one" (nothing reached the client).
/// An upstream that answered with an error status ran no model; one that timed out or whose
/// body failed may have.
async fn attempt(
    up: &UpstreamState,
    out: &Outbound<'_>,
    permit: OwnedSemaphorePermit,
    keep: &mut Option<Keepalive>,
    is_last: bool,
    metrics: &Metrics,
) -> Result<Response<Body>, Failed> {
    let cfg = &up.config;
    let Some(client) = &up.client else {
        metrics.upstream_outcome(&cfg.name, "ok");
        let request_id = out.request_id.to_str().unwrap_or_default();
        return Ok(echo::answer(out.parsed, request_id));
    };
    let deadline = Instant::now() + cfg.timeouts.total;
    let (resp, lease) = send(up, client, out, deadline, metrics).await?;
    let status = resp.status();
    let outcome = match status.as_u16() {
        500.. => "5xx",
        429 => "429",
        _ => "ok",
    };
    metrics.upstream_outcome(&cfg.name, outcome);
    if status.is_server_error() {
        up.breaker.failure();
    } else {
        up.breaker.success();
    }
    if !is_last && outcome != "ok" {
        let error = GatewayError::Upstream {
            upstream: cfg.name.clone(),
            detail: format!("answered {status}"),
        };
        return Err((error, false));
    }
    let (parts, incoming) = resp.into_parts();
    let streaming = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = if streaming {
        let keep: Keepalive = Box::new((
            permit,
            lease,
            keep.take(),
            GaugeGuard::new(&metrics.active_streams),
        ));
        let family = out.parsed.endpoint.family();
        let relay = Relay::new(
            incoming,
            cfg.name.clone(),
            family,
            cfg.timeouts.idle,
            deadline,
            keep,
        );
        http_body_util::BodyExt::boxed(relay)
    } else {
        let limit = out.max_response;
        let whole = body::collect(incoming, &cfg.name, limit, cfg.timeouts.idle, deadline).await;
        drop(lease);
        body::full(whole.map_err(|e| (e, true))?)
    };
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    *response.headers_mut() = provider::response_headers(&parts.headers);
    Ok(response)
}

/// The URI of `endpoint` at the upstream.
fn upstream_uri(cfg: &Upstream, endpoint: Endpoint) -> String {
    let base = cfg
        .base_url
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{}{}", base.trim_end_matches('/'), endpoint.upstream_path())
}

/// Sends the request and waits for the response head within the first-byte timeout. A
/// request that failed once sent (timed out, connection lost) may have reached the model.
async fn send(
    up: &UpstreamState,
    client: &pool::Pool,
    out: &Outbound<'_>,
    deadline: Instant,
    metrics: &Metrics,
) -> Result<(Response<hyper::body::Incoming>, pool::Lease), Failed> {
    let cfg = &up.config;
    let upstream_err = |detail: String| GatewayError::Upstream {
        upstream: cfg.name.clone(),
        detail,
    };
    let unsent = |detail: String| (upstream_err(detail), false);
    if cfg.api_key_missing {
        metrics.upstream_outcome(&cfg.name, "no_credential");
        return Err(unsent("its api_key environment variable is not set".into()));
    }
    let headers =
        provider::request_headers(cfg.kind, out.headers, cfg.api_key.as_ref(), out.request_id)
            .map_err(unsent)?;
    let endpoint = out.parsed.endpoint;
    let builder = match up.uris.get(endpoint.index()) {
        Some(Some(uri)) => Request::post(uri.clone()),
        _ => Request::post(upstream_uri(cfg, endpoint)),
    };
    let mut req = builder
        .body(Full::new(out.parsed.raw.clone()))
        .map_err(|e| unsent(e.to_string()))?;
    *req.headers_mut() = headers;

    let first_byte = deadline.min(Instant::now() + cfg.timeouts.first_byte);
    let timeout = |which| GatewayError::Timeout {
        upstream: cfg.name.clone(),
        which,
    };
    match tokio::time::timeout_at(first_byte, client.send(req)).await {
        Ok(Ok(resp)) => Ok(resp),
        Err(_) => {
            up.breaker.failure();
            metrics.upstream_outcome(&cfg.name, "timeout");
            let which = if first_byte < deadline {
                "first_byte"
            } else {
                "total"
            };
            Err((timeout(which), true))
        }
        Ok(Err(e)) => {
            up.breaker.failure();
            let connect = matches!(e, pool::SendError::Connect { .. });
            metrics.upstream_outcome(&cfg.name, if connect { "connect_error" } else { "error" });
            Err(match e {
                pool::SendError::Connect {
                    timed_out: true, ..
                } => (timeout("connect"), false),
                e => (upstream_err(e.to_string()), !connect),
            })
        }
    }
}
