//! File-tree digest throughput (divan): 8 files of 16 MiB (128 MiB, in the page cache after
//! the first pass), SHA-256 and BLAKE3, 1 and 2 threads:
//! `cargo bench -p aigis-crypto --bench digest`. The whole-program comparison with
//! `sha256sum`/`b3sum` is `bench/digest.sh`.
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::OnceLock;

use aigis_crypto::digest::{DigestAlgo, TreeHasher};

fn main() {
    divan::main();
}

const FILES: usize = 8;
const FILE_LEN: usize = 16 * 1024 * 1024;

fn tree() -> &'static tempfile::TempDir {
    static TREE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..FILES {
            let data: Vec<u8> = (0..FILE_LEN)
                .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                .collect();
            std::fs::write(dir.path().join(format!("shard-{i}.bin")), data).unwrap();
        }
        dir
    })
}

#[divan::bench(args = [1, 2], counter = divan::counter::BytesCount::new(FILES * FILE_LEN), sample_count = 10)]
fn sha256(threads: usize) -> usize {
    let m = TreeHasher::new(DigestAlgo::Sha256)
        .with_threads(threads)
        .hash(tree().path(), &|_| {})
        .unwrap();
    m.files.len()
}

#[divan::bench(args = [1, 2], counter = divan::counter::BytesCount::new(FILES * FILE_LEN), sample_count = 10)]
fn blake3(threads: usize) -> usize {
    let m = TreeHasher::new(DigestAlgo::Blake3)
        .with_threads(threads)
        .hash(tree().path(), &|_| {})
        .unwrap();
    m.files.len()
}
