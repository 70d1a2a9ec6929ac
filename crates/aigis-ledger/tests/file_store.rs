//! The append-only file-set store's own guarantees: torn tails are cut only when never
//! acknowledged, damage elsewhere is refused, segments roll over, one writer at a time.
//! (Everything backend-agnostic runs against it in `ledger.rs` and `crash.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aigis_ledger::checkpoint::Checkpoint;
use aigis_ledger::merkle::Tree;
use aigis_ledger::store::file::FileStore;
use aigis_ledger::store::{Appender, LogReader, StoreUrl, StoredCheckpoint, open_reader};
use aigis_ledger::{Encoded, Event, EventKind, LedgerKeys, audit};

fn events(from: u64, n: u64) -> Vec<Encoded> {
    (from..from + n)
        .map(|i| {
            let mut e = Event::new(
                EventKind::AiCall,
                &format!("req-{i}"),
                "chat.completions",
                i,
            );
            e.model = Some("gpt-4o".into());
            e.status = 200;
            Encoded::new(e)
        })
        .collect()
}

/// Appends `batches` batches of `per` events and signs a checkpoint at the end when asked.
fn fill(
    store: &mut FileStore,
    tree: &mut Tree,
    keys: &LedgerKeys,
    batches: u64,
    per: u64,
    sign: bool,
) {
    for _ in 0..batches {
        let mut batch = events(tree.size(), per);
        store.append(&mut batch, tree).unwrap();
    }
    if sign {
        let cp = Checkpoint {
            origin: keys.origin().into(),
            size: tree.size(),
            root: tree.root(),
        };
        let note = cp.sign(&[keys.log(), keys.cosigner()], 0).unwrap();
        store
            .put_checkpoint(&StoredCheckpoint {
                size: tree.size(),
                time_ms: 0,
                note,
            })
            .unwrap();
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("seg-"))
        .collect();
    v.sort();
    v
}

/// A fresh log in a temporary folder: the folder's guard, the log's path, its keys, the open
/// store and its tree.
fn new_log() -> (tempfile::TempDir, PathBuf, LedgerKeys, FileStore, Tree) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let mut store = FileStore::open(&dir, Some(keys.origin())).unwrap();
    let tree = store.load_tree().unwrap();
    (tmp, dir, keys, store, tree)
}

fn verify_ok(dir: &Path, keys: &LedgerKeys) -> u64 {
    let mut r = FileStore::open_existing(dir).unwrap();
    let report = audit::verify(&mut r, &keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    report.entries
}

#[test]
fn a_torn_unacknowledged_tail_is_cut_and_appends_continue() {
    let (tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 3, 10, true);
    drop(store);
    let seg = segments(&dir).pop().unwrap();
    let good = std::fs::metadata(&seg).unwrap().len();
    // A batch that was being written when the process died: header and half its entries.
    let mut other = FileStore::open(&tmp.path().join("scratch"), Some(keys.origin())).unwrap();
    let mut t2 = other.load_tree().unwrap();
    fill(&mut other, &mut t2, &keys, 1, 10, false);
    drop(other);
    let batch = std::fs::read(segments(&tmp.path().join("scratch")).pop().unwrap()).unwrap();
    let torn = &batch[16..16 + (batch.len() - 16) / 2];
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(torn)
        .unwrap();
    // A reader ignores the incomplete tail (it may be a batch in progress).
    assert_eq!(verify_ok(&dir, &keys), 30);
    // The writer cuts it off and carries on.
    let mut store = FileStore::open(&dir, Some(keys.origin())).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good);
    let mut tree = store.load_tree().unwrap();
    assert_eq!(tree.size(), 30);
    fill(&mut store, &mut tree, &keys, 1, 5, true);
    drop(store);
    assert_eq!(verify_ok(&dir, &keys), 35);
}

#[test]
fn a_complete_tail_batch_with_a_bad_check_is_cut_too() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 2, 10, true);
    fill(&mut store, &mut tree, &keys, 1, 10, false);
    drop(store);
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let mut store = FileStore::open(&dir, Some(keys.origin())).unwrap();
    assert_eq!(
        store.load_tree().unwrap().size(),
        20,
        "the unsigned last batch was cut"
    );
}

#[test]
fn damage_covered_by_a_checkpoint_is_refused_not_cut() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 3, 10, true);
    drop(store);
    let seg = segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    let err = FileStore::open(&dir, Some(keys.origin()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("acknowledged"), "{err}");
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len - 7,
        "nothing was cut"
    );
    // verify names the cut.
    let mut r = FileStore::open_existing(&dir).unwrap();
    let report = audit::verify(&mut r, &keys.verifiers(), &[]).unwrap();
    assert_eq!(report.first_bad_entry(), Some(20), "{:?}", report.problems);
}

#[test]
fn damage_before_the_end_is_refused() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 3, 10, false);
    drop(store);
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[16] ^= 0xff; // the first batch's magic
    std::fs::write(&seg, &bytes).unwrap();
    assert!(FileStore::open(&dir, Some(keys.origin())).is_err());
    let mut r = FileStore::open_existing(&dir).unwrap();
    assert!(audit::verify(&mut r, &keys.verifiers(), &[]).is_err());
}

#[test]
fn segments_roll_over_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let keys = LedgerKeys::generate("test.aigis/ledger").unwrap();
    let mut store = FileStore::open_with(&dir, Some(keys.origin()), 2000).unwrap();
    let mut tree = store.load_tree().unwrap();
    fill(&mut store, &mut tree, &keys, 20, 7, true);
    let root = tree.root();
    drop(store);
    assert!(segments(&dir).len() > 5, "{:?}", segments(&dir));
    let mut store = FileStore::open_with(&dir, Some(keys.origin()), 2000).unwrap();
    let mut tree = store.load_tree().unwrap();
    assert_eq!((tree.size(), tree.root()), (140, root));
    fill(&mut store, &mut tree, &keys, 3, 7, true);
    drop(store);
    assert_eq!(verify_ok(&dir, &keys), 161);
    // Reading from the middle starts at the right entry; lookups find one entry each.
    let mut r = open_reader(&StoreUrl::parse(&format!("file:{}", dir.display())).unwrap()).unwrap();
    let mut first = None;
    r.scan(100, &mut |row| {
        first = Some(row.idx);
        Ok(false)
    })
    .unwrap();
    assert_eq!(first, Some(100));
    let rows = r.find_request("req-150").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].idx, 150);
    assert!(r.find_request("req-1500").unwrap().is_empty());
    let receipt = audit::prove(r.as_mut(), "req-77", None).unwrap();
    let json = serde_json::to_vec(&receipt).unwrap();
    assert_eq!(
        audit::verify_receipt(&json, &keys.verifiers())
            .unwrap()
            .index,
        77
    );
}

/// The writer probes a failing store with an empty append: it must reach the disk (an empty
/// batch, synced), and the log must read back and verify as before.
#[test]
fn an_empty_append_writes_an_empty_batch() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 2, 5, true);
    let seg = segments(&dir).pop().unwrap();
    let before = std::fs::metadata(&seg).unwrap().len();
    store.append(&mut [], &mut tree).unwrap();
    let after = std::fs::metadata(&seg).unwrap().len();
    assert!(after > before, "the probe wrote nothing");
    fill(&mut store, &mut tree, &keys, 1, 5, true);
    drop(store);
    assert_eq!(verify_ok(&dir, &keys), 15);
    let mut store = FileStore::open(&dir, Some(keys.origin())).unwrap();
    assert_eq!(store.load_tree().unwrap().size(), 15);
}

#[test]
fn one_writer_at_a_time_and_origin_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let store = FileStore::open(&dir, Some("a.test/log")).unwrap();
    let err = FileStore::open(&dir, Some("a.test/log"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("another writer"), "{err}");
    drop(store);
    let err = FileStore::open(&dir, Some("b.test/log"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.test/log"), "{err}");
    let mut r = FileStore::open_existing(&dir).unwrap();
    assert_eq!(r.origin().unwrap().as_deref(), Some("a.test/log"));
    assert!(FileStore::open_existing(&tmp.path().join("nope")).is_err());
    assert!(StoreUrl::parse("file:").is_err());
}

#[test]
fn spool_marks_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let mut store = FileStore::open(&dir, Some("a.test/log")).unwrap();
    let mut tree = store.load_tree().unwrap();
    let mark = aigis_ledger::store::SpoolMark {
        spool: "00ff",
        through: 3,
    };
    store
        .append_marked(&mut events(0, 3), &mut tree, Some(&mark))
        .unwrap();
    assert_eq!(store.drained("00ff").unwrap(), 3);
    drop(store);
    let mut store = FileStore::open(&dir, Some("a.test/log")).unwrap();
    assert_eq!(store.drained("00ff").unwrap(), 3);
    assert_eq!(store.drained("other").unwrap(), 0);
}

#[test]
fn a_torn_checkpoint_record_is_cut_and_the_previous_one_stays_latest() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    fill(&mut store, &mut tree, &keys, 1, 5, true);
    fill(&mut store, &mut tree, &keys, 1, 5, true);
    drop(store);
    let path = dir.join("checkpoints.log");
    let len = std::fs::metadata(&path).unwrap().len();
    // The last record loses its final bytes (its check): a write cut short.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let mut store = FileStore::open(&dir, Some(keys.origin())).unwrap();
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().size, 5);
    let mut tree = store.load_tree().unwrap();
    assert_eq!(tree.size(), 10, "entries are not touched");
    fill(&mut store, &mut tree, &keys, 1, 1, true);
    drop(store);
    assert_eq!(verify_ok(&dir, &keys), 11);
    let mut r = FileStore::open_existing(&dir).unwrap();
    let sizes: Vec<u64> = r.checkpoints().unwrap().iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![5, 11]);
}

#[test]
fn a_damaged_checkpoint_record_before_the_end_is_refused_not_cut() {
    let (_tmp, dir, keys, mut store, mut tree) = new_log();
    for _ in 0..3 {
        fill(&mut store, &mut tree, &keys, 1, 5, true);
    }
    drop(store);
    let path = dir.join("checkpoints.log");
    let mut bytes = std::fs::read(&path).unwrap();
    // The second record's note length, as damage (not a torn write) would leave it.
    let first_note = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let second = 8 + first_note + 36;
    bytes[second..second + 4].copy_from_slice(&[0xff; 4]);
    std::fs::write(&path, &bytes).unwrap();
    let err = FileStore::open(&dir, Some(keys.origin())).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut");
}
