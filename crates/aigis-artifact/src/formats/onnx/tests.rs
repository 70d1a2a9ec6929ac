use std::io::Cursor;

use aigis_report::Severity;
use proptest::prelude::*;

use super::{scan, sniff};
use crate::formats::protobuf::encode::{bytes, int, string};
use crate::{Input, Origin, Outcome};

fn node(op: &str, domain: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
    bytes(1, &node_proto(op, domain, attrs))
}

fn node_proto(op: &str, domain: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut n = [
        string(1, "x"),
        string(2, "y"),
        string(3, "n"),
        string(4, op),
    ]
    .concat();
    if !domain.is_empty() {
        n.extend(string(7, domain));
    }
    for a in attrs {
        n.extend(bytes(5, a));
    }
    n
}

fn initializer(name: &str, location: Option<&str>, raw: usize) -> Vec<u8> {
    let mut t = [int(1, 4), int(2, 1), string(8, name)].concat();
    match location {
        Some(loc) => {
            t.extend(bytes(13, &[string(1, "location"), string(2, loc)].concat()));
            t.extend(bytes(13, &[string(1, "offset"), string(2, "0")].concat()));
            t.extend(int(14, 1));
        }
        None => t.extend(bytes(9, &vec![0u8; raw])),
    }
    bytes(5, &t)
}

fn model(graph: &[Vec<u8>], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut m = [int(1, 9), string(2, "pytorch"), string(3, "2.3")].concat();
    m.extend(bytes(8, &[string(1, ""), int(2, 17)].concat()));
    m.extend(bytes(7, &[graph.concat(), string(2, "main")].concat()));
    for e in extra {
        m.extend(e);
    }
    m
}

fn run_at(bytes: &[u8], origin: Origin) -> Outcome {
    let mut c = Cursor::new(bytes.to_vec());
    let mut input = Input {
        source: &mut c,
        len: bytes.len() as u64,
        origin,
    };
    scan(&mut input)
}

fn run(bytes: &[u8]) -> Outcome {
    run_at(bytes, Origin::file("model.zip").child("model.onnx"))
}

fn benign() -> Vec<u8> {
    model(
        &[
            node("MatMul", "", &[]),
            node("Relu", "", &[]),
            node("FusedMatMul", "com.microsoft", &[]),
            node("TreeEnsembleClassifier", "ai.onnx.ml", &[]),
            initializer("w", None, 4096),
            initializer("big", Some("weights/model.onnx.data"), 0),
        ],
        &[],
    )
}

#[test]
fn benign_model_is_clean() {
    let b = benign();
    assert!(sniff(&b));
    let out = run(&b);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?} {:?}",
        out.findings,
        out.not_scanned
    );
}

#[test]
fn custom_domain_is_medium_but_local_functions_are_not() {
    let func = bytes(
        25,
        &[
            string(1, "MyBlock"),
            string(10, "local.fns"),
            bytes(7, &node_proto("Add", "", &[])),
        ]
        .concat(),
    );
    let b = model(
        &[
            node("Evil", "com.attacker", &[]),
            node("Evil", "com.attacker", &[]),
            node("MyBlock", "local.fns", &[]),
        ],
        &[func],
    );
    let out = run(&b);
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    assert_eq!(out.findings[0].severity(), Severity::Medium);
    assert!(out.findings[0].message().contains("2 node(s)"));
}

#[test]
fn escaping_external_data_is_high() {
    for loc in [
        "../../etc/passwd",
        "/etc/shadow",
        "C:\\Windows\\win.ini",
        "a/../../b",
        "file:///etc/passwd",
    ] {
        let out = run(&model(&[initializer("w", Some(loc), 0)], &[]));
        assert_eq!(out.findings.len(), 1, "{loc}");
        assert_eq!(out.findings[0].severity(), Severity::High, "{loc}");
        assert_eq!(out.findings[0].rule_id(), "AIG-ONNX-002");
    }
}

#[test]
fn subgraphs_and_training_graphs_are_walked() {
    let inner = [
        node("Steal", "x.custom", &[]),
        initializer("w", Some("../secret"), 0),
    ]
    .concat();
    let attr = [string(1, "then_branch"), int(20, 5), bytes(6, &inner)].concat();
    let b = model(&[node("If", "", &[attr])], &[]);
    let out = run(&b);
    let rules: Vec<&str> = out
        .findings
        .iter()
        .map(aigis_report::Finding::rule_id)
        .collect();
    assert_eq!(rules, ["AIG-ONNX-001", "AIG-ONNX-002"]);

    let training = bytes(20, &bytes(2, &node("T", "train.custom", &[])));
    let out = run(&model(&[], &[training]));
    assert_eq!(out.findings.len(), 1);
}

#[cfg(unix)]
#[test]
fn symlinked_external_data_on_disk_is_high() {
    let dir = std::env::temp_dir().join(format!("aigis-onnx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("weights.bin")).unwrap();
    std::fs::write(dir.join("inside.bin"), b"x").unwrap();
    let file = dir.join("model.onnx").display().to_string();
    let out = run_at(
        &model(&[initializer("w", Some("weights.bin"), 0)], &[]),
        Origin::file(file.clone()),
    );
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    assert!(out.findings[0].message().contains("symlink"));
    let out = run_at(
        &model(&[initializer("w", Some("inside.bin"), 0)], &[]),
        Origin::file(file),
    );
    assert!(out.findings.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deep_nesting_and_bad_lengths_fail_closed() {
    let mut g = node("Relu", "", &[]);
    for _ in 0..40 {
        let attr = [string(1, "body"), bytes(6, &g)].concat();
        g = node("Loop", "", &[attr]);
    }
    let out = run(&model(&[g], &[]));
    assert_eq!(out.not_scanned.len(), 1);

    let mut b = benign();
    b.extend([0x3a, 0xff, 0xff, 0xff, 0x0f]); // field 7, length far past the end
    let out = run(&b);
    assert_eq!(out.not_scanned.len(), 1);
}

proptest! {
    #[test]
    fn truncated_or_mutated_models_never_panic(cut in 0usize..5000, flip in 0usize..5000, byte: u8) {
        let mut b = benign();
        if let Some(x) = b.get_mut(flip) { *x = byte; }
        b.truncate(cut);
        let _ = run(&b);
    }
}
