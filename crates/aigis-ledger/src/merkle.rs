//! RFC 6962 Merkle tree hashing (§2.1), inclusion proofs (§2.1.1) and consistency proofs
//! (§2.1.2): generation from a [`HashSource`] and verification from proofs alone.
//!
//! Hashes are SHA-256: a leaf is `SHA-256(0x00 || data)`, an interior node
//! `SHA-256(0x01 || left || right)`, the empty tree `SHA-256("")`.
//!
//! Generation asks a [`HashSource`] only for hashes of *perfect* subtrees (2^level leaves
//! starting at a multiple of 2^level); the hash of any other range is assembled from at most
//! one perfect subtree per level, so a proof costs O(log² n) hash lookups at worst. The
//! in-memory [`Tree`] and the tile reader ([`crate::tiles`]) both implement it.

use crate::sha256::Sha256;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Deepest tree the code handles: 2^63 leaves (indices are `u64`).
pub const MAX_LEVEL: u32 = 63;

/// Why a proof did not verify, or could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The two sizes of a consistency proof are not in order.
    #[error(
        "consistency proof from size {size1} to size {size2}: the first size must not exceed the second"
    )]
    SizesOutOfOrder {
        /// The older size.
        size1: u64,
        /// The newer size.
        size2: u64,
    },
    /// A consistency proof from the empty tree proves nothing.
    #[error(
        "consistency proof from the empty tree to size {size2} is meaningless (every tree extends the empty one)"
    )]
    FromEmptyTree {
        /// The newer size.
        size2: u64,
    },
    /// The proof has the wrong number of hashes.
    #[error("proof has {got} hashes, a proof for these sizes has {want}")]
    WrongLength {
        /// Hashes given.
        got: usize,
        /// Hashes expected.
        want: usize,
    },
    /// A proof element is not a 32-byte hash.
    #[error("proof hash {position} is {len} bytes, expected 32")]
    BadHashLength {
        /// Position in the proof.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// The recomputed root differs from the expected one.
    #[error(
        "{which} root does not match: the proof computes {computed}, the expected root is {expected}"
    )]
    RootMismatch {
        /// Which root (`"tree"`, `"old"`, `"new"`).
        which: &'static str,
        /// The computed root, base64.
        computed: String,
        /// The expected root, base64.
        expected: String,
    },
    /// The hash source could not provide a hash it should have.
    #[error("hash of level {level} index {index} is not available (tree of size {size})")]
    MissingHash {
        /// Level of the subtree.
        level: u32,
        /// Index at that level.
        index: u64,
        /// Tree size asked about.
        size: u64,
    },
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::default().update(&[0]).update(data).finish()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    Sha256::default()
        .update(&[1])
        .update(left)
        .update(right)
        .finish()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::default().finish()
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (n - 1).ilog2()
}

/// Where proofs get their hashes from: the hash of the perfect subtree of `2^level` leaves
/// that starts at leaf `index << level`.
pub trait HashSource {
    /// The perfect-subtree hash, or `None` when the source does not hold it.
    fn perfect(&self, level: u32, index: u64) -> Option<Hash>;
}

/// The Merkle Tree Hash of leaves `[start, end)` (`start < end`, `start` aligned as RFC 6962's
/// recursion produces it).
pub fn range_hash<S: HashSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
) -> Result<Hash, ProofError> {
    let n = end - start;
    if n.is_power_of_two() && start.trailing_zeros() >= n.trailing_zeros() {
        let level = n.trailing_zeros();
        let index = start >> level;
        return src.perfect(level, index).ok_or(ProofError::MissingHash {
            level,
            index,
            size: end,
        });
    }
    // Right-edge ranges: a left perfect part and a right remainder, iteratively from the right.
    let mut parts: Vec<Hash> = Vec::with_capacity(64);
    let mut s = start;
    while s < end {
        let rest = end - s;
        let k = if rest.is_power_of_two() {
            rest
        } else {
            split_point(rest)
        };
        parts.push(range_hash(src, s, s + k)?);
        s += k;
    }
    let mut acc = parts.pop().ok_or(ProofError::MissingHash {
        level: 0,
        index: start,
        size: end,
    })?;
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The root of a tree of `size` leaves.
pub fn root<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// The inclusion proof (audit path) for leaf `index` in a tree of `size` leaves, from the
/// leaf's sibling up to the root's child.
pub fn inclusion_proof<S: HashSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(64);
    let (mut m, mut start, mut n) = (index, 0u64, size);
    // Walk down from the root; siblings are collected top-down and reversed at the end.
    while n > 1 {
        let k = split_point(n);
        if m < k {
            proof.push(range_hash(src, start + k, start + n)?);
            n = k;
        } else {
            proof.push(range_hash(src, start, start + k)?);
            m -= k;
            start += k;
            n -= k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof between the tree of `size1` leaves and its extension to `size2`.
pub fn consistency_proof<S: HashSource + ?Sized>(
    src: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        return Ok(Vec::new());
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree { size2 });
    }
    // SUBPROOF(m, D[start:start+n], b) of RFC 6962 §2.1.2, unrolled.
    let mut proof = Vec::with_capacity(64);
    let (mut m, mut start, mut n, mut whole) = (size1, 0u64, size2, true);
    while m != n {
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(src, start + k, start + n)?);
            n = k;
        } else {
            proof.push(range_hash(src, start, start + k)?);
            m -= k;
            start += k;
            n -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(range_hash(src, start, start + n)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Splits an inclusion proof for `index` in a tree of `size` into its inner part (below the
/// point where the path leaves the perfect subtrees) and its right border.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

fn as_hash(h: &[u8], position: usize) -> Result<&[u8], ProofError> {
    if h.len() == 32 {
        Ok(h)
    } else {
        Err(ProofError::BadHashLength {
            position,
            len: h.len(),
        })
    }
}

fn chain_inner<H: AsRef<[u8]>>(seed: Hash, proof: &[H], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 0 {
            node_hash(&acc, h.as_ref())
        } else {
            node_hash(h.as_ref(), &acc)
        }
    })
}

fn chain_inner_right<H: AsRef<[u8]>>(seed: Hash, proof: &[H], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 1 {
            node_hash(h.as_ref(), &acc)
        } else {
            acc
        }
    })
}

fn chain_border_right<H: AsRef<[u8]>>(seed: Hash, proof: &[H]) -> Hash {
    proof
        .iter()
        .fold(seed, |acc, h| node_hash(h.as_ref(), &acc))
}

fn check_root(which: &'static str, computed: &[u8], expected: &[u8]) -> Result<(), ProofError> {
    if computed == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            which,
            computed: crate::b64(computed),
            expected: crate::b64(expected),
        })
    }
}

/// The root an inclusion proof computes for `leaf` at `index` in a tree of `size`.
pub fn root_from_inclusion<H: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[H],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    for (i, h) in proof.iter().enumerate() {
        as_hash(h.as_ref(), i)?;
    }
    let seed: Hash =
        as_hash(leaf, usize::MAX)?
            .try_into()
            .map_err(|_| ProofError::BadHashLength {
                position: usize::MAX,
                len: leaf.len(),
            })?;
    let res = chain_inner(seed, &proof[..inner], index);
    Ok(chain_border_right(res, &proof[inner..]))
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion<H: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[H],
    root: &[u8],
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    check_root("tree", &computed, root)
}

/// Verifies that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves
/// with `root1`.
pub fn verify_consistency<H: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[H],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        if size1 == 0 {
            // Every empty tree has the same root; anything else claims leaves that are not there.
            check_root("old", root1, &empty_root())?;
        }
        return check_root("new", root1, root2);
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree { size2 });
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    }
    for (i, h) in proof.iter().enumerate() {
        as_hash(h.as_ref(), i)?;
    }
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner - shift;
    // When size1 is a power of two its root is itself a node on the path: the proof omits it.
    let (seed, rest): (&[u8], &[H]) = if size1 == 1 << shift {
        (root1, proof)
    } else {
        (proof[0].as_ref(), &proof[1..])
    };
    let start = proof.len() - rest.len();
    if rest.len() != inner + border {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: start + inner + border,
        });
    }
    let seed: Hash = seed.try_into().map_err(|_| ProofError::BadHashLength {
        position: 0,
        len: seed.len(),
    })?;
    let mask = (size1 - 1) >> shift;
    let hash1 = chain_border_right(
        chain_inner_right(seed, &rest[..inner], mask),
        &rest[inner..],
    );
    check_root("old", &hash1, root1)?;
    let hash2 = chain_border_right(chain_inner(seed, &rest[..inner], mask), &rest[inner..]);
    check_root("new", &hash2, root2)
}

/// An append-only in-memory Merkle tree holding every perfect-subtree hash (two hashes per
/// leaf, 64 bytes): proofs for any size up to [`Tree::size`] without touching storage.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Level>,
}

/// Hashes a [`Level`] chunk holds (128 KiB).
const CHUNK: usize = 1 << 12;

/// One level of a [`Tree`], in chunks of [`CHUNK`] hashes. It grows a chunk at a time and never
/// moves what it holds. A level in one `Vec` was reallocated each time it doubled, on the ledger
/// writer's thread; with an allocator that copies (mimalloc, the gateway's, does for blocks this
/// large), that is all of it: hundreds of MB for level 0 past ten million entries, while
/// appends wait.
#[derive(Debug, Clone, Default)]
struct Level {
    chunks: Vec<Vec<Hash>>,
    len: usize,
}

impl Level {
    fn push(&mut self, hash: Hash) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(hash);
            self.len += 1;
        }
    }

    fn get(&self, index: usize) -> Option<&Hash> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len as u64)
    }

    /// Appends a leaf hash and completes every perfect subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Level::default());
            }
            let l = &mut self.levels[level];
            l.push(node);
            if !l.len.is_multiple_of(2) {
                return;
            }
            let (Some(left), Some(right)) = (l.get(l.len - 2), l.get(l.len - 1)) else {
                return;
            };
            node = node_hash(left, right);
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.perfect(0, index)
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash {
        root(self, self.size()).unwrap_or_else(|_| empty_root())
    }

    /// The root at an earlier `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::IndexOutOfRange {
                index: size,
                size: self.size(),
            });
        }
        root(self, size)
    }

    /// Inclusion proof for `index` in the tree at `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        inclusion_proof(self, index, size)
    }

    /// Consistency proof between sizes `size1` and `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size2)?;
        consistency_proof(self, size1, size2)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            Err(ProofError::IndexOutOfRange {
                index: size,
                size: self.size(),
            })
        } else {
            Ok(())
        }
    }
}

impl HashSource for Tree {
    fn perfect(&self, level: u32, index: u64) -> Option<Hash> {
        let l = self.levels.get(usize::try_from(level).ok()?)?;
        l.get(usize::try_from(index).ok()?).copied()
    }
}

/// The root of a sequence of leaf hashes computed with O(log n) memory (a compact range of
/// at most 64 perfect subtrees), for verifying a whole log in one pass.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    /// Perfect subtree roots, largest first; `stack[i]` covers `2^levels[i]` leaves.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl RootBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != node.0 {
                break;
            }
            self.stack.pop();
            node = (level + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// The root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}
