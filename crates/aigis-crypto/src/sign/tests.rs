use super::*;

const MSG: &[u8] = b"sha256:1f2e... model.safetensors";

fn keys() -> Vec<SigningKey> {
    SignAlg::ALL
        .into_iter()
        .map(|alg| SigningKey::generate(alg).unwrap())
        .collect()
}

#[test]
fn every_algorithm_signs_and_verifies_and_rejects_tampering() {
    for key in keys() {
        let sig = key.sign(MSG).unwrap();
        let pk = key.verifying_key();
        pk.verify(MSG, &sig).unwrap();
        assert!(pk.verify(b"other message", &sig).is_err(), "{}", key.alg());
        for byte in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[byte] ^= 0x01;
            assert!(pk.verify(MSG, &bad).is_err(), "{} byte {byte}", key.alg());
        }
        assert!(pk.verify(MSG, &sig[..sig.len() - 1]).is_err());
        assert!(pk.verify(MSG, &[]).is_err());
        let other = SigningKey::generate(key.alg()).unwrap();
        assert!(other.verifying_key().verify(MSG, &sig).is_err());
    }
}

#[test]
fn composite_requires_both_halves() {
    let key = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let pk = key.verifying_key();
    let sig = key.sign(MSG).unwrap();
    assert_eq!(sig.len(), composite::SIGNATURE_LEN);
    let (m_half, e_half) = sig.split_at(mldsa::SIGNATURE_LEN);

    // A flipped bit in either half fails.
    let mut bad = sig.clone();
    bad[10] ^= 0x80;
    assert!(pk.verify(MSG, &bad).is_err(), "ML-DSA half tampered");
    let mut bad = sig.clone();
    bad[mldsa::SIGNATURE_LEN + 10] ^= 0x80;
    assert!(pk.verify(MSG, &bad).is_err(), "Ed25519 half tampered");

    // Swapped halves fail.
    let swapped = [e_half, m_half].concat();
    assert!(pk.verify(MSG, &swapped).is_err());

    // One algorithm only, even a valid signature of that component's key over M or M', fails.
    assert!(pk.verify(MSG, m_half).is_err());
    assert!(pk.verify(MSG, e_half).is_err());
    let ed_only = [&vec![0u8; mldsa::SIGNATURE_LEN][..], e_half].concat();
    assert!(pk.verify(MSG, &ed_only).is_err(), "zeroed ML-DSA half");
    let mldsa_only = [m_half, &[0u8; 64][..]].concat();
    assert!(pk.verify(MSG, &mldsa_only).is_err(), "zeroed Ed25519 half");

    // Halves from two different composite signatures (same key) still verify: each is a valid
    // signature over the same M' (the draft's weak non-separability), so recombination is fine...
    let sig2 = key.sign(MSG).unwrap();
    let mixed = [m_half, &sig2[mldsa::SIGNATURE_LEN..]].concat();
    pk.verify(MSG, &mixed).unwrap();
    // ...but halves from another key's signature never do.
    let other = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let osig = other.sign(MSG).unwrap();
    let foreign = [m_half, &osig[mldsa::SIGNATURE_LEN..]].concat();
    assert!(pk.verify(MSG, &foreign).is_err());
}

#[test]
fn context_binds_mldsa_and_composite_and_is_refused_elsewhere() {
    for alg in [SignAlg::MlDsa65, SignAlg::MlDsa65Ed25519] {
        let key = SigningKey::generate(alg).unwrap();
        let sig = key.sign_with_context(MSG, b"aigis/manifest").unwrap();
        let pk = key.verifying_key();
        pk.verify_with_context(MSG, b"aigis/manifest", &sig)
            .unwrap();
        assert!(pk.verify_with_context(MSG, b"aigis/other", &sig).is_err());
        assert!(pk.verify(MSG, &sig).is_err(), "{alg}: empty context");
        let long = [0u8; 256];
        assert!(matches!(
            key.sign_with_context(MSG, &long),
            Err(SignError::ContextTooLong { len: 256 })
        ));
        assert!(pk.verify_with_context(MSG, &long, &sig).is_err());
    }
    for alg in [SignAlg::Ed25519, SignAlg::EcdsaP256, SignAlg::EcdsaP384] {
        let key = SigningKey::generate(alg).unwrap();
        assert!(key.sign_with_context(MSG, b"ctx").is_err());
    }
}

#[test]
fn ecdsa_signatures_are_der() {
    for alg in [SignAlg::EcdsaP256, SignAlg::EcdsaP384] {
        let key = SigningKey::generate(alg).unwrap();
        let sig = key.sign(MSG).unwrap();
        assert_eq!(sig[0], 0x30, "{alg}: Ecdsa-Sig-Value SEQUENCE");
        assert_eq!(usize::from(sig[1]) + 2, sig.len(), "{alg}: DER length");
    }
}

#[test]
fn pem_round_trips_for_every_algorithm() {
    for key in keys() {
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        let sig = back.sign(MSG).unwrap();
        key.verifying_key().verify(MSG, &sig).unwrap();

        let pub_pem = key.verifying_key().to_pem();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(
            &VerifyingKey::from_pem(&pub_pem).unwrap(),
            key.verifying_key()
        );
        // A public key is not a private key and vice versa.
        assert!(SigningKey::from_pem(&pub_pem).is_err());
        assert!(VerifyingKey::from_pem(&pem).is_err());
    }
}

#[test]
fn jwk_round_trips_for_every_algorithm() {
    for key in keys() {
        let private = key.to_jwk().unwrap();
        let back = SigningKey::from_jwk(&private).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        let public = key.verifying_key().to_jwk().to_string();
        assert!(!public.contains("\"d\"") && !public.contains("\"priv\""));
        assert_eq!(
            &VerifyingKey::from_jwk(&public).unwrap(),
            key.verifying_key()
        );
        assert!(SigningKey::from_jwk(&public).is_err(), "no private member");
    }
}

#[test]
fn jwk_rejects_mismatched_private_and_wrong_kid() {
    let a = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let b = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let mut ja: serde_json::Value = serde_json::from_str(&a.to_jwk().unwrap()).unwrap();
    let jb: serde_json::Value = serde_json::from_str(&b.to_jwk().unwrap()).unwrap();
    ja["d"] = jb["d"].clone();
    assert!(SigningKey::from_jwk(&ja.to_string()).is_err());
    let mut pub_a = a.verifying_key().to_jwk();
    pub_a["kid"] = "deadbeef".into();
    let err = VerifyingKey::from_jwk(&pub_a.to_string()).unwrap_err();
    assert!(err.to_string().contains("kid"), "{err}");
    for bad in [
        "",
        "[]",
        "{\"kty\":\"RSA\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"!!\"}",
    ] {
        assert!(VerifyingKey::from_jwk(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn key_id_is_sha256_of_spki_der() {
    for key in keys() {
        let pk = key.verifying_key();
        let expected = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &pk.to_spki_der(),
        ));
        assert_eq!(pk.key_id(), expected);
        assert_eq!(pk.key_id().len(), 64);
    }
}

#[test]
fn debug_output_has_no_key_material() {
    let key = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let debug = format!("{key:?}");
    let jwk: serde_json::Value = serde_json::from_str(&key.to_jwk().unwrap()).unwrap();
    let private = jwk["priv"].as_str().unwrap();
    assert!(!debug.contains(&private[..16]));
    assert!(debug.contains("key_id"));
}

#[test]
fn malformed_der_and_pem_give_located_errors() {
    let key = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    for cut in 0..der.len() {
        assert!(SigningKey::from_pkcs8_der(&der[..cut]).is_err());
    }
    let err = SigningKey::from_pkcs8_der(&der[..der.len() - 3]).unwrap_err();
    assert!(err.to_string().contains("byte"), "{err}");
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert!(SigningKey::from_pkcs8_der(&trailing).is_err());
    let huge = vec![0x30; pkcs8::MAX_KEY_DER + 1];
    assert!(VerifyingKey::from_spki_der(&huge).is_err());
    let err =
        VerifyingKey::from_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
            .unwrap_err();
    assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
    // An unknown algorithm OID (RSA) is named.
    let rsa_spki = der::tlv(
        der::TAG_SEQUENCE,
        &[
            der::algorithm_identifier(
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                None,
            ),
            der::tlv(der::TAG_BIT_STRING, &[0, 1, 2]),
        ]
        .concat(),
    );
    let err = VerifyingKey::from_spki_der(&rsa_spki).unwrap_err();
    assert!(matches!(err, SignError::UnsupportedOid { .. }), "{err}");
}

#[test]
fn alg_names_parse() {
    for alg in SignAlg::ALL {
        assert_eq!(alg.name().parse::<SignAlg>().unwrap(), alg);
    }
    assert!("rsa".parse::<SignAlg>().is_err());
}
