use std::io::Cursor;

use aigis_report::Severity;
use proptest::prelude::*;

use super::{scan, sniff};
use crate::formats::protobuf::encode::{bytes, int, string};
use crate::{Input, Origin, Outcome};

fn node(name: &str, op: &str) -> Vec<u8> {
    [string(1, name), string(2, op), string(3, "input:0")].concat()
}

fn function(name: &str, nodes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = bytes(1, &string(1, name));
    for n in nodes {
        f.extend(bytes(3, n));
    }
    bytes(1, &f)
}

/// A SavedModel with one meta graph: TF1 graph nodes, a saver_def, and a TF2 function library.
fn saved_model(graph_nodes: &[Vec<u8>], functions: &[Vec<u8>]) -> Vec<u8> {
    let mut graph = Vec::new();
    for n in graph_nodes {
        graph.extend(bytes(1, n));
    }
    graph.extend(bytes(2, &functions.concat()));
    let meta = [
        bytes(1, &string(4, "serve")),
        bytes(2, &graph),
        bytes(
            3,
            &[
                string(1, "save/Const:0"),
                string(2, "save/control_dependency:0"),
                string(3, "save/restore_all"),
            ]
            .concat(),
        ),
    ]
    .concat();
    [int(1, 1), bytes(2, &meta)].concat()
}

fn benign() -> Vec<u8> {
    saved_model(
        &[
            node("dense/MatMul", "MatMul"),
            node("save/SaveV2", "SaveV2"),
            node("save/RestoreV2", "RestoreV2"),
            node("save/ShardedFilename", "ShardedFilename"),
        ],
        &[
            function(
                "__inference__traced_save_1234",
                &[
                    node("SaveV2", "SaveV2"),
                    node("MergeV2Checkpoints", "MergeV2Checkpoints"),
                ],
            ),
            function(
                "__inference__traced_restore_5678",
                &[node("RestoreV2", "RestoreV2")],
            ),
            function(
                "__inference_serving_default_99",
                &[node("MatMul", "MatMul"), node("Relu", "Relu")],
            ),
        ],
    )
}

fn run(b: &[u8]) -> Outcome {
    let mut c = Cursor::new(b.to_vec());
    let mut input = Input {
        source: &mut c,
        len: b.len() as u64,
        origin: Origin::file("m/saved_model.pb"),
    };
    scan(&mut input)
}

#[test]
fn benign_saved_model_with_its_saver_is_clean() {
    let b = benign();
    assert!(sniff(&b));
    let out = run(&b);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );
}

#[test]
fn dangerous_ops_are_flagged_with_their_severity() {
    let b = saved_model(
        &[node("leak", "ReadFile"), node("drop", "WriteFile")],
        &[function(
            "__inference_serving_default_1",
            &[
                node("py", "EagerPyFunc"),
                node("ls", "MatchingFiles"),
                node("w", "SaveV2"),
            ],
        )],
    );
    let out = run(&b);
    let got: Vec<(String, Severity)> = out
        .findings
        .iter()
        .map(|f| {
            (
                f.message().split('`').nth(1).unwrap_or("").to_owned(),
                f.severity(),
            )
        })
        .collect();
    for want in [
        ("EagerPyFunc", Severity::Critical),
        ("ReadFile", Severity::High),
        ("WriteFile", Severity::High),
        ("MatchingFiles", Severity::Medium),
        ("SaveV2", Severity::Medium),
    ] {
        assert!(
            got.contains(&(want.0.to_owned(), want.1)),
            "{want:?} missing from {got:?}"
        );
    }
    let py = out
        .findings
        .iter()
        .find(|f| f.message().contains("EagerPyFunc"));
    assert!(py.is_some_and(|f| f.message().contains("__inference_serving_default_1")));
}

#[test]
fn malformed_protobuf_fails_closed() {
    let mut b = benign();
    b.truncate(b.len() - 3);
    assert_eq!(run(&b).not_scanned.len(), 1);
}

proptest! {
    #[test]
    fn truncated_or_mutated_graphs_never_panic(cut in 0usize..2000, flip in 0usize..2000, byte: u8) {
        let mut b = benign();
        if let Some(x) = b.get_mut(flip) { *x = byte; }
        b.truncate(cut);
        let _ = run(&b);
    }
}
