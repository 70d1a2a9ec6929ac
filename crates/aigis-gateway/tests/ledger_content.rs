//! The ledger's content capture (`content = "encrypted"`) and the event fields the gateway
//! fills: content sealed per tenant (readable with that tenant's identity only, never in
//! plaintext, refused for a tenant without recipients, shredded without breaking `verify`),
//! limit outcomes, token counts, the response digest, the client's address and the TLS group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::Arc;

use aigis_crypto::age::{self, Identity, PqIdentity, X25519Identity};
use aigis_gateway::identify::{self, ApiKeys, KeySpec};
use aigis_ledger::store::LogReader;
use aigis_ledger::store::sqlite::SqliteStore;
use aigis_ledger::{Event, LedgerKeys, audit};
use aigis_mock_upstream::Behavior;
use http::Method;
use support::*;

const SECRET_PROMPT: &str = "my canary prompt: purple elephants dance at midnight";

fn events(store: &mut SqliteStore) -> Vec<Event> {
    let mut out = Vec::new();
    store
        .scan(0, &mut |row| {
            out.push(Event::from_canonical(&row.event).unwrap());
            Ok(true)
        })
        .unwrap();
    out
}

/// Whether the SQLite ledger at `db` holds `n` events, waiting a while for the writer.
async fn recorded(db: &Path, n: u64) -> bool {
    eventually(|| {
        SqliteStore::open_existing(db)
            .and_then(|s| s.count())
            .is_ok_and(|count| count == n)
    })
    .await
}

fn event_of(store: &mut SqliteStore, request_id: &str) -> Event {
    let rows = store.find_request(request_id).unwrap();
    assert_eq!(rows.len(), 1, "one record for {request_id}");
    Event::from_canonical(&rows[0].event).unwrap()
}

async fn key(keys: &ApiKeys, name: &str, teams: &[&str]) -> String {
    let spec = KeySpec {
        name: name.into(),
        kind: "service".into(),
        teams: teams.iter().map(|s| (*s).to_owned()).collect(),
        roles: Vec::new(),
        expires_in: None,
    };
    format!("Bearer {}", keys.create(spec).await.unwrap().secret)
}

async fn call(addr: std::net::SocketAddr, auth: &str, body: &str) -> Resp {
    send(
        addr,
        Method::POST,
        "/v1/chat/completions",
        &[("authorization", auth)],
        body,
    )
    .await
}

fn decrypt(path: &Path, identity: &Identity) -> Result<Vec<u8>, age::Error> {
    let mut out = Vec::new();
    age::decrypt(
        std::slice::from_ref(identity),
        std::fs::File::open(path).unwrap(),
        &mut out,
    )?;
    Ok(out)
}

fn blob(dir: &Path, reference: &str, part: &str) -> std::path::PathBuf {
    aigis_ledger::content::blob_path(&dir.join("content"), reference, part).unwrap()
}

#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn encrypted_content_is_sealed_per_tenant_and_shredding_keeps_the_log_verifying() {
    let dir = tempdir("ledger-content");
    let ledger_keys = LedgerKeys::generate("gw.test/ledger").unwrap();
    ledger_keys.write_new(&dir.join("ledger.key")).unwrap();
    std::fs::write(
        dir.join("pepper"),
        "test-pepper-0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    std::fs::write(
        dir.join("all.cedar"),
        "@id(\"all\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    // team-a: a classical recipient inline; team-b: a post-quantum one from a file.
    let team_a = Identity::X25519(X25519Identity::generate().unwrap());
    let team_b = Identity::Pq(PqIdentity::generate().unwrap());
    let recipient = |i: &Identity| i.to_recipient().unwrap().unwrap().to_string();
    std::fs::write(
        dir.join("team-b.recipients"),
        format!("# team b\n{}\n", recipient(&team_b)),
    )
    .unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{SERVER}[identity.api_keys]\nstore = \"sqlite:keys.db\"\npepper = \"file:pepper\"\ncache_ttl = \"0\"\n\
         [policy]\npolicies = [\"file:all.cedar\"]\n{}\
         [[routes]]\nname = \"r\"\nmodels = [\"m*\"]\nupstream = \"m\"\ncontent = \"encrypted\"\n\
         [[routes]]\nname = \"plain\"\nmodels = [\"p\"]\nupstream = \"m\"\n\
         [ledger]\nstore = \"sqlite:ledger.db\"\nsigning_key = \"file:ledger.key\"\ncheckpoint_every = \"50ms\"\n\
         [ledger.capture]\ndir = \"content\"\nrecipients = {{ team-a = [\"{}\"], team-b = [\"file:team-b.recipients\"] }}\n",
        upstream("m", &m.base_url(), ""),
        recipient(&team_a),
    );
    let loaded = aigis_gateway::config::parse(&cfg, &dir, false).unwrap();
    let api = loaded.config.identity.clone().unwrap().api_keys.unwrap();
    let keys = identify::open_api_keys(&api).await.unwrap();
    let gw = aigis_gateway::Gateway::start(loaded.config, None)
        .await
        .unwrap();
    let addr = gw.public_addr();
    let alice = key(&keys, "alice", &["team-a"]).await;
    let bob = key(&keys, "bob", &["team-b"]).await;
    let loner = key(&keys, "loner", &[]).await;

    let body =
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": SECRET_PROMPT}]})
            .to_string();
    let a = call(addr, &alice, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a_id = a.headers["x-request-id"].to_str().unwrap().to_owned();

    // A tenant with no recipients (no team, no `default`) is refused: never plaintext.
    let served_before = m.requests().len();
    let refused = call(addr, &loner, &body).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.error_code(), "audit_unavailable");
    assert_eq!(
        m.requests().len(),
        served_before,
        "a refused request never reaches the model"
    );
    // A route without capture serves that caller.
    let plain = call(addr, &loner, &chat("p", false)).await;
    assert_eq!(plain.status, 200, "{}", plain.body);

    // A stream captures what the client got.
    let stream_body = serde_json::json!({"model": "m-chunks-4", "stream": true,
        "messages": [{"role": "user", "content": "stream it"}]})
    .to_string();
    let resp = send_raw_stream(addr, &bob, &stream_body).await;
    let (b_id, streamed) = resp;
    let db = dir.join("ledger.db");
    assert!(recorded(&db, 4).await, "the stream's record arrives");
    gw.shutdown().await;

    let mut store = SqliteStore::open_existing(&db).unwrap();
    let report = audit::verify(&mut store, &ledger_keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let ev = event_of(&mut store, &a_id);
    let reference = ev.content.clone().expect("the event names the content");
    assert!(reference.starts_with("team-a/"), "{reference}");
    let req_blob = blob(&dir, &reference, "request");
    let resp_blob = blob(&dir, &reference, "response");
    for path in [&req_blob, &resp_blob, &db] {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(17).any(|w| w == b"purple elephants "),
            "plaintext content in {}",
            path.display()
        );
    }
    // Readable with the tenant's identity: exactly what was sent and what came back.
    assert_eq!(decrypt(&req_blob, &team_a).unwrap(), body.as_bytes());
    assert_eq!(decrypt(&resp_blob, &team_a).unwrap(), a.body.as_bytes());
    assert!(ledger_keys.content().matches(
        "response",
        &a_id,
        a.body.as_bytes(),
        ev.response_digest.as_ref().unwrap()
    ));
    // Not with another tenant's.
    let wrong = decrypt(&req_blob, &team_b).unwrap_err();
    assert_eq!(wrong.class(), age::FailureClass::NoMatch, "{wrong}");

    let bev = event_of(&mut store, &b_id);
    let b_ref = bev.content.clone().unwrap();
    assert!(b_ref.starts_with("team-b/"), "{b_ref}");
    assert!(bev.stream);
    assert_eq!(
        decrypt(&blob(&dir, &b_ref, "response"), &team_b).unwrap(),
        streamed.as_bytes(),
        "a stream's captured content is what the client got"
    );
    assert!(decrypt(&blob(&dir, &b_ref, "response"), &team_a).is_err());
    let all = events(&mut store);
    let loner_event = all.iter().find(|e| e.status == 503).unwrap();
    assert_eq!(loner_event.content, None);
    assert!(
        all.iter()
            .filter(|e| e.route.as_deref() == Some("plain"))
            .all(|e| e.content.is_none())
    );

    // Crypto-shredding: team-a's content is gone; the log still verifies and keeps its hashes.
    std::fs::remove_dir_all(dir.join("content").join("team-a")).unwrap();
    let report = audit::verify(&mut store, &ledger_keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 4);
    assert_eq!(event_of(&mut store, &a_id).prompt_digest, ev.prompt_digest);
    drop(keys);
    std::fs::remove_dir_all(&dir).ok();
}

/// Streams one chat request as `auth`; returns (request id, everything the client received).
async fn send_raw_stream(addr: std::net::SocketAddr, auth: &str, body: &str) -> (String, String) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", auth)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (id, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_client_address_is_recorded_masked_to_its_network_or_not_at_all() {
    for (mode, expected) in [("network", Some("127.0.0.0")), ("off", None)] {
        let dir = tempdir(&format!("ledger-ip-{mode}"));
        LedgerKeys::generate("gw.test/ledger")
            .unwrap()
            .write_new(&dir.join("ledger.key"))
            .unwrap();
        let m = mock(Behavior::default()).await;
        let cfg = one_route(&m, "") + &ledger_config(&format!("client_ip = \"{mode}\"\n"));
        let gw = gateway_in(&cfg, &dir).await;
        let r = send_from(
            Some(std::net::IpAddr::from([127, 0, 0, 77])),
            gw.public_addr(),
            Method::POST,
            "/v1/chat/completions",
            &[],
            &chat("m", false),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        let db = dir.join("ledger.db");
        assert!(recorded(&db, 1).await);
        gw.shutdown().await;
        let mut store = SqliteStore::open_existing(&db).unwrap();
        assert_eq!(
            event_of(&mut store, &id).client_ip.as_deref(),
            expected,
            "{mode}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

fn ledger_config(extra: &str) -> String {
    format!(
        "\n[ledger]\nstore = \"sqlite:ledger.db\"\nsigning_key = \"file:ledger.key\"\ncheckpoint_every = \"50ms\"\n{extra}"
    )
}

#[tokio::test]
async fn events_carry_limit_outcomes_tokens_and_the_response_digest() {
    let dir = tempdir("ledger-fields");
    let keys = LedgerKeys::generate("gw.test/ledger").unwrap();
    keys.write_new(&dir.join("ledger.key")).unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{}\n[[limits]]\nname = \"two-a-minute\"\nscope = \"principal\"\nrequests = \"2/min\"\n\
         [[limits]]\nname = \"tokens\"\nscope = \"principal\"\ntokens = \"100k/hour\"\nmodels = [\"m-*\"]\n{}",
        one_route(&m, "").replace("models = [\"m\"]", "models = [\"m*\"]"),
        ledger_config("")
    );
    let gw = gateway_in(&cfg, &dir).await;
    let addr = gw.public_addr();
    let ok = post(addr, "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok_id = ok.headers["x-request-id"].to_str().unwrap().to_owned();
    // A metered stream: tokens from the stream meter (the mock reports no usage in it).
    let (status, mut b) =
        open_stream(addr, "/v1/chat/completions", &chat("m-chunks-3", true)).await;
    assert_eq!(status, 200);
    let mut streamed = String::new();
    while let Some(t) = next_text(&mut b).await {
        streamed.push_str(&t);
    }
    let refused = post(addr, "/v1/chat/completions", &chat("m", false)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let refused_id = refused.headers["x-request-id"].to_str().unwrap().to_owned();
    let db = dir.join("ledger.db");
    assert!(recorded(&db, 3).await);
    gw.shutdown().await;

    let mut store = SqliteStore::open_existing(&db).unwrap();
    let ev = event_of(&mut store, &ok_id);
    let outcomes: Vec<(&str, &str)> = ev
        .limits
        .iter()
        .map(|l| (l.name.as_str(), l.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, [("two-a-minute", "admitted")]);
    let tokens = ev.tokens.expect("usage of a complete response");
    assert_eq!((tokens.prompt, tokens.completion), (5, 5));
    assert!(keys.content().matches(
        "response",
        &ok_id,
        ok.body.as_bytes(),
        ev.response_digest.as_ref().expect("response digest")
    ));
    assert_eq!(ev.tls_group, None, "plain TCP has no TLS group");
    assert_eq!(ev.client_ip.as_deref(), Some("127.0.0.1"), "the TCP peer");

    let all = events(&mut store);
    let stream = all.iter().find(|e| e.stream).unwrap();
    let outcomes: Vec<(&str, &str)> = stream
        .limits
        .iter()
        .map(|l| (l.name.as_str(), l.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [("two-a-minute", "admitted"), ("tokens", "admitted")]
    );
    let t = stream.tokens.expect("the stream meter's count");
    assert!(t.prompt > 0 && t.completion > 0, "{t:?}");
    assert!(keys.content().matches(
        "response",
        &stream.request_id,
        streamed.as_bytes(),
        stream.response_digest.as_ref().unwrap()
    ));

    let r = event_of(&mut store, &refused_id);
    assert_eq!(r.status, 429);
    assert_eq!(r.limits[0].name, "two-a-minute");
    assert_eq!(r.limits[0].outcome, "refused");
    assert_eq!(r.tokens, None, "a refused request used no tokens");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_unmetered_anthropic_stream_records_its_reported_usage() {
    let dir = tempdir("ledger-usage");
    let keys = LedgerKeys::generate("gw.test/ledger").unwrap();
    keys.write_new(&dir.join("ledger.key")).unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{}{}",
        one_route(&m, "")
            .replace("models = [\"m\"]", "models = [\"m*\"]")
            .replace("kind = \"openai\"", "kind = \"anthropic\"")
            .replace("/v1\"", "\""),
        ledger_config("")
    );
    let gw = gateway_in(&cfg, &dir).await;
    let body = serde_json::json!({"model": "m-chunks-3", "stream": true, "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let (status, mut b) = open_stream(gw.public_addr(), "/v1/messages", &body).await;
    assert_eq!(status, 200);
    while next_text(&mut b).await.is_some() {}
    let db = dir.join("ledger.db");
    assert!(recorded(&db, 1).await);
    gw.shutdown().await;
    let mut store = SqliteStore::open_existing(&db).unwrap();
    let ev = &events(&mut store)[0];
    let t = ev.tokens.expect("message_start and message_delta usage");
    assert_eq!((t.prompt, t.completion), (5, 5));
    assert!(ev.limits.is_empty(), "no limit applies");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_tls_connection_records_its_key_exchange_group() {
    let dir = tempdir("ledger-tls");
    let keys = LedgerKeys::generate("gw.test/ledger").unwrap();
    keys.write_new(&dir.join("ledger.key")).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{}{}",
        one_route(&m, "").replace(
            "admin_listen = \"127.0.0.1:0\"\n",
            "admin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"file:cert.pem\"\nkey = \"file:key.pem\"\n"
        ),
        ledger_config("")
    );
    let gw = gateway_in(&cfg, &dir).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.public_addr())
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let body = chat("m", false);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut tls, req.as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tls, &mut out)
        .await
        .ok();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    gw.shutdown().await;
    let mut store = SqliteStore::open_existing(&dir.join("ledger.db")).unwrap();
    let ev = &events(&mut store)[0];
    assert_eq!(ev.tls_group.as_deref(), Some("X25519MLKEM768"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Admin calls on the ledger: a created key is the target of its event, a rotation names the
/// new key, a reload carries its caller, and a refused call (403) and a failed login (401)
/// are recorded too.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn admin_calls_are_recorded_with_their_caller_target_and_refusals() {
    let dir = tempdir("ledger-admin");
    LedgerKeys::generate("gw.test/ledger")
        .unwrap()
        .write_new(&dir.join("ledger.key"))
        .unwrap();
    std::fs::write(
        dir.join("pepper"),
        "test-pepper-0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "{SERVER}[identity.api_keys]\nstore = \"sqlite:keys.db\"\npepper = \"file:pepper\"\ncache_ttl = \"0\"\n{}{}\
         [ledger]\nstore = \"sqlite:ledger.db\"\nsigning_key = \"file:ledger.key\"\ncheckpoint_every = \"50ms\"\n",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"m\"]", "\"m\""),
    );
    let file = dir.join("aigis.toml");
    std::fs::write(&file, &cfg).unwrap();
    let loaded = aigis_gateway::config::load(&file, false).unwrap();
    let api = loaded.config.identity.clone().unwrap().api_keys.unwrap();
    let keys = identify::open_api_keys(&api).await.unwrap();
    let gw = aigis_gateway::Gateway::start(loaded.config, Some((file.clone(), false)))
        .await
        .unwrap();
    let admin_addr = gw.admin_addr();
    let spec = |name: &str, roles: &[&str]| KeySpec {
        name: name.into(),
        kind: "service".into(),
        teams: Vec::new(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        expires_in: None,
    };
    let root = keys.create(spec("root", &["admin"])).await.unwrap();
    let reader = keys.create(spec("reader", &[])).await.unwrap();
    let admin = [("x-api-key", root.secret.as_str())];
    let created = send(
        admin_addr,
        Method::POST,
        "/admin/keys",
        &admin,
        r#"{"name":"via-api"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created_id = created.json()["id"].as_str().unwrap().to_owned();
    let rotated = send(
        admin_addr,
        Method::POST,
        "/admin/keys/via-api/rotate",
        &admin,
        "",
    )
    .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let rotated_id = rotated.json()["id"].as_str().unwrap().to_owned();
    let reload = send(admin_addr, Method::POST, "/admin/reload", &admin, "").await;
    assert_eq!(reload.status, 200, "{}", reload.body);
    let refused = send(
        admin_addr,
        Method::POST,
        "/admin/keys",
        &[("x-api-key", reader.secret.as_str())],
        r#"{"name":"nope"}"#,
    )
    .await;
    assert_eq!(refused.status, 403);
    let bad = send(
        admin_addr,
        Method::GET,
        "/admin/keys",
        &[("x-api-key", "aigis_bad_key")],
        "",
    )
    .await;
    assert_eq!(bad.status, 401);
    gw.shutdown().await;
    let mut store = SqliteStore::open_existing(&dir.join("ledger.db")).unwrap();
    let all = events(&mut store);
    assert!(
        all.iter()
            .all(|e| e.client_ip.as_deref() == Some("127.0.0.1")),
        "every admin event names the caller's address"
    );
    let got: Vec<(String, Option<String>, Option<String>, u16)> = all
        .into_iter()
        .map(|e| (e.action, e.principal, e.target, e.status))
        .collect();
    let root_principal = Some(format!("key:{}", root.record.id));
    assert_eq!(
        got,
        [
            (
                "keys.create".into(),
                root_principal.clone(),
                Some(created_id),
                201
            ),
            (
                "keys.rotate".into(),
                root_principal.clone(),
                Some("via-api".into()),
                201
            ),
            ("config.reload".into(), root_principal, None, 200),
            (
                "keys.create".into(),
                Some(format!("key:{}", reader.record.id)),
                None,
                403
            ),
            ("admin.authenticate".into(), None, None, 401),
        ]
    );
    let rotation = events(&mut store).remove(1);
    assert_eq!(rotation.detail, Some(format!("new key {rotated_id}")));
    std::fs::remove_dir_all(&dir).unwrap();
}
