//! Arbitrary bytes as a DSSE envelope, parsed and verified against a fixed trusted Ed25519 key:
//! no panic, and nothing verifies (the fuzzer cannot forge a signature).
#![no_main]

use std::sync::LazyLock;

use aigis_crypto::dsse::{Envelope, TrustedKeys};
use aigis_crypto::sign::{SignAlg, SigningKey};
use libfuzzer_sys::fuzz_target;

static TRUST: LazyLock<TrustedKeys> = LazyLock::new(|| {
    let key = SigningKey::generate(SignAlg::Ed25519).unwrap();
    TrustedKeys::new().with_key(key.verifying_key().clone())
});

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::from_json(data) {
        assert!(TRUST.verify(&envelope).is_err());
    }
});
