//! Arbitrary bytes as every key encoding aigis imports (PKCS#8/SPKI DER, PEM, JWK): no panic,
//! and anything accepted re-exports to an encoding that imports back to the same key.
#![no_main]

use aigis_crypto::sign::{SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
