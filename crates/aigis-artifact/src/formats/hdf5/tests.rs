#![allow(clippy::cast_possible_truncation, reason = "fixtures are small")]

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use aigis_report::Severity;
use proptest::prelude::*;

use super::{scan, sniff};
use crate::{Input, Origin, Outcome};

/// A minimal HDF5 file in h5py's default layout (superblock v0, object header v1) whose root
/// object header holds scalar fixed-length string attributes, as Keras 2 writes them.
fn h5(attrs: &[(&str, &str)]) -> Vec<u8> {
    let mut messages = Vec::new();
    for (name, value) in attrs {
        let mut m = vec![1, 0];
        let name_size = name.len() + 1;
        m.extend((name_size as u16).to_le_bytes());
        m.extend(8u16.to_le_bytes());
        m.extend(8u16.to_le_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        n.resize(name_size.div_ceil(8) * 8, 0);
        m.extend(n);
        m.extend([0x13, 0, 0, 0]);
        m.extend((value.len() as u32).to_le_bytes());
        m.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        m.extend(value.as_bytes());
        m.resize(m.len().div_ceil(8) * 8, 0);
        messages.extend(12u16.to_le_bytes());
        messages.extend((m.len() as u16).to_le_bytes());
        messages.extend([0, 0, 0, 0]);
        messages.extend(m);
    }
    let mut f = super::SIGNATURE.to_vec();
    f.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    f.extend([4, 0, 16, 0, 0, 0, 0, 0]);
    for a in [0u64, u64::MAX, 0, u64::MAX] {
        f.extend(a.to_le_bytes());
    }
    f.extend(0u64.to_le_bytes()); // link name offset
    f.extend(0x60u64.to_le_bytes()); // root object header
    f.resize(0x60, 0);
    f.extend([1, 0]);
    f.extend((attrs.len() as u16).to_le_bytes());
    f.extend(1u32.to_le_bytes());
    f.extend((messages.len() as u32).to_le_bytes());
    f.extend([0, 0, 0, 0]);
    f.extend(messages);
    f
}

fn run(bytes: &[u8]) -> Outcome {
    let mut c = Cursor::new(bytes.to_vec());
    let mut input = Input {
        source: &mut c,
        len: bytes.len() as u64,
        origin: Origin::file("model.h5"),
    };
    scan(&mut input)
}

const BENIGN_CONFIG: &str = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"units": 1}}]}}"#;
const EVIL_CONFIG: &str = r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"function": "system", "function_type": "function", "module": "os"}}]}}"#;

#[test]
fn handmade_keras_h5_is_read() {
    let benign = h5(&[("keras_version", "2.15.0"), ("model_config", BENIGN_CONFIG)]);
    assert!(sniff(&benign));
    let out = run(&benign);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?} {:?}",
        out.findings,
        out.not_scanned
    );
    let out = run(&h5(&[
        ("backend", "tensorflow"),
        ("model_config", EVIL_CONFIG),
    ]));
    assert_eq!(out.findings.len(), 1, "{:?}", out.not_scanned);
    assert_eq!(out.findings[0].severity(), Severity::Critical);
    assert!(
        out.findings[0]
            .location()
            .key_path()
            .is_some_and(|k| k.starts_with("/@model_config/"))
    );
}

#[test]
fn not_hdf5_fails_closed() {
    assert_eq!(run(b"not an hdf5 file at all").not_scanned.len(), 1);
}

proptest! {
    #[test]
    fn truncated_or_mutated_files_never_panic(cut in 0usize..600, flip in 0usize..600, byte: u8) {
        let mut b = h5(&[("model_config", EVIL_CONFIG)]);
        if let Some(x) = b.get_mut(flip) { *x = byte; }
        b.truncate(cut);
        let _ = run(&b);
    }
}

/// Files written by h5py itself (tests/generators/gen_h5.py), when a Python with h5py is
/// available (`AIGIS_FIXTURE_PYTHON`, default `python3`); skipped with a notice otherwise.
#[test]
fn h5py_written_files() {
    let python = std::env::var("AIGIS_FIXTURE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_h5py = Command::new(&python)
        .args(["-c", "import h5py"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_h5py {
        assert!(
            std::env::var("AIGIS_REQUIRE_FIXTURES").as_deref() != Ok("1"),
            "`{python}` lacks h5py and AIGIS_REQUIRE_FIXTURES=1"
        );
        eprintln!(
            "skipping h5py fixtures: `{python}` cannot import h5py (pip install -r tests/generators/requirements-fixtures.txt, set AIGIS_FIXTURE_PYTHON)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("aigis-h5-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generators/gen_h5.py");
    let status = Command::new(&python)
        .arg(script)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let scan_file = |name: &str| run(&std::fs::read(dir.join(name)).unwrap());
    for name in [
        "benign_v0_fixed.h5",
        "benign_v0_vlen.h5",
        "benign_latest.h5",
        "weights_only.h5",
    ] {
        let out = scan_file(name);
        assert!(
            out.findings.is_empty() && out.not_scanned.is_empty(),
            "{name}: {:?} {:?}",
            out.findings,
            out.not_scanned
        );
    }
    for name in [
        "lambda_v0_fixed.h5",
        "lambda_v0_vlen.h5",
        "lambda_latest_vlen.h5",
    ] {
        let out = scan_file(name);
        assert_eq!(
            out.findings.len(),
            1,
            "{name}: {:?} {:?}",
            out.findings,
            out.not_scanned
        );
        assert_eq!(out.findings[0].severity(), Severity::Critical, "{name}");
    }
    // Over 64 KiB of config: found, or (dense storage) reported as not scanned; never clean.
    for name in ["big_latest.h5", "big_v0.h5"] {
        let out = scan_file(name);
        assert!(
            out.findings
                .iter()
                .any(|f| f.severity() == Severity::Critical)
                || !out.not_scanned.is_empty(),
            "{name}"
        );
    }
    let out = scan_file("dense_attrs_latest.h5");
    assert_eq!(out.not_scanned.len(), 1, "{:?}", out.findings);
    assert!(
        out.not_scanned[0].reason().contains("densely"),
        "{:?}",
        out.not_scanned
    );
    let _ = std::fs::remove_dir_all(&dir);
}
