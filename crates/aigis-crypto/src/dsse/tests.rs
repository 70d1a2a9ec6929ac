use super::*;
use crate::sign::{SignAlg, SigningKey};

const TYPE: &str = "application/vnd.in-toto+json";
const BODY: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;

#[test]
fn pae_matches_the_spec_example() {
    // From the DSSE protocol description.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("t", b""), b"DSSEv1 1 t 0 ");
}

#[test]
fn every_algorithm_signs_and_verifies_envelopes() {
    for alg in SignAlg::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let env = Envelope::sign(TYPE, BODY, &[&key]).unwrap();
        let parsed = Envelope::from_json(env.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, env);
        let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
        let verified = trust.verify(&parsed).unwrap();
        assert_eq!(verified.payload(), BODY);
        assert_eq!(verified.payload_type(), TYPE);
        assert_eq!(verified.key_ids(), [key.verifying_key().key_id()]);
    }
}

#[test]
fn tampered_payload_or_type_fails() {
    let key = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
    let env = Envelope::sign(TYPE, BODY, &[&key]).unwrap();

    let mut bad = env.clone();
    bad.payload = STANDARD.encode(br#"{"_type":"evil"}"#);
    assert!(matches!(
        trust.verify(&bad),
        Err(DsseError::Untrusted { valid: 0, .. })
    ));

    let mut bad = env.clone();
    bad.payload_type = "application/json".into();
    assert!(trust.verify(&bad).is_err());

    let mut bad = env.clone();
    let mut sig = STANDARD.decode(&bad.signatures[0].sig).unwrap();
    sig[100] ^= 1;
    bad.signatures[0].sig = STANDARD.encode(sig);
    assert!(trust.verify(&bad).is_err());
}

#[test]
fn unknown_or_untrusted_keys_fail_and_keyid_is_only_a_hint() {
    let signer = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let other = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let env = Envelope::sign(TYPE, BODY, &[&signer]).unwrap();

    let err = TrustedKeys::new()
        .with_key(other.verifying_key().clone())
        .verify(&env)
        .unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert!(TrustedKeys::new().verify(&env).is_err(), "no trusted keys");

    // Claiming a trusted key's id does not help an untrusted signer.
    let mut spoofed = env.clone();
    spoofed.signatures[0].keyid = other.verifying_key().key_id();
    let trust_other = TrustedKeys::new().with_key(other.verifying_key().clone());
    assert!(trust_other.verify(&spoofed).is_err());

    // An empty keyid is tried against every trusted key.
    let mut anonymous = env.clone();
    anonymous.signatures[0].keyid.clear();
    let trust = TrustedKeys::new()
        .with_key(other.verifying_key().clone())
        .with_key(signer.verifying_key().clone());
    trust.verify(&anonymous).unwrap();
}

#[test]
fn threshold_counts_distinct_trusted_keys() {
    let a = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let b = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let trust = TrustedKeys::new()
        .with_key(a.verifying_key().clone())
        .with_key(b.verifying_key().clone())
        .with_threshold(2);
    let one = Envelope::sign(TYPE, BODY, &[&a]).unwrap();
    assert!(matches!(
        trust.verify(&one),
        Err(DsseError::Untrusted {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
    let mut twice = one.clone();
    twice.signatures.push(one.signatures[0].clone());
    assert!(
        trust.verify(&twice).is_err(),
        "the same key twice is one key"
    );
    let both = Envelope::sign(TYPE, BODY, &[&a, &b]).unwrap();
    assert_eq!(trust.verify(&both).unwrap().key_ids().len(), 2);
}

#[test]
fn composite_key_never_accepts_one_half() {
    let key = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
    let env = Envelope::sign(TYPE, BODY, &[&key]).unwrap();
    let sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
    for half in [&sig[..3309], &sig[3309..]] {
        let mut bad = env.clone();
        bad.signatures[0].sig = STANDARD.encode(half);
        assert!(trust.verify(&bad).is_err());
    }
}

#[test]
fn post_quantum_only_ignores_classical_keys() {
    let ed = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let pq = SigningKey::generate(SignAlg::MlDsa65).unwrap();
    let trust = TrustedKeys::new()
        .with_key(ed.verifying_key().clone())
        .with_key(pq.verifying_key().clone())
        .post_quantum_only();
    let err = trust
        .verify(&Envelope::sign(TYPE, BODY, &[&ed]).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("post-quantum"), "{err}");
    trust
        .verify(&Envelope::sign(TYPE, BODY, &[&pq]).unwrap())
        .unwrap();
}

#[test]
fn malformed_envelopes_get_clear_errors() {
    let key = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
    let err = Envelope::from_json(b"{\"payload\": 1}").unwrap_err();
    assert!(matches!(err, DsseError::Json { line: 1, .. }), "{err}");
    assert!(Envelope::from_json(b"not json").is_err());
    let no_sigs = br#"{"payload":"","payloadType":"t","signatures":[]}"#;
    assert!(
        Envelope::from_json(no_sigs)
            .unwrap_err()
            .to_string()
            .contains("signatures")
    );
    let huge = vec![b' '; MAX_ENVELOPE_LEN + 1];
    assert!(matches!(
        Envelope::from_json(&huge),
        Err(DsseError::TooLarge { .. })
    ));

    let mut env = Envelope::sign(TYPE, BODY, &[&key]).unwrap();
    env.payload.push('!');
    let err = trust.verify(&env).unwrap_err();
    assert!(err.to_string().contains("payload"), "{err}");

    let mut env = Envelope::sign(TYPE, BODY, &[&key]).unwrap();
    env.signatures[0].sig = "%%%".into();
    let err = trust.verify(&env).unwrap_err();
    assert!(err.to_string().contains("signatures[0].sig"), "{err}");
}

#[test]
fn url_safe_unpadded_base64_is_accepted() {
    let key = SigningKey::generate(SignAlg::EcdsaP384).unwrap();
    let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
    let mut env = Envelope::sign(TYPE, &[0xfb, 0xff, 0xfe], &[&key]).unwrap();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    env.payload = url.encode([0xfb, 0xff, 0xfe]);
    env.signatures[0].sig = url.encode(STANDARD.decode(&env.signatures[0].sig).unwrap());
    trust.verify(&env).unwrap();
}
