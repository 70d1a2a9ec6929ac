//! Hashes a tree and prints the manifest's file count and total size; used by the benchmark
//! against `sha256sum` (CPU time per MiB): `cargo run --release --example digest_tree -- sha256 1 DIR`.
#![allow(clippy::unwrap_used, reason = "benchmark driver")]

use aigis_crypto::digest::{DigestAlgo, TreeHasher};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let algo = if args[1] == "blake3" {
        DigestAlgo::Blake3
    } else {
        DigestAlgo::Sha256
    };
    let threads: usize = args[2].parse().unwrap();
    let m = TreeHasher::new(algo)
        .with_threads(threads)
        .hash(std::path::Path::new(&args[3]), &|_| {})
        .unwrap();
    println!("{} files, {} bytes", m.files.len(), m.total_size());
}
