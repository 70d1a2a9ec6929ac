//! Interop with the real `model_signing` 1.1.x (pinned in tests/requirements.txt): it verifies
//! signatures made by `aigis sign`, and `aigis verify` verifies signatures it made — key method
//! (P-256, P-384, SEC1 and PKCS#8 keys), certificate method (a three-level PKI made by the test),
//! shard serialization (through model_signing's Python API, its CLI has no shard option), the
//! post-quantum dual signature (model_signing still verifies the ECDSA one), and tampering
//! (both refuse). Keys, certificates and models are generated per run.
//!
//! Needs `AIGIS_PYTHON` (set by scripts/test) pointing at a python with model-signing; without it
//! the test says so and passes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step should abort the test"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("AIGIS_PYTHON").filter(|p| !p.is_empty());
    if p.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "skipping model_signing interop: set AIGIS_PYTHON to a python with tests/requirements.txt installed"
        );
    }
    p.map(PathBuf::from)
}

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

fn py(python: &Path, args: &[&str]) -> Output {
    Command::new(python).args(args).output().unwrap()
}

fn helper(python: &Path, args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oms_helper.py");
    let mut all = vec![script];
    all.extend_from_slice(args);
    let out = py(python, &all);
    assert!(out.status.success(), "oms_helper {args:?}: {}", text(&out));
    out
}

fn ms(python: &Path, args: &[&str]) -> Output {
    let mut all = vec!["-m", "model_signing"];
    all.extend_from_slice(args);
    py(python, &all)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", text(o));
}

fn fails(o: &Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what} should have failed: {}",
        text(o)
    );
}

fn make_model(root: &Path) {
    std::fs::create_dir_all(root.join("sub/dir")).unwrap();
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(root.join("a/b.bin"), [3u8; 3000]).unwrap();
    std::fs::write(root.join("a.txt"), "component order\n").unwrap();
    std::fs::write(root.join("config.json"), r#"{"architectures": ["Test"]}"#).unwrap();
    std::fs::write(root.join("sub/dir/file.txt"), "deep").unwrap();
    std::fs::write(root.join("empty.dat"), "").unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("weights.bin"), big).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn model_signing_and_aigis_verify_each_other() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    make_model(&model);
    helper(&python, &["keys", s(t), "p256"]);
    helper(&python, &["keys", s(t), "p384"]);
    // An aigis-generated PKCS#8 key as well.
    ok(
        &aigis(&["keygen", "--sign", "p256", "-o", s(&t.join("aigis.key"))]),
        "aigis keygen",
    );
    for (key, public) in [
        (t.join("p256.pem"), t.join("p256.pub")),
        (t.join("p384.pem"), t.join("p384.pub")),
        (t.join("aigis.key"), t.join("aigis.key.pub")),
    ] {
        let ours = t.join("ours.sig");
        ok(
            &aigis(&[
                "sign",
                "key",
                s(&model),
                "--private-key",
                s(&key),
                "--signature",
                s(&ours),
            ]),
            "aigis sign",
        );
        ok(
            &ms(
                &python,
                &[
                    "verify",
                    "key",
                    s(&model),
                    "--signature",
                    s(&ours),
                    "--public_key",
                    s(&public),
                ],
            ),
            "model_signing verify of an aigis signature",
        );
        let theirs = t.join("theirs.sig");
        ok(
            &ms(
                &python,
                &[
                    "sign",
                    "key",
                    s(&model),
                    "--signature",
                    s(&theirs),
                    "--private_key",
                    s(&key),
                ],
            ),
            "model_signing sign",
        );
        ok(
            &aigis(&[
                "verify",
                "key",
                s(&model),
                "--signature",
                s(&theirs),
                "--public-key",
                s(&public),
            ]),
            "aigis verify of a model_signing signature",
        );
    }
    // Tampering: both refuse both signatures.
    let ours = t.join("ours.sig");
    let theirs = t.join("theirs.sig");
    let public = t.join("aigis.key.pub");
    std::fs::write(model.join("a/b.bin"), [4u8; 3000]).unwrap();
    let out = aigis(&[
        "verify",
        "key",
        s(&model),
        "--signature",
        s(&theirs),
        "--public-key",
        s(&public),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hash mismatch for \"a/b.bin\""),
        "{}",
        text(&out)
    );
    fails(
        &ms(
            &python,
            &[
                "verify",
                "key",
                s(&model),
                "--signature",
                s(&ours),
                "--public_key",
                s(&public),
            ],
        ),
        "model_signing verify of a tampered model",
    );
}

#[test]
fn certificate_method_both_ways() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    make_model(&model);
    helper(&python, &["pki", s(t)]);
    let ours = t.join("ours.sig");
    ok(
        &aigis(&[
            "sign",
            "certificate",
            s(&model),
            "--private-key",
            s(&t.join("leaf.key")),
            "--signing-certificate",
            s(&t.join("leaf.pem")),
            "--certificate-chain",
            s(&t.join("int.pem")),
            "--signature",
            s(&ours),
        ]),
        "aigis sign certificate",
    );
    ok(
        &ms(
            &python,
            &[
                "verify",
                "certificate",
                s(&model),
                "--signature",
                s(&ours),
                "--certificate_chain",
                s(&t.join("ca.pem")),
            ],
        ),
        "model_signing verify certificate of an aigis signature",
    );
    let theirs = t.join("theirs.sig");
    ok(
        &ms(
            &python,
            &[
                "sign",
                "certificate",
                s(&model),
                "--signature",
                s(&theirs),
                "--private_key",
                s(&t.join("leaf.key")),
                "--signing_certificate",
                s(&t.join("leaf.pem")),
                "--certificate_chain",
                s(&t.join("int.pem")),
            ],
        ),
        "model_signing sign certificate",
    );
    ok(
        &aigis(&[
            "verify",
            "certificate",
            s(&model),
            "--signature",
            s(&theirs),
            "--certificate-chain",
            s(&t.join("ca.pem")),
        ]),
        "aigis verify certificate of a model_signing signature",
    );
    // An unrelated root is refused, naming the missing issuer.
    let other = t.join("other");
    std::fs::create_dir(&other).unwrap();
    helper(&python, &["pki", s(&other)]);
    let out = aigis(&[
        "verify",
        "certificate",
        s(&model),
        "--signature",
        s(&theirs),
        "--certificate-chain",
        s(&other.join("ca.pem")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no trusted path"),
        "{}",
        text(&out)
    );
}

#[test]
fn shards_and_pq_profile() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    make_model(&model);
    helper(&python, &["keys", s(t), "p256"]);
    let (key, public) = (t.join("p256.pem"), t.join("p256.pub"));
    // model_signing shard signature (shard_size lands as 4096.0): aigis verifies it.
    let theirs = t.join("theirs.sig");
    helper(
        &python,
        &["sign-shards", s(&model), s(&theirs), s(&key), "4096"],
    );
    let out = aigis(&[
        "verify",
        "key",
        s(&model),
        "--signature",
        s(&theirs),
        "--public-key",
        s(&public),
    ]);
    ok(&out, "aigis verify of model_signing shards");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty.dat: empty file not covered"),
        "{}",
        text(&out)
    );
    // aigis shard signature: model_signing's API verifies it with the same shard size.
    let ours = t.join("ours.sig");
    ok(
        &aigis(&[
            "sign",
            "key",
            s(&model),
            "--private-key",
            s(&key),
            "--signature",
            s(&ours),
            "--method",
            "shards",
            "--shard-size",
            "4096",
        ]),
        "aigis sign shards",
    );
    helper(
        &python,
        &["verify-shards", s(&model), s(&ours), s(&public), "4096"],
    );
    // PQ profile: ECDSA + ML-DSA-65+Ed25519 in one envelope; model_signing still verifies.
    ok(
        &aigis(&[
            "keygen",
            "--sign",
            "mldsa65-ed25519",
            "-o",
            s(&t.join("pq.key")),
        ]),
        "keygen pq",
    );
    let dual = t.join("dual.sig");
    ok(
        &aigis(&[
            "sign",
            "key",
            s(&model),
            "--private-key",
            s(&key),
            "--private-key",
            s(&t.join("pq.key")),
            "--signature",
            s(&dual),
        ]),
        "aigis sign dual",
    );
    ok(
        &ms(
            &python,
            &[
                "verify",
                "key",
                s(&model),
                "--signature",
                s(&dual),
                "--public_key",
                s(&public),
            ],
        ),
        "model_signing verify of the dual signature",
    );
    let pq_pub = t.join("pq.key.pub");
    ok(
        &aigis(&[
            "verify",
            "key",
            s(&model),
            "--signature",
            s(&dual),
            "--public-key",
            s(&public),
            "--public-key",
            s(&pq_pub),
            "--require-pq",
        ]),
        "aigis verify --require-pq",
    );
    let out = aigis(&[
        "verify",
        "key",
        s(&model),
        "--signature",
        s(&theirs),
        "--public-key",
        s(&public),
        "--require-pq",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
