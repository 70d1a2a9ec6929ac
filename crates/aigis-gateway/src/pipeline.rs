//! The only place the gateway's stages are composed, in request order:
//!
//! ```text
//! identify -> parse -> resolve -> authorize -> routable -> admit -> inspect -> forward -> settle -> record
//! ```
//!
//! Callers are
//! identified before their body is read, so an unauthenticated caller cannot make the gateway
//! parse megabytes or learn which models exist. Each stage returns a typed outcome or a
//! [`GatewayError`]; the error becomes the response in exactly one place,
//! [`GatewayError::into_response`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log;
use crate::admit;
use crate::authorize::{self, Authorized, ModelResource, RequestFacts};
use crate::body::{self, Body};
use crate::config::Route;
use crate::error::{Family, GatewayError};
use crate::forward::{self, Outbound};
use crate::identify::{FailureKind, Principal};
use crate::inspect;
use crate::metrics::GaugeGuard;
use crate::parse::{self, Endpoint};
use crate::resolve;
use crate::server::{Runtime, Shared};

/// The connection a request arrived on.
#[derive(Clone)]
pub(crate) struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The principal of a verified client certificate (mTLS), if one was presented.
    pub client_cert: Option<Arc<Principal>>,
    /// The TLS key-exchange group negotiated on the connection (e.g. `X25519MLKEM768`).
    pub tls_group: Option<Arc<str>>,
    /// The client's address as audit events record it (once per connection; `None` without
    /// a ledger or with `[ledger] client_ip = "off"`).
    pub client_ip: Option<Arc<str>>,
}

/// What the access log and metrics record about one request (never content).
#[derive(Default)]
struct Served {
    endpoint: Option<Endpoint>,
    model: Option<String>,
    route: Option<String>,
    upstream: Option<String>,
    stream: bool,
    principal: Option<String>,
    policies: Vec<String>,
    allowed: Option<bool>,
    guard: Vec<inspect::GuardFinding>,
    response_guard: Vec<inspect::GuardFinding>,
    /// The status the upstream answered with.
    upstream_status: Option<u16>,
    /// How an inspected stream ended; its record waits for it.
    stream_end: Option<tokio::sync::oneshot::Receiver<inspect::stream::StreamEnd>>,
    /// The request body, for the record's keyed digest (never stored itself).
    prompt: Option<bytes::Bytes>,
    /// `(tenant, request body)` on a route that captures encrypted content.
    capture: Option<(String, bytes::Bytes)>,
    /// The limits checked and their outcomes.
    limits: Vec<(String, &'static str)>,
    /// The usage the `settle` stage settled with.
    usage: crate::settle::UsageSlot,
}

/// Handles one request on the public listener.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let _in_flight = GaugeGuard::new(&shared.metrics.in_flight);
    let request_id = request_id(&req);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let runtime = shared.runtime.load_full();
    let peer = behind_proxies(&shared, &runtime, peer, req.headers());
    let mut served = Served::default();
    let mut response = match serve(&shared, &runtime, &peer, req, &request_id, &mut served).await {
        Ok(r) => r,
        Err(e) => e.into_response(served.endpoint.map_or(Family::OpenAi, Endpoint::family)),
    };
    response
        .headers_mut()
        .insert("x-request-id", request_id.clone());
    record(
        &shared,
        &served,
        &method,
        &path,
        &request_id,
        response.status().as_u16(),
        started,
    );
    if shared.ledger.is_some() {
        let facts = crate::record::Facts {
            time_ms: aigis_ledger::now_ms(),
            request_id: request_id.clone(),
            principal: served.principal.take(),
            action: served.endpoint.map_or_else(
                || Cow::Owned(unknown_action(path)),
                |e| Cow::Borrowed(e.as_str()),
            ),
            model: served.model.take(),
            route: served.route.take(),
            upstream: served.upstream.take(),
            allowed: served.allowed,
            policies: std::mem::take(&mut served.policies),
            limits: std::mem::take(&mut served.limits),
            request_findings: std::mem::take(&mut served.guard),
            response_findings: std::mem::take(&mut served.response_guard),
            stream: served.stream,
            status: response.status().as_u16(),
            upstream_status: served.upstream_status,
            latency: started.elapsed(),
            client_ip: peer.client_ip.clone(),
            tls_group: peer.tls_group.clone(),
        };
        let pending = crate::capture::Pending {
            facts,
            prompt: served.prompt.take(),
            family: served.endpoint.map_or(Family::OpenAi, Endpoint::family),
            later: crate::capture::Later {
                capture: served.capture.take(),
                stream_end: served.stream_end.take(),
                max_capture: runtime.config.server.max_response,
                usage: served.usage.clone(),
            },
        };
        response = crate::capture::finish(&shared, pending, response).await;
    }
    response
}

/// The peer with the client's address in place of a trusted proxy's (see [`crate::forwarded`]):
/// identity throttling, limits, policies and audit events then see the client.
fn behind_proxies(shared: &Shared, runtime: &Runtime, mut peer: Peer, headers: &HeaderMap) -> Peer {
    let trusted = &runtime.config.server.trusted_proxies;
    if trusted.is_empty() {
        return peer;
    }
    let client = crate::forwarded::client(peer.addr.ip(), headers, trusted);
    if client != peer.addr.ip() {
        peer.addr = SocketAddr::new(client, 0);
        peer.client_ip = shared.ledger.as_ref().and_then(|l| l.client_ip(client));
    }
    peer
}

async fn serve(
    shared: &Arc<Shared>,
    runtime: &Runtime,
    peer: &Peer,
    req: Request<Incoming>,
    request_id: &HeaderValue,
    served: &mut Served,
) -> Result<Response<Body>, GatewayError> {
    let config = &runtime.config;
    let limits = &config.server.limits;
    let path = req.uri().path();
    let endpoint = Endpoint::from_path(path);
    let is_models = path == "/v1/models" || path.starts_with("/v1/models/");
    if endpoint.is_none() && !is_models {
        return Err(GatewayError::NotFound(path.to_owned()));
    }
    served.endpoint = endpoint;
    ledger_accepting(shared)?;
    let principal = identify(shared, runtime, req.headers(), peer).await?;
    let peer = peer.addr;
    served.principal = Some(principal.id.clone());
    if is_models {
        let id = path.strip_prefix("/v1/models/");
        return models(runtime, req.method(), id, &principal, peer);
    }
    let endpoint = endpoint.ok_or_else(|| GatewayError::NotFound(path.to_owned()))?;
    if req.method() != Method::POST {
        return Err(GatewayError::MethodNotAllowed(req.method().to_string()));
    }
    let (parts, raw, admission) = read_body(shared, req, limits).await?;
    served.prompt = shared.ledger.is_some().then(|| raw.clone());
    let request_body = raw.clone();
    let mut parsed = parse::parse(endpoint, raw, limits)?;
    served.model = Some(parsed.model.clone());
    served.stream = parsed.stream;

    let Some(route) = config.route_for(&parsed.model) else {
        // A caller learns that a model does not exist only where it would be allowed to use
        // one of that name: to everyone else it is forbidden, as a model that exists is.
        authorize_request(runtime, &principal, &parsed, None, peer, served)?;
        return Err(GatewayError::ModelNotFound(parsed.model));
    };
    served.route = Some(route.name.clone());
    capture_content(shared, runtime, route, &principal, request_body, served)?;

    let authorized = authorize_request(runtime, &principal, &parsed, Some(route), peer, served)?;
    // Only a caller allowed to use the model learns how its route is set up and that it is
    // unavailable.
    resolve::check(config, route, &parsed)?;
    runtime.routable(route, &parsed.model)?;

    let (admitted, mut ticket, rate_headers) = admit_request(
        shared,
        runtime,
        route,
        &principal,
        peer.ip(),
        &parsed,
        &mut served.limits,
    )
    .await?;
    let strip_usage =
        ticket.is_metered() && parsed.stream && crate::settle::request_stream_usage(&mut parsed);

    // A request refused from here on never reached a model: it used no tokens.
    let (inspected, inspection) =
        match inspect_request(shared, runtime, route, &principal, &mut parsed, served) {
            Ok(i) => i,
            Err(e) => return Err(ticket.cancel(e).await),
        };

    let upstreams = runtime.upstreams_of(route);
    let forwarded = match forward::forward(
        &upstreams,
        Outbound {
            parsed: &parsed,
            headers: &parts.headers,
            request_id,
            max_response: config.server.max_response,
        },
        Box::new(admission),
        authorized,
        admitted,
        inspected,
        &shared.metrics,
    )
    .await
    {
        Ok(f) => f,
        Err(u) if u.reached_model => return Err(ticket.abandon(u.error).await),
        Err(u) => return Err(ticket.cancel(u.error).await),
    };
    served.upstream = Some(forwarded.upstream);
    served.upstream_status = Some(forwarded.response.status().as_u16());
    let family = parsed.endpoint.family();
    let response = crate::settle::settle(
        ticket,
        forwarded.response,
        rate_headers,
        family,
        strip_usage,
        &shared.metrics,
        shared.ledger.is_some().then(|| served.usage.clone()),
    )
    .await;
    Ok(match inspection {
        Some(inspection) => inspect_response(inspection, response, served).await,
        None => response,
    })
}

/// Refuses traffic while the audit ledger cannot make records durable (fail-closed).
fn ledger_accepting(shared: &Shared) -> Result<(), GatewayError> {
    match &shared.ledger {
        Some(l) if !l.accepting() => Err(GatewayError::LedgerUnavailable),
        _ => Ok(()),
    }
}

/// On a route with `content = "encrypted"`, keeps the request body for sealing to the
/// caller's tenant: its first team, else its principal id. A tenant its content cannot be
/// sealed for is refused (fail-closed): content is never stored unencrypted.
fn capture_content(
    shared: &Shared,
    runtime: &Runtime,
    route: &Route,
    principal: &Principal,
    request: bytes::Bytes,
    served: &mut Served,
) -> Result<(), GatewayError> {
    let Some(ledger) = &runtime.config.ledger else {
        return Ok(());
    };
    if !ledger.captures(route.content) {
        return Ok(());
    }
    let tenant = principal.teams.first().unwrap_or(&principal.id);
    if !shared.ledger.as_ref().is_some_and(|l| l.can_seal(tenant)) {
        tracing::error!(
            target: "aigis::security",
            event = "content_unsealed",
            principal = %principal.id,
            tenant = %tenant,
            route = %route.name,
            "route captures encrypted content and there is no recipient for this tenant; refusing the request (fail-closed)"
        );
        return Err(GatewayError::ContentUnsealed);
    }
    served.capture = Some((tenant.clone(), request));
    Ok(())
}

/// The `inspect` stage on the response: a stream is wrapped and inspected as it flows, a
/// complete response now.
async fn inspect_response(
    inspection: inspect::response::Inspection,
    response: Response<Body>,
    served: &mut Served,
) -> Response<Body> {
    if crate::settle::is_event_stream(&response) {
        let (on_end, end) = tokio::sync::oneshot::channel();
        served.stream_end = Some(end);
        return response.map(|b| {
            http_body_util::BodyExt::boxed(inspect::stream::Inspected::new(b, inspection, on_end))
        });
    }
    let (response, findings) = inspect::response::inspect_complete(inspection, response).await;
    served.response_guard = findings;
    response
}

/// Prepares the response side of the `inspect` stage (and injects the route's canary).
fn response_inspection(
    shared: &Arc<Shared>,
    runtime: &Runtime,
    route: &Route,
    principal: &Principal,
    pseudonymized: bool,
    parsed: &mut parse::Parsed,
) -> Option<inspect::response::Inspection> {
    let name = route.guard.as_deref()?;
    let policy = runtime.config.guard.policies.get(name)?.clone();
    let caller = pseudonymized.then_some(principal.id.as_str());
    Some(inspect::response::Inspection::prepare(
        shared, policy, name, caller, parsed,
    ))
}

/// The `authorize` stage for a parsed model request; the deciding policies go to the log.
fn authorize_request(
    runtime: &Runtime,
    principal: &Principal,
    parsed: &parse::Parsed,
    route: Option<&Route>,
    peer: SocketAddr,
    served: &mut Served,
) -> Result<Authorized, GatewayError> {
    let facts = RequestFacts {
        source_ip: peer.ip(),
        listener: "public",
        // No limit asked for is no limit: the largest value, so `max_tokens <= N` denies it.
        max_tokens: parsed.requested_tokens().map_or(u64::MAX, |(_, n)| n),
        stream: parsed.stream,
    };
    let action = parsed.endpoint.action();
    let authorized = authorize_model(runtime, principal, action, &parsed.model, route, facts)
        .map_err(|_| GatewayError::Forbidden(format!("use the model `{}`", parsed.model)));
    served.allowed = Some(authorized.is_ok());
    served.policies = match &authorized {
        Ok(a) => a.decision.policies.clone(),
        Err(_) => Vec::new(),
    };
    authorized
}

/// The `admit` stage with its inputs from the earlier stages.
async fn admit_request(
    shared: &Shared,
    runtime: &Runtime,
    route: &Route,
    principal: &Principal,
    ip: std::net::IpAddr,
    parsed: &parse::Parsed,
    outcomes: &mut Vec<(String, &'static str)>,
) -> Result<(admit::Admitted, admit::Ticket, http::HeaderMap), GatewayError> {
    let request = admit::Request {
        principal,
        route,
        ip,
        parsed,
    };
    let limits = &runtime.config.limits;
    admit::admit(&shared.limiter, limits, &request, &shared.metrics, outcomes).await
}

/// The `inspect` stage on the request under the route's guard profile, with its metrics and
/// security log; prepares the inspection of the response (which puts the route's canary into
/// the system prompt, after the request was inspected).
fn inspect_request(
    shared: &Arc<Shared>,
    runtime: &Runtime,
    route: &Route,
    principal: &Principal,
    parsed: &mut parse::Parsed,
    served: &mut Served,
) -> Result<
    (
        inspect::RequestInspected,
        Option<inspect::response::Inspection>,
    ),
    GatewayError,
> {
    let config = &runtime.config;
    let policy = route.guard.as_deref().and_then(|name| {
        Some((
            shared.guard(),
            name,
            config.guard.policies.get(name)?.as_ref(),
        ))
    });
    // Anonymous callers would all share one scope of the vault, so one could have another's
    // pseudonyms restored: their values are redacted instead.
    let vault = (principal.auth != "anonymous").then(|| (&shared.vault, principal.id.as_str()));
    let inspected = inspect::inspect(policy, vault, route.tokenizer, parsed, &mut served.guard);
    if !served.guard.is_empty() {
        let summaries: Vec<String> = served.guard.iter().map(inspect::summary).collect();
        shared.metrics.guard_findings(&summaries);
    }
    if let Err(e) = &inspected {
        tracing::warn!(
            target: "aigis::security",
            event = "guard_block",
            principal = %principal.id,
            route = %route.name,
            reason = %e,
            "request blocked by the guard"
        );
    }
    let inspected = inspected?;
    let response = response_inspection(
        shared,
        runtime,
        route,
        principal,
        inspected.pseudonymized,
        parsed,
    );
    Ok((inspected, response))
}

/// Checks the header and body limits, takes a concurrency permit (held until the response or
/// stream ends) and reads the body.
async fn read_body(
    shared: &Shared,
    req: Request<Incoming>,
    limits: &crate::config::RequestLimits,
) -> Result<
    (
        http::request::Parts,
        bytes::Bytes,
        tokio::sync::OwnedSemaphorePermit,
    ),
    GatewayError,
> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header {
        return Err(GatewayError::HeadersTooLarge(limits.max_header));
    }
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > limits.max_body);
    if too_large {
        return Err(GatewayError::BodyTooLarge(limits.max_body));
    }
    let admission = shared
        .admission
        .clone()
        .try_acquire_owned()
        .map_err(|_| GatewayError::Overloaded)?;
    let (parts, incoming) = req.into_parts();
    let raw = body::read_limited(incoming, limits.max_body)
        .await
        .map_err(|e| GatewayError::Invalid {
            param: "body".into(),
            message: format!("reading the body failed: {e}"),
        })?
        .ok_or(GatewayError::BodyTooLarge(limits.max_body))?;
    Ok((parts, raw, admission))
}

/// The `identify` stage as the pipeline sees it: the principal and how it authenticated,
/// or the one error every failure looks like to the caller.
async fn identify(
    shared: &Shared,
    runtime: &Runtime,
    headers: &http::HeaderMap,
    peer: &Peer,
) -> Result<Principal, GatewayError> {
    let client_cert = peer.client_cert.as_deref();
    let Some(identity) = &runtime.identity else {
        return Ok(client_cert.cloned().unwrap_or_else(Principal::anonymous));
    };
    let peer = peer.addr;
    let result = identity
        .identify(&shared.throttle, headers, peer.ip(), client_cert)
        .await;
    for kind in shared.throttle.take_events() {
        shared.metrics.security_event("auth_failure_burst", &kind);
    }
    let failure = match result {
        Ok(p) => return Ok(p),
        Err(f) => f,
    };
    let kind = match failure.kind {
        FailureKind::Missing => "missing",
        FailureKind::Invalid => "invalid",
        FailureKind::Throttled => "throttled",
        FailureKind::Unavailable => "unavailable",
    };
    shared.metrics.auth_failure(kind);
    tracing::warn!(
        target: "aigis::security",
        event = "auth_failed",
        kind,
        reason = %failure.reason,
        key_prefix = failure.prefix.as_deref().unwrap_or("-"),
        source_ip = %peer.ip(),
        "authentication failed"
    );
    Err(match failure.kind {
        FailureKind::Missing => GatewayError::Unauthenticated(
            "missing credential: send your aigis key as `Authorization: Bearer <key>` or `x-api-key`",
        ),
        FailureKind::Invalid => GatewayError::Unauthenticated("invalid credential"),
        FailureKind::Throttled => GatewayError::AuthThrottled(
            shared
                .throttle
                .blocked_source(peer.ip())
                .map_or(1, |d| d.as_secs().max(1)),
        ),
        FailureKind::Unavailable => GatewayError::AuthUnavailable,
    })
}

/// The `authorize` stage for a model request. A model no route serves is a resource with
/// an empty route, provider and tags, classified `unclassified`.
fn authorize_model(
    runtime: &Runtime,
    principal: &Principal,
    action: &str,
    model: &str,
    route: Option<&Route>,
    facts: RequestFacts,
) -> Result<Authorized, authorize::Decision> {
    let config = &runtime.config;
    let resource = ModelResource {
        model,
        route: route.map_or("", |r| &r.name),
        provider: route.map_or("", |r| config.route_kind(r).as_str()),
        classification: route
            .and_then(|r| r.classification.as_deref())
            .unwrap_or("unclassified"),
        tags: route.map_or(&[], |r| &r.tags),
    };
    let result = authorize::authorize(config.policy.as_deref(), runtime.open_mode(), |p| {
        p.authorize_model(principal, action, &resource, facts)
    });
    if let Err(d) = &result {
        tracing::info!(
            target: "aigis::security",
            event = "denied",
            principal = %principal.id,
            action,
            model,
            errors = ?d.errors,
            "request denied by policy"
        );
    }
    result
}

/// `GET /v1/models` and `GET /v1/models/{id}`: the exact model names the routes serve that
/// the caller may use. A route disabled by its model check (`[routes.model_check]`) lists
/// nothing until a reload verifies its model.
fn models(
    runtime: &Runtime,
    method: &Method,
    id: Option<&str>,
    principal: &Principal,
    peer: SocketAddr,
) -> Result<Response<Body>, GatewayError> {
    if method != Method::GET {
        return Err(GatewayError::MethodNotAllowed(method.to_string()));
    }
    let facts = RequestFacts {
        source_ip: peer.ip(),
        listener: "public",
        max_tokens: 0,
        stream: false,
    };
    let config = &runtime.config;
    let may_use = |model: &str, route: &Route| {
        !runtime.unverified.contains(&route.name)
            && authorize::MODEL_ACTIONS
                .iter()
                .chain(["models:list"].iter())
                .any(|action| {
                    authorize_model(runtime, principal, action, model, Some(route), facts).is_ok()
                })
    };
    let entry = |model: &str, route: &Route| serde_json::json!({"id": model, "object": "model", "created": 0, "owned_by": route.name});
    let json = match id {
        Some(id) => {
            let route = config
                .route_for(id)
                .filter(|r| may_use(id, r))
                .ok_or_else(|| GatewayError::ModelNotFound(id.to_owned()))?;
            entry(id, route)
        }
        None => {
            let mut data: Vec<_> = config
                .routes
                .iter()
                .flat_map(|r| {
                    r.models
                        .iter()
                        .filter(|m| !m.contains(['*', '?']))
                        .map(move |m| (m, r))
                })
                .filter(|(m, r)| may_use(m, r))
                .map(|(m, r)| entry(m, r))
                .collect();
            data.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            serde_json::json!({"object": "list", "data": data})
        }
    };
    Ok(body::json(http::StatusCode::OK, &json))
}

/// Propagates a sane client `x-request-id`, or makes one. Made ids are UUIDv7 (time first,
/// then 74 random bits): they sort by time, so the audit ledger's request-id index grows at
/// its end instead of touching a random page per record.
/// The ledger's `action` for a request to no endpoint: its path, which the client chooses, cut
/// to 256 bytes (marked with `…`) so that every event stays far below the ledger's size limit.
fn unknown_action(mut path: String) -> String {
    const MAX: usize = 256;
    if path.len() > MAX {
        let mut end = MAX;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
        path.push('…');
    }
    path
}

fn request_id<B>(req: &Request<B>) -> HeaderValue {
    req.headers()
        .get("x-request-id")
        .filter(|v| {
            v.len() <= 128
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut buf = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::now_v7().simple().encode_lower(&mut buf);
            HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("unknown"))
        })
}

/// The `record` stage: one access-log line and the request metrics. Never content.
fn record(
    shared: &Shared,
    served: &Served,
    method: &Method,
    path: &str,
    request_id: &HeaderValue,
    status: u16,
    started: Instant,
) {
    let elapsed = started.elapsed();
    let endpoint = served.endpoint.map_or("other", Endpoint::as_str);
    let route = served.route.as_deref().unwrap_or("-");
    shared
        .metrics
        .request(endpoint, route, status, elapsed.as_secs_f64());
    access_log::write(&access_log::Entry {
        request_id: request_id.to_str().unwrap_or_default(),
        method: method.as_str(),
        path,
        status,
        model: served.model.as_deref().unwrap_or("-"),
        route: served.route.as_deref().unwrap_or("-"),
        upstream: served.upstream.as_deref().unwrap_or("-"),
        stream: served.stream,
        principal: served.principal.as_deref().unwrap_or("-"),
        policies: &served.policies,
        guard: &served
            .guard
            .iter()
            .map(inspect::summary)
            .collect::<Vec<_>>(),
        latency: elapsed,
    });
}
