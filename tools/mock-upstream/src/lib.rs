//! A deterministic OpenAI-compatible (and Anthropic-compatible) mock server for aigis tests
//! and benchmarks. It is never part of the product.
//!
//! Behaviour comes from [`Behavior`] (set at start) and can be overridden per request with
//! directives in the model name, so tests that go through the gateway can steer it:
//! `mock-status-500` answers 500, `mock-latency-200` waits 200 ms before the headers,
//! `mock-chunks-3` streams 3 content chunks, `mock-delay-50` waits 50 ms between chunks,
//! `mock-gate` holds a stream's second chunk until `POST /mock/release`. Scripted answers and
//! broken streams are described in `script.rs`.
//! The first 10,000 requests are recorded (method, path, headers, body) for header-hygiene tests, and a
//! stream whose client went away is counted as cancelled.

#![allow(clippy::missing_panics_doc)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

mod script;

/// How the mock answers.
#[derive(Clone, Debug)]
pub struct Behavior {
    /// Wait before sending response headers.
    pub latency: Duration,
    /// Content chunks in a streamed answer.
    pub chunks: usize,
    /// Wait between streamed chunks.
    pub chunk_delay: Duration,
    /// Answer every request with this status and an OpenAI-shaped error.
    pub status: Option<u16>,
    /// Answer the first N requests with 500 (failover and breaker tests).
    pub fail_first: usize,
    /// When set, a stream holds back its second chunk until this is notified.
    pub gate: Option<Arc<Notify>>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 4,
            chunk_delay: Duration::ZERO,
            status: None,
            fail_first: 0,
            gate: None,
        }
    }
}

/// A request the mock received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

impl Recorded {
    /// The value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    behavior: Behavior,
    requests: Mutex<Vec<Recorded>>,
    served: AtomicUsize,
    cancelled: AtomicUsize,
    completed_streams: AtomicUsize,
    /// Released by `POST /mock/release`: a stream with the `mock-gate` directive waits for it
    /// before its second chunk.
    release: Notify,
}

/// A running mock server.
pub struct Mock {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    /// Starts on `addr` (use port 0 for a free port).
    pub async fn start(addr: SocketAddr, behavior: Behavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            behavior,
            ..State::default()
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Self { addr, state, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Streams abandoned by their client before the end.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Streams sent to the end.
    pub fn completed_streams(&self) -> usize {
        self.state.completed_streams.load(Ordering::SeqCst)
    }
}

/// Serves until the task is aborted.
async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// Starts the mock on an existing listener (used by the binary).
pub fn spawn_on(listener: TcpListener, behavior: Behavior) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve(
        listener,
        Arc::new(State {
            behavior,
            ..State::default()
        }),
    ))
}

type Body = BoxBody<Bytes, Infallible>;

/// Requests kept for inspection; benchmarks send millions, tests a handful.
const MAX_RECORDED: usize = 10_000;

fn full(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-request-id", "mock-upstream-id")
        .header("set-cookie", "upstream_session=1")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_default()
}

fn directive(model: &str, name: &str) -> Option<u64> {
    let parts: Vec<&str> = model.split('-').collect();
    parts
        .windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
}

async fn answer(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Ok(mut r) = state.requests.lock()
        && r.len() < MAX_RECORDED
    {
        r.push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers,
            body: body.clone(),
        });
    }
    let n = state.served.fetch_add(1, Ordering::SeqCst);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_owned();
    let b = &state.behavior;
    let latency = directive(&model, "latency").map_or(b.latency, Duration::from_millis);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let status = directive(&model, "status")
        .and_then(|s| u16::try_from(s).ok())
        .or(b.status);
    let status = if n < b.fail_first { Some(500) } else { status };
    if let Some(code) = status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let err = json!({"error": {"message": format!("mock upstream error {code}"), "type": "server_error", "param": null, "code": "mock_error"}});
        return full(status, "application/json", err.to_string());
    }
    let path = parts.uri.path();
    let user = last_user_text(&json);
    let text = format!("mock reply to: {user}");
    let stream = json.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let chunks = directive(&model, "chunks")
        .map_or(b.chunks, |c| usize::try_from(c).unwrap_or(1))
        .max(1);
    let delay = directive(&model, "delay").map_or(b.chunk_delay, Duration::from_millis);
    let gated = model.split('-').any(|p| p == "gate");
    if stream && let Some(events) = directive(&model, "broken").and_then(script::broken) {
        return sse(state, events, delay, (1, gated));
    }
    match (path, stream) {
        ("/mock/release", _) => {
            state.release.notify_one();
            full(StatusCode::OK, "application/json", "{}".into())
        }
        ("/v1/models", _) => full(StatusCode::OK, "application/json", json!({"object": "list", "data": [{"id": "mock", "object": "model", "created": 0, "owned_by": "mock"}]}).to_string()),
        ("/v1/chat/completions", false) => {
            let message = match script::answer(&json, &user) {
                script::Answer::Text(t) => json!({"role": "assistant", "content": t}),
                script::Answer::Refusal(t) => json!({"role": "assistant", "content": null, "refusal": t}),
                script::Answer::Call { name, arguments } => json!({"role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_mock", "type": "function", "function": {"name": name, "arguments": arguments}}]}),
            };
            full(StatusCode::OK, "application/json", json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).to_string())
        }
        ("/v1/chat/completions", true) => sse(state, script::chat(&model, &script::answer(&json, &user), chunks), delay, (2, gated)),
        ("/v1/responses", true) => sse(state, script::responses(&model, &script::answer(&json, &user), script::thinking(&json), chunks), delay, (4, gated)),
        ("/v1/messages", true) => sse(state, script::anthropic(&model, &script::answer(&json, &user), script::thinking(&json), chunks), delay, (3, gated)),
        ("/v1/completions", _) => full(StatusCode::OK, "application/json", json!({
            "id": "cmpl-mock", "object": "text_completion", "created": 0, "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).to_string()),
        ("/v1/embeddings", _) => full(StatusCode::OK, "application/json", json!({
            "object": "list", "model": model,
            "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8, 0.0]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}}).to_string()),
        ("/v1/responses", _) => full(StatusCode::OK, "application/json", json!({
            "id": "resp_mock", "object": "response", "created_at": 0, "status": "completed", "model": model,
            "output": [{"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}}).to_string()),
        ("/v1/messages", _) => full(StatusCode::OK, "application/json", script::anthropic_message(&model, &script::answer(&json, &user), script::thinking(&json)).to_string()),
        _ => full(StatusCode::NOT_FOUND, "application/json", json!({"error": {"message": "mock: unknown path", "type": "invalid_request_error", "param": null, "code": null}}).to_string()),
    }
}

fn last_user_text(json: &Value) -> String {
    let from_list = json
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        });
    match from_list.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => json
            .get("prompt")
            .or(json.get("input"))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default(),
    }
}

/// Streams `chunks`; a gate (the behaviour's, or `mock-gate`'s release) holds chunk `gate_at`,
/// the second content chunk.
fn sse(
    state: &Arc<State>,
    chunks: Vec<Bytes>,
    delay: Duration,
    gate_at: (usize, bool),
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let state = state.clone();
    tokio::spawn(async move {
        for (i, chunk) in chunks.into_iter().enumerate() {
            if i == gate_at.0 {
                if let Some(gate) = &state.behavior.gate {
                    gate.notified().await;
                }
                if gate_at.1 {
                    state.release.notified().await;
                }
            }
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(chunk).await.is_err() {
                state.cancelled.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        state.completed_streams.fetch_add(1, Ordering::SeqCst);
    });
    let frames = futures_stream(rx);
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(StreamBody::new(frames).boxed())
        .unwrap_or_default()
}

fn futures_stream(
    mut rx: mpsc::Receiver<Bytes>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))))
}
