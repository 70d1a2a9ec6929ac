//! Whole-engine timing for `bench/guard.sh`: full input inspection (every detector, `balanced`
//! profile) of each prompt in a JSONL file, and throughput on large documents.
//!
//! Usage: `guard_bench PROMPTS.jsonl DOC... [--rounds N]`; prints one JSON object.
// A measurement harness: panics on bad input and float casts of counts are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::semicolon_if_nothing_returned
)]

use std::time::Instant;

use aigis_guard::{Guard, Part, Policy, Profile, Source};

/// The allocator the `aigis` binary ships with (see `crates/aigis-cli/src/main.rs`), so the
/// engine is timed as `aigis guard scan` and the gateway run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .map_or(5, |i| args[i + 1].parse().unwrap());
    let files: Vec<&String> = args.iter().take_while(|a| *a != "--rounds").collect();
    let prompts: Vec<String> = std::fs::read_to_string(files[0])
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let docs: Vec<String> = files[1..]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();

    let started = Instant::now();
    let guard = Guard::new();
    let policy = Policy::new(Profile::builtin("balanced").unwrap()).unwrap();
    let startup_ms = started.elapsed().as_secs_f64() * 1e3;
    let inspect = |text: &str| {
        guard
            .inspect(
                &policy,
                &[Part {
                    text,
                    source: Source::User,
                }],
                None,
            )
            .findings
            .len()
    };

    let mut micros = Vec::with_capacity(prompts.len() * rounds);
    let mut findings = 0;
    for round in 0..=rounds {
        for p in &prompts {
            let t = Instant::now();
            let n = std::hint::black_box(inspect(p));
            // Round 0 warms caches and is not counted.
            if round > 0 {
                micros.push(t.elapsed().as_secs_f64() * 1e6);
                findings += n;
            }
        }
    }
    micros.sort_by(f64::total_cmp);
    let q = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];

    let mut doc_bytes = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for d in &docs {
            std::hint::black_box(inspect(d));
            doc_bytes += d.len();
        }
    }
    let mb_per_s = doc_bytes as f64 / t.elapsed().as_secs_f64() / 1e6;
    let mut stages = serde_json::Map::new();
    if std::env::var_os("GUARD_BENCH_STAGES").is_some() {
        let injection = aigis_guard::injection::Injection::new();
        let pii = aigis_guard::pii::Pii::new();
        let secrets = aigis_guard::secrets::Secrets::new();
        let norm: Vec<String> = prompts
            .iter()
            .map(|p| aigis_guard::normalize::normalize(p).text)
            .collect();
        let time = |f: &dyn Fn(usize)| {
            let t = Instant::now();
            for _ in 0..rounds {
                (0..prompts.len()).for_each(f);
            }
            t.elapsed().as_secs_f64() * 1e6 / (rounds * prompts.len()) as f64
        };
        stages.insert(
            "normalize_us".into(),
            time(&|i| {
                drop(std::hint::black_box(aigis_guard::normalize::normalize(
                    &prompts[i],
                )))
            })
            .into(),
        );
        stages.insert(
            "decode_us".into(),
            time(&|i| {
                drop(std::hint::black_box(
                    aigis_guard::normalize::decode_segments(
                        &prompts[i],
                        aigis_guard::normalize::Limits::default(),
                    ),
                ))
            })
            .into(),
        );
        stages.insert(
            "signatures_us".into(),
            time(&|i| drop(std::hint::black_box(injection.signatures().scan(&norm[i])))).into(),
        );
        stages.insert(
            "injection_us".into(),
            time(&|i| drop(std::hint::black_box(injection.assess(&norm[i])))).into(),
        );
        stages.insert(
            "pii_us".into(),
            time(&|i| {
                let mut v = Vec::new();
                pii.scan(&prompts[i], &mut v);
                std::hint::black_box(v);
            })
            .into(),
        );
        stages.insert(
            "secrets_us".into(),
            time(&|i| {
                let mut v = Vec::new();
                secrets.scan(&prompts[i], &mut v);
                std::hint::black_box(v);
            })
            .into(),
        );
    }
    let out = serde_json::json!({
        "stages": stages,
        "tool": "aigis",
        "startup_ms": startup_ms,
        "prompts": prompts.len(),
        "prompt_p50_us": q(0.5),
        "prompt_p99_us": q(0.99),
        "prompt_findings": findings / rounds.max(1),
        "doc_mb_per_s": mb_per_s,
    });
    println!("{out}");
}
