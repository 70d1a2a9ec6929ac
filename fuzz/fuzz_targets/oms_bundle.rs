//! Arbitrary bytes as an OpenSSF model signing bundle (Sigstore bundle JSON with a DSSE
//! envelope), checked against a fixed trusted P-256 key, and as a bare OMS statement: no panic,
//! nothing verifies (the fuzzer cannot forge a signature), and accepted statements have safe
//! names and round-trip.
#![no_main]

use std::sync::LazyLock;

use aigis_crypto::sign::{SignAlg, SigningKey};
use aigis_supply::signing::verify::verify_bundle;
use aigis_supply::signing::{Bundle, ModelManifest, Trust};
use libfuzzer_sys::fuzz_target;

static TRUST: LazyLock<Trust> = LazyLock::new(|| {
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    Trust::Keys(vec![key.verifying_key().clone()])
});

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::parse(data) {
        assert!(verify_bundle(&bundle, &TRUST, false).is_err());
        let _ = Bundle::parse(bundle.to_json().as_bytes()).unwrap();
    }
    if let Ok(m) = ModelManifest::from_statement(data) {
        let again = ModelManifest::from_statement(&m.to_statement().unwrap()).unwrap();
        assert_eq!(again.resources, m.resources);
    }
});
