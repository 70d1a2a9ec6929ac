//! Property tests: for random trees every inclusion and consistency proof the generator makes
//! verifies, the tile-backed source gives the same proofs, and any flipped bit fails.
//! `PROPTEST_CASES` caps the case count (CI sets it low).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step should abort the test"
)]

use aigis_ledger::merkle::{self, Hash, RootBuilder, Tree};
use aigis_ledger::tiles::{self, TileSet};
use proptest::prelude::*;

fn tree(n: u64) -> Tree {
    let mut t = Tree::new();
    for i in 0..n {
        t.push(merkle::leaf_hash(&i.to_be_bytes()));
    }
    t
}

/// Reference MTH straight from RFC 6962's recursive definition.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            merkle::node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// Past the 4,096-hash chunks the tree keeps its levels in: roots at sizes on either side of
/// each chunk edge (levels 0 and 1) match the RFC definition, and inclusion proofs for the
/// leaves there verify.
#[test]
fn roots_and_proofs_across_chunk_edges() {
    let n = 3 * 4096 + 5;
    let t = tree(n);
    let leaves: Vec<Hash> = (0..n).map(|i| t.leaf(i).unwrap()).collect();
    for size in [4095, 4096, 4097, 8191, 8192, 8193, n] {
        let root = mth(&leaves[..size as usize]);
        assert_eq!(t.root_at(size).unwrap(), root, "size {size}");
        for index in [0, 4095, 4096, size - 1] {
            if index < size {
                let proof = t.inclusion_proof(index, size).unwrap();
                merkle::verify_inclusion(index, size, &leaves[index as usize], &proof, &root)
                    .unwrap();
            }
        }
    }
}

fn flip(proof: &mut [Hash], bit: usize) {
    let i = (bit / 256) % proof.len();
    proof[i][(bit % 256) / 8] ^= 1 << (bit % 8);
}

proptest! {
    #[test]
    fn roots_match_the_rfc_definition(n in 0u64..600) {
        let t = tree(n);
        let leaves: Vec<Hash> = (0..n).map(|i| t.leaf(i).unwrap()).collect();
        let mut b = RootBuilder::new();
        for l in &leaves { b.push(*l); }
        prop_assert_eq!(t.root(), mth(&leaves));
        prop_assert_eq!(b.root(), mth(&leaves));
    }

    #[test]
    fn inclusion_proofs_verify_and_bit_flips_fail(n in 1u64..2000, i in any::<u64>(), bit in any::<usize>()) {
        let t = tree(n);
        let size = 1 + i % n;
        let index = (i / n) % size;
        let root = t.root_at(size).unwrap();
        let leaf = t.leaf(index).unwrap();
        let mut proof = t.inclusion_proof(index, size).unwrap();
        merkle::verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        // Wrong index, wrong size and wrong leaf all fail.
        if size > 1 {
            prop_assert!(merkle::verify_inclusion((index + 1) % size, size, &leaf, &proof, &root).is_err());
        }
        let mut bad_leaf = leaf;
        bad_leaf[bit % 32] ^= 1;
        prop_assert!(merkle::verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());
        if !proof.is_empty() {
            flip(&mut proof, bit);
            prop_assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_bit_flips_fail(n in 1u64..2000, a in any::<u64>(), bit in any::<usize>()) {
        let t = tree(n);
        let size2 = 1 + a % n;
        let size1 = 1 + (a / n) % size2;
        let (r1, r2) = (t.root_at(size1).unwrap(), t.root_at(size2).unwrap());
        let mut proof = t.consistency_proof(size1, size2).unwrap();
        merkle::verify_consistency(size1, size2, &proof, &r1, &r2).unwrap();
        let mut bad = r1;
        bad[bit % 32] ^= 0x80;
        prop_assert!(merkle::verify_consistency(size1, size2, &proof, &bad, &r2).is_err());
        if !proof.is_empty() {
            flip(&mut proof, bit);
            prop_assert!(merkle::verify_consistency(size1, size2, &proof, &r1, &r2).is_err());
        }
    }

    #[test]
    fn tiles_give_the_same_proofs(n in 1u64..70_000, i in any::<u64>()) {
        let t = tree(n);
        let mut set = TileSet::new();
        for tile in tiles::tiles_for_size(n) {
            let bytes = tiles::tile_bytes(&t, tile).unwrap();
            prop_assert!(set.insert(tile, &bytes));
            prop_assert_eq!(tiles::Tile::parse_path(&tile.path()), Some(tile));
        }
        let index = i % n;
        prop_assert_eq!(merkle::root(&set, n).unwrap(), t.root());
        prop_assert_eq!(merkle::inclusion_proof(&set, index, n).unwrap(), t.inclusion_proof(index, n).unwrap());
        let size1 = 1 + i % n;
        prop_assert_eq!(merkle::consistency_proof(&set, size1, n).unwrap(), t.consistency_proof(size1, n).unwrap());
    }
}

#[test]
fn tile_paths_follow_the_spec() {
    let t = tiles::Tile {
        level: 0,
        index: 1_234_067,
        width: 256,
    };
    assert_eq!(t.path(), "tile/0/x001/x234/067");
    let p = tiles::Tile {
        level: 1,
        index: 5,
        width: 8,
    };
    assert_eq!(p.path(), "tile/1/005.p/8");
    assert_eq!(p.entries_path(), "tile/entries/005.p/8");
    for bad in [
        "tile/01/000",
        "tile/0/x01/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/1000",
        "tile/64/000",
    ] {
        assert_eq!(tiles::Tile::parse_path(bad), None, "{bad}");
    }
    // The spec's example: a tree of 70,000 leaves.
    let all = tiles::tiles_for_size(70_000);
    let count = |level, full: bool| {
        all.iter()
            .filter(|t| t.level == level && (t.width == 256) == full)
            .count()
    };
    assert_eq!(count(0, true), 273);
    assert_eq!(
        all.iter()
            .find(|t| t.level == 0 && t.width < 256)
            .unwrap()
            .width,
        112
    );
    assert_eq!(count(1, true), 1);
    assert_eq!(
        all.iter()
            .find(|t| t.level == 1 && t.width < 256)
            .unwrap()
            .width,
        17
    );
    assert_eq!(all.iter().find(|t| t.level == 2).unwrap().width, 1);
}

proptest! {
    /// Untrusted text never panics the parsers.
    #[test]
    fn parsers_never_panic(text in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = aigis_ledger::note::Note::parse(&text);
        let _ = aigis_ledger::note::NoteVerifier::parse(&text);
        let _ = aigis_ledger::checkpoint::Checkpoint::from_text(&text);
        let _ = aigis_ledger::tiles::Tile::parse_path(&text);
        let _ = aigis_ledger::Event::from_json(&bytes);
        let _ = aigis_ledger::Event::from_json(text.as_bytes());
        let _ = aigis_ledger::time::parse_time(&text, 0);
        let _ = aigis_ledger::LedgerVerifiers::parse(&text);
    }
}
