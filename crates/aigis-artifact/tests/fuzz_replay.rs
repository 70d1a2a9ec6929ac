//! Replays every corpus and crash file that cargo-fuzz left for the artifact targets
//! (`fuzz/corpus/artifact_*`, `fuzz/artifacts/artifact_*`) through the scanner, plus a fixed
//! set of hostile inputs: nothing may panic, and every input ends in an outcome.

use std::path::PathBuf;

fn replay(bytes: &[u8], name: &str) {
    let outcome = aigis_artifact::scan::scan_bytes(bytes, name);
    // Touch the outcome so the scan cannot be optimised away.
    assert!(outcome.findings.len() + outcome.not_scanned.len() < usize::MAX);
}

#[test]
fn fuzz_corpus_and_crashes_replay_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(targets) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for target in targets.filter_map(Result::ok) {
            if !target
                .file_name()
                .to_string_lossy()
                .starts_with("artifact_")
            {
                continue;
            }
            for file in std::fs::read_dir(target.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                if let Ok(bytes) = std::fs::read(file.path()) {
                    replay(&bytes, &file.path().display().to_string());
                    replayed += 1;
                }
            }
        }
    }
    println!("{replayed} fuzz files replayed");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("zip-magic-only", b"PK\x03\x04".to_vec()),
        (
            "eocd-only",
            b"PK\x05\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                .to_vec(),
        ),
        (
            "npy-huge-header",
            b"\x93NUMPY\x02\x00\xff\xff\xff\xff".to_vec(),
        ),
        (
            "pickle-huge-frame",
            b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
        (
            "pickle-huge-binbytes8",
            b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f".to_vec(),
        ),
        (
            "pickle-stack-underflow",
            b"\x80\x02RRRbbb\x93\x93\x81\x92tuse.".to_vec(),
        ),
        (
            "pickle-deep-marks",
            [b"\x80\x02".as_slice(), &[b'('; 100_000], b"."].concat(),
        ),
        ("gzip-garbage", b"\x1f\x8b\x08\x00garbage".to_vec()),
        ("xz-garbage", b"\xfd7zXZ\x00garbage".to_vec()),
        ("7z-garbage", b"7z\xbc\xaf\x27\x1cgarbage".to_vec()),
        ("tar-bad-size", {
            let mut h = vec![0u8; 512];
            h[..4].copy_from_slice(b"name");
            h[124..135].copy_from_slice(b"77777777777");
            h[257..262].copy_from_slice(b"ustar");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            h
        }),
    ];
    for (name, bytes) in cases {
        replay(&bytes, name);
    }
}
