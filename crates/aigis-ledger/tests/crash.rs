//! Crash safety: a child process appends under load and prints each acknowledged request id;
//! the parent kills it with SIGKILL at random moments, several times over the same store,
//! then checks that the log verifies and that every acknowledged id is in it. Runs against
//! both embedded stores (the file set and SQLite).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aigis_ledger::store::file::FileStore;
use aigis_ledger::store::sqlite::SqliteStore;
use aigis_ledger::store::{Appender, LogReader};
use aigis_ledger::{Ack, Event, EventKind, Ledger, LedgerKeys, WriterConfig, audit};

const CHILD_ENV: &str = "AIGIS_LEDGER_CRASH_CHILD";
const BACKEND_ENV: &str = "AIGIS_LEDGER_CRASH_BACKEND";

/// Opens the store named `backend` (`file` or `sqlite`) in `dir` for appending.
fn open_store(backend: &str, dir: &std::path::Path, origin: &str) -> Box<dyn Appender> {
    match backend {
        // Small segments: the kills also land around segment creation.
        "file" => {
            Box::new(FileStore::open_with(&dir.join("ledger"), Some(origin), 1 << 20).unwrap())
        }
        _ => Box::new(SqliteStore::open(&dir.join("ledger.db"), Some(origin)).unwrap()),
    }
}

/// The child: appends forever with 32 concurrent writers, printing `ack <id>` per ack.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let keys = Arc::new(LedgerKeys::load(&dir.join("ledger.key")).unwrap());
    let backend = std::env::var(BACKEND_ENV).unwrap();
    let store = open_store(&backend, &dir, keys.origin());
    let config = WriterConfig {
        checkpoint_every: Duration::from_millis(5),
        ..WriterConfig::default()
    };
    let ledger = Ledger::start(store, keys, None, config).unwrap();
    let run = std::env::var("AIGIS_LEDGER_CRASH_RUN").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..32 {
            let (ledger, run) = (ledger.clone(), run.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let id = format!("r{run}-w{w}-{i}");
                    let e = Event::new(
                        EventKind::AiCall,
                        &id,
                        "chat_completions",
                        aigis_ledger::now_ms(),
                    );
                    if let Ok(Ack::Stored(_)) = ledger.append(e).await {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ack {id}");
                        let _ = out.flush();
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn rand_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn kill_9_never_loses_an_acknowledged_append_file() {
    if std::env::var(CHILD_ENV).is_err() {
        kill_9_loop("file");
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_append_sqlite() {
    if std::env::var(CHILD_ENV).is_err() {
        kill_9_loop("sqlite");
    }
}

fn kill_9_loop(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let keys = LedgerKeys::generate("crash.test/ledger").unwrap();
    keys.write_new(&dir.path().join("ledger.key")).unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    let runs = std::env::var("AIGIS_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(BACKEND_ENV, backend)
            .env("AIGIS_LEDGER_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ack ").map(str::to_owned))
                .collect::<Vec<_>>()
        });
        // Let it get going (first acks), then kill at a random moment.
        let until = Instant::now() + Duration::from_millis(150 + rand_below(350));
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let ids = reader.join().unwrap();
        eprintln!(
            "{backend} run {run}: {} acknowledged before kill -9",
            ids.len()
        );
        acked.extend(ids);
        // The next writer recovers the store (a torn tail is cut off) before appending.
    }
    assert!(!acked.is_empty(), "the child acknowledged nothing");
    // A last writer open recovers after the final kill, as a restarted gateway would.
    drop(open_store(backend, dir.path(), keys.origin()));
    let mut store: Box<dyn LogReader> = if backend == "file" {
        Box::new(FileStore::open_existing(&dir.path().join("ledger")).unwrap())
    } else {
        Box::new(SqliteStore::open_existing(&dir.path().join("ledger.db")).unwrap())
    };
    let report = audit::verify(store.as_mut(), &keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let mut present = HashSet::new();
    store
        .scan(0, &mut |row| {
            present.insert(Event::from_canonical(&row.event).unwrap().request_id);
            Ok(true)
        })
        .unwrap();
    let lost: Vec<&String> = acked.iter().filter(|id| !present.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged appends lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "{backend}: {} entries, {} acknowledged, all present; {} checkpoints",
        report.entries,
        acked.len(),
        report.checkpoints
    );
}
