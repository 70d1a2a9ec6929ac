//! The admin listener: `/healthz` (the process answers), `/readyz` (every upstream is
//! reachable, no breaker is open and the audit ledger, if any, records), `/metrics`
//! (Prometheus) and the authenticated admin API (`admin_api.rs`). Bind it to loopback or a
//! private interface only.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{self, Body, json};
use crate::config::UpstreamKind;
use crate::server::Shared;

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(route(&shared, peer, req).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
            _ = stop.changed() => break,
        }
    }
}

async fn route(
    shared: &Shared,
    peer: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.uri().path().starts_with("/admin/") {
        return crate::admin_api::handle(shared, peer, req).await;
    }
    match req.uri().path() {
        "/healthz" => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        "/readyz" => ready(shared).await,
        "/metrics" => {
            let mut r = Response::new(body::full(shared.metrics_text()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not found"}),
        ),
    }
}

/// Ready when every non-echo upstream accepts a TCP connection within a second and no
/// breaker is open.
async fn ready(shared: &Shared) -> Response<Body> {
    let runtime = shared.runtime.load_full();
    let checks = runtime
        .upstreams
        .iter()
        .filter(|u| u.config.kind != UpstreamKind::Echo)
        .map(|u| async move {
            let uri = u.config.base_url.as_ref()?;
            let host = uri
                .host()?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let reachable = matches!(
                tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect((host.as_str(), port))
                )
                .await,
                Ok(Ok(_))
            );
            (!reachable || u.is_open()).then(|| u.config.name.clone())
        });
    let failing: Vec<String> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    // A gateway whose ledger cannot record refuses every request: a load balancer should send
    // them elsewhere.
    let ledger = shared
        .ledger
        .as_ref()
        .map(|l| if l.accepting() { "ok" } else { "unavailable" });
    if failing.is_empty() && ledger != Some("unavailable") {
        json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "not ready", "unavailable": failing, "ledger": ledger}),
        )
    }
}
