//! Cost of the `admit` stage's pieces (divan): `cargo bench -p aigis-gateway --bench limits`.
//!
//! - one local limiter check (GCRA cell, in-process store), alone and as a batch of three,
//!   with 100,000 other live counters in the store;
//! - counting the prompt tokens of a 1 KiB chat message with `o200k_base`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aigis_gateway::admit::cell::Kind;
use aigis_gateway::admit::store::{Charge, Local, Op, now_us};
use aigis_gateway::admit::tokens::Counter;

fn main() {
    divan::main();
}

fn rate(key: &str) -> Charge {
    Charge {
        key: key.into(),
        kind: Kind::Rate {
            limit: u64::MAX / 4,
            period_us: 60_000_000,
        },
        amount: 1,
        monotone: true,
    }
}

fn busy_store() -> Local {
    let local = Local::default();
    let now = now_us();
    for i in 0..100_000 {
        local
            .apply(
                Op::Check,
                &[rate(&format!("l:other:principal=key:{i}"))],
                now,
            )
            .unwrap();
    }
    local
}

#[divan::bench]
fn local_check(bencher: divan::Bencher) {
    let local = busy_store();
    let charges = [rate("l:rpm:principal=key:alice")];
    bencher.bench_local(|| local.apply(Op::Check, &charges, now_us()).unwrap());
}

#[divan::bench]
fn local_check_batch_of_3(bencher: divan::Bencher) {
    let local = busy_store();
    let charges = [
        rate("l:rpm:principal=key:alice"),
        rate("l:tpm:team=search"),
        rate("l:model:model=gpt-4o"),
    ];
    bencher.bench_local(|| local.apply(Op::Check, &charges, now_us()).unwrap());
}

#[divan::bench]
fn count_1kib_prompt_o200k(bencher: divan::Bencher) {
    let text =
        "The quick brown fox jumps over the lazy dog while the gateway counts tokens. ".repeat(14);
    let counter = Counter::O200k;
    counter.count("warm up");
    bencher.bench_local(|| counter.count(&text));
}
