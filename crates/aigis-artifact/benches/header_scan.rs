//! Header-only scans of multi-GB model files: the cost must not grow with the tensor data.
//!
//! The files are sparse (`set_len`), so they take no disk space: 8 GiB of "tensor data" behind
//! a real header. Compare the 8 GiB and 64 GiB rows: equal times mean O(header).
//! Run: `cargo bench -p aigis-artifact --bench header_scan`.

#![allow(
    clippy::unwrap_used,
    clippy::format_push_string,
    reason = "benchmark setup: a failure should stop the run"
)]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use aigis_artifact::formats::{gguf, safetensors};
use aigis_artifact::{Input, Origin};

fn main() {
    divan::main();
}

const GIB: u64 = 1 << 30;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("aigis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A safetensors file with 300 tensors sharing `data` bytes of (sparse) data.
fn safetensors_file(data: u64) -> PathBuf {
    let n = 300u64;
    let each = data / n;
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    for i in 0..n {
        header.push_str(&format!(
            ",\"model.layers.{i}.weight\":{{\"dtype\":\"U8\",\"shape\":[{each}],\"data_offsets\":[{},{}]}}",
            i * each,
            (i + 1) * each
        ));
    }
    header.push('}');
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let path = dir().join(format!("model-{data}.safetensors"));
    let mut f = File::create(&path).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    f.set_len(8 + header.len() as u64 + n * each).unwrap();
    path
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A GGUF file with a 32,000-token vocabulary, a chat template and 300 F32 tensors over `data`
/// bytes of (sparse) data.
fn gguf_file(data: u64) -> PathBuf {
    let n = 300u64;
    let each = data / n / 4 / 32 * 32; // F32 elements, aligned
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(3u64.to_le_bytes());
    gguf_string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    gguf_string(&mut out, "llama");
    gguf_string(&mut out, "tokenizer.ggml.tokens");
    out.extend(9u32.to_le_bytes());
    out.extend(8u32.to_le_bytes());
    out.extend(32_000u64.to_le_bytes());
    for i in 0..32_000 {
        gguf_string(&mut out, &format!("tok{i}"));
    }
    gguf_string(&mut out, "tokenizer.chat_template");
    out.extend(8u32.to_le_bytes());
    gguf_string(
        &mut out,
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
    );
    for i in 0..n {
        gguf_string(&mut out, &format!("blk.{i}.weight"));
        out.extend(1u32.to_le_bytes());
        out.extend(each.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((i * each * 4).to_le_bytes());
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    let path = dir().join(format!("model-{data}.gguf"));
    let mut f = File::create(&path).unwrap();
    f.write_all(&out).unwrap();
    f.set_len(out.len() as u64 + n * each * 4).unwrap();
    path
}

fn scan(path: &PathBuf, scan: fn(&mut Input<'_>) -> aigis_artifact::Outcome) -> usize {
    let mut file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let out = scan(&mut Input {
        source: &mut file,
        len,
        origin: Origin::file(path.display().to_string()),
    });
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );
    out.findings.len()
}

static FILES: OnceLock<[PathBuf; 4]> = OnceLock::new();

fn files() -> &'static [PathBuf; 4] {
    FILES.get_or_init(|| {
        [
            safetensors_file(8 * GIB),
            safetensors_file(64 * GIB),
            gguf_file(8 * GIB),
            gguf_file(64 * GIB),
        ]
    })
}

#[divan::bench(args = [8, 64])]
fn safetensors_header(gib: u64) -> usize {
    let f = &files()[usize::from(gib == 64)];
    scan(f, safetensors::scan)
}

#[divan::bench(args = [8, 64])]
fn gguf_header(gib: u64) -> usize {
    let f = &files()[2 + usize::from(gib == 64)];
    scan(f, gguf::scan)
}
