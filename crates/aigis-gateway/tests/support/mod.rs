//! Shared helpers for the gateway's integration tests: start mocks and a gateway from TOML,
//! and a small HTTP client.
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aigis_gateway::Gateway;
use aigis_mock_upstream::{Behavior, Mock};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A fresh, empty folder for one test (unique per process and call).
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "aigis-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A config with one OpenAI-compatible upstream `m` (with `extra` keys) serving model `m`.
pub fn one_route(mock: &Mock, extra: &str) -> String {
    format!(
        "{SERVER}{}{}",
        upstream("m", &mock.base_url(), extra),
        route("r", "[\"m\"]", "\"m\"")
    )
}

pub const SERVER: &str = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n";

pub async fn mock(behavior: Behavior) -> Mock {
    Mock::start("127.0.0.1:0".parse().unwrap(), behavior)
        .await
        .unwrap()
}

/// Starts a gateway from config text (relative paths resolve from `base`).
pub async fn gateway_in(toml: &str, base: &Path) -> Gateway {
    let loaded = aigis_gateway::config::parse(toml, base, false)
        .unwrap_or_else(|e| panic!("config: {e:#?}"));
    Gateway::start(loaded.config, None).await.unwrap()
}

pub async fn gateway(toml: &str) -> Gateway {
    gateway_in(toml, Path::new(".")).await
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    send_from(None, addr, method, path, headers, body).await
}

/// Like [`send`], from a chosen loopback source address (e.g. 127.0.0.7).
pub async fn send_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut connector = HttpConnector::new();
    connector.set_local_address(source);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(request(addr, method, path, headers, body)),
    )
    .await
    .expect("response within 20 s")
    .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Resp {
    send(addr, Method::POST, path, &[], body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, Method::GET, path, &[], "").await
}

/// Opens a streamed request and returns the response head and its body to read frame by frame.
pub async fn open_stream(addr: SocketAddr, path: &str, body: &str) -> (u16, Incoming) {
    open_stream_with(addr, path, &[], body).await
}

pub async fn open_stream_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Incoming) {
    let resp = client()
        .request(request(addr, Method::POST, path, headers, body))
        .await
        .unwrap();
    (resp.status().as_u16(), resp.into_body())
}

/// A gateway from `toml` (which starts with [`SERVER`]) with API keys in a store in `base`, a
/// policy that allows every caller everything, and a key for each of `names`, in order.
pub async fn keyed_gateway(toml: &str, base: &Path, names: &[&str]) -> (Gateway, Vec<String>) {
    std::fs::write(
        base.join("pepper"),
        "test-pepper-0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    std::fs::write(
        base.join("all.cedar"),
        "permit (principal, action, resource);",
    )
    .unwrap();
    let identity = "[identity.api_keys]\nstore = \"sqlite:keys.db\"\npepper = \"file:pepper\"\n\
                    [policy]\npolicies = [\"file:all.cedar\"]\n";
    let toml = toml.replacen(SERVER, &format!("{SERVER}{identity}"), 1);
    let loaded = aigis_gateway::config::parse(&toml, base, false)
        .unwrap_or_else(|e| panic!("config: {e:#?}"));
    let api = loaded.config.identity.clone().unwrap().api_keys.unwrap();
    let keys = aigis_gateway::identify::open_api_keys(&api).await.unwrap();
    let mut secrets = Vec::new();
    for name in names {
        let spec = aigis_gateway::identify::KeySpec {
            name: (*name).to_owned(),
            ..Default::default()
        };
        secrets.push(keys.create(spec).await.unwrap().secret);
    }
    (Gateway::start(loaded.config, None).await.unwrap(), secrets)
}

/// The next data frame of a body as text, or `None` at its end.
pub async fn next_text(body: &mut Incoming) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a frame within 10 s")?;
        if let Ok(data) = frame.unwrap().into_data() {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
    }
}

pub fn chat(model: &str, stream: bool) -> String {
    serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello gateway"}]}).to_string()
}

pub fn upstream(name: &str, url: &str, extra: &str) -> String {
    format!("[[upstreams]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"{url}\"\n{extra}\n")
}

pub fn route(name: &str, models: &str, upstreams: &str) -> String {
    format!("[[routes]]\nname = \"{name}\"\nmodels = {models}\nupstream = {upstreams}\n")
}

/// Polls `cond` for up to 5 s.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
