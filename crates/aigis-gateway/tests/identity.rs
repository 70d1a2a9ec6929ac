//! Zero trust at the gateway: API keys, throttling, Cedar default deny and the admin API.
//! Every refused request must leave the upstream untouched (asserted on the mock's log).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use aigis_gateway::Gateway;
use aigis_gateway::identify::{self, ApiKeys, KeySpec};
use aigis_mock_upstream::{Behavior, Mock};
use http::Method;
use support::*;

const POLICY: &str = include_str!("../../../examples/policies/teams.cedar");

struct Fixture {
    gw: Gateway,
    mock: Mock,
    keys: ApiKeys,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn config(mock: &Mock, store: &str, server: &str) -> String {
    format!(
        "{SERVER}{server}[identity.api_keys]\nstore = \"{store}\"\npepper = \"file:pepper\"\ncache_ttl = \"0\"\n\
         [policy]\npolicies = [\"file:teams.cedar\"]\n{}\
         [[routes]]\nname = \"search\"\nmodels = [\"search-small\"]\nupstream = \"m\"\nclassification = \"internal\"\n\
         [[routes]]\nname = \"finance\"\nmodels = [\"finance-llm\"]\nupstream = \"m\"\nclassification = \"confidential\"\n\
         [[routes]]\nname = \"public\"\nmodels = [\"public-echo\"]\nupstream = \"m\"\nclassification = \"public\"\n",
        upstream("m", &mock.base_url(), "")
    )
}

async fn fixture_with_store(name: &str, store: Option<String>) -> Fixture {
    fixture_with(name, store, "").await
}

/// A fixture with more `[server]` settings.
async fn fixture_with(name: &str, store: Option<String>, server: &str) -> Fixture {
    let dir = tempdir(name);
    std::fs::write(
        dir.join("pepper"),
        "test-pepper-0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    std::fs::write(dir.join("teams.cedar"), POLICY).unwrap();
    let mock = mock(Behavior::default()).await;
    let store = store.unwrap_or_else(|| "sqlite:keys.db".into());
    let loaded = aigis_gateway::config::parse(&config(&mock, &store, server), &dir, false).unwrap();
    let api = loaded.config.identity.clone().unwrap().api_keys.unwrap();
    let keys = identify::open_api_keys(&api).await.unwrap();
    let gw = Gateway::start(loaded.config, None).await.unwrap();
    Fixture {
        gw,
        mock,
        keys,
        dir,
    }
}

async fn fixture(name: &str) -> Fixture {
    fixture_with_store(name, None).await
}

async fn key(keys: &ApiKeys, name: &str, teams: &[&str], roles: &[&str]) -> String {
    let spec = KeySpec {
        name: name.into(),
        kind: "service".into(),
        teams: teams.iter().map(|s| (*s).to_owned()).collect(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        expires_in: None,
    };
    keys.create(spec).await.unwrap().secret
}

/// A chat request for `model` with a bounded answer (`max_tokens` 100).
async fn chat_as(f: &Fixture, headers: &[(&str, &str)], model: &str) -> Resp {
    let body = serde_json::json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    send(
        f.gw.public_addr(),
        Method::POST,
        "/v1/chat/completions",
        headers,
        &body.to_string(),
    )
    .await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn valid_keys_pass_in_either_header() {
    let f = fixture("valid").await;
    let k = key(&f.keys, "search-bot", &["search"], &[]).await;
    assert_eq!(
        chat_as(&f, &[("authorization", &bearer(&k))], "search-small")
            .await
            .status,
        200
    );
    assert_eq!(
        chat_as(&f, &[("x-api-key", &k)], "search-small")
            .await
            .status,
        200
    );
    assert_eq!(
        chat_as(
            &f,
            &[("authorization", &bearer(&k)), ("x-api-key", &k)],
            "search-small"
        )
        .await
        .status,
        200
    );
    assert_eq!(f.mock.requests().len(), 3);
    // The client's aigis key never reaches the upstream.
    assert!(
        f.mock
            .requests()
            .iter()
            .all(|r| r.headers.iter().all(|(_, v)| !v.contains(&k)))
    );
}

#[tokio::test]
async fn bad_credentials_get_401_and_never_reach_the_upstream() {
    let f = fixture("bad").await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    let other = key(&f.keys, "other", &["search"], &[]).await;
    let wrong_secret = format!("{}{}", &good[..good.len() - 4], "0000");
    let unknown = format!("aigis_{}_{}", "0".repeat(12), "1".repeat(64));
    let long = format!("Bearer {}", "a".repeat(9000));
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("authorization", "Bearer ".into())],
        vec![("authorization", "Bearer    ".into())],
        vec![("x-api-key", "   ".into())],
        vec![("authorization", long)],
        vec![("authorization", "Basic dXNlcjpwYXNz".into())],
        vec![("authorization", bearer(&wrong_secret))],
        vec![("authorization", bearer(&unknown))],
        vec![("authorization", "Bearer aigis_not_a_key".into())],
        vec![
            ("authorization", bearer(&good)),
            ("x-api-key", other.clone()),
        ],
        vec![("authorization", "Bearer sk-proj-some-openai-key".into())],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Each case from its own loopback address, so failure throttling stays out of the way.
        let source = std::net::IpAddr::from([127, 0, 0, 10 + u8::try_from(i).unwrap()]);
        let body = chat("search-small", false);
        let r = send_from(
            Some(source),
            f.gw.public_addr(),
            Method::POST,
            "/v1/chat/completions",
            &h,
            &body,
        )
        .await;
        assert_eq!(r.status, 401, "case {i}: {}", r.body);
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"aigis\"");
        assert_eq!(r.json()["error"]["type"], "authentication_error");
        // Refusals are indistinguishable: no "expired" vs "unknown" in the response.
        assert!(
            !r.body.contains("expired")
                && !r.body.contains("unknown")
                && !r.body.contains("revoked")
        );
    }
    // Non-ASCII bytes in the header.
    let mut req = http::Request::post(format!("http://{}/v1/chat/completions", f.gw.public_addr()));
    req = req.header(
        "authorization",
        http::HeaderValue::from_bytes("Bearer aigis_é".as_bytes()).unwrap(),
    );
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = client
        .request(
            req.body(http_body_util::Full::new(bytes::Bytes::from(chat(
                "search-small",
                false,
            ))))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(f.mock.requests().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() {
    let f = fixture("revoked").await;
    let k = key(&f.keys, "soon-revoked", &["search"], &[]).await;
    assert_eq!(
        chat_as(&f, &[("x-api-key", &k)], "search-small")
            .await
            .status,
        200
    );
    f.keys
        .store()
        .revoke("soon-revoked", identify::api_key::now())
        .await
        .unwrap();
    assert_eq!(
        chat_as(&f, &[("x-api-key", &k)], "search-small")
            .await
            .status,
        401,
        "cache_ttl = 0: revoked at once"
    );
    let spec = KeySpec {
        name: "expired".into(),
        teams: vec!["search".into()],
        expires_in: Some(Duration::ZERO),
        ..KeySpec::default()
    };
    let expired = f.keys.create(spec).await.unwrap().secret;
    assert_eq!(
        chat_as(&f, &[("x-api-key", &expired)], "search-small")
            .await
            .status,
        401
    );
    assert_eq!(f.mock.requests().len(), 1);
}

#[tokio::test]
async fn policies_keep_each_team_on_its_models() {
    let f = fixture("policy").await;
    let search = key(&f.keys, "search-bot", &["search"], &[]).await;
    let finance = key(&f.keys, "finance-bot", &["finance"], &[]).await;
    let admin = key(&f.keys, "admin", &[], &["admin"]).await;
    let cases = [
        (&search, "search-small", 200),
        (&search, "finance-llm", 403),
        (&search, "public-echo", 200),
        (&finance, "finance-llm", 200),
        (&finance, "search-small", 403),
        (&admin, "search-small", 403),
    ];
    for (k, model, status) in cases {
        let r = chat_as(&f, &[("x-api-key", k)], model).await;
        assert_eq!(r.status, status, "{model}: {}", r.body);
        if status == 403 {
            assert_eq!(r.json()["error"]["code"], "permission_denied");
        }
    }
    assert_eq!(
        f.mock.requests().len(),
        3,
        "denied requests never reached the upstream"
    );
    // A context condition: finance may not ask for more than 2000 tokens, nor leave the
    // answer unbounded (no `max_tokens` counts as the largest number, not as 0).
    for body in [
        r#"{"model":"finance-llm","max_tokens":3000,"messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"finance-llm","messages":[{"role":"user","content":"x"}]}"#,
    ] {
        let r = send(
            f.gw.public_addr(),
            Method::POST,
            "/v1/chat/completions",
            &[("x-api-key", &finance)],
            body,
        )
        .await;
        assert_eq!(r.status, 403, "{body}");
    }
    // The model list shows only what the caller may use.
    let models = send(
        f.gw.public_addr(),
        Method::GET,
        "/v1/models",
        &[("x-api-key", &search)],
        "",
    )
    .await
    .json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["public-echo", "search-small"]);
    let r = send(
        f.gw.public_addr(),
        Method::GET,
        "/v1/models/finance-llm",
        &[("x-api-key", &search)],
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        send(f.gw.public_addr(), Method::GET, "/v1/models", &[], "")
            .await
            .status,
        401
    );
}

/// A caller that may not use a model cannot tell it from one that does not exist, nor learn how
/// its route is set up: both are forbidden, before the route's own checks run.
#[tokio::test]
async fn forbidden_and_missing_models_look_the_same() {
    let f = fixture("hidden-models").await;
    let search = key(&f.keys, "search-bot", &["search"], &[]).await;
    let finance = key(&f.keys, "finance-bot", &["finance"], &[]).await;
    let error = |r: &Resp| {
        let mut e = r.json()["error"].clone();
        e["message"] = e["message"]
            .as_str()
            .unwrap()
            .replace("no-such-model", "finance-llm")
            .into();
        (r.status, e)
    };
    let forbidden = chat_as(&f, &[("x-api-key", &search)], "finance-llm").await;
    let missing = chat_as(&f, &[("x-api-key", &search)], "no-such-model").await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(error(&forbidden), error(&missing), "{}", missing.body);
    // The Anthropic endpoint for an OpenAI route is a 400 only to a caller that may use it.
    let body =
        r#"{"model":"finance-llm","max_tokens":10,"messages":[{"role":"user","content":"x"}]}"#;
    let addr = f.gw.public_addr();
    let r = send(
        addr,
        Method::POST,
        "/v1/messages",
        &[("x-api-key", &search)],
        body,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send(
        addr,
        Method::POST,
        "/v1/messages",
        &[("x-api-key", &finance)],
        body,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("OpenAI endpoints"), "{}", r.body);
    assert!(f.mock.requests().is_empty());
}

#[tokio::test]
async fn repeated_failures_are_throttled_and_raise_a_security_event() {
    let f = fixture("throttle").await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    let bad = format!("aigis_{}_{}", "a".repeat(12), "b".repeat(64));
    for _ in 0..5 {
        assert_eq!(
            chat_as(&f, &[("x-api-key", &bad)], "search-small")
                .await
                .status,
            401
        );
    }
    let r = chat_as(&f, &[("x-api-key", &good)], "search-small").await;
    assert_eq!(
        r.status, 429,
        "the source is blocked, even with a good key: {}",
        r.body
    );
    assert_eq!(r.error_code(), "too_many_auth_failures");
    assert!(r.headers.contains_key("retry-after"));
    let metrics = f.gw.metrics();
    assert!(
        metrics.contains(
            "aigis_security_events_total{event=\"auth_failure_burst\",subject=\"source\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("aigis_auth_failures_total{kind=\"invalid\"} 5"),
        "{metrics}"
    );
    assert!(f.mock.requests().is_empty());
}

/// Behind a trusted proxy each client is throttled on its own address (from
/// `X-Forwarded-For`), so one client's failures do not lock out everyone behind the proxy; a
/// client cannot escape its block by claiming another address, as the proxy appends the real
/// one.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own() {
    let f = fixture_with("proxied", None, "trusted_proxies = [\"127.0.0.0/8\"]\n").await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    let bad = format!("aigis_{}_{}", "a".repeat(12), "b".repeat(64));
    let from = |client: &'static str| ("x-forwarded-for", client);
    for _ in 0..5 {
        let r = chat_as(
            &f,
            &[("x-api-key", &bad), from("203.0.113.7")],
            "search-small",
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let blocked = chat_as(
        &f,
        &[("x-api-key", &good), from("203.0.113.7")],
        "search-small",
    )
    .await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    // What the client writes itself sits left of what the proxy appends.
    let claimed = from("198.51.100.9, 203.0.113.7");
    let r = chat_as(&f, &[("x-api-key", &good), claimed], "search-small").await;
    assert_eq!(r.status, 429, "{}", r.body);
    // Another client behind the same proxy is not affected.
    let other = chat_as(
        &f,
        &[("x-api-key", &good), from("203.0.113.8")],
        "search-small",
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);
}

/// A chat request over a raw connection that starts with `prefix` (a PROXY protocol header);
/// the response's status, or `None` when the gateway closed the connection without one.
async fn chat_after(f: &Fixture, prefix: &[u8], api_key: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({"model": "search-small", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let mut tcp = tokio::net::TcpStream::connect(f.gw.public_addr())
        .await
        .unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-api-key: {api_key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(&[prefix, request.as_bytes()].concat())
        .await
        .ok()?;
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    let head = String::from_utf8_lossy(&response);
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Behind a load balancer that passes TCP through, the PROXY protocol names each client: one
/// client's failed logins block only that client, in either header version; a header from an
/// untrusted peer is not read, and a trusted proxy's connection without one is refused.
#[tokio::test]
async fn behind_a_proxy_protocol_balancer_each_client_is_throttled_on_its_own() {
    let f = fixture_with(
        "proxy-protocol",
        None,
        "trusted_proxies = [\"127.0.0.0/8\"]\nproxy_protocol = true\n",
    )
    .await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    let bad = format!("aigis_{}_{}", "a".repeat(12), "b".repeat(64));
    let v1 = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 443\r\n").into_bytes();
    let v2 = |client: [u8; 4]| {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        h.extend_from_slice(&client);
        h.extend_from_slice(&[127, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb]);
        h
    };
    for _ in 0..5 {
        assert_eq!(chat_after(&f, &v1("203.0.113.7"), &bad).await, Some(401));
    }
    assert_eq!(chat_after(&f, &v1("203.0.113.7"), &good).await, Some(429));
    assert_eq!(
        chat_after(&f, &v2([203, 0, 113, 7]), &good).await,
        Some(429)
    );
    assert_eq!(
        chat_after(&f, &v2([203, 0, 113, 8]), &good).await,
        Some(200)
    );
    assert_eq!(chat_after(&f, &v1("203.0.113.9"), &good).await, Some(200));
    // A health check (v2 LOCAL) is the proxy's own connection.
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    assert_eq!(chat_after(&f, local, &good).await, Some(200));
    // From a trusted proxy, a connection must start with the header.
    assert_eq!(chat_after(&f, b"", &good).await, None);
    assert_eq!(
        chat_after(&f, b"PROXY TCP4 nonsense\r\n", &good).await,
        None
    );

    // From anyone else the header is not read: it is no HTTP, and plain requests work.
    let f = fixture_with(
        "proxy-protocol-untrusted",
        None,
        "trusted_proxies = [\"192.0.2.0/24\"]\nproxy_protocol = true\n",
    )
    .await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    assert_eq!(chat_after(&f, &v1("203.0.113.9"), &good).await, Some(400));
    assert_eq!(chat_after(&f, b"", &good).await, Some(200));
}

/// Without `trusted_proxies` the header is the client's own claim and is ignored: failures
/// count against the connection's address.
#[tokio::test]
async fn forwarded_addresses_from_untrusted_peers_are_ignored() {
    let f = fixture("unproxied").await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    let bad = format!("aigis_{}_{}", "a".repeat(12), "b".repeat(64));
    for i in 0..5 {
        let claimed = format!("203.0.113.{i}");
        let r = chat_as(
            &f,
            &[("x-api-key", &bad), ("x-forwarded-for", &claimed)],
            "search-small",
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let r = chat_as(
        &f,
        &[("x-api-key", &good), ("x-forwarded-for", "203.0.113.99")],
        "search-small",
    )
    .await;
    assert_eq!(
        r.status, 429,
        "the connection's address is blocked: {}",
        r.body
    );
}

#[tokio::test]
async fn a_throttled_prefix_still_lets_its_owner_in() {
    let f = fixture("prefix-lockout").await;
    let good = key(&f.keys, "search-bot", &["search"], &[]).await;
    // Prefixes are not secret: anyone can send the victim's prefix with wrong secrets, each
    // from its own address so that only the prefix's count grows.
    let wrong = format!("{}{}", &good[..good.len() - 4], "0000");
    let from = |i: u8| Some(std::net::IpAddr::from([127, 0, 1, i]));
    let call = |i: u8, key: String| {
        let addr = f.gw.public_addr();
        async move {
            let body = chat("search-small", false);
            send_from(
                from(i),
                addr,
                Method::POST,
                "/v1/chat/completions",
                &[("x-api-key", &key)],
                &body,
            )
            .await
            .status
        }
    };
    for i in 0..6 {
        call(i, wrong.clone()).await;
    }
    assert_eq!(
        call(100, wrong.clone()).await,
        429,
        "the prefix is throttled"
    );
    assert_eq!(
        call(101, good.clone()).await,
        200,
        "its owner is not locked out"
    );
    assert_eq!(
        call(102, wrong).await,
        401,
        "a success clears the prefix's count"
    );
}

#[tokio::test]
async fn admin_api_needs_the_admin_role_and_is_not_on_the_public_listener() {
    let f = fixture("admin").await;
    let admin = key(&f.keys, "root", &[], &["admin"]).await;
    let reader = key(&f.keys, "reader", &["search"], &["reader"]).await;
    let (public, admin_addr) = (f.gw.public_addr(), f.gw.admin_addr());
    for path in ["/admin/keys", "/admin/status"] {
        let r = send(public, Method::GET, path, &[("x-api-key", &admin)], "").await;
        assert_eq!(
            r.status, 404,
            "{path} must not exist on the public listener"
        );
    }
    assert_eq!(
        send(admin_addr, Method::GET, "/admin/keys", &[], "")
            .await
            .status,
        401
    );
    assert_eq!(
        send(
            admin_addr,
            Method::GET,
            "/admin/keys",
            &[("x-api-key", &reader)],
            ""
        )
        .await
        .status,
        403
    );
    let list = send(
        admin_addr,
        Method::GET,
        "/admin/keys",
        &[("x-api-key", &admin)],
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["keys"].as_array().unwrap().len(), 2);
    assert!(
        !list.body.contains("hash"),
        "no secrets or hashes in listings"
    );

    let created = send(
        admin_addr,
        Method::POST,
        "/admin/keys",
        &[("x-api-key", &admin)],
        r#"{"name":"via-api","teams":["search"]}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let new_key = created.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        chat_as(&f, &[("x-api-key", &new_key)], "search-small")
            .await
            .status,
        200
    );

    let rotated = send(
        admin_addr,
        Method::POST,
        "/admin/keys/via-api/rotate",
        &[("x-api-key", &admin)],
        "",
    )
    .await;
    assert_eq!(rotated.status, 201);
    let rotated_key = rotated.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        chat_as(&f, &[("x-api-key", &new_key)], "search-small")
            .await
            .status,
        401,
        "the old key is revoked"
    );
    assert_eq!(
        chat_as(&f, &[("x-api-key", &rotated_key)], "search-small")
            .await
            .status,
        200
    );

    let revoked = send(
        admin_addr,
        Method::POST,
        "/admin/keys/via-api/revoke",
        &[("x-api-key", &admin)],
        "",
    )
    .await;
    assert_eq!(revoked.json()["revoked"], 1);
    assert_eq!(
        chat_as(&f, &[("x-api-key", &rotated_key)], "search-small")
            .await
            .status,
        401
    );
    let status = send(
        admin_addr,
        Method::GET,
        "/admin/status",
        &[("x-api-key", &admin)],
        "",
    )
    .await;
    assert_eq!(status.json()["policies"], 5);
}

#[tokio::test]
async fn postgres_store_works_like_sqlite() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let f = fixture_with_store("postgres", Some(db.url.clone())).await;
    let k = key(&f.keys, "pg-bot", &["search"], &[]).await;
    assert_eq!(
        chat_as(&f, &[("x-api-key", &k)], "search-small")
            .await
            .status,
        200
    );
    f.keys
        .store()
        .revoke("pg-bot", identify::api_key::now())
        .await
        .unwrap();
    assert_eq!(
        chat_as(&f, &[("x-api-key", &k)], "search-small")
            .await
            .status,
        401
    );
    drop(f);
    db.drop_database().await;
}

#[tokio::test]
async fn a_postgres_key_store_that_stops_answering_fails_and_recovers() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let store = identify::KeyStore::open(&db.url).await.unwrap();
    assert!(store.by_prefix("aigis_nothing").await.unwrap().is_none());
    // An operator's lock holds the table: statements wait on the server. They fail after
    // the key store's timeout (503 upstream of here) instead of holding requests forever.
    let (admin, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute("BEGIN; LOCK TABLE aigis_api_keys IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (first, second) = tokio::join!(store.by_prefix("aigis_a"), store.list());
    for e in [first.unwrap_err(), second.unwrap_err()] {
        assert!(e.to_string().contains("no answer within"), "{e}");
    }
    admin.batch_execute("ROLLBACK").await.unwrap();
    // The unanswering connection was dropped; the next statement opens another.
    assert!(store.by_prefix("aigis_nothing").await.unwrap().is_none());
    assert_eq!(store.revoke("nothing", 0).await.unwrap(), 0);
    drop((admin, store));
    db.drop_database().await;
}

/// A private database on the shared PostgreSQL server, dropped at the end of the test.
struct PgDatabase {
    url: String,
    name: String,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl PgDatabase {
    async fn create() -> Option<Self> {
        let Ok((client, conn)) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await
        else {
            assert!(
                std::env::var("AIGIS_REQUIRE_SERVICES").is_err(),
                "PostgreSQL is required but not reachable"
            );
            eprintln!("skipping: PostgreSQL is not reachable at 127.0.0.1:5432");
            return None;
        };
        tokio::spawn(conn);
        let name = format!("aigis_test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Some(Self {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        })
    }

    async fn drop_database(self) {
        let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}
