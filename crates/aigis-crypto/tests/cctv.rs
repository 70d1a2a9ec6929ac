//! Runs every age test vector in `../shared/data/age-cctv/testdata` (C2SP CCTV): decrypts each
//! file with the vector's identities/passphrases and checks the outcome class and the SHA-256
//! of all plaintext released (also for payload failures). Skips with a notice when the folder
//! is absent, unless `AIGIS_REQUIRE_SHARED=1`.
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

use std::io::Read;
use std::path::PathBuf;

use aigis_crypto::age::{self, FailureClass, Identity, ScryptIdentity};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

fn testdata() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/age-cctv/testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("AIGIS_REQUIRE_SHARED").as_deref() != Ok("1"),
        "AIGIS_REQUIRE_SHARED=1 but {} is missing",
        dir.display()
    );
    eprintln!(
        "notice: {} not found; skipping the age CCTV vectors",
        dir.display()
    );
    None
}

struct Vector {
    expect: String,
    payload: Option<String>,
    identities: Vec<Identity>,
    compressed: bool,
    body: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Vector {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("blank line after the vector header");
    let head = std::str::from_utf8(&bytes[..split]).expect("UTF-8 vector header");
    let mut v = Vector {
        expect: String::new(),
        payload: None,
        identities: Vec::new(),
        compressed: false,
        body: bytes[split + 2..].to_vec(),
    };
    for line in head.lines() {
        let (key, value) = line.split_once(": ").expect("key: value");
        match key {
            "expect" => v.expect = value.to_owned(),
            "payload" => v.payload = Some(value.to_owned()),
            "identity" => v
                .identities
                .push(Identity::parse(value).expect("vector identity")),
            "passphrase" => v.identities.push(Identity::Scrypt(ScryptIdentity::new(
                Zeroizing::new(value.to_owned()),
                age::DEFAULT_MAX_LOG_N,
            ))),
            "compressed" => v.compressed = value == "zlib",
            _ => {}
        }
    }
    if v.compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&v.body[..])
            .read_to_end(&mut out)
            .expect("zlib");
        v.body = out;
    }
    v
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_cctv_vector() {
    let Some(dir) = testdata() else { return };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    assert!(
        names.len() >= 143,
        "expected the full CCTV set, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let v = parse(&std::fs::read(path).expect("read vector"));
        let mut released = Vec::new();
        let result = age::decrypt(&v.identities, &v.body[..], &mut released);
        let got = match &result {
            Ok(_) => "success",
            Err(e) => match e.class() {
                FailureClass::Armor => "armor failure",
                FailureClass::Header => "header failure",
                FailureClass::HeaderMac => "HMAC failure",
                FailureClass::NoMatch => "no match",
                FailureClass::Payload => "payload failure",
                FailureClass::Other => "other",
            },
        };
        if got != v.expect {
            failures.push(format!(
                "{name}: expected {}, got {got} ({result:?})",
                v.expect
            ));
            continue;
        }
        if let Some(want) = &v.payload {
            let have = hex(digest::digest(&digest::SHA256, &released).as_ref());
            if &have != want {
                failures.push(format!("{name}: released plaintext hash {have} != {want}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
    eprintln!("{} CCTV vectors passed", names.len());
}
