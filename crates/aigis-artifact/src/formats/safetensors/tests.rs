use std::io::Cursor;

use aigis_report::Severity;
use proptest::prelude::*;

use super::{scan, sniff};
use crate::{Input, Origin, Outcome};

/// Builds a safetensors file the way the reference writer does: header padded with spaces to a
/// multiple of 8, then the data.
fn file(header: &str, data_len: usize) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(std::iter::repeat_n(0u8, data_len));
    out
}

pub(crate) fn run(bytes: &[u8]) -> Outcome {
    let mut cursor = Cursor::new(bytes.to_vec());
    let mut input = Input {
        source: &mut cursor,
        len: bytes.len() as u64,
        origin: Origin::file("model.safetensors"),
    };
    scan(&mut input)
}

fn rules(out: &Outcome) -> Vec<&str> {
    out.findings
        .iter()
        .map(aigis_report::Finding::rule_id)
        .collect()
}

const BENIGN: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"s":{"dtype":"I64","shape":[],"data_offsets":[32,40]}}"#;

#[test]
fn benign_file_has_no_findings() {
    let bytes = file(BENIGN, 40);
    assert!(sniff(&bytes));
    let out = run(&bytes);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert!(out.not_scanned.is_empty());
}

#[test]
fn empty_header_is_clean() {
    let out = run(&file("{}", 0));
    assert!(out.findings.is_empty() && out.not_scanned.is_empty());
}

#[test]
fn sub_byte_dtype_is_sized_in_bits() {
    let out = run(&file(
        r#"{"q":{"dtype":"F4","shape":[2,8],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(out.findings.is_empty(), "{:?}", out.findings);
}

#[test]
fn out_of_range_offsets_are_high() {
    let out = run(&file(
        r#"{"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#,
        16,
    ));
    let f = out
        .findings
        .iter()
        .find(|f| f.rule_id() == "AIG-SAFETENSORS-007");
    assert_eq!(f.map(aigis_report::Finding::severity), Some(Severity::High));
}

#[test]
fn overlapping_tensors_are_reported() {
    let out = run(&file(
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
        16,
    ));
    assert!(
        rules(&out).contains(&"AIG-SAFETENSORS-008"),
        "{:?}",
        out.findings
    );
}

#[test]
fn gap_and_trailing_bytes_are_reported() {
    let out = run(&file(
        r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#,
        100,
    ));
    let r = rules(&out);
    assert!(r.contains(&"AIG-SAFETENSORS-009"), "{r:?}");
    assert!(r.contains(&"AIG-SAFETENSORS-010"), "{r:?}");
}

#[test]
fn size_mismatch_and_overflow_are_reported() {
    let out = run(&file(
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[8,8]}}"#,
        8,
    ));
    assert_eq!(
        rules(&out)
            .iter()
            .filter(|r| **r == "AIG-SAFETENSORS-006")
            .count(),
        2,
        "{:?}",
        out.findings
    );
}

#[test]
fn unknown_dtype_duplicate_key_and_bad_metadata_are_reported() {
    let out = run(&file(
        r#"{"__metadata__":{"x":1},"a":{"dtype":"F99","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
        1,
    ));
    let r = rules(&out);
    for want in [
        "AIG-SAFETENSORS-002",
        "AIG-SAFETENSORS-003",
        "AIG-SAFETENSORS-005",
    ] {
        assert!(r.contains(&want), "{want} missing from {r:?}");
    }
}

#[test]
fn oversized_or_truncated_header_fails_closed() {
    let mut huge = (200_000_000u64).to_le_bytes().to_vec();
    huge.push(b'{');
    let out = run(&huge);
    assert_eq!(rules(&out), ["AIG-SAFETENSORS-001"]);
    assert_eq!(out.not_scanned.len(), 1);

    let mut short = (64u64).to_le_bytes().to_vec();
    short.extend(b"{\"a\":");
    let out = run(&short);
    assert_eq!(out.not_scanned.len(), 1);

    let out = run(&[1, 2, 3]);
    assert_eq!(out.not_scanned.len(), 1);
}

#[test]
fn header_that_is_not_json_fails_closed() {
    let out = run(&file("{not json", 0));
    assert_eq!(rules(&out), ["AIG-SAFETENSORS-001"]);
    assert_eq!(out.not_scanned.len(), 1);
}

#[test]
fn tensor_data_is_never_read() {
    // A header describing 1 TiB of data in a file that has none: the scan reads 8 + header bytes
    // and reports the missing data instead of trying to read it.
    let out = run(&file(
        r#"{"a":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}}"#,
        0,
    ));
    assert!(rules(&out).contains(&"AIG-SAFETENSORS-007"));
}

proptest! {
    #[test]
    fn truncated_or_mutated_files_never_panic(cut in 0usize..200, flip in 0usize..200, byte: u8) {
        let mut bytes = file(BENIGN, 40);
        if let Some(b) = bytes.get_mut(flip) { *b = byte; }
        bytes.truncate(cut.min(bytes.len()));
        let _ = run(&bytes);
    }
}
