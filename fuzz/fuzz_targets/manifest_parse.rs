//! Arbitrary bytes as a digest manifest: no panic, and an accepted manifest has only safe
//! relative paths and re-serializes to JSON that parses to the same manifest.
#![no_main]

use aigis_crypto::digest::{Manifest, check_relative_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        for f in &m.files {
            assert!(check_relative_path(&f.path).is_ok());
        }
        assert_eq!(Manifest::from_json(m.to_json().as_bytes()).unwrap(), m);
    }
});
