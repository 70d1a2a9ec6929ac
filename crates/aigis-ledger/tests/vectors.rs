//! Every RFC 6962 proof vector in `../shared/data/tlog/transparency-dev-merkle/testdata`
//! (inclusion and consistency, happy paths and malformed proofs) and the signed-note examples
//! of the C2SP specs in `../shared/data/specs/c2sp`. Skips with a notice when the folder is
//! absent, unless `AIGIS_REQUIRE_SHARED=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::path::{Path, PathBuf};

use aigis_ledger::merkle::{self, Tree};
use aigis_ledger::note::{Note, NoteVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn shared(rel: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("AIGIS_REQUIRE_SHARED").as_deref() != Ok("1"),
        "AIGIS_REQUIRE_SHARED=1 but {} is missing",
        dir.display()
    );
    eprintln!("notice: {} not found; skipping", dir.display());
    None
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
    STANDARD.decode(v.as_str().unwrap_or_default()).ok()
}

fn proof(v: &serde_json::Value) -> Option<Vec<Vec<u8>>> {
    match v {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(items) => items.iter().map(b64).collect(),
        _ => None,
    }
}

/// The RFC 6962 reference tree the vectors are built on (8 leaves).
fn reference_tree() -> Tree {
    let leaves: [&[u8]; 8] = [
        b"",
        &[0x00],
        &[0x10],
        &[0x20, 0x21],
        &[0x30, 0x31],
        &[0x40, 0x41, 0x42, 0x43],
        &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        &[
            0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
            0x6e, 0x6f,
        ],
    ];
    let mut t = Tree::new();
    for l in leaves {
        t.push(merkle::leaf_hash(l));
    }
    t
}

#[test]
fn inclusion_vectors() {
    let Some(dir) = shared("tlog/transparency-dev-merkle/testdata/inclusion") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(files.len() >= 90, "only {} inclusion vectors", files.len());
    let tree = reference_tree();
    let (mut ok, mut bad) = (0, 0);
    for f in &files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let index = v["leafIdx"].as_u64().unwrap();
        let size = v["treeSize"].as_u64().unwrap();
        let result = match (b64(&v["leafHash"]), b64(&v["root"]), proof(&v["proof"])) {
            (Some(leaf), Some(root), Some(p)) => {
                merkle::verify_inclusion(index, size, &leaf, &p, &root).map_err(|e| e.to_string())
            }
            _ => Err("undecodable".into()),
        };
        assert_eq!(result.is_err(), want_err, "{}: {result:?}", f.display());
        if want_err {
            bad += 1;
        } else {
            ok += 1;
            // Our generator produces exactly the vector's proof for the reference tree.
            if v["desc"] == "happy path" && size <= 8 && size > 1 {
                let ours = tree.inclusion_proof(index, size).unwrap();
                let theirs = proof(&v["proof"]).unwrap();
                assert_eq!(
                    ours.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
                    theirs,
                    "{}",
                    f.display()
                );
                assert_eq!(
                    tree.root_at(size).unwrap().to_vec(),
                    b64(&v["root"]).unwrap()
                );
            }
        }
    }
    eprintln!("inclusion: {ok} valid, {bad} invalid vectors");
}

#[test]
fn consistency_vectors() {
    let Some(dir) = shared("tlog/transparency-dev-merkle/testdata/consistency") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(
        files.len() >= 90,
        "only {} consistency vectors",
        files.len()
    );
    let tree = reference_tree();
    for f in &files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let size1 = v["size1"].as_u64().unwrap();
        let size2 = v["size2"].as_u64().unwrap();
        let result = match (b64(&v["root1"]), b64(&v["root2"]), proof(&v["proof"])) {
            (Some(r1), Some(r2), Some(p)) => {
                merkle::verify_consistency(size1, size2, &p, &r1, &r2).map_err(|e| e.to_string())
            }
            _ => Err("undecodable".into()),
        };
        assert_eq!(result.is_err(), want_err, "{}: {result:?}", f.display());
        if !want_err && v["desc"] == "happy path" && size2 <= 8 {
            let ours = tree.consistency_proof(size1, size2).unwrap();
            let theirs = proof(&v["proof"]).unwrap();
            assert_eq!(
                ours.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
                theirs,
                "{}",
                f.display()
            );
        }
    }
}

/// The verifier key and note of the signed-note spec's example.
#[test]
fn signed_note_spec_example() {
    let Some(spec) = shared("specs/c2sp/signed-note.md") else {
        return;
    };
    let text = std::fs::read_to_string(spec).unwrap();
    let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    assert!(text.contains(vkey), "the spec's example key moved");
    let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    assert!(
        text.contains(note.trim_end()),
        "the spec's example note moved"
    );
    let v = NoteVerifier::parse(vkey).unwrap();
    assert_eq!(v.to_vkey(), vkey);
    let parsed = Note::parse(note).unwrap();
    assert_eq!(parsed.verify(std::slice::from_ref(&v)).unwrap().len(), 1);
    assert_eq!(parsed.encode(), note);
    // Altered text fails; a wrong key ID is an unknown key.
    let altered = note.replace("example message", "example massage");
    assert!(
        Note::parse(&altered)
            .unwrap()
            .verify(std::slice::from_ref(&v))
            .is_err()
    );
    assert!(
        NoteVerifier::parse(
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
        )
        .is_err()
    );
}

/// The checkpoint and cosignature examples of the specs parse (their keys are not published,
/// so only the framing is checked).
#[test]
fn checkpoint_spec_examples_parse() {
    let Some(spec) = shared("specs/c2sp/tlog-cosignature.md") else {
        return;
    };
    let text = std::fs::read_to_string(spec).unwrap();
    let start = text.find("example.com/behind-the-sofa\n").unwrap();
    let end = start + text[start..].find("\n```").unwrap() + 1;
    let note = Note::parse(&text[start..end]).unwrap();
    assert_eq!(note.signatures.len(), 2);
    let cp = aigis_ledger::checkpoint::Checkpoint::from_text(&note.text).unwrap();
    assert_eq!(cp.size, 20_852_163);
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    // The witness signature is timestamped Ed25519: 8 + 64 bytes.
    assert_eq!(note.signatures[1].sig.len(), 72);
}
