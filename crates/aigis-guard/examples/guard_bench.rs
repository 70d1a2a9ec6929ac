//! Whole-engine timing for `bench/guard.sh`: full input inspection (every detector, `balanced`
//! profile) of each prompt in a JSONL file, and throughput on large documents, each round with
//! the findings cache emptied first; then what the cache saves: the documents inspected again
//! (`doc_cached_us`) and a chat resent whole every turn (`conversation`).
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

    // Every round inspects texts the guard has not seen: its findings cache is emptied first
    // (the conversation below measures what the cache saves).
    let mut micros = Vec::with_capacity(prompts.len() * rounds);
    let mut findings = 0;
    for round in 0..=rounds {
        guard.clear_cache();
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
    let mut doc_secs = 0.0;
    for _ in 0..rounds {
        guard.clear_cache();
        let t = Instant::now();
        for d in &docs {
            std::hint::black_box(inspect(d));
            doc_bytes += d.len();
        }
        doc_secs += t.elapsed().as_secs_f64();
    }
    let mb_per_s = doc_bytes as f64 / doc_secs / 1e6;
    let cache_hits = guard.cache_stats().hits;
    // The same documents again, each inspected the round before: every one is a cache hit.
    let t = Instant::now();
    for _ in 0..rounds {
        for d in &docs {
            std::hint::black_box(inspect(d));
        }
    }
    let doc_hit_us = t.elapsed().as_secs_f64() * 1e6 / (rounds * docs.len()).max(1) as f64;
    let conversation = conversation(&guard, &policy, &prompts, docs.first(), rounds);
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
        "cache_hits": cache_hits,
        "doc_cached_us": doc_hit_us,
        "conversation": conversation,
    });
    println!("{out}");
}

/// A chat of [`TURNS`] requests as a client sends them: a system prompt (the first 4 KB of the
/// first document), every earlier turn (a prompt as the user's message, the next as the
/// assistant's answer) and the new user message. Per request, the median over `rounds` of the
/// mean inspection time with the guard's findings cache (emptied before each conversation) and
/// without it.
fn conversation(
    guard: &Guard,
    policy: &Policy,
    prompts: &[String],
    doc: Option<&String>,
    rounds: usize,
) -> serde_json::Value {
    const TURNS: usize = 20;
    let Some(doc) = doc.filter(|_| prompts.len() > 2 * TURNS) else {
        return serde_json::Value::Null;
    };
    let mut cut = doc.len().min(4096);
    while !doc.is_char_boundary(cut) {
        cut -= 1;
    }
    let system = Part {
        text: &doc[..cut],
        source: Source::System,
    };
    let vault = aigis_guard::Vault::new(100_000, std::time::Duration::from_hours(1));
    let uncached = Guard::new().with_cache(0);
    let run = |guard: &Guard| {
        guard.clear_cache();
        let t = Instant::now();
        let mut parts = vec![system];
        for turn in 0..TURNS {
            parts.push(Part {
                text: &prompts[2 * turn],
                source: Source::User,
            });
            std::hint::black_box(guard.inspect(policy, &parts, Some((&vault, "bench"))));
            parts.push(Part {
                text: &prompts[2 * turn + 1],
                source: Source::Assistant,
            });
        }
        t.elapsed().as_secs_f64() * 1e6 / TURNS as f64
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        with.push(run(guard));
        without.push(run(&uncached));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (with, without) = (median(&mut with), median(&mut without));
    // The last request: the system prompt and every turn but the last answer.
    let last_request_bytes = cut
        + prompts[..2 * TURNS - 1]
            .iter()
            .map(String::len)
            .sum::<usize>();
    serde_json::json!({
        "turns": TURNS,
        "last_request_bytes": last_request_bytes,
        "cached_us_per_request": with,
        "uncached_us_per_request": without,
        "speedup": without / with,
    })
}
