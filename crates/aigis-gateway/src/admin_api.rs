//! The admin API on the admin listener (never the public one): key management, reload and
//! status. Every call needs a caller holding the `admin` role (an aigis key, or an OIDC token
//! or client certificate whose mapped roles include it) and, when policies are loaded, a
//! permit for the `admin:*` action.
//!
//! With an audit ledger, every change (key creation, revocation and rotation, reload), every
//! refused call and every failed authentication is recorded as an admin event; a change is
//! refused with 503 while the ledger cannot record it (fail-closed, as on the public
//! listener).
//!
//! ```text
//! GET  /admin/status             gateway, routes (and their model checks), upstream health
//! GET  /admin/limits?principal=…&team=…&model=…&route=…&ip=…   usage of every limit
//! GET  /admin/keys               keys (never their secrets)
//! POST /admin/keys               {"name", "teams", "roles", "kind", "expires"} -> the new key, once
//! POST /admin/keys/{key}/revoke  by id, prefix or name
//! POST /admin/keys/{key}/rotate  new key with the same attributes; the old one is revoked
//! POST /admin/reload             re-read the config file
//! ```

use std::net::SocketAddr;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::authorize::RequestFacts;
use crate::body::{self, Body, json};
use crate::error::{Family, GatewayError};
use crate::identify::{ApiKeys, KeyRecord, KeySpec, NewKey, api_key};
use crate::server::Shared;

const MAX_ADMIN_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
/// The body of `POST /admin/keys`.
struct KeyRequest {
    name: String,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    kind: String,
    expires: Option<String>,
}

/// Handles `/admin/…`.
pub(crate) async fn handle(
    shared: &Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    match serve(shared, peer, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(Family::OpenAi),
    }
}

fn action_of(method: &Method, path: &str) -> Option<&'static str> {
    match (method, path) {
        (&Method::GET, "/admin/status" | "/admin/limits") => Some("admin:status"),
        (&Method::POST, "/admin/reload") => Some("admin:reload"),
        (&Method::GET | &Method::POST, "/admin/keys") => Some("admin:keys"),
        (&Method::POST, p)
            if p.starts_with("/admin/keys/")
                && (p.ends_with("/revoke") || p.ends_with("/rotate")) =>
        {
            Some("admin:keys")
        }
        _ => None,
    }
}

async fn serve(
    shared: &Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, GatewayError> {
    let path = req.uri().path().to_owned();
    let action =
        action_of(req.method(), &path).ok_or_else(|| GatewayError::NotFound(path.clone()))?;
    let runtime = shared.runtime.load_full();
    let identity = runtime.identity.as_ref().ok_or_else(|| {
        GatewayError::Forbidden("use the admin API: it needs [identity] configured".into())
    })?;
    let operation = operation(req.method(), &path);
    let principal = match identity
        .identify(&shared.throttle, req.headers(), peer.ip(), None)
        .await
    {
        Ok(p) => p,
        Err(f) => {
            tracing::warn!(target: "aigis::security", event = "admin_auth_failed", reason = %f.reason, source_ip = %peer.ip());
            record_admin(shared, None, peer, "admin.authenticate", None, None, 401).await;
            return Err(GatewayError::Unauthenticated("invalid credential"));
        }
    };
    let facts = RequestFacts {
        source_ip: peer.ip(),
        listener: "admin",
        max_tokens: 0,
        stream: false,
    };
    let allowed = principal.has_role("admin")
        && runtime
            .config
            .policy
            .as_deref()
            .is_none_or(|p| p.authorize_admin(&principal, action, facts).allowed);
    tracing::info!(target: "aigis::security", event = "admin_call", principal = %principal.id, action, path = %path, allowed);
    if !allowed {
        let (name, target) = operation;
        record_admin(shared, Some(&principal.id), peer, name, target, None, 403).await;
        return Err(GatewayError::Forbidden(format!("perform {action}")));
    }
    if req.method() == Method::POST && shared.ledger.as_ref().is_some_and(|l| !l.accepting()) {
        return Err(GatewayError::LedgerUnavailable);
    }
    if path == "/admin/limits" {
        let values = limit_query(req.uri().query().unwrap_or(""));
        let status = crate::admit::status(&shared.limiter, &runtime.config.limits, &values)
            .await
            .map_err(|e| GatewayError::Upstream {
                upstream: "limit store".into(),
                detail: e.0,
            })?;
        return Ok(json(StatusCode::OK, &status));
    }
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/admin/status") => Ok(json(StatusCode::OK, &status(shared))),
        (Method::POST, "/admin/reload") => {
            match shared.reload(Some((&principal.id, peer.ip()))).await {
                Ok(warnings) => Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"reloaded": true, "warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>()}),
                )),
                Err(e) => Ok(json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({"reloaded": false, "error": e.to_string()}),
                )),
            }
        }
        (method, path) => {
            // Without an API key store there are no keys to manage: the key routes do not
            // exist (status and reload above work for OIDC administrators alone).
            let keys = identity
                .api_keys
                .as_ref()
                .ok_or_else(|| GatewayError::NotFound(path.to_owned()))?;
            let result = keys_route(keys, &method, path, req).await;
            if method == Method::POST {
                let (name, mut target) = operation;
                let status = match &result {
                    Ok((r, _)) => r.status().as_u16(),
                    Err(e) => e.status().as_u16(),
                };
                let new_key = result.as_ref().ok().and_then(|(_, id)| id.as_deref());
                // A created key is the target; a rotation's target is the old key.
                let detail = match (name, new_key) {
                    ("keys.create", Some(id)) => {
                        target = Some(id);
                        None
                    }
                    (_, Some(id)) => Some(format!("new key {id}")),
                    _ => None,
                };
                let who = Some(principal.id.as_str());
                record_admin(shared, who, peer, name, target, detail, status).await;
            }
            result.map(|(response, _)| response)
        }
    }
}

/// The audit name of an admin call and the key it names, if any.
fn operation<'a>(method: &Method, path: &'a str) -> (&'static str, Option<&'a str>) {
    let key = path
        .strip_prefix("/admin/keys/")
        .and_then(|rest| rest.rsplit_once('/'))
        .map(|(key, _)| key);
    match (method, path) {
        (&Method::POST, "/admin/keys") => ("keys.create", None),
        (&Method::POST, "/admin/reload") => ("config.reload", None),
        (&Method::POST, p) if p.ends_with("/revoke") => ("keys.revoke", key),
        (&Method::POST, p) if p.ends_with("/rotate") => ("keys.rotate", key),
        (_, "/admin/keys") => ("keys.list", None),
        (_, "/admin/limits") => ("limits.read", None),
        _ => ("status.read", None),
    }
}

/// Records an admin event in the audit ledger, if one is configured.
async fn record_admin(
    shared: &Shared,
    principal: Option<&str>,
    peer: SocketAddr,
    action: &str,
    target: Option<&str>,
    detail: Option<String>,
    status: u16,
) {
    let Some(ledger) = &shared.ledger else {
        return;
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    let ip = ledger.client_ip(peer.ip());
    let mut event =
        crate::record::admin_event(&id, principal, ip.as_deref(), action, target, status);
    event.detail = detail;
    ledger.append(event).await;
}

/// `/admin/keys…`: list, create, revoke, rotate; with the id of the key a create or rotate
/// made.
async fn keys_route(
    keys: &ApiKeys,
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<(Response<Body>, Option<String>), GatewayError> {
    let store_err = |e: crate::identify::StoreError| GatewayError::Upstream {
        upstream: "key store".into(),
        detail: e.0,
    };
    match (method.clone(), path) {
        (Method::GET, "/admin/keys") => {
            let list = keys.store().list().await.map_err(store_err)?;
            Ok((
                json(
                    StatusCode::OK,
                    &serde_json::json!({"keys": list.iter().map(KeyRecord::public_json).collect::<Vec<_>>()}),
                ),
                None,
            ))
        }
        (Method::POST, "/admin/keys") => {
            let body = body::read_limited(req.into_body(), MAX_ADMIN_BODY)
                .await
                .ok()
                .flatten()
                .ok_or(GatewayError::BodyTooLarge(MAX_ADMIN_BODY))?;
            let new: KeyRequest =
                serde_json::from_slice(&body).map_err(|e| GatewayError::Invalid {
                    param: "body".into(),
                    message: e.to_string(),
                })?;
            let expires_in = new
                .expires
                .map(|e| crate::config::parse_duration(&e))
                .transpose()
                .map_err(|m| GatewayError::Invalid {
                    param: "expires".into(),
                    message: m,
                })?;
            let spec = KeySpec {
                name: new.name,
                kind: new.kind,
                teams: new.teams,
                roles: new.roles,
                expires_in,
            };
            let new = keys.create(spec).await.map_err(store_err)?;
            Ok((created_response(&new), Some(new.record.id.clone())))
        }
        (_, p) => {
            let rest = p.trim_start_matches("/admin/keys/");
            let (which, verb) = rest.rsplit_once('/').unwrap_or((rest, ""));
            if verb == "revoke" {
                let n = keys
                    .store()
                    .revoke(which, api_key::now())
                    .await
                    .map_err(store_err)?;
                return Ok((
                    json(StatusCode::OK, &serde_json::json!({"revoked": n})),
                    None,
                ));
            }
            let new = keys
                .rotate(which)
                .await
                .map_err(store_err)?
                .ok_or_else(|| GatewayError::NotFound(p.to_owned()))?;
            Ok((created_response(&new), Some(new.record.id.clone())))
        }
    }
}

/// `201` with the new key (shown this once) and its record.
fn created_response(new: &NewKey) -> Response<Body> {
    let mut v = new.record.public_json();
    v["key"] = serde_json::Value::String(new.secret.clone());
    json(StatusCode::CREATED, &v)
}

/// The scope values of `GET /admin/limits` (`team` may repeat).
fn limit_query(query: &str) -> crate::admit::ScopeValues {
    let mut v = crate::admit::ScopeValues::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        let val = percent_decode(val);
        match k {
            "principal" => v.principal = Some(val),
            "team" => v.teams.push(val),
            "model" => v.model = Some(val),
            "route" => v.route = Some(val),
            "ip" => v.ip = Some(val),
            _ => {}
        }
    }
    v
}

/// Decodes `%XX` escapes and `+` (as a space) of a query value; bad escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(shared: &Shared) -> serde_json::Value {
    let rt = shared.runtime.load();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "open_mode": rt.open_mode(),
        "policies": rt.config.policy.as_ref().map_or(0, |p| p.len()),
        "routes": rt.config.routes.iter().map(|r| serde_json::json!({
            "name": r.name, "models": r.models,
            "model_check": r.model_check.as_ref().map(|_| if rt.unverified.contains(&r.name) { "failed" } else { "verified" }),
        })).collect::<Vec<_>>(),
        "upstreams": rt.upstreams.iter().map(|u| serde_json::json!({
            "name": u.config.name, "kind": u.config.kind.as_str(), "circuit_open": u.is_open()
        })).collect::<Vec<_>>(),
    })
}
