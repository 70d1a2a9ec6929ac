#![allow(clippy::cast_possible_truncation, reason = "fixtures are small")]

use std::io::Cursor;

use aigis_report::Severity;
use proptest::prelude::*;

use super::{scan, sniff};
use crate::{Input, Origin, Outcome};

/// A GGUF v3 little-endian writer for fixtures, following the spec's layout.
#[derive(Default)]
pub(crate) struct Gguf {
    kv: Vec<u8>,
    kv_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data_len: u64,
    alignment: u64,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Gguf {
    pub(crate) fn new() -> Self {
        Self {
            alignment: 32,
            ..Self::default()
        }
    }

    pub(crate) fn kv_raw(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
        string(&mut self.kv, key);
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(value);
        self.kv_count += 1;
        self
    }

    pub(crate) fn kv_str(self, key: &str, value: &str) -> Self {
        let mut v = Vec::new();
        string(&mut v, value);
        self.kv_raw(key, 8, &v)
    }

    pub(crate) fn kv_u32(self, key: &str, value: u32) -> Self {
        self.kv_raw(key, 4, &value.to_le_bytes())
    }

    pub(crate) fn vocab(self, tokens: &[&str]) -> Self {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((tokens.len() as u64).to_le_bytes());
        for t in tokens {
            string(&mut v, t);
        }
        self.kv_raw("tokenizer.ggml.tokens", 9, &v)
    }

    pub(crate) fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }

    pub(crate) fn data(mut self, len: u64) -> Self {
        self.data_len = len;
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.tensor_count.to_le_bytes());
        out.extend(self.kv_count.to_le_bytes());
        out.extend(self.kv);
        out.extend(self.infos);
        if self.tensor_count > 0 {
            while !(out.len() as u64).is_multiple_of(self.alignment) {
                out.push(0);
            }
            out.extend(std::iter::repeat_n(0u8, self.data_len as usize));
        }
        out
    }
}

pub(crate) fn run(bytes: &[u8]) -> Outcome {
    let mut cursor = Cursor::new(bytes.to_vec());
    let mut input = Input {
        source: &mut cursor,
        len: bytes.len() as u64,
        origin: Origin::file("model.gguf"),
    };
    scan(&mut input)
}

fn rules(out: &Outcome) -> Vec<&str> {
    out.findings
        .iter()
        .map(aigis_report::Finding::rule_id)
        .collect()
}

fn benign() -> Gguf {
    Gguf::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("general.alignment", 32)
        .vocab(&["<s>", "</s>", "hello"])
        .kv_str(
            "tokenizer.chat_template",
            crate::formats::chat_template::tests::BENIGN[0].1,
        )
        .tensor("token_embd.weight", &[64, 4], 0, 0) // F32: 1024 bytes
        .tensor("blk.0.attn_q.weight", &[256, 2], 12, 1024) // Q4_K: 2 blocks of 144
        .data(1024 + 288)
}

#[test]
fn benign_model_is_clean() {
    let bytes = benign().build();
    assert!(sniff(&bytes));
    let out = run(&bytes);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert!(out.not_scanned.is_empty(), "{:?}", out.not_scanned);
}

#[test]
fn vocab_only_file_with_zero_tensors_is_clean() {
    let out = run(&Gguf::new()
        .kv_str("general.architecture", "llama")
        .vocab(&["a", "b"])
        .build());
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );
}

#[test]
fn malicious_chat_template_is_critical() {
    let bytes = Gguf::new()
        .kv_str(
            "tokenizer.chat_template",
            "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}{{ x()._module.__builtins__['__import__']('os').popen('id') }}{% endif %}{% endfor %}",
        )
        .build();
    let out = run(&bytes);
    let f = out
        .findings
        .iter()
        .find(|f| f.rule_id() == "AIG-CHATTEMPLATE-001");
    let f = f.unwrap_or_else(|| panic!("{:?}", out.findings));
    assert_eq!(f.severity(), Severity::Critical);
    assert_eq!(f.location().key_path(), Some("/tokenizer.chat_template"));
    assert!(f.location().byte_offset().is_some());
}

#[test]
fn named_template_variants_are_analysed() {
    let bytes = Gguf::new()
        .kv_str("tokenizer.chat_template", "{{ messages }}")
        .kv_str(
            "tokenizer.chat_template.tool_use",
            "{{ cycler.__init__.__globals__.os }}",
        )
        .build();
    assert!(rules(&run(&bytes)).contains(&"AIG-CHATTEMPLATE-001"));
}

#[test]
fn huge_counts_and_lengths_are_high_and_fail_closed() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(u64::MAX.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    let out = run(&bytes);
    assert_eq!(out.findings[0].severity(), Severity::High);
    assert_eq!(out.not_scanned.len(), 1);

    // A string whose declared length runs past the end of the file.
    let out = run(&Gguf::new()
        .kv_raw("k", 8, &(1u64 << 40).to_le_bytes())
        .build());
    assert_eq!(
        out.findings[0].severity(),
        Severity::High,
        "{:?}",
        out.findings
    );
    assert_eq!(out.not_scanned.len(), 1);

    // An array whose declared count cannot fit.
    let mut arr = 4u32.to_le_bytes().to_vec();
    arr.extend((1u64 << 60).to_le_bytes());
    let out = run(&Gguf::new().kv_raw("k", 9, &arr).build());
    assert_eq!(out.findings[0].severity(), Severity::High);
}

#[test]
fn deep_nested_arrays_and_unknown_types_stop_cleanly() {
    let mut nested = Vec::new();
    for _ in 0..20 {
        nested.extend(9u32.to_le_bytes());
        nested.extend(1u64.to_le_bytes());
    }
    nested.extend(0u32.to_le_bytes());
    nested.extend(0u64.to_le_bytes());
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend(1u64.to_le_bytes());
    let out = run(&Gguf::new()
        .kv_raw("k", 9, &[&v[..], &nested[4..]].concat())
        .build());
    assert_eq!(out.not_scanned.len(), 1, "{:?}", out.findings);

    let out = run(&Gguf::new().kv_raw("k", 99, &[]).build());
    assert_eq!(out.not_scanned.len(), 1);
}

#[test]
fn tensor_problems_are_reported() {
    let bytes = Gguf::new()
        .kv_u32("general.alignment", 48)
        .kv_str("general.name", "x")
        .kv_str("general.name", "y")
        .tensor("a", &[8], 0, 0)
        .tensor("a", &[8], 0, 16)
        .tensor("b", &[8], 0, 8) // overlaps `a`, unaligned
        .tensor("big", &[1 << 20], 0, 64) // past the end
        .tensor("odd", &[33], 2, 96) // Q4_0 needs multiples of 32
        .tensor("huge", &[u64::MAX, 2], 0, 0)
        .tensor("new", &[8], 999, 0)
        .data(96)
        .build();
    let out = run(&bytes);
    let r = rules(&out);
    for want in [
        "AIG-GGUF-003",
        "AIG-GGUF-004",
        "AIG-GGUF-005",
        "AIG-GGUF-006",
        "AIG-GGUF-007",
        "AIG-GGUF-008",
        "AIG-GGUF-009",
        "AIG-GGUF-010",
    ] {
        assert!(r.contains(&want), "{want} missing from {r:?}");
    }
    assert!(out.not_scanned.is_empty());
}

#[test]
fn too_many_dimensions_stop_the_scan() {
    let out = run(&Gguf::new()
        .tensor("t", &[1, 1, 1, 1, 1], 0, 0)
        .data(4)
        .build());
    assert_eq!(out.findings[0].severity(), Severity::High);
    assert_eq!(out.not_scanned.len(), 1);
}

#[test]
fn big_endian_and_v1_headers_are_read() {
    let mut be = b"GGUF".to_vec();
    be.extend(3u32.to_be_bytes());
    be.extend(0u64.to_be_bytes());
    be.extend(1u64.to_be_bytes());
    be.extend(5u64.to_be_bytes());
    be.extend(b"k.key");
    be.extend(4u32.to_be_bytes());
    be.extend(7u32.to_be_bytes());
    let out = run(&be);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );

    let mut v1 = b"GGUF".to_vec();
    v1.extend(1u32.to_le_bytes());
    v1.extend(0u32.to_le_bytes());
    v1.extend(1u32.to_le_bytes());
    v1.extend(1u32.to_le_bytes());
    v1.extend(b"k");
    v1.extend(8u32.to_le_bytes());
    v1.extend(2u32.to_le_bytes());
    v1.extend(b"ok");
    let out = run(&v1);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );
}

#[test]
fn truncated_header_fails_closed() {
    let bytes = benign().build();
    let out = run(&bytes[..40]);
    assert_eq!(out.not_scanned.len(), 1);
}

proptest! {
    #[test]
    fn truncated_or_mutated_files_never_panic(cut in 0usize..3000, flip in 0usize..3000, byte: u8) {
        let mut bytes = benign().build();
        if let Some(b) = bytes.get_mut(flip) { *b = byte; }
        bytes.truncate(cut);
        let _ = run(&bytes);
    }
}
