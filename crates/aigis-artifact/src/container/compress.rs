//! Single-stream compression wrappers (gzip, zlib, bzip2, xz, LZMA-alone, zstd): joblib's
//! compressed dumps and compressed checkpoints. The payload is decompressed into memory within
//! [`MAX_MEMBER_IN_MEMORY`] and the scan's total budget, then recognised and scanned like any
//! other input.

use std::io::{self, BufReader, Read, SeekFrom, Write};

use crate::detect::Kind;
use crate::formats::pickle::{self, Options};
use crate::reader::{
    Budget, MAX_MEMBER_IN_MEMORY, MAX_TOTAL_DECOMPRESSED, invalid, limit, read_bounded,
};
use crate::scan::Ctx;
use crate::{Input, Outcome};

/// A writer into memory that fails once `max` bytes or the budget are exceeded (lzma-rs
/// decoders push their output).
struct Bounded<'a> {
    buf: Vec<u8>,
    max: u64,
    budget: &'a Budget,
}

impl Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.max {
            return Err(limit(format!(
                "decompresses to more than {} bytes",
                self.max
            )));
        }
        if !self.budget.take(data.len() as u64) {
            return Err(limit(format!(
                "the scan's total of {MAX_TOTAL_DECOMPRESSED} decompressed bytes is exhausted (zip bomb?)"
            )));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses an xz stream within the limits.
pub fn xz_to_vec(r: &mut dyn Read, ctx: &Ctx) -> io::Result<Vec<u8>> {
    let mut w = Bounded {
        buf: Vec::new(),
        max: MAX_MEMBER_IN_MEMORY,
        budget: &ctx.budget,
    };
    lzma_rs::xz_decompress(&mut BufReader::new(r), &mut w).map_err(lzma_error)?;
    Ok(w.buf)
}

fn lzma_error(e: lzma_rs::error::Error) -> io::Error {
    match e {
        lzma_rs::error::Error::IoError(io) => io,
        other => invalid(format!("{other}")),
    }
}

fn decode(r: &mut dyn Read, kind: Kind, ctx: &Ctx) -> io::Result<Vec<u8>> {
    let max = MAX_MEMBER_IN_MEMORY;
    match kind {
        Kind::Gzip => read_bounded(&mut flate2::read::MultiGzDecoder::new(r), max, &ctx.budget),
        Kind::Zlib => read_bounded(&mut flate2::read::ZlibDecoder::new(r), max, &ctx.budget),
        Kind::Bzip2 => read_bounded(&mut bzip2::read::MultiBzDecoder::new(r), max, &ctx.budget),
        Kind::Zstd => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| invalid(format!("zstd: {e}")))?;
            read_bounded(&mut d, max, &ctx.budget)
        }
        Kind::Xz => xz_to_vec(r, ctx),
        Kind::Lzma => {
            let mut w = Bounded {
                buf: Vec::new(),
                max,
                budget: &ctx.budget,
            };
            lzma_rs::lzma_decompress(&mut BufReader::new(r), &mut w).map_err(lzma_error)?;
            Ok(w.buf)
        }
        other => Err(invalid(format!(
            "{} is not a compression wrapper",
            other.name()
        ))),
    }
}

/// How a compression wrapper was read.
#[derive(Debug, Default)]
pub struct Unwrapped {
    /// Findings and what could not be examined.
    pub outcome: Outcome,
    /// The header did not decode, so the bytes were read as a pickle instead.
    pub read_as_pickle: bool,
}

/// Decompresses the wrapper and scans what is inside.
pub fn scan(ctx: &Ctx, input: &mut Input, kind: Kind, name: &str, opts: Options) -> Unwrapped {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    if let Err(e) = input.source.seek(SeekFrom::Start(0)) {
        out.not_scanned
            .push(origin.not_scanned(format!("cannot read: {e}")));
        return Unwrapped {
            outcome: out,
            read_as_pickle: false,
        };
    }
    let mut src = (&mut *input.source).take(input.len);
    match decode(&mut src, kind, ctx) {
        Ok(data) => {
            let inner_name = name
                .rsplit_once('.')
                .filter(|(_, ext)| matches!(*ext, "gz" | "bz2" | "xz" | "lzma" | "zst" | "z"))
                .map_or(name, |(stem, _)| stem);
            let child = origin.child(kind.name());
            out.merge(super::scan_memory(
                &ctx.deeper(),
                &data,
                child,
                inner_name,
                opts,
            ));
        }
        // zlib and LZMA-alone headers are short and could be the start of a protocol 0/1
        // pickle instead, so a failed decode falls back to reading the bytes as a pickle.
        Err(_) if matches!(kind, Kind::Zlib | Kind::Lzma) => {
            return Unwrapped {
                outcome: pickle::scan_with(ctx, input, opts),
                read_as_pickle: true,
            };
        }
        Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => {
            out.not_scanned
                .push(origin.not_scanned(format!("{} wrapper: {e}", kind.name())));
        }
        Err(e) => {
            out.not_scanned.push(origin.not_scanned(format!(
                "{} wrapper cannot be decompressed: {e}",
                kind.name()
            )));
        }
    }
    Unwrapped {
        outcome: out,
        read_as_pickle: false,
    }
}
