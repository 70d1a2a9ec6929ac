//! Per-request cost of identity and authorization (divan):
//! `cargo bench -p aigis-gateway --bench identity`.
//!
//! - API-key verification (HMAC-SHA256 + cached prefix lookup),
//! - JWT ES256 verification with a cached JWKS,
//! - Cedar evaluation with 10 and 200 policies.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use aigis_gateway::authorize::{ModelResource, Policies, RequestFacts};
use aigis_gateway::config::{self, Secret};
use aigis_gateway::identify::{ApiKeys, KeySpec, KeyStore, Principal, PrincipalKind};

fn main() {
    divan::main();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[divan::bench]
fn api_key_verify(bencher: divan::Bencher) {
    let rt = rt();
    let dir = std::env::temp_dir().join(format!("aigis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("keys.db").display());
    let keys = rt.block_on(async {
        let store = KeyStore::open(&url).await.unwrap();
        let peppers = BTreeMap::from([(
            1,
            Secret::new("bench-pepper-0123456789abcdef0123456789abcdef"),
        )]);
        ApiKeys::new(store, peppers, 1, Duration::from_hours(1))
    });
    let spec = KeySpec {
        name: "bench".into(),
        teams: vec!["search".into()],
        ..KeySpec::default()
    };
    let key = rt.block_on(keys.create(spec)).unwrap().secret;
    rt.block_on(keys.verify(&key)).unwrap(); // warm the cache
    bencher.bench_local(|| rt.block_on(keys.verify(divan::black_box(&key))).unwrap());
    std::fs::remove_dir_all(dir).ok();
}

#[divan::bench]
fn jwt_es256_verify(bencher: divan::Bencher) {
    use base64::Engine as _;
    let rt = rt();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k1",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}]});
    let dir = std::env::temp_dir().join(format!("aigis-bench-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
    let cfg = "[[identity.oidc]]\nname = \"corp\"\nissuer = \"https://idp.example\"\naudiences = [\"aigis\"]\n\
               jwks = \"file:jwks.json\"\nalgorithms = [\"ES256\"]\n";
    let oidc = config::parse(cfg, &dir, false)
        .unwrap()
        .config
        .identity
        .unwrap()
        .oidc
        .remove(0);
    let issuer = rt
        .block_on(aigis_gateway::identify::jwt::Issuer::new(oidc))
        .unwrap();
    let now = aigis_gateway::identify::api_key::now();
    let claims = serde_json::json!({"iss": "https://idp.example", "aud": "aigis", "sub": "alice",
        "groups": ["search"], "iat": now, "exp": now + 3600});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    bencher.bench_local(|| {
        rt.block_on(issuer.verify(divan::black_box(&token)))
            .unwrap()
    });
    std::fs::remove_dir_all(dir).ok();
}

/// `n` policies in the shape of a real deployment: each team on its own route, some with
/// conditions, plus a few global rules.
fn policies(n: usize) -> Policies {
    let mut text = String::from(
        "@id(\"public\")\npermit (principal, action == Aigis::Action::\"chat\", resource) when { resource.classification == \"public\" };\n\
         @id(\"confidential\")\nforbid (principal, action, resource is Aigis::Model) when { resource.classification == \"confidential\" } unless { principal in Aigis::Team::\"finance\" };\n",
    );
    for i in 0..n.saturating_sub(2) {
        let _ = writeln!(
            text,
            "@id(\"team{i}\")\npermit (principal in Aigis::Team::\"team{i}\", action in [Aigis::Action::\"chat\", Aigis::Action::\"embed\"], resource) when {{ resource.route == \"route{i}\" && context.max_tokens <= 4000 }};"
        );
    }
    Policies::load(&[("bench.cedar".into(), text)]).unwrap()
}

fn principal() -> Principal {
    Principal {
        id: "key:bench".into(),
        name: "bench".into(),
        kind: PrincipalKind::Service,
        teams: vec!["team5".into()],
        roles: vec!["reader".into()],
        attributes: BTreeMap::new(),
        auth: "api_key",
    }
}

#[divan::bench(args = [10, 200])]
fn cedar_authorize(bencher: divan::Bencher, n: usize) {
    let policies = policies(n);
    let principal = principal();
    let tags = Vec::new();
    let model = ModelResource {
        model: "m5",
        route: "route5",
        provider: "openai",
        classification: "internal",
        tags: &tags,
    };
    let facts = RequestFacts {
        source_ip: [127, 0, 0, 1].into(),
        listener: "public",
        max_tokens: 100,
        stream: false,
    };
    assert!(
        policies
            .authorize_model(&principal, "chat", &model, facts)
            .allowed
    );
    bencher.bench_local(|| {
        policies.authorize_model(divan::black_box(&principal), "chat", &model, facts)
    });
}
