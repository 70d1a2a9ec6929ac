//! C2SP tlog-tiles layout: tile coordinates and paths (`tile/<L>/<N>[.p/<W>]`), tile
//! contents from a [`HashSource`], and a [`HashSource`] backed by tiles, so proofs can be
//! computed by anyone holding the exported tiles (or by a reader of a tile store).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::merkle::{Hash, HashSource, ProofError, node_hash};

/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;
/// Highest tile level the spec allows.
pub const MAX_TILE_LEVEL: u32 = 63;

/// One tile: level, index, width (256 for a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile level (tree level `8 * level`).
    pub level: u32,
    /// Index within the level.
    pub index: u64,
    /// Number of hashes (1..=256).
    pub width: u64,
}

impl Tile {
    /// The tile's path below the log prefix, e.g. `tile/0/x001/x234/067.p/8`.
    pub fn path(&self) -> String {
        let mut p = format!("tile/{}/{}", self.level, index_path(self.index));
        if self.width < TILE_WIDTH {
            let _ = write!(p, ".p/{}", self.width);
        }
        p
    }

    /// Path of the entry bundle matching a level-0 tile.
    pub fn entries_path(&self) -> String {
        let mut p = format!("tile/entries/{}", index_path(self.index));
        if self.width < TILE_WIDTH {
            let _ = write!(p, ".p/{}", self.width);
        }
        p
    }

    /// Parses a tile path (`tile/<L>/<N>[.p/<W>]`).
    pub fn parse_path(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (level_s, rest) = rest.split_once('/')?;
        if level_s.is_empty() || (level_s.len() > 1 && level_s.starts_with('0')) {
            return None;
        }
        let level: u32 = level_s.parse().ok().filter(|l| *l <= MAX_TILE_LEVEL)?;
        let (n_part, width) = match rest.split_once(".p/") {
            Some((n, w)) => {
                if w.starts_with('0') {
                    return None;
                }
                let w: u64 = w.parse().ok().filter(|w| (1..TILE_WIDTH).contains(w))?;
                (n, w)
            }
            None => (rest, TILE_WIDTH),
        };
        let elems: Vec<&str> = n_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, e) in elems.iter().enumerate() {
            let digits = if i + 1 < elems.len() {
                e.strip_prefix('x')?
            } else {
                e
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index = index
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        Some(Self {
            level,
            index,
            width,
        })
    }
}

fn index_path(mut n: u64) -> String {
    let mut elems = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        elems.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    elems.reverse();
    elems.join("/")
}

/// Every tile (full and partial) that a tree of `size` leaves needs, level by level.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    let mut level = 0u32;
    loop {
        let shift = TILE_HEIGHT * level;
        if shift >= 64 {
            break;
        }
        let hashes = size >> shift; // hashes at tree level 8*level
        if hashes == 0 {
            break;
        }
        let full = hashes / TILE_WIDTH;
        for index in 0..full {
            out.push(Tile {
                level,
                index,
                width: TILE_WIDTH,
            });
        }
        let partial = hashes % TILE_WIDTH;
        if partial > 0 {
            out.push(Tile {
                level,
                index: full,
                width: partial,
            });
        }
        level += 1;
    }
    out
}

/// The bytes of `tile` (`width` concatenated hashes at tree level `8 * level`).
pub fn tile_bytes<S: HashSource + ?Sized>(src: &S, tile: Tile) -> Result<Vec<u8>, ProofError> {
    let tree_level = TILE_HEIGHT * tile.level;
    let mut out = Vec::with_capacity(usize::try_from(tile.width).unwrap_or(256) * 32);
    for i in 0..tile.width {
        let index = tile.index * TILE_WIDTH + i;
        let h = src
            .perfect(tree_level, index)
            .ok_or(ProofError::MissingHash {
                level: tree_level,
                index,
                size: 0,
            })?;
        out.extend_from_slice(&h);
    }
    Ok(out)
}

/// A [`HashSource`] over a set of tiles (as read back from a tiles export): the hash of a
/// subtree at tree level `8l + k` is rebuilt from `2^k` hashes of the tile at level `l`.
#[derive(Debug, Default)]
pub struct TileSet {
    /// Tiles by (level, index): the widest copy seen.
    tiles: HashMap<(u32, u64), Vec<Hash>>,
}

impl TileSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tile's bytes (a multiple of 32, at most 256 hashes, matching `tile.width`).
    pub fn insert(&mut self, tile: Tile, bytes: &[u8]) -> bool {
        if bytes.len() as u64 != tile.width * 32 || tile.width == 0 || tile.width > TILE_WIDTH {
            return false;
        }
        let hashes: Vec<Hash> = bytes
            .chunks_exact(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect();
        let slot = self.tiles.entry((tile.level, tile.index)).or_default();
        if hashes.len() > slot.len() {
            *slot = hashes;
        }
        true
    }
}

impl HashSource for TileSet {
    fn perfect(&self, level: u32, index: u64) -> Option<Hash> {
        let tile_level = level / TILE_HEIGHT;
        let k = level % TILE_HEIGHT;
        // The subtree covers 2^k consecutive hashes at tree level 8*tile_level.
        let first = index.checked_shl(k)?;
        let count = 1u64 << k;
        let tile = self.tiles.get(&(tile_level, first / TILE_WIDTH))?;
        let start = usize::try_from(first % TILE_WIDTH).ok()?;
        let end = start + usize::try_from(count).ok()?;
        let mut row: Vec<Hash> = tile.get(start..end)?.to_vec();
        while row.len() > 1 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        row.first().copied()
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    /// Tree size of the exported checkpoint.
    pub size: u64,
    /// Hash tiles written.
    pub tiles: usize,
    /// Entry bundles written.
    pub bundles: usize,
}

/// Writes the log as a static tlog-tiles tree under `dir`: `checkpoint` (the latest signed
/// checkpoint), every hash tile for its size, and the entry bundles (big-endian `u16`
/// length-prefixed canonical events). Fails if the entries do not produce the signed root.
pub fn export(
    reader: &mut dyn crate::store::LogReader,
    dir: &std::path::Path,
) -> Result<ExportSummary, crate::LedgerError> {
    use crate::LedgerError;
    let io = |p: &std::path::Path, e: std::io::Error| LedgerError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let latest = reader
        .checkpoints()?
        .pop()
        .ok_or_else(|| LedgerError::Config("the ledger has no checkpoint yet".into()))?;
    let note = crate::note::Note::parse(&latest.note).map_err(|e| LedgerError::Corrupt {
        index: latest.size,
        what: e.to_string(),
    })?;
    let cp =
        crate::checkpoint::Checkpoint::from_text(&note.text).map_err(|e| LedgerError::Corrupt {
            index: latest.size,
            what: e.to_string(),
        })?;
    let mut tree = crate::merkle::Tree::new();
    let mut bundle: Vec<u8> = Vec::new();
    let mut bundles = 0usize;
    let write = |rel: String, bytes: &[u8]| -> Result<(), LedgerError> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))
    };
    reader.scan(0, &mut |row| {
        if tree.size() == cp.size {
            return Ok(false);
        }
        let len = u16::try_from(row.event.len()).map_err(|_| LedgerError::Corrupt {
            index: row.idx,
            what: "event longer than an entry bundle allows (65,535 bytes)".into(),
        })?;
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(&row.event);
        tree.push(crate::merkle::leaf_hash(&row.event));
        let width = tree.size() % TILE_WIDTH;
        if width == 0 || tree.size() == cp.size {
            let index = (tree.size() - 1) / TILE_WIDTH;
            let t = Tile {
                level: 0,
                index,
                width: if width == 0 { TILE_WIDTH } else { width },
            };
            write(t.entries_path(), &bundle)?;
            bundle.clear();
            bundles += 1;
        }
        Ok(true)
    })?;
    if tree.size() != cp.size || tree.root() != cp.root {
        return Err(LedgerError::Corrupt {
            index: tree.size(),
            what:
                "the stored entries do not produce the signed checkpoint; run `aigis audit verify`"
                    .into(),
        });
    }
    let all = tiles_for_size(cp.size);
    for t in &all {
        let bytes = tile_bytes(&tree, *t).map_err(|e| LedgerError::Corrupt {
            index: t.index,
            what: e.to_string(),
        })?;
        write(t.path(), &bytes)?;
    }
    write("checkpoint".into(), latest.note.as_bytes())?;
    Ok(ExportSummary {
        size: cp.size,
        tiles: all.len(),
        bundles,
    })
}
