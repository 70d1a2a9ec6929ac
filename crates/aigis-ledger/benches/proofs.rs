//! Proof generation and verification on an in-memory tree of 1 M leaves, and the per-request
//! hashing and encoding the ledger's writer does.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::sync::LazyLock;

use aigis_ledger::merkle::{self, Tree};

const SIZE: u64 = 1 << 20;

static TREE: LazyLock<Tree> = LazyLock::new(|| {
    let mut t = Tree::new();
    for i in 0..SIZE {
        t.push(merkle::leaf_hash(&i.to_be_bytes()));
    }
    t
});

fn main() {
    LazyLock::force(&TREE);
    divan::main();
}

/// A size that is not a power of two, so proofs include right-edge subtrees.
const N: u64 = SIZE - 12_345;

#[divan::bench]
fn inclusion_proof_generate(b: divan::Bencher) {
    let i = std::sync::atomic::AtomicU64::new(0);
    b.bench(|| {
        let index = i.fetch_add(7_919, std::sync::atomic::Ordering::Relaxed) % N;
        TREE.inclusion_proof(divan::black_box(index), N).unwrap()
    });
}

#[divan::bench]
fn inclusion_proof_verify(b: divan::Bencher) {
    let root = TREE.root_at(N).unwrap();
    let index = 777_777;
    let leaf = TREE.leaf(index).unwrap();
    let proof = TREE.inclusion_proof(index, N).unwrap();
    b.bench(|| merkle::verify_inclusion(index, N, &leaf, divan::black_box(&proof), &root).unwrap());
}

#[divan::bench]
fn consistency_proof_generate(b: divan::Bencher) {
    let s = std::sync::atomic::AtomicU64::new(1);
    b.bench(|| {
        let size1 = s.fetch_add(104_729, std::sync::atomic::Ordering::Relaxed) % (N - 1) + 1;
        TREE.consistency_proof(divan::black_box(size1), N).unwrap()
    });
}

#[divan::bench]
fn consistency_proof_verify(b: divan::Bencher) {
    let s1 = 654_321;
    let (r1, r2) = (TREE.root_at(s1).unwrap(), TREE.root_at(N).unwrap());
    let proof = TREE.consistency_proof(s1, N).unwrap();
    b.bench(|| merkle::verify_consistency(s1, N, divan::black_box(&proof), &r1, &r2).unwrap());
}

#[divan::bench]
fn leaf_append(b: divan::Bencher) {
    b.with_inputs(Tree::new).bench_local_refs(|t| {
        for i in 0..1024u64 {
            t.push(merkle::leaf_hash(&i.to_be_bytes()));
        }
    });
}

/// The sizes of the gateway benchmark's request body and response body.
const CONTENT: [usize; 2] = [170, 450];
const REQUEST_ID: &str = "01a22ad2ee0c7470a8356d3999573978";

/// A request's keyed content digest (the gateway computes two per recorded request), as
/// the ledger computes it: HMAC-SHA-256 over the `sha2` compression function with the key's
/// states prepared once.
#[divan::bench(args = CONTENT)]
fn content_digest(b: divan::Bencher, len: usize) {
    let key = aigis_ledger::ContentKey::new([7; 32]);
    let body = vec![b'x'; len];
    b.bench(|| key.digest("prompt", REQUEST_ID, divan::black_box(&body)));
}

/// The same digest through aws-lc's HMAC (key prepared once, context copied per digest), the
/// peer the ledger used before: same input, same hex output.
#[divan::bench(args = CONTENT)]
fn content_digest_aws_lc(b: divan::Bencher, len: usize) {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7; 32]);
    let body = vec![b'x'; len];
    b.bench(|| {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        for part in [
            b"aigis-ledger/v1 prompt\n".as_slice(),
            REQUEST_ID.as_bytes(),
            b"\n",
        ] {
            ctx.update(part);
        }
        ctx.update(divan::black_box(&body));
        hex::encode(ctx.sign())
    });
}

/// A recorded request's leaf hash (its canonical event is about 520 bytes).
#[divan::bench]
fn leaf_hash_520_bytes(b: divan::Bencher) {
    let event = vec![b'e'; 520];
    b.bench(|| merkle::leaf_hash(divan::black_box(&event)));
}

/// The same leaf hash through aws-lc's digest API.
#[divan::bench]
fn leaf_hash_520_bytes_aws_lc(b: divan::Bencher) {
    let event = vec![b'e'; 520];
    b.bench(|| {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(&[0]);
        ctx.update(divan::black_box(&event));
        ctx.finish()
    });
}

/// Encoding a recorded request's event (the gateway benchmark's: about 490 bytes) into a reused
/// buffer, as the ledger's writer does for every request (`Batch::push_ref`).
#[divan::bench]
fn event_encode(b: divan::Bencher) {
    use aigis_ledger::event::{EventKind, EventRef, TokenUsage};
    let policies = vec!["open-mode".to_owned()];
    let mut e = EventRef::new(
        EventKind::AiCall,
        "01a22f729a4d7528bb9ecf39df7e47e0",
        "chat_completions",
        1_796_092_369_486,
    );
    e.principal = Some("anonymous");
    e.model = Some("mock-1");
    e.route = Some("bench");
    e.upstream = Some("mock");
    e.decision = Some(("allow", &policies));
    e.tokens = Some(TokenUsage {
        prompt: 5,
        completion: 5,
    });
    e.status = 200;
    e.latency_us = Some(885);
    e.prompt_digest = Some("b8715a5fdfdf69588b839d0d7d26d0e97ff08109abb76779b8e9bf233b986989");
    e.response_digest = Some("92fb34223b5eaa4e2e8ee344396d06a497c7837ffe875643199f08760e0b3d79");
    let mut encoded = aigis_ledger::Encoded::from_ref(&e);
    b.bench_local(|| encoded.refill(divan::black_box(&e)));
}
