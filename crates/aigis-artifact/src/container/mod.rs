//! Containers that hold other inputs: zip (a lenient reader that reads what PyTorch reads),
//! tar, 7z, and single-stream compression wrappers. Every member is recognised by content and
//! scanned recursively, within the depth and decompression limits of [`crate::reader`].

pub mod compress;
pub mod sevenz;
pub mod tar;
pub mod zip;

use std::io::Cursor;

use crate::formats::pickle::Options;
use crate::scan::{Ctx, scan_input};
use crate::{Origin, Outcome};

/// Scans decompressed bytes held in memory as a member named `name`.
pub fn scan_memory(ctx: &Ctx, bytes: &[u8], origin: Origin, name: &str, opts: Options) -> Outcome {
    let mut cur = Cursor::new(bytes);
    let mut input = crate::Input {
        source: &mut cur,
        len: bytes.len() as u64,
        origin,
    };
    scan_input(ctx, &mut input, name, opts)
}

/// Whether an archive member name would escape the extraction directory.
pub fn escapes(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/') || n.get(1..3) == Some(":/") || n.split('/').any(|part| part == "..")
}
