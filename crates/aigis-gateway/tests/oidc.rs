//! OIDC/JWT: the attacks a bearer-token verifier must refuse, and JWKS rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aigis_mock_upstream::Behavior;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use support::*;

const POLICY: &str = include_str!("../../../examples/policies/teams.cedar");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 signing key and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

fn signing_key(kid: &str) -> SigningKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                     "x": b64(&raw[1..33]), "y": b64(&raw[33..65])});
    SigningKey {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwk,
    }
}

/// A tiny IdP: discovery document and a JWKS that tests can rotate.
struct Idp {
    url: String,
    jwks: Arc<Mutex<Vec<serde_json::Value>>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn idp(keys: Vec<serde_json::Value>) -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (j, f, base) = (jwks.clone(), fetches.clone(), url.clone());
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (j, f, base) = (j.clone(), f.clone(), base.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let body = if req.uri().path() == "/.well-known/openid-configuration" {
                            json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string()
                        } else {
                            f.fetch_add(1, Ordering::SeqCst);
                            json!({"keys": *j.lock().unwrap()}).to_string()
                        };
                        let resp = http::Response::builder()
                            .header("cache-control", "public, max-age=300")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap();
                        async move { Ok::<_, Infallible>(resp) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Idp {
        url,
        jwks,
        fetches,
        task,
    }
}

fn claims(iss: &str) -> serde_json::Value {
    let now = aigis_gateway::identify::api_key::now();
    json!({"iss": iss, "aud": "aigis", "sub": "alice", "groups": ["search"], "iat": now, "exp": now + 600})
}

/// A chat request to the `search-small` route with `authorization: AUTH`.
async fn chat_with(gw: &aigis_gateway::Gateway, auth: &str) -> Resp {
    send(
        gw.public_addr(),
        Method::POST,
        "/v1/chat/completions",
        &[("authorization", auth)],
        &chat("search-small", false),
    )
    .await
}

fn token(key: &SigningKey, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

#[tokio::test]
async fn oidc_tokens_are_verified_and_attacks_refused() {
    let k1 = signing_key("k1");
    let idp = idp(vec![k1.jwk.clone()]).await;
    let m = mock(Behavior::default()).await;
    let d = tempdir("oidc");
    std::fs::write(d.join("teams.cedar"), POLICY).unwrap();
    std::fs::write(
        d.join("email.cedar"),
        "permit (principal, action, resource) when { principal.hasTag(\"email\") && principal.getTag(\"email\") like \"*@corp.example\" };",
    )
    .unwrap();
    let cfg = format!(
        "{SERVER}[[identity.oidc]]\nname = \"corp\"\nissuer = \"{}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n\
         claims = {{ teams = \"groups\" }}\nclock_skew = \"30s\"\n[policy]\npolicies = [\"file:teams.cedar\", \"file:email.cedar\"]\n{}{}",
        idp.url,
        upstream("m", &m.base_url(), ""),
        route("search", "[\"search-small\"]", "\"m\"")
    );
    let gw = gateway_in(&cfg, &d).await;
    // Each call from its own loopback address, so failure throttling stays out of the way.
    let n = AtomicUsize::new(0);
    let call = |token: String| {
        let addr = gw.public_addr();
        let i = u8::try_from(20 + n.fetch_add(1, Ordering::SeqCst)).unwrap();
        async move {
            let auth = format!("Bearer {token}");
            let body = chat("search-small", false);
            let source = Some(std::net::IpAddr::from([127, 0, 0, i]));
            send_from(
                source,
                addr,
                Method::POST,
                "/v1/chat/completions",
                &[("authorization", &auth)],
                &body,
            )
            .await
            .status
        }
    };
    let now = aigis_gateway::identify::api_key::now();
    assert_eq!(
        call(token(&k1, &claims(&idp.url))).await,
        200,
        "a valid token"
    );

    // Rotation: the IdP adds k2; a k2 token makes the gateway refresh once and accept it.
    let k2 = signing_key("k2");
    idp.jwks.lock().unwrap().push(k2.jwk.clone());
    let before = idp.fetches.load(Ordering::SeqCst);
    assert_eq!(
        call(token(&k2, &claims(&idp.url))).await,
        200,
        "rotated key accepted after a refresh"
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before + 1);
    let fetches_after_rotation = before + 1;

    // alg "none"
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(&idp.url).to_string().as_bytes())
    );
    assert_eq!(call(none).await, 401, "alg none");
    // Key confusion: HS256 signed with the issuer's public key as the HMAC secret.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(&idp.url),
        &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(call(confused).await, 401, "HS256 key confusion");
    // Time and audience claims.
    let mut c = claims(&idp.url);
    c["exp"] = json!(now - 3600);
    assert_eq!(call(token(&k1, &c)).await, 401, "expired");
    let mut c = claims(&idp.url);
    c["nbf"] = json!(now + 3600);
    assert_eq!(call(token(&k1, &c)).await, 401, "not yet valid");
    let mut c = claims(&idp.url);
    c["iat"] = json!(now + 3600);
    assert_eq!(call(token(&k1, &c)).await, 401, "issued in the future");
    let mut c = claims(&idp.url);
    c["aud"] = json!("someone-else");
    assert_eq!(call(token(&k1, &c)).await, 401, "wrong audience");
    assert_eq!(
        call(token(&k1, &claims("https://evil.example"))).await,
        401,
        "untrusted issuer"
    );
    // Signed by a key the issuer never published, under a known kid.
    let forged = signing_key("k1");
    assert_eq!(
        call(token(&forged, &claims(&idp.url))).await,
        401,
        "untrusted key"
    );
    // Hostile kids are lookup keys, never paths or queries.
    for kid in [
        "../../../../etc/passwd",
        "' OR 1=1 --",
        "k1\u{0}",
        &"x".repeat(300),
    ] {
        let mut key = signing_key("k1");
        key.kid = kid.into();
        assert_eq!(
            call(token(&key, &claims(&idp.url))).await,
            401,
            "kid {kid:?}"
        );
    }
    // Policies still apply to OIDC principals.
    let mut c = claims(&idp.url);
    c["groups"] = json!(["finance"]);
    assert_eq!(
        call(token(&k1, &c)).await,
        403,
        "finance may not use search-small"
    );
    // An email claim counts only when the IdP says it verified it.
    c["email"] = json!("mallory@corp.example");
    assert_eq!(call(token(&k1, &c)).await, 403, "unverified email");
    c["email_verified"] = json!(true);
    assert_eq!(call(token(&k1, &c)).await, 200, "verified email");
    assert_eq!(
        m.requests().len(),
        3,
        "nothing but the valid tokens reached the upstream"
    );
    // At most one unknown-kid refresh per interval, however many bad kids arrive.
    assert_eq!(idp.fetches.load(Ordering::SeqCst), fetches_after_rotation);

    // The IdP goes away: cached keys keep working.
    idp.task.abort();
    assert_eq!(
        call(token(&k1, &claims(&idp.url))).await,
        200,
        "cached keys survive an IdP outage"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn symmetric_and_none_algorithms_are_config_errors() {
    for alg in ["HS256", "none"] {
        let cfg = format!(
            "[[identity.oidc]]\nname = \"x\"\nissuer = \"https://idp.example\"\naudiences = [\"a\"]\njwks = \"discovery\"\nalgorithms = [\"{alg}\"]\n"
        );
        let errors =
            aigis_gateway::config::parse(&cfg, std::path::Path::new("."), false).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.path == "identity.oidc[0].algorithms"),
            "{alg}: {errors:?}"
        );
    }
}

/// A discovery document must name the configured issuer (OpenID Connect Discovery §4.3): one
/// that names another issuer is not trusted for keys, so no token verifies.
#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let k1 = signing_key("k1");
    let idp = idp(vec![k1.jwk.clone()]).await;
    let m = mock(Behavior::default()).await;
    // Same server, another spelling: the document says `http://127.0.0.1:…`.
    let issuer = idp.url.replace("127.0.0.1", "localhost");
    let cfg = format!(
        "{SERVER}[[identity.oidc]]\nname = \"corp\"\nissuer = \"{issuer}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n{}{}",
        upstream("m", &m.base_url(), ""),
        route("search", "[\"search-small\"]", "\"m\"")
    );
    let gw = gateway(&cfg).await;
    let auth = format!("Bearer {}", token(&k1, &claims(&issuer)));
    let r = chat_with(&gw, &auth).await;
    assert_ne!(r.status, 200, "{}", r.body);
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        0,
        "the JWKS was fetched"
    );
    assert!(m.requests().is_empty());
}

/// An IdP that answers with headers and then stalls mid-body: the fetch gives up after its
/// 10 s bound (it used to wait forever, holding the refresh lock), and tokens that cannot be
/// judged without keys are refused as unavailable (503), not as invalid: an IdP outage must
/// not count towards throttling its users' addresses.
#[tokio::test]
async fn an_idp_that_stalls_gives_unavailable_not_invalid() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stall = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = tcp.read(&mut request).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{\"issuer\":")
                .await;
            held.push(tcp);
        }
    });
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{SERVER}[[identity.oidc]]\nname = \"corp\"\nissuer = \"{url}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n{}{}",
        upstream("m", &m.base_url(), ""),
        route("search", "[\"search-small\"]", "\"m\"")
    );
    let gw = gateway(&cfg).await;
    let auth = format!("Bearer {}", token(&signing_key("k1"), &claims(&url)));
    // More than the throttle's failure allowance, all from one address.
    for _ in 0..8 {
        let r = chat_with(&gw, &auth).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.error_code(), "auth_unavailable", "{}", r.body);
    }
    assert!(m.requests().is_empty());
    stall.abort();
}

/// A reload while the IdP is down keeps an unchanged issuer and its cached keys (it used to
/// build a key-less issuer, so every token was refused until the IdP came back); an issuer
/// whose configuration changed starts afresh.
#[tokio::test]
async fn a_reload_during_an_idp_outage_keeps_the_cached_keys() {
    let k1 = signing_key("k1");
    let idp = idp(vec![k1.jwk.clone()]).await;
    let m = mock(Behavior::default()).await;
    let d = tempdir("oidc-reload");
    std::fs::write(d.join("teams.cedar"), POLICY).unwrap();
    let file = d.join("aigis.toml");
    let cfg = |skew: &str| {
        format!(
            "{SERVER}[[identity.oidc]]\nname = \"corp\"\nissuer = \"{}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n\
             claims = {{ teams = \"groups\" }}\nclock_skew = \"{skew}\"\n[policy]\npolicies = [\"file:teams.cedar\"]\n{}{}",
            idp.url,
            upstream("m", &m.base_url(), ""),
            route("search", "[\"search-small\"]", "\"m\"")
        )
    };
    std::fs::write(&file, cfg("30s")).unwrap();
    let loaded = aigis_gateway::config::load(&file, false).unwrap();
    let gw = aigis_gateway::Gateway::start(loaded.config, Some((file.clone(), false)))
        .await
        .unwrap();
    let auth = format!("Bearer {}", token(&k1, &claims(&idp.url)));
    let call = || async { chat_with(&gw, &auth).await.status };
    assert_eq!(call().await, 200);
    idp.task.abort();
    gw.reload().await.unwrap();
    assert_eq!(call().await, 200, "the unchanged issuer keeps its keys");
    std::fs::write(&file, cfg("20s")).unwrap();
    gw.reload().await.unwrap();
    assert_eq!(call().await, 503, "a changed issuer cannot fetch keys yet");
}

/// With two IdPs of different trust, `allowed_roles` keeps the lesser one from granting
/// `admin`: its tokens' other roles are dropped, and the same token through a provider without
/// the list administers.
#[tokio::test]
async fn a_provider_grants_only_its_allowed_roles() {
    let k1 = signing_key("k1");
    let idp = idp(vec![k1.jwk.clone()]).await;
    let d = tempdir("oidc-roles");
    let cfg = |allowed: &str| {
        format!(
            "{SERVER}[[identity.oidc]]\nname = \"partner\"\nissuer = \"{}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n{allowed}\n\
             [[upstreams]]\nname = \"echo\"\nkind = \"echo\"\n[[routes]]\nname = \"r\"\nmodels = [\"echo\"]\nupstream = \"echo\"\n",
            idp.url
        )
    };
    let mut c = claims(&idp.url);
    c["roles"] = json!(["admin", "reader"]);
    let auth = format!("Bearer {}", token(&k1, &c));
    let headers = [("authorization", auth.as_str())];
    let limited = gateway_in(&cfg("allowed_roles = [\"reader\"]"), &d).await;
    let r = send(
        limited.admin_addr(),
        Method::GET,
        "/admin/status",
        &headers,
        "",
    )
    .await;
    assert_eq!(r.status, 403, "admin is not this provider's to grant");
    let open = gateway_in(&cfg(""), &d).await;
    let r = send(
        open.admin_addr(),
        Method::GET,
        "/admin/status",
        &headers,
        "",
    )
    .await;
    assert_eq!(
        r.status, 200,
        "the same token where the provider may grant admin"
    );
    // An IdP administrator needs no API key store for status and reload; with none, the key
    // routes do not exist.
    let r = send(
        open.admin_addr(),
        Method::POST,
        "/admin/reload",
        &headers,
        "",
    )
    .await;
    // (Started from a string, this gateway has no file to reload: the route answers 422.)
    assert_eq!(r.json()["reloaded"], false, "{}", r.body);
    assert!(
        r.body.contains("not started from a config file"),
        "{}",
        r.body
    );
    let r = send(open.admin_addr(), Method::GET, "/admin/keys", &headers, "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    std::fs::remove_dir_all(d).ok();
}
