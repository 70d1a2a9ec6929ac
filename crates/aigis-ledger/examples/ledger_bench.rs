//! Benchmark driver for `bench/ledger.sh` (not a test: it prints measurements).
//!
//! ```text
//! ledger_bench file     EVENTS CONCURRENCY          file set (file:DIR): appends/s, ack p50/p99
//! ledger_bench sqlite   EVENTS CONCURRENCY          SQLite: durable appends/s, append-to-ack p50/p99
//! ledger_bench embedded EVENTS CONCURRENCY          both, back to back in one run (file first)
//! ledger_bench postgres EVENTS CONCURRENCY URL      two writers into one PostgreSQL log
//! ledger_bench verify   EVENTS [file|sqlite]        full verification of EVENTS entries
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "benchmark driver"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aigis_ledger::event::{Decision, TokenUsage};
use aigis_ledger::merkle::Tree;
use aigis_ledger::store::file::FileStore;
use aigis_ledger::store::postgres::PgStore;
use aigis_ledger::store::sqlite::SqliteStore;
use aigis_ledger::store::{Appender, LogReader};
use aigis_ledger::{Encoded, Event, EventKind, Ledger, LedgerKeys, WriterConfig, audit};

fn event(w: u64, i: u64) -> Event {
    let mut e = Event::new(
        EventKind::AiCall,
        &format!("bench-{w}-{i:012}"),
        "chat_completions",
        aigis_ledger::now_ms(),
    );
    e.principal = Some("key:bench-service".into());
    e.model = Some("gpt-4o-mini".into());
    e.route = Some("general".into());
    e.upstream = Some("openai".into());
    e.decision = Some(Decision {
        effect: "allow".into(),
        policies: vec!["policy0".into()],
    });
    e.tokens = Some(TokenUsage {
        prompt: 812,
        completion: 231,
    });
    e.status = 200;
    e.latency_us = Some(412_345);
    e.prompt_digest =
        Some("5d41402abc4b2a76b9719d911017c592aabbccddeeff00112233445566778899".into());
    e
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `concurrency` tasks append `events` in total; returns (elapsed, latencies).
fn drive(ledger: &Ledger, writer: u64, events: u64, concurrency: u64) -> (Duration, Vec<Duration>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let per = events / concurrency;
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let l = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per as usize);
                for i in 0..per {
                    let t = Instant::now();
                    l.append(event(writer, c * per + i)).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (start.elapsed(), all)
    })
}

fn report(name: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    println!(
        "{name}: {n} durable appends in {:.3} s = {:.0} appends/s; append-to-ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// Durable appends through the writer into a fresh store of `kind` in `dir`.
fn embedded(
    kind: &str,
    dir: &std::path::Path,
    keys: &Arc<LedgerKeys>,
    events: u64,
    concurrency: u64,
) {
    let (store, name): (Box<dyn Appender>, String) = match kind {
        "file" => (
            Box::new(FileStore::open(&dir.join("file-ledger"), Some(keys.origin())).unwrap()),
            format!("file set (write + fdatasync per batch, {concurrency} concurrent appenders)"),
        ),
        _ => (
            Box::new(SqliteStore::open(&dir.join("l.db"), Some(keys.origin())).unwrap()),
            format!("sqlite (WAL, synchronous=FULL, {concurrency} concurrent appenders)"),
        ),
    };
    let ledger = Ledger::start(store, keys.clone(), None, WriterConfig::default()).unwrap();
    let (elapsed, lat) = drive(&ledger, 0, events, concurrency);
    ledger.close();
    report(&name, lat.len(), elapsed, lat);
}

fn verify(kind: &str, dir: &std::path::Path, keys: &Arc<LedgerKeys>, events: u64) {
    let path = dir.join("v");
    let mut store: Box<dyn Appender> = if kind == "file" {
        Box::new(FileStore::open(&path, Some(keys.origin())).unwrap())
    } else {
        Box::new(SqliteStore::open(&path, Some(keys.origin())).unwrap())
    };
    let mut tree = Tree::new();
    let t = Instant::now();
    let mut i = 0;
    while i < events {
        let n = 4096.min(events - i);
        let mut batch: Vec<Encoded> = (i..i + n).map(|k| event(0, k).into()).collect();
        store.append(&mut batch, &mut tree).unwrap();
        i += n;
    }
    let cp = aigis_ledger::checkpoint::Checkpoint {
        origin: keys.origin().into(),
        size: tree.size(),
        root: tree.root(),
    };
    let note = cp.sign(&[keys.log(), keys.cosigner()], 0).unwrap();
    store
        .put_checkpoint(&aigis_ledger::store::StoredCheckpoint {
            size: tree.size(),
            time_ms: 0,
            note,
        })
        .unwrap();
    eprintln!(
        "built {events} entries in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let mut reader: Box<dyn LogReader> = if kind == "file" {
        Box::new(FileStore::open_existing(&path).unwrap())
    } else {
        Box::new(SqliteStore::open_existing(&path).unwrap())
    };
    let t = Instant::now();
    let r = audit::verify(reader.as_mut(), &keys.verifiers(), &[]).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(r.ok());
    println!(
        "verify ({kind}): {events} entries in {secs:.3} s = {:.0} entries/s (one core); 10 M entries extrapolated: {:.1} s",
        events as f64 / secs,
        10_000_000.0 / (events as f64 / secs)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("sqlite", String::as_str);
    let events: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let concurrency: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(256);
    // (for `verify`, argument 3 is the store kind)
    let keys = Arc::new(LedgerKeys::generate("bench.aigis/ledger").unwrap());
    let dir = tempfile::tempdir().unwrap();
    match mode {
        "file" | "sqlite" => embedded(mode, dir.path(), &keys, events, concurrency),
        "embedded" => {
            embedded("file", dir.path(), &keys, events, concurrency);
            embedded("sqlite", dir.path(), &keys, events, concurrency);
        }
        "postgres" => {
            let url = args.get(4).expect("postgres URL").clone();
            let start = Instant::now();
            let handles: Vec<_> = (0..2u64)
                .map(|w| {
                    let (url, keys) = (url.clone(), keys.clone());
                    std::thread::spawn(move || {
                        let store = PgStore::connect(&url, Some(keys.origin())).unwrap();
                        let ledger =
                            Ledger::start(Box::new(store), keys, None, WriterConfig::default())
                                .unwrap();
                        let r = drive(&ledger, w, events / 2, concurrency / 2);
                        ledger.close();
                        r
                    })
                })
                .collect();
            let mut lat = Vec::new();
            for h in handles {
                lat.extend(h.join().unwrap().1);
            }
            report("postgres (2 writers)", lat.len(), start.elapsed(), lat);
        }
        "verify" => {
            let kind = args.get(3).map_or("file", String::as_str);
            verify(kind, dir.path(), &keys, events);
        }
        other => panic!("unknown mode {other}"),
    }
}
