//! The fuzz targets' properties on stable: every truncation and every single-byte mutation of
//! valid key encodings (PKCS#8 and SPKI DER, PEM, JWK), DSSE envelopes and manifests is either
//! rejected with an error or accepted and round-trips; nothing panics, and no mutated envelope
//! verifies.

#![allow(clippy::unwrap_used, reason = "test")]

use aigis_crypto::digest::Manifest;
use aigis_crypto::dsse::{Envelope, TrustedKeys};
use aigis_crypto::sign::{SignAlg, SigningKey, VerifyingKey};

fn mutations(input: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let truncations = (0..input.len()).map(|n| input[..n].to_vec());
    let flips = (0..input.len()).flat_map(move |i| {
        [0x01u8, 0x80, 0xff].into_iter().map(move |x| {
            let mut m = input.to_vec();
            m[i] ^= x;
            m
        })
    });
    truncations.chain(flips)
}

fn import_all(data: &[u8]) {
    if let Ok(pk) = VerifyingKey::from_spki_der(data) {
        assert_eq!(VerifyingKey::from_spki_der(&pk.to_spki_der()).unwrap(), pk);
    }
    if let Ok(sk) = SigningKey::from_pkcs8_der(data) {
        let again = SigningKey::from_pkcs8_der(&sk.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again.verifying_key(), sk.verifying_key());
    }
    let text = String::from_utf8_lossy(data);
    let _ = VerifyingKey::from_pem(&text);
    let _ = SigningKey::from_pem(&text);
    let _ = VerifyingKey::from_jwk(&text);
    let _ = SigningKey::from_jwk(&text);
}

#[test]
fn mutated_keys_never_panic() {
    // Ed25519 and P-256 keep the run short; the composite's 2 KiB SPKI is sampled at its header.
    for alg in [SignAlg::Ed25519, SignAlg::EcdsaP256] {
        let key = SigningKey::generate(alg).unwrap();
        for encoding in [
            key.to_pkcs8_der().unwrap().to_vec(),
            key.verifying_key().to_spki_der(),
            key.to_jwk().unwrap().as_bytes().to_vec(),
            key.verifying_key().to_pem().into_bytes(),
        ] {
            for m in mutations(&encoding) {
                import_all(&m);
            }
        }
    }
    let composite = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let spki = composite.verifying_key().to_spki_der();
    for m in mutations(&spki[..40]) {
        import_all(&[&m[..], &spki[40..]].concat());
    }
    for m in mutations(&composite.to_pkcs8_der().unwrap()) {
        import_all(&m);
    }
}

#[test]
fn mutated_envelopes_never_verify() {
    let key = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let trust = TrustedKeys::new().with_key(key.verifying_key().clone());
    let envelope = Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}", &[&key]).unwrap();
    let json = envelope.to_json();
    for m in mutations(json.as_bytes()) {
        if let Ok(e) = Envelope::from_json(&m) {
            if e == envelope {
                continue; // e.g. a flip inside insignificant whitespace or an equivalent escape
            }
            if let Ok(v) = trust.verify(&e) {
                // Only encodings of the same payload may still verify (e.g. base64 padding).
                assert_eq!(v.payload(), b"{\"a\":1}");
                assert_eq!(v.payload_type(), "application/vnd.in-toto+json");
            }
        }
    }
}

#[test]
fn mutated_manifests_never_panic() {
    let d = "ab".repeat(32);
    let json = format!(
        r#"{{"version":1,"algorithm":"sha256","files":[{{"path":"a/b","size":3,"digest":"{d}"}},{{"path":"c","size":0,"digest":"{d}"}}]}}"#
    );
    for m in mutations(json.as_bytes()) {
        if let Ok(manifest) = Manifest::from_json(&m) {
            assert_eq!(
                Manifest::from_json(manifest.to_json().as_bytes()).unwrap(),
                manifest
            );
        }
    }
}
