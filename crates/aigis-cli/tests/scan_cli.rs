//! `aigis scan` end to end: exit codes 0/1/2, JSON and SARIF output, directory walks.

#![allow(
    clippy::expect_used,
    reason = "test helpers fail the test on broken fixtures"
)]

use std::path::Path;
use std::process::Command;

fn scan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aigis"))
        .arg("scan")
        .args(args)
        .output()
        .expect("aigis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write sample");
    path.display().to_string()
}

#[test]
fn exit_codes_formats_and_directories() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scan-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("models")).expect("mkdir");
    // protocol 2: GLOBAL os system, 'id', TUPLE1, REDUCE, STOP
    let evil = write(
        &dir,
        "models/evil.bin",
        b"\x80\x02cos\nsystem\n\x8c\x02id\x85R.",
    );
    let clean = write(&dir, "clean.pkl", b"\x80\x02]q\x00(K\x01K\x02e.");
    let refd = write(&dir, "ref.pkl", b"\x80\x02cevilpkg\nThing\n.");

    assert_eq!(scan(&[&clean]).0, 0);
    let (code, json) = scan(&[&evil, "--format", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json report");
    assert!(json.contains("AIG-PICKLE-DANGEROUS-GLOBAL"), "{doc}");
    // Only referenced, unknown: medium, below the default --fail-on high.
    assert_eq!(scan(&[&refd]).0, 0);
    assert_eq!(scan(&[&refd, "--fail-on", "medium"]).0, 1);
    let (code, sarif) = scan(&[
        dir.to_str().expect("utf-8 path"),
        "--format",
        "sarif",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 1);
    assert!(sarif.contains("\"version\": \"2.1.0\"") || sarif.contains("\"version\":\"2.1.0\""));
    let missing = dir.join("missing.pt").display().to_string();
    assert_eq!(scan(&[&missing]).0, 2);
}
