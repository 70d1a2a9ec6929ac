//! Replays the cargo-fuzz corpora and crash files of the age targets (`fuzz/corpus/age_*`,
//! `fuzz/artifacts/age_*`) as normal tests, and runs the same properties on mutated valid files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::assigning_clones,
    clippy::format_collect,
    reason = "test code: a failed step should abort the test"
)]

use std::io::{Read, Write};
use std::path::Path;

use aigis_crypto::age::{
    self, ArmorReader, ArmorWriter, EncryptOptions, Header, Identity, X25519Identity,
};
use proptest::prelude::*;

fn header_target(data: &[u8], id: &Identity) {
    let _ = Header::parse(&mut &data[..]);
    let _ = age::decrypt(std::slice::from_ref(id), data, std::io::sink());
}

fn armor_target(data: &[u8]) {
    let mut decoded = Vec::new();
    if ArmorReader::new(data).read_to_end(&mut decoded).is_ok() {
        let mut w = ArmorWriter::new(Vec::new()).unwrap();
        w.write_all(&decoded).unwrap();
        let again = w.finish().unwrap();
        let mut back = Vec::new();
        ArmorReader::new(&again[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, decoded);
    }
}

fn files(target: &str) -> Vec<Vec<u8>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("artifacts").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn replay_corpora() {
    let id = Identity::X25519(X25519Identity::generate().unwrap());
    for f in files("age_header") {
        header_target(&f, &id);
    }
    for f in files("age_armor") {
        armor_target(&f);
    }
}

fn sample(armor: bool) -> (Identity, Vec<u8>) {
    let id = Identity::X25519(X25519Identity::generate().unwrap());
    let r = id.to_recipient().unwrap().unwrap();
    let mut out = Vec::new();
    let options = EncryptOptions {
        armor,
        ..EncryptOptions::default()
    };
    age::encrypt(&[r], &options, &[1u8; 300][..], &mut out).unwrap();
    (id, out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(armor: bool, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let (id, mut data) = sample(armor);
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let keep = cut.index(data.len() + 1);
        header_target(&data[..keep], &id);
        armor_target(&data[..keep]);
    }
}
