//! The `oms_bundle` fuzz target's properties on stable: replays `fuzz/corpus/oms_bundle` and
//! `fuzz/artifacts/oms_bundle` when present, and runs the same checks on deterministic
//! mutations (bit flips, truncations) of bundles made here; plus named bad-input cases
//! (tampered bundles, wrong payload types, duplicate paths, path traversal, huge statements),
//! each with the precise error it must produce.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::path::Path;

use aigis_crypto::sign::{SignAlg, SigningKey};
use aigis_supply::signing::bundle::Material;
use aigis_supply::signing::statement::MAX_STATEMENT_LEN;
use aigis_supply::signing::verify::verify_bundle;
use aigis_supply::signing::{
    Bundle, Identity, ModelManifest, SignOptions, SigningError, Trust, sign_model,
};
use serde_json::json;

/// The fuzz target's body.
fn target(data: &[u8], trust: &Trust) {
    if let Ok(bundle) = Bundle::parse(data) {
        assert!(verify_bundle(&bundle, trust, false).is_err());
        Bundle::parse(bundle.to_json().as_bytes()).unwrap();
    }
    if let Ok(m) = ModelManifest::from_statement(data) {
        let again = ModelManifest::from_statement(&m.to_statement().unwrap()).unwrap();
        assert_eq!(again.resources, m.resources);
    }
}

fn stranger() -> Trust {
    Trust::Keys(vec![
        SigningKey::generate(SignAlg::EcdsaP256)
            .unwrap()
            .verifying_key()
            .clone(),
    ])
}

fn signed_bundle(key: &SigningKey) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/w.bin"), [5u8; 700]).unwrap();
    std::fs::write(root.join("x"), b"x").unwrap();
    sign_model(
        &root,
        &[key],
        Identity::Key,
        &SignOptions::default(),
        &|_| {},
    )
    .unwrap()
    .into_bytes()
}

#[test]
fn replay_corpus_and_mutations() {
    let trust = stranger();
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for dir in [
        fuzz.join("corpus/oms_bundle"),
        fuzz.join("artifacts/oms_bundle"),
    ] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            target(&std::fs::read(e.path()).unwrap(), &trust);
        }
    }
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let good = signed_bundle(&key);
    let payload = Bundle::parse(&good).unwrap().payload;
    for seed in [&good, &payload] {
        for i in (0..seed.len()).step_by(7) {
            let mut m = seed.clone();
            m[i] ^= 1 << (i % 8);
            target(&m, &trust);
            target(&seed[..i], &trust);
        }
    }
}

/// Signs `statement` (any JSON) as a bundle with `key`, as a malicious signer could.
fn bundle_of(statement: &serde_json::Value, payload_type: &str, key: &SigningKey) -> Bundle {
    let mut b = Bundle::sign(
        Material::PublicKey {
            hint: None,
            raw_pem: None,
        },
        serde_json::to_vec(statement).unwrap(),
        &[key],
    )
    .unwrap();
    if payload_type != b.payload_type {
        b.payload_type = payload_type.into();
        let pae = aigis_crypto::dsse::pae(payload_type, &b.payload);
        b.signatures[0].sig = key.sign(&pae).unwrap();
    }
    b
}

fn statement(resources: &serde_json::Value) -> serde_json::Value {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for r in resources.as_array().unwrap() {
        ctx.update(&hex::decode(r["digest"].as_str().unwrap()).unwrap());
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": hex::encode(ctx.finish())}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
                      "resources": resources},
    })
}

fn check(b: &Bundle, key: &SigningKey) -> SigningError {
    let trust = Trust::Keys(vec![key.verifying_key().clone()]);
    match verify_bundle(b, &trust, false) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

const D: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn bad_statements_are_refused_precisely() {
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let dup = statement(
        &json!([{"name": "a", "algorithm": "sha256", "digest": D}, {"name": "a", "algorithm": "sha256", "digest": D}]),
    );
    assert!(
        matches!(check(&bundle_of(&dup, "application/vnd.in-toto+json", &key), &key), SigningError::DuplicatePath { name } if name == "a")
    );
    for bad in ["../etc/passwd", "/abs", "a/../../b", "a\\b", "a//b"] {
        let st = statement(&json!([{"name": bad, "algorithm": "sha256", "digest": D}]));
        let err = check(&bundle_of(&st, "application/vnd.in-toto+json", &key), &key);
        assert!(
            matches!(err, SigningError::UnsafePath { .. }),
            "{bad}: {err}"
        );
    }
    let ok = statement(&json!([{"name": "a", "algorithm": "sha256", "digest": D}]));
    let err = check(&bundle_of(&ok, "application/json", &key), &key);
    assert!(matches!(err, SigningError::PayloadType { .. }), "{err}");
    let mut wrong_root = ok.clone();
    wrong_root["subject"][0]["digest"]["sha256"] = json!(D);
    assert!(matches!(
        check(
            &bundle_of(&wrong_root, "application/vnd.in-toto+json", &key),
            &key
        ),
        SigningError::SubjectDigest { .. }
    ));
    let mut other_type = ok.clone();
    other_type["predicateType"] = json!("https://slsa.dev/provenance/v1");
    assert!(matches!(
        check(
            &bundle_of(&other_type, "application/vnd.in-toto+json", &key),
            &key
        ),
        SigningError::Statement { .. }
    ));
    let mut traversal_ignore = ok;
    traversal_ignore["predicate"]["serialization"]["ignore_paths"] = json!(["../../outside"]);
    assert!(matches!(
        check(
            &bundle_of(&traversal_ignore, "application/vnd.in-toto+json", &key),
            &key
        ),
        SigningError::UnsafePath { .. }
    ));
}

#[test]
fn tampered_and_huge_bundles() {
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let good = signed_bundle(&key);
    let mut b = Bundle::parse(&good).unwrap();
    b.payload[10] ^= 1;
    assert!(matches!(check(&b, &key), SigningError::BadSignature { .. }));
    let huge = vec![b' '; MAX_STATEMENT_LEN + 1];
    assert!(matches!(
        ModelManifest::from_statement(&huge),
        Err(SigningError::TooLarge { .. })
    ));
    let too_big = vec![b' '; aigis_supply::signing::bundle::MAX_BUNDLE_LEN + 1];
    assert!(matches!(
        Bundle::parse(&too_big),
        Err(SigningError::TooLarge { .. })
    ));
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["dsseEnvelope"]["signatures"] = json!([]);
    assert!(matches!(
        Bundle::parse(&serde_json::to_vec(&v).unwrap()),
        Err(SigningError::Bundle { .. })
    ));
}
