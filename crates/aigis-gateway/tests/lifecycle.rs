//! Reload and TLS: a broken config never replaces a working one, and the public listener
//! negotiates X25519MLKEM768 with a default rustls client while classical clients still connect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::many_single_char_names
)]

mod support;

use std::sync::Arc;

use aigis_gateway::Gateway;
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO: &str = "[[upstreams]]\nname = \"echo\"\nkind = \"echo\"\n";

#[tokio::test]
async fn reload_keeps_the_old_config_when_the_new_one_is_broken() {
    let d = tempdir("reload");
    let file = d.join("aigis.toml");
    std::fs::write(
        &file,
        format!("{SERVER}{ECHO}{}", route("r", "[\"echo\"]", "\"echo\"")),
    )
    .unwrap();
    let loaded = aigis_gateway::config::load(&file, false).unwrap();
    let gw = Gateway::start(loaded.config, Some((file.clone(), false)))
        .await
        .unwrap();
    let a = gw.public_addr();
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo", false))
            .await
            .status,
        200
    );

    std::fs::write(&file, format!("{SERVER}listen = 12\n{ECHO}")).unwrap();
    let err = gw.reload().await.unwrap_err().to_string();
    assert!(err.contains("line"), "{err}");
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo", false))
            .await
            .status,
        200,
        "old config serves on"
    );
    assert!(
        gw.metrics()
            .contains("aigis_config_reloads_total{result=\"rejected\"} 1")
    );

    std::fs::write(
        &file,
        format!("{SERVER}{ECHO}{}", route("r", "[\"echo-2\"]", "\"echo\"")),
    )
    .unwrap();
    gw.reload().await.unwrap();
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo", false))
            .await
            .status,
        404
    );
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo-2", false))
            .await
            .status,
        200
    );
    std::fs::remove_dir_all(d).ok();
}

/// Writes a self-signed certificate for `localhost`; returns its DER form.
fn write_cert(d: &std::path::Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(d.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().clone()
}

fn client_config(
    ca: &CertificateDer<'static>,
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> rustls::ClientConfig {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Connects, sends one HTTP/1.1 request, returns (negotiated group, response head line).
async fn tls_get(gw: &Gateway, config: rustls::ClientConfig) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(gw.public_addr())
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let group = format!(
        "{:?}",
        tls.get_ref()
            .1
            .negotiated_key_exchange_group()
            .unwrap()
            .name()
    );
    tls.write_all(b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.ok();
    (group, out.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn tls_prefers_post_quantum_and_accepts_classical_clients() {
    let d = tempdir("tls");
    let ca = write_cert(&d);
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"file:cert.pem\"\nkey = \"file:key.pem\"\n{ECHO}{}",
        route("r", "[\"echo\"]", "\"echo\"")
    );
    let gw = gateway_in(&cfg, &d).await;

    // A default rustls client (aws-lc-rs, prefer-post-quantum) gets the hybrid group.
    let (group, status) = tls_get(&gw, client_config(&ca, None)).await;
    assert_eq!(group, "X25519MLKEM768");
    assert_eq!(status, "HTTP/1.1 200 OK");

    // A classical-only client still connects.
    let x25519 = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let (group, status) = tls_get(&gw, client_config(&ca, Some(x25519))).await;
    assert_eq!(group, "X25519");
    assert_eq!(status, "HTTP/1.1 200 OK");

    let metrics = gw.metrics();
    assert!(
        metrics.contains("group=\"X25519MLKEM768\",version=\"TLSv1_3\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("group=\"X25519\",version=\"TLSv1_3\"} 1"),
        "{metrics}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn reload_picks_up_new_certificates() {
    let d = tempdir("certreload");
    let first = write_cert(&d);
    let file = d.join("aigis.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{ECHO}{}",
            route("r", "[\"echo\"]", "\"echo\"")
        ),
    )
    .unwrap();
    let gw = Gateway::start(
        aigis_gateway::config::load(&file, false).unwrap().config,
        Some((file, false)),
    )
    .await
    .unwrap();
    assert_eq!(
        tls_get(&gw, client_config(&first, None)).await.1,
        "HTTP/1.1 200 OK"
    );
    let second = write_cert(&d);
    gw.reload().await.unwrap();
    assert_eq!(
        tls_get(&gw, client_config(&second, None)).await.1,
        "HTTP/1.1 200 OK"
    );
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn http2_over_tls_with_alpn() {
    let d = tempdir("h2");
    let ca = write_cert(&d);
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{ECHO}{}",
        route("r", "[\"echo\"]", "\"echo\"")
    );
    let gw = gateway_in(&cfg, &d).await;
    let mut config = client_config(&ca, None);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(gw.public_addr())
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("https://localhost/v1/chat/completions")
        .body(http_body_util::Full::new(bytes::Bytes::from(chat(
            "echo", false,
        ))))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn upstream_tls_uses_the_configured_ca_and_post_quantum_key_exchange() {
    // Gateway A terminates TLS in front of the mock; gateway B reaches A as an HTTPS upstream
    // that it trusts through `ca`.
    let d = tempdir("upstream-tls");
    write_cert(&d);
    let m = mock(aigis_mock_upstream::Behavior::default()).await;
    let a = gateway_in(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{}{}",
            upstream("m", &m.base_url(), ""),
            route("r", "[\"m\"]", "\"m\"")
        ),
        &d,
    )
    .await;
    let b_upstream = format!("https://localhost:{}/v1", a.public_addr().port());
    let b = gateway_in(
        &format!(
            "{SERVER}{}{}",
            upstream("a", &b_upstream, "ca = \"cert.pem\""),
            route("r", "[\"m\"]", "\"a\"")
        ),
        &d,
    )
    .await;
    let r = post(b.public_addr(), "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        a.metrics()
            .contains("group=\"X25519MLKEM768\",version=\"TLSv1_3\"} 1"),
        "{}",
        a.metrics()
    );
    // Without the CA, B refuses A's self-signed certificate.
    let c = gateway(&format!(
        "{SERVER}{}{}",
        upstream("a", &b_upstream, ""),
        route("r", "[\"m\"]", "\"a\"")
    ))
    .await;
    let r = post(c.public_addr(), "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!((r.status, r.error_code().as_str()), (502, "upstream_error"));
    std::fs::remove_dir_all(d).ok();
}
