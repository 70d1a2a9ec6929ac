//! The gateway's data path against real mock upstreams over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use aigis_mock_upstream::Behavior;
use http::Method;
use support::*;

#[tokio::test]
async fn routes_by_exact_name_and_glob() {
    let (a, b) = (
        mock(Behavior::default()).await,
        mock(Behavior::default()).await,
    );
    let cfg = format!(
        "{SERVER}{}{}{}{}",
        upstream("a", &a.base_url(), ""),
        upstream("b", &b.base_url(), ""),
        route("exact", "[\"gpt-4o-mini\"]", "\"a\""),
        route("glob", "[\"gpt-4o*\"]", "\"b\""),
    );
    let gw = gateway(&cfg).await;
    assert_eq!(
        post(
            gw.public_addr(),
            "/v1/chat/completions",
            &chat("gpt-4o-mini", false)
        )
        .await
        .status,
        200
    );
    let r = post(
        gw.public_addr(),
        "/v1/chat/completions",
        &chat("gpt-4o-2024", false),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "mock reply to: hello gateway"
    );
    assert_eq!((a.requests().len(), b.requests().len()), (1, 1));
    assert_eq!(a.requests()[0].path, "/v1/chat/completions");
    let r = post(
        gw.public_addr(),
        "/v1/chat/completions",
        &chat("claude-3", false),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "model_not_found")
    );
    // Only exact names are listed.
    let models = get(gw.public_addr(), "/v1/models").await.json();
    assert_eq!(models["data"].as_array().unwrap().len(), 1);
    assert_eq!(models["data"][0]["id"], "gpt-4o-mini");
}

#[tokio::test]
async fn every_endpoint_reaches_the_upstream() {
    let m = mock(Behavior::default()).await;
    let gw = gateway(&format!(
        "{SERVER}{}{}",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"m*\"]", "\"m\"")
    ))
    .await;
    let a = gw.public_addr();
    assert_eq!(
        post(a, "/v1/completions", r#"{"model":"m","prompt":"hi"}"#)
            .await
            .status,
        200
    );
    assert_eq!(
        post(a, "/v1/embeddings", r#"{"model":"m","input":"hi"}"#)
            .await
            .status,
        200
    );
    assert_eq!(
        post(a, "/v1/responses", r#"{"model":"m","input":"hi"}"#)
            .await
            .status,
        200
    );
    let paths: Vec<String> = m.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/v1/completions", "/v1/embeddings", "/v1/responses"]
    );
    let r = post(
        a,
        "/v1/messages",
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(
        r.status, 400,
        "an OpenAI route is not served on /v1/messages"
    );
    assert_eq!(
        r.json()["type"],
        "error",
        "Anthropic endpoints answer in Anthropic's error shape"
    );
}

#[tokio::test]
async fn fails_over_before_the_first_byte() {
    let broken = mock(Behavior {
        status: Some(503),
        ..Behavior::default()
    })
    .await;
    let good = mock(Behavior::default()).await;
    // A closed port: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = format!(
        "{SERVER}{}{}{}{}",
        upstream("closed", &format!("http://{closed}/v1"), ""),
        upstream("broken", &broken.base_url(), ""),
        upstream("good", &good.base_url(), ""),
        route("r", "[\"m\"]", "[\"closed\", \"broken\", \"good\"]"),
    );
    let gw = gateway(&cfg).await;
    let r = post(gw.public_addr(), "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((broken.requests().len(), good.requests().len()), (1, 1));
    let metrics = gw.metrics();
    assert!(
        metrics.contains("upstream=\"closed\",outcome=\"connect_error\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("upstream=\"broken\",outcome=\"5xx\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn last_upstream_error_reaches_the_client_unchanged() {
    let m = mock(Behavior::default()).await;
    let gw = gateway(&format!(
        "{SERVER}{}{}",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"mock-*\"]", "\"m\"")
    ))
    .await;
    let r = post(
        gw.public_addr(),
        "/v1/chat/completions",
        &chat("mock-status-500", false),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.error_code(), "mock_error");
}

#[tokio::test]
async fn no_client_credential_reaches_the_upstream() {
    let m = mock(Behavior::default()).await;
    let dir = tempdir("proxy");
    std::fs::write(dir.join("key"), "sk-upstream-secret\n").unwrap();
    let cfg = one_route(&m, "api_key = \"file:key\"");
    let gw = gateway_in(&cfg, &dir).await;
    let r = send(
        gw.public_addr(),
        Method::POST,
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer client-secret"),
            ("x-api-key", "client-secret"),
            ("api-key", "client-secret"),
            ("cookie", "session=client-secret"),
            ("proxy-authorization", "Basic client-secret"),
            ("x-request-id", "trace-123"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "client-secret"),
        ],
        &chat("m", false),
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = &m.requests()[0];
    assert!(
        seen.headers
            .iter()
            .all(|(_, v)| !v.contains("client-secret")),
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );
    assert_eq!(seen.header("x-request-id"), Some("trace-123"));
    assert_eq!(r.headers["x-request-id"], "trace-123");
    assert_eq!(r.headers["x-upstream-request-id"], "mock-upstream-id");
    assert!(
        r.headers.get("set-cookie").is_none(),
        "upstream cookies are not passed on"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn request_limits_answer_with_named_errors() {
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nmax_body = \"2KiB\"\nmax_messages = 2\nmax_n = 2\n\
         [[upstreams]]\nname = \"echo\"\nkind = \"echo\"\n{}",
        "[[routes]]\nname = \"r\"\nmodels = [\"echo\"]\nupstream = \"echo\"\nmax_tokens = 100\n"
    );
    let gw = gateway(&cfg).await;
    let a = gw.public_addr();
    let big = format!(
        r#"{{"model":"echo","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let r = post(a, "/v1/chat/completions", &big).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "request_too_large")
    );
    let r = post(
        a,
        "/v1/chat/completions",
        r#"{"model":"echo","max_tokens":101,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("max_tokens"))
    );
    let r = post(
        a,
        "/v1/chat/completions",
        r#"{"model":"echo","messages":[{},{},{}]}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("messages"))
    );
    let r = post(
        a,
        "/v1/chat/completions",
        r#"{"model":"echo","n":5,"messages":[{}]}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("n"))
    );
    assert_eq!(post(a, "/v1/unknown", "{}").await.status, 404);
    assert_eq!(
        post(a, "/admin/keys", "{}").await.status,
        404,
        "no admin routes on the public listener"
    );
    assert_eq!(get(a, "/v1/chat/completions").await.status, 405);
    let long = "x".repeat(40 * 1024);
    let r = send(
        a,
        Method::POST,
        "/v1/chat/completions",
        &[("x-long", &long)],
        "{}",
    )
    .await;
    assert!(r.status == 431, "{}", r.status);
}

#[tokio::test]
async fn first_byte_timeout_is_504() {
    let m = mock(Behavior {
        latency: Duration::from_secs(3),
        ..Behavior::default()
    })
    .await;
    let cfg = one_route(&m, "timeouts = { first_byte = \"200ms\" }");
    let gw = gateway(&cfg).await;
    let started = std::time::Instant::now();
    let r = post(gw.public_addr(), "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (504, "upstream_timeout")
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the gateway answered before the upstream"
    );
}

#[tokio::test]
async fn a_request_the_model_may_have_run_keeps_its_token_charge() {
    // 9 prompt tokens + 100 reserved fit once in 150 tokens, not twice.
    const LIMIT: &str =
        "[[limits]]\nname = \"tpm\"\nscope = \"principal\"\ntokens = \"150/hour\"\n";
    const BODY: &str =
        r#"{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    // Timed out after it was sent: the upstream may have generated, so the reservation stays.
    let slow = mock(Behavior {
        latency: Duration::from_secs(3),
        ..Behavior::default()
    })
    .await;
    let cfg = one_route(&slow, "timeouts = { first_byte = \"200ms\" }") + LIMIT;
    let gw = gateway(&cfg).await;
    let first = post(gw.public_addr(), "/v1/chat/completions", BODY).await;
    assert_eq!(first.status, 504, "{}", first.body);
    let second = post(gw.public_addr(), "/v1/chat/completions", BODY).await;
    assert_eq!(
        (second.status, second.error_code().as_str()),
        (429, "rate_limit_exceeded"),
        "{}",
        second.body
    );
    // Never sent (nothing listens): no model ran, so the reservation is refunded.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cfg = format!(
        "{SERVER}{}{}{LIMIT}",
        upstream("m", &url, ""),
        route("r", "[\"m\"]", "\"m\"")
    );
    let gw = gateway(&cfg).await;
    for _ in 0..2 {
        let r = post(gw.public_addr(), "/v1/chat/completions", BODY).await;
        assert_eq!(r.status, 502, "{}", r.body);
    }
}

#[tokio::test]
async fn idle_stream_ends_with_an_error_event_and_done() {
    let m = mock(Behavior {
        chunk_delay: Duration::from_secs(3),
        ..Behavior::default()
    })
    .await;
    let cfg = one_route(&m, "timeouts = { idle = \"300ms\" }");
    let gw = gateway(&cfg).await;
    let (status, mut body) =
        open_stream(gw.public_addr(), "/v1/chat/completions", &chat("m", true)).await;
    assert_eq!(status, 200);
    let mut all = String::new();
    while let Some(t) = next_text(&mut body).await {
        all.push_str(&t);
    }
    assert!(all.starts_with("data: {"), "{all}");
    assert!(all.contains(r#""code":"upstream_timeout""#), "{all}");
    assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
}

#[tokio::test]
async fn streams_are_relayed_chunk_by_chunk() {
    // The upstream holds chunk 2 back until the client has seen chunk 1: a gateway that
    // buffered the stream would never deliver chunk 1 and this test would time out.
    let gate = Arc::new(tokio::sync::Notify::new());
    let m = mock(Behavior {
        gate: Some(gate.clone()),
        chunks: 3,
        ..Behavior::default()
    })
    .await;
    let gw = gateway(&one_route(&m, "")).await;
    let (status, mut body) =
        open_stream(gw.public_addr(), "/v1/chat/completions", &chat("m", true)).await;
    assert_eq!(status, 200);
    // The role chunk, then chunk 1's text ("mock reply": the unfinished word goes too, since
    // no detector could continue it).
    let mut first = String::new();
    while !first.contains("\"content\":\"mock reply\"") {
        first.push_str(&next_text(&mut body).await.unwrap());
    }
    gate.notify_one();
    let mut rest = String::new();
    while let Some(t) = next_text(&mut body).await {
        rest.push_str(&t);
    }
    assert!(rest.contains("\"finish_reason\":\"stop\""));
    assert!(rest.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let m = mock(Behavior {
        chunks: 50,
        chunk_delay: Duration::from_millis(50),
        ..Behavior::default()
    })
    .await;
    let gw = gateway(&one_route(&m, "")).await;
    let (_, mut body) =
        open_stream(gw.public_addr(), "/v1/chat/completions", &chat("m", true)).await;
    next_text(&mut body).await.unwrap();
    drop(body);
    assert!(
        eventually(|| m.cancelled() == 1).await,
        "the upstream stream was not cancelled"
    );
    assert_eq!(m.completed_streams(), 0);
    assert!(eventually(|| gw.metrics().contains("aigis_active_streams 0")).await);
}

#[tokio::test]
async fn circuit_breaker_stops_calling_a_failing_upstream() {
    let m = mock(Behavior {
        status: Some(500),
        ..Behavior::default()
    })
    .await;
    let cfg = one_route(&m, "circuit_breaker = { failures = 2, cooldown = \"1m\" }");
    let gw = gateway(&cfg).await;
    for _ in 0..2 {
        assert_eq!(
            post(gw.public_addr(), "/v1/chat/completions", &chat("m", false))
                .await
                .status,
            500
        );
    }
    let r = post(gw.public_addr(), "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "upstream_unavailable")
    );
    assert_eq!(
        m.requests().len(),
        2,
        "the open breaker kept the third request away"
    );
    assert_eq!(get_admin(&gw, "/readyz").await, 503);
}

async fn get_admin(gw: &aigis_gateway::Gateway, path: &str) -> u16 {
    get(gw.admin_addr(), path).await.status
}

#[tokio::test]
async fn concurrency_caps_refuse_instead_of_queueing() {
    let m = mock(Behavior {
        latency: Duration::from_millis(500),
        ..Behavior::default()
    })
    .await;
    let cfg = one_route(&m, "max_concurrent = 1");
    let gw = gateway(&cfg).await;
    let a = gw.public_addr();
    let body = chat("m", false);
    let (r1, r2) = tokio::join!(post(a, "/v1/chat/completions", &body), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(a, "/v1/chat/completions", &chat("m", false)).await
    });
    assert_eq!((r1.status, r2.status), (200, 503));
    assert_eq!(r2.headers["retry-after"], "1");

    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nmax_concurrent = 1\n{}{}",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"m\"]", "\"m\"")
    );
    let gw = gateway(&cfg).await;
    let a = gw.public_addr();
    let body = chat("m", false);
    let (r1, r2) = tokio::join!(post(a, "/v1/chat/completions", &body), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(a, "/v1/chat/completions", &chat("m", false)).await
    });
    assert_eq!(
        (r1.status, r2.status, r2.error_code().as_str()),
        (200, 429, "gateway_overloaded")
    );
}

#[tokio::test]
async fn anthropic_messages_pass_through_with_the_upstream_key() {
    let m = mock(Behavior::default()).await;
    let dir = tempdir("proxy");
    std::fs::write(dir.join("key"), "sk-ant-upstream").unwrap();
    let cfg = format!(
        "{SERVER}[[upstreams]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\napi_key = \"file:key\"\n{}",
        m.addr(),
        route("c", "[\"claude-*\"]", "\"claude\"")
    );
    let gw = gateway_in(&cfg, &dir).await;
    let body =
        r#"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(
        gw.public_addr(),
        Method::POST,
        "/v1/messages",
        &[
            ("x-api-key", "client-key"),
            ("anthropic-version", "2023-06-01"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["type"], "message");
    let seen = &m.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-upstream"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    let r = post(
        gw.public_addr(),
        "/v1/chat/completions",
        &chat("claude-x", false),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "wrong_endpoint"));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn shutdown_drains_in_flight_streams() {
    let m = mock(Behavior {
        chunks: 5,
        chunk_delay: Duration::from_millis(100),
        ..Behavior::default()
    })
    .await;
    let gw = gateway(&one_route(&m, "")).await;
    let addr = gw.public_addr();
    let (_, mut body) = open_stream(addr, "/v1/chat/completions", &chat("m", true)).await;
    let shutdown = tokio::spawn(gw.shutdown());
    let mut all = String::new();
    while let Some(t) = next_text(&mut body).await {
        all.push_str(&t);
    }
    assert!(
        all.ends_with("data: [DONE]\n\n"),
        "the stream was cut: {all}"
    );
    shutdown.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
