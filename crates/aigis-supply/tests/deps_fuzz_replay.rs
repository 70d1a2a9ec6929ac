//! Replays the `deps_lockfiles` fuzz corpus and crashes (`fuzz/corpus/deps_lockfiles`,
//! `fuzz/artifacts/deps_lockfiles`) through the lockfile parsers, plus a fixed seed set that
//! runs on every machine: every fixture file, and prefixes of it cut at 32 points (truncated
//! lockfiles), through every parser. Nothing may panic.

use std::path::{Path, PathBuf};

use aigis_supply::deps::inputs::{InputKind, parse_text};

fn replay_fuzz_input(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let kind = InputKind::ALL[usize::from(first) % InputKind::ALL.len()];
    let _ = parse_text(kind, "fuzz", &String::from_utf8_lossy(rest));
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn fuzz_corpus_and_crashes_replay_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut found = Vec::new();
    for dir in ["corpus/deps_lockfiles", "artifacts/deps_lockfiles"] {
        files(&root.join(dir), &mut found);
    }
    for path in &found {
        if let Ok(bytes) = std::fs::read(path) {
            replay_fuzz_input(&bytes);
        }
    }
    println!("{} fuzz files replayed", found.len());
}

#[test]
fn truncated_fixtures_through_every_parser() {
    let mut found = Vec::new();
    files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut found,
    );
    let mut runs = 0usize;
    for path in found {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let cuts: Vec<usize> = (0..=32)
            .map(|k| text.len() * k / 32)
            .filter(|&at| text.is_char_boundary(at))
            .collect();
        for kind in InputKind::ALL {
            for &at in &cuts {
                let parsed = parse_text(kind, "seed", &text[..at]);
                assert!(parsed.packages.len() <= text.len());
                runs += 1;
            }
        }
    }
    println!("{runs} parser runs");
    assert!(runs > 1000);
}
