//! Sign and verify cost per algorithm (divan), over a 1 KiB message (about the size of a DSSE
//! PAE over an in-toto statement for a few files):
//! `cargo bench -p aigis-crypto --bench signatures`.
#![allow(missing_docs, clippy::unwrap_used)]

use aigis_crypto::sign::{SignAlg, SigningKey};

fn main() {
    divan::main();
}

const ALGS: [SignAlg; 5] = SignAlg::ALL;

#[divan::bench(args = ALGS)]
fn sign(bencher: divan::Bencher, alg: SignAlg) {
    let key = SigningKey::generate(alg).unwrap();
    let msg = vec![0x5a; 1024];
    bencher.bench_local(|| key.sign(divan::black_box(&msg)).unwrap());
}

#[divan::bench(args = ALGS)]
fn verify(bencher: divan::Bencher, alg: SignAlg) {
    let key = SigningKey::generate(alg).unwrap();
    let msg = vec![0x5a; 1024];
    let sig = key.sign(&msg).unwrap();
    let pk = key.verifying_key();
    bencher.bench_local(|| {
        pk.verify(divan::black_box(&msg), divan::black_box(&sig))
            .unwrap();
    });
}

#[divan::bench(args = ALGS)]
fn keygen(alg: SignAlg) -> SigningKey {
    SigningKey::generate(alg).unwrap()
}
