//! The embedded ledger end to end, against both embedded stores (the file set and SQLite):
//! appends through the writer, checkpoints, verification, tamper detection (edit, delete,
//! reorder, truncate: each named), receipts, spool.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::sync::Arc;
use std::time::Duration;

use aigis_ledger::audit::{self, RECEIPT_FORMAT};
use aigis_ledger::checkpoint::Checkpoint;
use aigis_ledger::event::{Decision, GuardFinding, MAX_EVENT_LEN, TokenUsage};
use aigis_ledger::merkle::Tree;
use aigis_ledger::note::Note;
use aigis_ledger::spool::Spool;
use aigis_ledger::store::file::{FileStore, RawEntry};
use aigis_ledger::store::sqlite::SqliteStore;
use aigis_ledger::store::{Appender, LogReader, SpoolMark, StoredCheckpoint};
use aigis_ledger::writer::Batch;
use aigis_ledger::{
    Ack, Encoded, Event, EventKind, EventRef, Ledger, LedgerError, LedgerKeys, LedgerVerifiers,
    WriterConfig,
};

fn event(i: u64) -> Event {
    let mut e = Event::new(
        EventKind::AiCall,
        &format!("req-{i}"),
        "chat.completions",
        1_700_000_000_000 + i,
    );
    e.principal = Some("key:ci-bot".into());
    e.model = Some("gpt-4o".into());
    e.route = Some("general".into());
    e.decision = Some(Decision {
        effect: "allow".into(),
        policies: vec!["policy0".into()],
    });
    e.status = 200;
    e.tokens = Some(TokenUsage {
        prompt: 12,
        completion: 34,
    });
    if i.is_multiple_of(5) {
        e.request_findings.push(GuardFinding {
            kind: "pii:EMAIL".into(),
            action: Some("redact".into()),
            span: Some([3, 20]),
            score_milli: Some(990),
        });
    }
    e
}

fn config() -> WriterConfig {
    WriterConfig {
        checkpoint_every: Duration::from_millis(20),
        queue: 64,
        max_batch: 16,
        ..WriterConfig::default()
    }
}

/// The embedded stores every backend-agnostic test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    File,
    Sqlite,
}

const BACKENDS: [Backend; 2] = [Backend::File, Backend::Sqlite];

/// Where a store of `backend` lives in `dir`.
fn store_path(dir: &std::path::Path, backend: Backend) -> std::path::PathBuf {
    match backend {
        Backend::File => dir.join("ledger"),
        Backend::Sqlite => dir.join("ledger.db"),
    }
}

/// Opens (creating) a store for appending. File stores use small segments so tests cross
/// segment boundaries.
fn open_store(backend: Backend, path: &std::path::Path, origin: &str) -> Box<dyn Appender> {
    match backend {
        Backend::File => Box::new(FileStore::open_with(path, Some(origin), 4096).unwrap()),
        Backend::Sqlite => Box::new(SqliteStore::open(path, Some(origin)).unwrap()),
    }
}

/// Opens an existing store for reading.
fn open_reader(backend: Backend, path: &std::path::Path) -> Box<dyn LogReader> {
    match backend {
        Backend::File => Box::new(FileStore::open_existing(path).unwrap()),
        Backend::Sqlite => Box::new(SqliteStore::open_existing(path).unwrap()),
    }
}

/// Entries in a store (by scanning).
fn count(reader: &mut dyn LogReader) -> u64 {
    let mut n = 0;
    reader
        .scan(0, &mut |_| {
            n += 1;
            Ok(true)
        })
        .unwrap();
    n
}

/// A ledger of `n` events with several checkpoints; returns keys and path.
fn build(dir: &std::path::Path, n: u64, backend: Backend) -> (Arc<LedgerKeys>, std::path::PathBuf) {
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir, backend);
    let store = open_store(backend, &path, keys.origin());
    let ledger = Ledger::start(store, keys.clone(), None, config()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..n {
            let ack = ledger.append(event(i)).await.unwrap();
            assert_eq!(ack, Ack::Stored(i));
            if i % 7 == 6 {
                ledger.checkpoint().await.unwrap();
            }
        }
    });
    ledger.close();
    (keys, path)
}

/// A running ledger over a new file set in `dir`, its path, and a runtime to append from.
fn file_ledger(dir: &std::path::Path) -> (Ledger, std::path::PathBuf, tokio::runtime::Runtime) {
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir, Backend::File);
    let store = open_store(Backend::File, &path, keys.origin());
    let ledger = Ledger::start(store, keys, None, config()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (ledger, path, rt)
}

#[test]
fn an_idle_writer_sleeps_until_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _, rt) = file_ledger(dir.path());
    rt.block_on(async {
        ledger.append(event(0)).await.unwrap();
        ledger.checkpoint().await.unwrap();
    });
    // Everything is signed: the writer waits for a job, not on a timer (it used to wake
    // every millisecond once a checkpoint interval had passed without new entries).
    let before = ledger.wakeups();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        ledger.wakeups() - before <= 1,
        "{} wake-ups",
        ledger.wakeups() - before
    );
    rt.block_on(async { ledger.append(event(1)).await.unwrap() });
    ledger.close();
}

#[test]
fn deferred_events_are_completed_by_the_writer_in_queue_order() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, path, rt) = file_ledger(dir.path());
    let writer = std::thread::current().id();
    rt.block_on(async {
        ledger.append(event(0)).await.unwrap();
        // A job completes any number of events: three each here.
        for first in (1..40).step_by(3) {
            let complete = Box::new(move |batch: &mut Batch| {
                // The writer thread runs it, not the caller.
                assert_ne!(std::thread::current().id(), writer);
                for i in first..first + 3 {
                    if i % 2 == 0 {
                        batch.push(Encoded::new(event(i)));
                    } else {
                        // Encoded into the buffers of an earlier batch's event when there is one.
                        let id = format!("req-{i}");
                        let mut e = EventRef::new(
                            EventKind::AiCall,
                            &id,
                            "chat.completions",
                            1_700_000_000_000 + i,
                        );
                        e.status = 200;
                        batch.push_ref(&e);
                    }
                }
            });
            ledger.enqueue_deferred(complete).await.unwrap();
        }
        // Acknowledged once its batch is committed: everything queued before it is too.
        assert_eq!(ledger.append(event(40)).await.unwrap(), Ack::Stored(40));
    });
    assert_eq!(ledger.size(), 41);
    assert_eq!(
        ledger.queue_free(),
        config().queue,
        "every queue slot is returned"
    );
    ledger.close();
    let ids = request_ids(&path);
    let expected: Vec<String> = (0..=40).map(|i| format!("req-{i}")).collect();
    assert_eq!(ids, expected);
}

fn verify(backend: Backend, path: &std::path::Path, keys: &LedgerVerifiers) -> audit::VerifyReport {
    let mut store = open_reader(backend, path);
    audit::verify(store.as_mut(), keys, &[]).unwrap()
}

#[test]
fn clean_log_verifies_with_every_checkpoint() {
    for backend in BACKENDS {
        clean_log_verifies(backend);
    }
}

fn clean_log_verifies(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, path) = build(dir.path(), 50, backend);
    let report = verify(backend, &path, &keys.verifiers());
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 50);
    assert!(
        report.checkpoints >= 7,
        "{} checkpoints",
        report.checkpoints
    );
    assert_eq!(
        report.checkpointed_size, 50,
        "close() signs a final checkpoint"
    );
    // Only the Ed25519 key (no cosigner key) also verifies.
    let mut only_ed = keys.verifiers();
    only_ed.cosigner = None;
    assert!(verify(backend, &path, &only_ed).ok());
    // Another log's keys do not.
    let other = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let report = verify(backend, &path, &other.verifiers());
    assert!(!report.ok());
    assert!(report.problems.iter().all(|p| p.kind == "bad_signature"));
}

/// Tampering with a file store: what an attacker who knows the format does to the entries
/// and checkpoints before rewriting the files with valid framing.
type FileTamper = fn(&mut Vec<RawEntry>, &mut Vec<StoredCheckpoint>);

/// Builds a log of `n` entries in each store, tampers with it (`sql` for SQLite, `file` for
/// the file set) and verifies it; returns both reports.
fn tampered(n: u64, sql: &str, file: FileTamper) -> Vec<audit::VerifyReport> {
    BACKENDS
        .iter()
        .map(|&backend| {
            let dir = tempfile::tempdir().unwrap();
            let (keys, path) = build(dir.path(), n, backend);
            match backend {
                Backend::Sqlite => {
                    let store = SqliteStore::open_existing(&path).unwrap();
                    store.connection().execute_batch(sql).unwrap();
                }
                Backend::File => {
                    let mut store = FileStore::open_existing(&path).unwrap();
                    let mut entries = store.raw_entries().unwrap();
                    let mut cps = LogReader::checkpoints(&mut store).unwrap();
                    file(&mut entries, &mut cps);
                    store.rewrite(&entries, &cps).unwrap();
                }
            }
            verify(backend, &path, &keys.verifiers())
        })
        .collect()
}

fn replace_in(entry: &mut RawEntry, from: &str, to: &str) {
    entry.event = String::from_utf8(entry.event.clone())
        .unwrap()
        .replace(from, to)
        .into_bytes();
}

#[test]
fn edited_row_is_named() {
    for r in tampered(
        40,
        "UPDATE entries SET event = replace(event, 'gpt-4o', 'gpt-4x') WHERE idx = 17",
        |e, _| replace_in(&mut e[17], "gpt-4o", "gpt-4x"),
    ) {
        assert_eq!(r.first_bad_entry(), Some(17), "{:?}", r.problems);
        assert!(
            r.problems
                .iter()
                .any(|p| p.kind == "edited" && p.index == Some(17))
        );
        assert!(r.problems.iter().any(|p| p.kind == "checkpoint_mismatch"));
    }
}

fn forged_17() -> (Vec<u8>, aigis_ledger::merkle::Hash) {
    let mut e = event(17);
    e.index = 17;
    e.model = Some("gpt-4x".into());
    let bytes = e.canonical();
    let leaf = aigis_ledger::merkle::leaf_hash(&bytes);
    (bytes, leaf)
}

#[test]
fn edited_row_with_recomputed_leaf_is_caught_by_the_checkpoint() {
    // The attacker also rewrites the stored leaf hash: only the signed root catches it, and
    // verify names the checkpoint interval that holds the entry.
    let dir = tempfile::tempdir().unwrap();
    let (keys, path) = build(dir.path(), 40, Backend::Sqlite);
    let store = SqliteStore::open_existing(&path).unwrap();
    let (bytes, leaf) = forged_17();
    store
        .connection()
        .execute(
            "UPDATE entries SET event = ?1, leaf = ?2 WHERE idx = 17",
            rusqlite::params![bytes, &leaf[..]],
        )
        .unwrap();
    drop(store);
    let sqlite = verify(Backend::Sqlite, &path, &keys.verifiers());
    let file = tampered(40, "", |e, _| {
        (e[17].event, e[17].leaf) = forged_17();
    })
    .swap_remove(0);
    for r in [sqlite, file] {
        let p = r
            .problems
            .iter()
            .find(|p| p.kind == "checkpoint_mismatch")
            .expect("mismatch found");
        let start = p.index.unwrap();
        assert!(start <= 17 && 17 - start < 7, "{p:?}");
    }
}

#[test]
fn an_edit_past_the_mismatching_checkpoint_does_not_hide_it() {
    // Entry 17 is forged with its leaf (only the checkpoint at 21 catches it), entry 30 is
    // edited plainly (named exactly): the first bad entry is in the range before 21, not 30.
    let (bytes, leaf) = forged_17();
    let sql = format!(
        "UPDATE entries SET event = X'{}', leaf = X'{}' WHERE idx = 17; \
         UPDATE entries SET event = replace(event, 'gpt-4o', 'gpt-4x') WHERE idx = 30",
        hex::encode(bytes),
        hex::encode(leaf)
    );
    for r in tampered(40, &sql, |e, _| {
        (e[17].event, e[17].leaf) = forged_17();
        replace_in(&mut e[30], "gpt-4o", "gpt-4x");
    }) {
        assert!(
            r.problems
                .iter()
                .any(|p| p.kind == "edited" && p.index == Some(30))
        );
        let first = r.first_bad_entry().unwrap();
        assert!(first <= 17 && 17 - first < 7, "{first}: {:?}", r.problems);
    }
}

#[test]
fn deleted_row_is_named() {
    for r in tampered(40, "DELETE FROM entries WHERE idx = 23", |e, _| {
        e.remove(23);
    }) {
        assert_eq!(r.first_bad_entry(), Some(23), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.kind == "missing"));
    }
}

#[test]
fn reordered_rows_are_named() {
    for r in tampered(
        40,
        "UPDATE entries SET idx = -1 WHERE idx = 11; UPDATE entries SET idx = 11 WHERE idx = 12; UPDATE entries SET idx = 12 WHERE idx = -1;",
        // The entries change places; each keeps the position's index.
        |e, _| {
            e.swap(11, 12);
            (e[11].idx, e[12].idx) = (11, 12);
        },
    ) {
        assert_eq!(r.first_bad_entry(), Some(11), "{:?}", r.problems);
        assert!(
            r.problems
                .iter()
                .any(|p| p.kind == "moved" && p.index == Some(11))
        );
    }
}

#[test]
fn truncation_is_named() {
    for r in tampered(40, "DELETE FROM entries WHERE idx >= 30", |e, _| {
        e.truncate(30);
    }) {
        assert_eq!(r.first_bad_entry(), Some(30), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.kind == "truncated"));
    }
}

#[test]
fn truncation_with_checkpoints_needs_an_anchor() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let (keys, path) = build(dir.path(), 40, backend);
        let mut reader = open_reader(backend, &path);
        let latest = reader.checkpoints().unwrap().pop().unwrap();
        let anchor = Checkpoint::from_text(&Note::parse(&latest.note).unwrap().text).unwrap();
        drop(reader);
        match backend {
            Backend::Sqlite => SqliteStore::open_existing(&path)
                .unwrap()
                .connection()
                .execute_batch(
                    "DELETE FROM entries WHERE idx >= 35; DELETE FROM checkpoints WHERE size > 35;",
                )
                .unwrap(),
            Backend::File => {
                let mut store = FileStore::open_existing(&path).unwrap();
                let mut entries = store.raw_entries().unwrap();
                let mut cps = LogReader::checkpoints(&mut store).unwrap();
                entries.truncate(35);
                cps.retain(|c| c.size <= 35);
                store.rewrite(&entries, &cps).unwrap();
            }
        }
        let mut store = open_reader(backend, &path);
        // Without the anchor the shorter log is self-consistent; with it the cut is named.
        assert!(
            audit::verify(store.as_mut(), &keys.verifiers(), &[])
                .unwrap()
                .ok()
        );
        let r = audit::verify(store.as_mut(), &keys.verifiers(), &[anchor]).unwrap();
        assert_eq!(
            r.first_bad_entry(),
            Some(35),
            "{backend:?}: {:?}",
            r.problems
        );
    }
}

/// An anchor of the empty log is checked against the empty tree and does not stop the
/// checkpoints after it from being compared.
#[test]
fn an_anchor_of_the_empty_log_is_checked_and_the_rest_still_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, path) = build(dir.path(), 20, Backend::Sqlite);
    let mut store = open_reader(Backend::Sqlite, &path);
    let empty = Checkpoint {
        origin: keys.origin().to_owned(),
        size: 0,
        root: aigis_ledger::merkle::empty_root(),
    };
    let r = audit::verify(
        store.as_mut(),
        &keys.verifiers(),
        std::slice::from_ref(&empty),
    )
    .unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    let wrong = Checkpoint {
        root: [1; 32],
        ..empty.clone()
    };
    let r = audit::verify(store.as_mut(), &keys.verifiers(), &[wrong]).unwrap();
    assert!(
        r.problems.iter().any(|p| p.kind == "checkpoint_mismatch"),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems.iter().all(|p| p.kind != "truncated"),
        "{:?}",
        r.problems
    );
    // Later checkpoints are still compared: an anchor beyond the log is a truncation.
    let beyond = Checkpoint {
        size: 25,
        root: [2; 32],
        ..empty
    };
    let zero = Checkpoint {
        origin: keys.origin().to_owned(),
        size: 0,
        root: aigis_ledger::merkle::empty_root(),
    };
    let r = audit::verify(store.as_mut(), &keys.verifiers(), &[zero, beyond]).unwrap();
    assert_eq!(r.first_bad_entry(), Some(20), "{:?}", r.problems);
}

#[test]
fn forged_checkpoint_is_rejected() {
    for r in tampered(
        20,
        "UPDATE checkpoints SET note = replace(note, 'test.aigis/ledger
20
', 'test.aigis/ledger
21
') WHERE size = 20",
        |_, cps| {
            let last = cps.last_mut().unwrap();
            last.note = last
                .note
                .replace("test.aigis/ledger\n20\n", "test.aigis/ledger\n21\n");
        },
    ) {
        assert!(
            r.problems.iter().any(|p| p.kind == "bad_signature"),
            "{:?}",
            r.problems
        );
    }
}

#[test]
fn receipts_verify_offline_and_tampering_fails() {
    for backend in BACKENDS {
        receipts_verify_offline(backend);
    }
}

fn receipts_verify_offline(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, path) = build(dir.path(), 30, backend);
    let mut store = open_reader(backend, &path);
    let store = store.as_mut();
    let receipt = audit::prove(store, "req-13", None).unwrap();
    assert_eq!(receipt.format, RECEIPT_FORMAT);
    let json = serde_json::to_vec_pretty(&receipt).unwrap();
    // Only the public keys, as text.
    let public = LedgerVerifiers::parse(&keys.verifiers().to_text()).unwrap();
    let ok = audit::verify_receipt(&json, &public).unwrap();
    assert_eq!((ok.index, ok.request_id.as_str()), (13, "req-13"));
    assert!(
        receipt
            .tlog_proof
            .starts_with("c2sp.org/tlog-proof@v1\nindex 13\n")
    );
    // Any change to the event breaks the proof.
    let forged = String::from_utf8(json.clone())
        .unwrap()
        .replace("key:ci-bot", "key:someone");
    assert!(audit::verify_receipt(forged.as_bytes(), &public).is_err());
    let mut r2 = receipt.clone();
    r2.event.index = 14;
    assert!(audit::verify_receipt(&serde_json::to_vec(&r2).unwrap(), &public).is_err());
    // So does a text form that says something else than the verified fields.
    let mut r3 = receipt.clone();
    r3.tlog_proof = r3.tlog_proof.replacen("index 13", "index 12", 1);
    assert!(audit::verify_receipt(&serde_json::to_vec(&r3).unwrap(), &public).is_err());
    // Another log's key rejects it.
    let other = LedgerKeys::generate("test.aigis/ledger")
        .unwrap()
        .verifiers();
    assert!(audit::verify_receipt(&json, &other).is_err());
    // An unknown request id is an error that names it.
    let err = audit::prove(store, "nope", None).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

/// A request id two events share (a client may send its own) is not proved by guesswork:
/// the error lists the entries, and `index` picks one.
#[tokio::test]
async fn a_repeated_request_id_needs_an_index_to_prove() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), Backend::File);
    let store = open_store(Backend::File, &path, keys.origin());
    let ledger = Ledger::start(store, keys.clone(), None, config()).unwrap();
    for e in [event(1), event(2), event(1)] {
        ledger.append(e).await.unwrap();
    }
    ledger.checkpoint().await.unwrap();
    ledger.close();
    let mut store = open_reader(Backend::File, &path);
    let err = audit::prove(store.as_mut(), "req-1", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entries 0, 2") && err.contains("--index"),
        "{err}"
    );
    let receipt = audit::prove(store.as_mut(), "req-1", Some(2)).unwrap();
    assert_eq!(receipt.event.index, 2);
    assert!(audit::prove(store.as_mut(), "req-1", Some(1)).is_err());
    assert_eq!(
        audit::prove(store.as_mut(), "req-2", None)
            .unwrap()
            .event
            .index,
        1
    );
}

#[test]
fn an_encoded_event_is_the_canonical_event_at_its_index() {
    for index in [0, 1, 9, 10, 4_096, 123_456_789, u64::MAX] {
        let mut e = event(index % 1000);
        e.index = 77; // ignored: the store assigns the index
        let mut encoded = Encoded::new(e.clone());
        encoded.index = index;
        e.index = index;
        assert_eq!(encoded.canonical(), e.canonical(), "index {index}");
        assert_eq!(encoded.event().unwrap(), e);
        assert_eq!(
            (encoded.request_id.as_str(), encoded.time_ms),
            (e.request_id.as_str(), e.time_ms)
        );
    }
}

/// `event(i)` with a `detail` long enough for a canonical encoding of `len` bytes at index 0.
fn event_of_len(i: u64, len: usize) -> Event {
    let mut e = event(i);
    e.detail = Some(String::new());
    let base = e.canonical().len();
    e.detail = Some("d".repeat(len - base));
    e
}

#[test]
fn an_event_is_refused_unless_it_can_be_read_back_at_any_index() {
    // Counted with a 20-digit index, whichever the store assigns.
    let fits = Encoded::new(event_of_len(1, MAX_EVENT_LEN - 19));
    fits.check_len().unwrap();
    let mut at_max = fits.clone();
    at_max.index = u64::MAX;
    assert_eq!(at_max.canonical().len(), MAX_EVENT_LEN);
    at_max.event().unwrap();
    let over = Encoded::new(event_of_len(1, MAX_EVENT_LEN - 18));
    let err = over.check_len().unwrap_err();
    assert!(
        matches!(&err, LedgerError::EventTooLong { request_id, len } if request_id == "req-1" && *len == MAX_EVENT_LEN + 1),
        "{err}"
    );
}

#[test]
fn an_event_too_long_to_read_back_is_refused_and_nothing_else_is_affected() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, path, rt) = file_ledger(dir.path());
    let long = |i| event_of_len(i, MAX_EVENT_LEN + 1);
    let too_long = |r: Result<_, LedgerError>| matches!(r, Err(LedgerError::EventTooLong { .. }));
    rt.block_on(async {
        assert_eq!(ledger.append(event(0)).await.unwrap(), Ack::Stored(0));
        assert!(too_long(ledger.append(long(1)).await.map(drop)));
        assert!(too_long(ledger.enqueue(long(1)).await));
        assert!(too_long(ledger.try_enqueue(long(1))));
        // A deferred job's oversize events are left out of its batch; the others commit.
        let complete = Box::new(move |batch: &mut Batch| {
            batch.push(Encoded::new(event(1)));
            batch.push(Encoded::new(long(9)));
            let detail = "d".repeat(MAX_EVENT_LEN);
            let mut e = EventRef::new(EventKind::AiCall, "req-9", "chat.completions", 9);
            e.detail = Some(&detail);
            batch.push_ref(&e);
            batch.push(Encoded::new(event(2)));
        });
        ledger.enqueue_deferred(complete).await.unwrap();
        assert_eq!(ledger.append(event(3)).await.unwrap(), Ack::Stored(3));
    });
    assert!(ledger.healthy());
    assert_eq!(ledger.queue_free(), config().queue);
    ledger.close();
    let ids = request_ids(&path);
    assert_eq!(ids, ["req-0", "req-1", "req-2", "req-3"]);
}

#[test]
fn events_are_canonical_and_strict() {
    let mut e = event(5);
    e.index = 5;
    let bytes = e.canonical();
    assert_eq!(Event::from_canonical(&bytes).unwrap(), e);
    let pretty = serde_json::to_vec_pretty(&e).unwrap();
    assert!(Event::from_canonical(&pretty).is_err());
    assert_eq!(Event::from_json(&pretty).unwrap().canonical(), bytes);
    let unknown = String::from_utf8(bytes.clone())
        .unwrap()
        .replacen('{', "{\"prompt\":\"hi\",", 1);
    assert!(
        Event::from_json(unknown.as_bytes()).is_err(),
        "unknown members are refused"
    );
    let v2 = String::from_utf8(bytes)
        .unwrap()
        .replacen("\"v\":1", "\"v\":2", 1);
    assert!(
        Event::from_json(v2.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
}

#[test]
fn content_digests_are_keyed_and_bound_to_the_request() {
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let other = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let d = keys.content().digest("prompt", "req-1", b"hello");
    assert_eq!(d.len(), 64);
    assert!(keys.content().matches("prompt", "req-1", b"hello", &d));
    assert_ne!(d, keys.content().digest("prompt", "req-2", b"hello"));
    assert_ne!(d, keys.content().digest("response", "req-1", b"hello"));
    assert_ne!(d, other.content().digest("prompt", "req-1", b"hello"));
}

#[test]
fn key_file_round_trips_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let path = dir.path().join("ledger.key");
    keys.write_new(&path).unwrap();
    assert!(keys.write_new(&path).is_err(), "never overwrites");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let back = LedgerKeys::load(&path).unwrap();
    assert_eq!(back.verifiers().to_text(), keys.verifiers().to_text());
    assert_eq!(
        back.content().digest("prompt", "r", b"x"),
        keys.content().digest("prompt", "r", b"x")
    );
    let text = keys.verifiers().to_text();
    assert!(text.starts_with("test.aigis/ledger+"));
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn a_dead_writer_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), Backend::File);
    // A store bug that kills the writer thread.
    let store = Flaky {
        fail: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        panics: true,
        ..Flaky::new(open_store(Backend::File, &path, keys.origin()))
    };
    let ledger = Ledger::start(Box::new(store), keys, None, config()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The first batch kills the writer: its acknowledgement never comes.
        assert!(ledger.append(event(0)).await.is_err());
        // A record queued once the thread has unwound finds it gone, and the gateway then
        // refuses traffic.
        for i in 1..500 {
            if !ledger.healthy() {
                break;
            }
            let _ = ledger.try_enqueue(event(i));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(!ledger.healthy());
    assert!(ledger.try_enqueue(event(999)).is_err());
}

/// A store that fails while `fail` is set: its appends return an error, or panic when
/// `panics` is set. Its appends wait while `gate` is held (a disk that stops answering), and
/// take `pause_ms` each (a slow one).
struct Flaky {
    inner: Box<dyn Appender>,
    fail: Arc<std::sync::atomic::AtomicBool>,
    panics: bool,
    gate: Arc<std::sync::Mutex<()>>,
    pause_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Flaky {
    fn new(inner: Box<dyn Appender>) -> Self {
        Self {
            inner,
            fail: Arc::default(),
            panics: false,
            gate: Arc::default(),
            pause_ms: Arc::default(),
        }
    }
}

impl Appender for Flaky {
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError> {
        drop(self.gate.lock());
        std::thread::sleep(Duration::from_millis(
            self.pause_ms.load(std::sync::atomic::Ordering::SeqCst),
        ));
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(!self.panics, "a store bug");
            return Err(LedgerError::Store {
                store: "flaky".into(),
                message: "down".into(),
            });
        }
        self.inner.append_marked(events, tree, mark)
    }
    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError> {
        self.inner.drained(spool)
    }
    fn load_tree(&mut self) -> Result<Tree, LedgerError> {
        self.inner.load_tree()
    }
    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.inner.put_checkpoint(cp)
    }
    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        self.inner.latest_checkpoint()
    }
}

#[tokio::test]
async fn spool_takes_over_and_drains_in_order_then_fails_closed_when_full() {
    for backend in BACKENDS {
        spool_takes_over(backend).await;
    }
}

async fn spool_takes_over(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), backend);
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flaky = Flaky {
        fail: fail.clone(),
        ..Flaky::new(open_store(backend, &path, keys.origin()))
    };
    let spool = Spool::open(&dir.path().join("ledger.spool"), 4096).unwrap();
    let ledger = Ledger::start(Box::new(flaky), keys.clone(), Some(spool), config()).unwrap();
    assert_eq!(ledger.append(event(0)).await.unwrap(), Ack::Stored(0));
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ledger.append(event(1)).await.unwrap(), Ack::Spooled);
    assert_eq!(ledger.append(event(2)).await.unwrap(), Ack::Spooled);
    assert!(
        ledger.healthy(),
        "a spool with room keeps the gateway serving"
    );
    // Fill the spool: the ledger fails closed and says so.
    let mut failed = None;
    for i in 3..100 {
        if let Err(e) = ledger.append(event(i)).await {
            failed = Some((i, e));
            break;
        }
    }
    let (first_refused, err) = failed.expect("a 4 KiB spool fills up");
    assert!(matches!(err, LedgerError::FailClosed(_)), "{err}");
    assert!(!ledger.healthy());
    // The store comes back: the spool drains first, then new events follow.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let next = ledger.append(event(1000)).await.unwrap();
    assert_eq!(next, Ack::Stored(first_refused));
    assert!(ledger.healthy());
    ledger.close();
    let mut store = open_reader(backend, &path);
    let report = audit::verify(store.as_mut(), &keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let ids: Vec<String> = (0..first_refused)
        .map(|i| {
            let rows = store.find_request(&format!("req-{i}")).unwrap();
            String::from_utf8(rows[0].event.clone()).unwrap()
        })
        .collect();
    assert_eq!(
        ids.len() as u64,
        first_refused,
        "every acknowledged event is in the store"
    );
}

/// With no spool (fail-closed), events nobody waits for (the gateway's records of requests
/// already answered) are held while the store is down, not dropped: once it is back they are
/// committed first, in order, and the ledger accepts traffic again.
#[tokio::test]
async fn fail_closed_holds_queued_records_until_the_store_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), Backend::File);
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flaky = Flaky {
        fail: fail.clone(),
        ..Flaky::new(open_store(Backend::File, &path, keys.origin()))
    };
    let ledger = Ledger::start(Box::new(flaky), keys.clone(), None, config()).unwrap();
    assert_eq!(ledger.append(event(0)).await.unwrap(), Ack::Stored(0));
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    for i in 1..=5 {
        ledger.enqueue(event(i)).await.unwrap();
    }
    // A caller that waits is told, and its event is not kept.
    assert!(matches!(
        ledger.append(event(99)).await,
        Err(LedgerError::FailClosed(_))
    ));
    assert!(!ledger.healthy(), "the store is down: traffic is refused");
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ledger.append(event(6)).await.unwrap(), Ack::Stored(6));
    assert!(ledger.healthy());
    ledger.close();
    let mut store = open_reader(Backend::File, &path);
    let report = audit::verify(store.as_mut(), &keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    for i in 0..=6 {
        let rows = store.find_request(&format!("req-{i}")).unwrap();
        assert_eq!(rows.len(), 1, "req-{i} is recorded once");
        assert_eq!(rows[0].idx, i, "in queue order");
    }
    assert!(store.find_request("req-99").unwrap().is_empty());
}

/// A store that stops answering (a hung disk) makes the ledger unhealthy once the writer's
/// work outlasts `stall`, so the gateway refuses traffic instead of queueing it without end;
/// when the store answers again the queued records are committed and the ledger is healthy.
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the lock stands for the hung disk: the writer's thread waits on it, not this task"
)]
async fn a_store_that_stops_answering_is_reported_unhealthy_until_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), Backend::File);
    let gate = Arc::new(std::sync::Mutex::new(()));
    let flaky = Flaky {
        gate: gate.clone(),
        ..Flaky::new(open_store(Backend::File, &path, keys.origin()))
    };
    let stall = Duration::from_millis(300);
    let ledger = Ledger::start(
        Box::new(flaky),
        keys.clone(),
        None,
        WriterConfig { stall, ..config() },
    )
    .unwrap();
    assert_eq!(ledger.append(event(0)).await.unwrap(), Ack::Stored(0));
    let held = gate.lock().unwrap();
    ledger.enqueue(event(1)).await.unwrap();
    tokio::time::sleep(stall / 3).await;
    assert!(
        ledger.healthy(),
        "a commit shorter than the bound is no stall"
    );
    tokio::time::sleep(stall * 2).await;
    assert!(
        !ledger.healthy(),
        "the store has not answered for longer than the bound"
    );
    let waiting = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.append(event(2)).await }
    });
    drop(held);
    assert_eq!(waiting.await.unwrap().unwrap(), Ack::Stored(2));
    assert!(ledger.healthy());
    ledger.close();
    let mut store = open_reader(Backend::File, &path);
    for i in 0..=2 {
        assert_eq!(store.find_request(&format!("req-{i}")).unwrap().len(), 1);
    }
}

/// A spool drain longer than the stall bound, whose commits each return within it, is
/// progress: the ledger stays healthy throughout.
#[tokio::test]
async fn a_long_drain_that_makes_progress_is_no_stall() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LedgerKeys::generate("test.aigis/ledger").unwrap());
    let path = store_path(dir.path(), Backend::File);
    let flaky = Flaky::new(open_store(Backend::File, &path, keys.origin()));
    let (fail, pause_ms) = (flaky.fail.clone(), flaky.pause_ms.clone());
    let spool = Spool::open(&dir.path().join("ledger.spool"), 1 << 20).unwrap();
    // Generous against the spool's own fsyncs on a busy disk, which are not store operations.
    let stall = Duration::from_secs(2);
    let config = WriterConfig {
        stall,
        max_batch: 10,
        ..config()
    };
    let ledger = Ledger::start(Box::new(flaky), keys, Some(spool), config).unwrap();
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    for i in 0..40 {
        assert_eq!(ledger.append(event(i)).await.unwrap(), Ack::Spooled);
    }
    // Four batches of 700 ms each: 2.8 s of draining.
    pause_ms.store(700, std::sync::atomic::Ordering::SeqCst);
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    while ledger.size() < 40 {
        assert!(
            ledger.healthy(),
            "unhealthy {:?} into the drain",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the drain ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() > stall, "the drain outlasted the bound");
    ledger.close();
}

/// A crash after the drained batch was committed and before the spool was emptied: the next
/// drain must not append the batch again.
#[test]
fn a_spool_drain_interrupted_after_commit_appends_nothing_twice() {
    for backend in BACKENDS {
        drain_interrupted(backend);
    }
}

/// Both halves of a store, as the tests that append and read back on one handle need.
trait Both: Appender + LogReader {}
impl Both for FileStore {}
impl Both for SqliteStore {}

fn open_both(backend: Backend, path: &std::path::Path, origin: &str) -> Box<dyn Both> {
    match backend {
        Backend::File => Box::new(FileStore::open_with(path, Some(origin), 4096).unwrap()),
        Backend::Sqlite => Box::new(SqliteStore::open(path, Some(origin)).unwrap()),
    }
}

fn drain_interrupted(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let db = store_path(dir.path(), backend);
    let spool_path = dir.path().join("ledger.spool");
    {
        let mut spool = Spool::open(&spool_path, 1 << 20).unwrap();
        spool
            .push(&(0..5).map(|i| event(i).into()).collect::<Vec<_>>())
            .unwrap();
        let mut store = open_both(backend, &db, keys.origin());
        let mut tree = store.load_tree().unwrap();
        // Step one of the drain (commit, batches of 2) ... then the process dies: no clear.
        assert_eq!(spool.commit_into(store.as_mut(), &mut tree, 2).unwrap(), 5);
        assert_eq!(tree.size(), 5);
    }
    // Restart: the spool still holds the five events; the drain skips what the store has.
    let mut spool = Spool::open(&spool_path, 1 << 20).unwrap();
    assert_eq!(
        spool.events().unwrap().len(),
        5,
        "the crash left the spool full"
    );
    let mut store = open_both(backend, &db, keys.origin());
    let mut tree = store.load_tree().unwrap();
    assert_eq!(spool.drain(store.as_mut(), &mut tree, 2).unwrap(), 0);
    assert!(spool.is_empty());
    assert_eq!(count(store.as_mut()), 5, "no event appended twice");
    // A crash in the middle of a drain (after the first of three batches): the rest follows.
    spool
        .push(&(5..10).map(|i| event(i).into()).collect::<Vec<_>>())
        .unwrap();
    let id = spool.id().to_owned();
    let mut first: Vec<Encoded> = spool.events().unwrap()[..2]
        .iter()
        .cloned()
        .map(Encoded::new)
        .collect();
    let mark = SpoolMark {
        spool: &id,
        through: 2,
    };
    store
        .append_marked(&mut first, &mut tree, Some(&mark))
        .unwrap();
    drop(spool);
    let mut spool = Spool::open(&spool_path, 1 << 20).unwrap();
    assert_eq!(spool.drain(store.as_mut(), &mut tree, 2).unwrap(), 3);
    assert_eq!(count(store.as_mut()), 10);
    for i in 0..10 {
        let rows = store.find_request(&format!("req-{i}")).unwrap();
        assert_eq!(rows.len(), 1, "req-{i} recorded exactly once");
    }
    // The emptied spool has a new id: its events are not mistaken for drained ones.
    assert_ne!(spool.id(), id);
    spool.push(&[event(10).into()]).unwrap();
    assert_eq!(spool.drain(store.as_mut(), &mut tree, 2).unwrap(), 1);
    assert_eq!(count(store.as_mut()), 11);
}

#[test]
fn spool_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut s = Spool::open(&path, 1 << 20).unwrap();
    s.push(&[event(1).into(), event(2).into()]).unwrap();
    let good = s.len();
    drop(s);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0, 0, 0, 50, b'{']).unwrap();
    drop(f);
    let mut s = Spool::open(&path, 1 << 20).unwrap();
    assert_eq!(s.len(), good);
    assert_eq!(s.events().unwrap().len(), 2);
}

#[test]
fn a_checkpoint_without_the_pq_cosignature_is_refused_when_its_key_is_known() {
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let cp = Checkpoint {
        origin: "test.aigis/ledger".into(),
        size: 1,
        root: aigis_ledger::merkle::leaf_hash(b"x"),
    };
    let ed_only = cp.sign(&[keys.log()], 0).unwrap();
    let both = cp
        .sign(&[keys.log(), keys.cosigner()], 1_700_000_000)
        .unwrap();
    let v = keys.verifiers();
    let cosigners = [v.cosigner.clone().unwrap()];
    // The cosignature line round-trips and verifies; the Ed25519 line alone is a valid note.
    let (_, signers) =
        Checkpoint::verify(&both, &v.log, &cosigners, Some("test.aigis/ledger")).unwrap();
    assert_eq!(signers.len(), 2);
    let (_, signers) =
        Checkpoint::verify(&ed_only, &v.log, &cosigners, Some("test.aigis/ledger")).unwrap();
    assert_eq!(
        signers.len(),
        1,
        "verify() reports the missing cosignature; callers require it"
    );
    // A cosignature alone (no Ed25519 log signature) is not enough.
    let pq_only = cp.sign(&[keys.cosigner()], 5).unwrap();
    assert!(Checkpoint::verify(&pq_only, &v.log, &cosigners, None).is_err());
    // A tampered cosignature rejects the note.
    let note = Note::parse(&both).unwrap();
    let mut bad = note.clone();
    bad.signatures[1].sig[20] ^= 1;
    assert!(Checkpoint::verify(&bad.encode(), &v.log, &cosigners, None).is_err());
    // The cosignature is bound to the timestamp it carries.
    let mut moved = note;
    moved.signatures[1].sig[7] ^= 1;
    assert!(Checkpoint::verify(&moved.encode(), &v.log, &cosigners, None).is_err());
    // Wrong origin.
    assert!(Checkpoint::verify(&both, &v.log, &cosigners, Some("other/log")).is_err());
}

#[test]
fn tiles_export_serves_proofs_and_entries() {
    for backend in BACKENDS {
        tiles_export(backend);
    }
}

fn tiles_export(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, path) = build(dir.path(), 600, backend);
    let out = dir.path().join("tiles");
    let mut store = open_reader(backend, &path);
    let summary = aigis_ledger::tiles::export(store.as_mut(), &out).unwrap();
    assert_eq!(summary.size, 600);
    assert_eq!(summary.bundles, 3, "two full bundles and one partial");
    // A client with only the exported files and the public key checks an entry.
    let note = std::fs::read_to_string(out.join("checkpoint")).unwrap();
    let (cp, _) =
        Checkpoint::verify(&note, &keys.verifiers().log, &[], Some("test.aigis/ledger")).unwrap();
    let mut set = aigis_ledger::tiles::TileSet::new();
    for t in aigis_ledger::tiles::tiles_for_size(cp.size) {
        assert!(set.insert(t, &std::fs::read(out.join(t.path())).unwrap()));
    }
    let bundle = std::fs::read(out.join("tile/entries/001")).unwrap();
    let (len, rest) = bundle.split_at(2);
    let first = &rest[..usize::from(u16::from_be_bytes([len[0], len[1]]))];
    let e = Event::from_canonical(first).unwrap();
    assert_eq!(e.index, 256);
    let leaf = aigis_ledger::merkle::leaf_hash(first);
    let proof = aigis_ledger::merkle::inclusion_proof(&set, 256, cp.size).unwrap();
    aigis_ledger::merkle::verify_inclusion(256, cp.size, &leaf, &proof, &cp.root).unwrap();
    assert!(out.join("tile/0/002.p/88").exists());
    assert!(out.join("tile/1/000.p/2").exists());
}

/// The request ids of a file store's log, in log order.
fn request_ids(path: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    open_reader(Backend::File, path)
        .scan(0, &mut |row| {
            ids.push(Event::from_canonical(&row.event).unwrap().request_id);
            Ok(true)
        })
        .unwrap();
    ids
}
