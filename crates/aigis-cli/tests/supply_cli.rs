//! `aigis sbom`, `aigis provenance record|verify` and `aigis verify --provenance` end to end on
//! a generated model directory with generated keys (no peers needed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    reason = "test code: a failed step should abort the test"
)]

use std::path::Path;
use std::process::{Command, Output};

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `aigis keygen --sign ALG -o PATH`, which must succeed.
fn keygen(alg: &str, path: &Path) {
    assert!(
        aigis(&["keygen", "--sign", alg, "-o", s(path)])
            .status
            .success()
    );
}

#[test]
fn sbom_provenance_and_verify_tie_together() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    std::fs::create_dir_all(model.join("sub")).unwrap();
    std::fs::write(
        model.join("config.json"),
        r#"{"model_type": "bert", "architectures": ["BertModel"]}"#,
    )
    .unwrap();
    std::fs::write(model.join("sub/weights.bin"), [9u8; 4096]).unwrap();
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("train.jsonl"), "{}\n").unwrap();

    let out = aigis(&[
        "sbom",
        s(&model),
        "--dataset",
        &format!("train={}", s(&data)),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(
        bom["components"][0]["modelCard"]["modelParameters"]["modelArchitecture"],
        "BertModel"
    );

    let key = t.join("pq.key");
    keygen("mldsa65-ed25519", &key);
    let ec = t.join("ec.key");
    keygen("p384", &ec);
    let prov = t.join("model.prov.json");
    let out = aigis(&[
        "provenance",
        "record",
        s(&model),
        "--private-key",
        s(&key),
        "--builder-id",
        "https://ci.example/train",
        "--dataset",
        &format!("train={}", s(&data)),
        "--param",
        "epochs=3",
        "-o",
        s(&prov),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let pq_pub = t.join("pq.key.pub");
    let out = aigis(&[
        "provenance",
        "verify",
        s(&model),
        "--provenance",
        s(&prov),
        "--public-key",
        s(&pq_pub),
        "--require-pq",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let sig = t.join("model.sig");
    let out = aigis(&[
        "sign",
        "key",
        s(&model),
        "--private-key",
        s(&ec),
        "--private-key",
        s(&key),
        "--signature",
        s(&sig),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let ec_pub = t.join("ec.key.pub");
    let verify = |format: &str| {
        aigis(&[
            "verify",
            "key",
            s(&model),
            "--signature",
            s(&sig),
            "--public-key",
            s(&ec_pub),
            "--public-key",
            s(&pq_pub),
            "--require-pq",
            "--provenance",
            s(&prov),
            "--format",
            format,
        ])
    };
    let out = verify("table");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("provenance verified"),
        "{}",
        text(&out)
    );
    // The JSON report holds the scan and provenance checks too.
    let out = verify("json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["scan"]["clean"], true, "{report}");
    assert_eq!(report["provenance"]["builder"], "https://ci.example/train");

    // A provenance for another model does not match this one.
    std::fs::write(model.join("sub/weights.bin"), [8u8; 4096]).unwrap();
    let out = aigis(&[
        "provenance",
        "verify",
        s(&model),
        "--provenance",
        s(&prov),
        "--public-key",
        s(&pq_pub),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    // A malicious pickle makes the scan step fail even with a valid signature.
    std::fs::write(model.join("sub/weights.bin"), [9u8; 4096]).unwrap();
    std::fs::write(model.join("evil.pkl"), b"cos\nsystem\n(S'id'\ntR.").unwrap();
    let out = aigis(&[
        "sign",
        "key",
        s(&model),
        "--private-key",
        s(&ec),
        "--signature",
        s(&sig),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = aigis(&[
        "verify",
        "key",
        s(&model),
        "--signature",
        s(&sig),
        "--public-key",
        s(&ec_pub),
        "--provenance",
        s(&prov),
        "--provenance-key",
        s(&pq_pub),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scan is not clean"),
        "{}",
        text(&out)
    );
}

#[test]
fn verify_reports_bad_input_precisely() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("a.bin"), b"abc").unwrap();
    let ec = t.join("ec.key");
    keygen("p256", &ec);
    let ec_pub = t.join("ec.key.pub");
    let sig = t.join("model.sig");
    assert!(
        aigis(&[
            "sign",
            "key",
            s(&model),
            "--private-key",
            s(&ec),
            "--signature",
            s(&sig)
        ])
        .status
        .success()
    );
    let verify = |bundle: &str| {
        std::fs::write(&sig, bundle).unwrap();
        let out = aigis(&[
            "verify",
            "key",
            s(&model),
            "--signature",
            s(&sig),
            "--public-key",
            s(&ec_pub),
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let good = std::fs::read_to_string(&sig).unwrap();
    let (code, err) = verify(&good.replace("application/vnd.in-toto+json", "text/plain"));
    assert_eq!(code, Some(1));
    assert!(err.contains("payloadType is \"text/plain\""), "{err}");
    let (code, err) = verify("{\"mediaType\": 1}");
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid signature bundle"), "{err}");
}

#[test]
fn what_is_planted_in_a_signed_model_fails_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("weights.bin"), [7u8; 1024]).unwrap();
    let key = t.join("ec.key");
    keygen("p256", &key);
    let sig = t.join("model.sig");
    let out = aigis(&[
        "sign",
        "key",
        s(&model),
        "--private-key",
        s(&key),
        "--signature",
        s(&sig),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = |public: &Path| {
        aigis(&[
            "verify",
            "key",
            s(&model),
            "--signature",
            s(&sig),
            "--public-key",
            s(public),
        ])
    };
    let public = t.join("ec.key.pub");
    let out = verify(&public);
    assert!(out.status.success(), "{}", text(&out));
    // A symlink planted beside the weights is not in what was signed: the model fails (1).
    std::os::unix::fs::symlink("/etc/passwd", model.join("tokenizer.json")).unwrap();
    let out = verify(&public);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("symlink"), "{}", text(&out));
    // A key that cannot be read means the model could not be checked (2), not that it failed.
    let out = verify(&t.join("missing.pub"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
