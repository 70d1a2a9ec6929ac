//! Polyglots: bytes that one reader takes as an archive or a compressed stream and
//! `pickle.load` takes as a pickle. Each layout was checked with CPython 3.11 (`tarfile`,
//! `zlib` and `pickle.loads`, with `builtins.id` in place of `posix.system`).

#![allow(clippy::cast_possible_truncation, reason = "fixtures are small")]

use crate::formats::pickle::tests::{assert_posix_system, describe, system_call};
use crate::scan::scan_bytes;

/// `pickle` zero-padded to one 512-byte block with a valid v7 tar checksum.
fn tar_block(pickle: &[u8]) -> Vec<u8> {
    let mut h = pickle.to_vec();
    h.resize(512, 0);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A protocol 2 pickle whose first block is also a valid tar header: `tarfile` lists one
/// empty member, `pickle.loads` runs `posix.system`.
#[test]
fn tar_header_that_is_also_a_protocol_2_pickle() {
    let bytes = tar_block(&[b"\x80\x02".as_slice(), &system_call(), b"."].concat());
    assert_eq!(crate::detect::detect(&bytes, "x"), crate::detect::Kind::Tar);
    let out = scan_bytes(&bytes, "model.pt");
    assert_posix_system(&out);
    assert!(
        out.findings.iter().any(|f| f.rule_id() == "AIG-POLYGLOT"),
        "{}",
        describe(&out)
    );
}

/// The same without a protocol header (protocol 0).
#[test]
fn tar_header_that_is_also_a_protocol_0_pickle() {
    let bytes = tar_block(&[system_call().as_slice(), b"."].concat());
    assert_posix_system(&scan_bytes(&bytes, "model.pt"));
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream that is also a pickle. Header `28 91` is MARK, FROZENSET; the stored block's
/// header `71 00 8b ff 74` is BINPUT 0, then LONG4 whose length (from the block header and the
/// first two content bytes) runs past the end of the zlib stream; the call after it is what
/// `pickle.load` (and `joblib.load`, which only takes `x` as a zlib header) runs. Decoders
/// stop at the end of the zlib stream and never see it.
#[test]
fn zlib_stream_that_is_also_a_pickle() {
    let mut content = vec![0x01, 0x00];
    content.resize(0x8b00, b'A');
    let mut bytes = vec![0x28, 0x91, 0x71, 0x00, 0x8b, 0xff, 0x74];
    bytes.extend(&content);
    bytes.extend(adler32(&content).to_be_bytes());
    let long4_end = 9 + 0xff + 0x74 * 256 + 65536;
    bytes.resize(long4_end, 0);
    bytes.extend(system_call());
    bytes.push(b'.');
    assert_eq!(
        crate::detect::detect(&bytes, "x"),
        crate::detect::Kind::Zlib
    );
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(bytes.as_slice()),
        &mut inflated,
    )
    .ok();
    assert_eq!(inflated, content, "the zlib stream decodes");
    assert_posix_system(&scan_bytes(&bytes, "model.joblib"));
}

/// One stored member listed `entries` times, each name pointing at the same bytes.
fn overlapping_zip(data: &[u8], entries: usize) -> Vec<u8> {
    let crc = crc32fast::hash(data);
    let size = data.len() as u32;
    let mut zip = b"PK\x03\x04".to_vec();
    for v in [20u16, 0, 0, 0, 0] {
        zip.extend(v.to_le_bytes());
    }
    for v in [crc, size, size] {
        zip.extend(v.to_le_bytes());
    }
    zip.extend([5u16, 0].iter().flat_map(|v| v.to_le_bytes()));
    zip.extend(b"m.txt");
    zip.extend(data);
    let cd_offset = zip.len() as u32;
    for i in 0..entries {
        let name = format!("m{i:05}.txt");
        zip.extend(b"PK\x01\x02");
        for v in [20u16, 20, 0, 0, 0, 0] {
            zip.extend(v.to_le_bytes());
        }
        for v in [crc, size, size] {
            zip.extend(v.to_le_bytes());
        }
        for v in [name.len() as u16, 0, 0, 0, 0] {
            zip.extend(v.to_le_bytes());
        }
        zip.extend([0u32, 0].iter().flat_map(|v| v.to_le_bytes()));
        zip.extend(name.as_bytes());
    }
    let cd_size = zip.len() as u32 - cd_offset;
    zip.extend(b"PK\x05\x06");
    for v in [0u16, 0, entries as u16, entries as u16] {
        zip.extend(v.to_le_bytes());
    }
    zip.extend([cd_size, cd_offset].iter().flat_map(|v| v.to_le_bytes()));
    zip.extend(0u16.to_le_bytes());
    zip
}

/// Entries that share one stored member's bytes are read again only while the scan's budget
/// lasts: an overlap bomb ends as "not scanned", not as hours of reading.
#[test]
fn overlapping_stored_members_are_charged_to_the_budget() {
    use crate::reader::Budget;
    use crate::scan::{Ctx, scan_input};
    use crate::{Input, Origin};
    let zip = overlapping_zip(&[b'x'; 4096], 100);
    let scan = |budget: Budget| {
        let mut cur = std::io::Cursor::new(zip.as_slice());
        let mut input = Input {
            source: &mut cur,
            len: zip.len() as u64,
            origin: Origin::file("bomb.zip"),
        };
        let ctx = Ctx {
            budget,
            ..Ctx::default()
        };
        scan_input(
            &ctx,
            &mut input,
            "bomb.zip",
            crate::formats::pickle::Options::default(),
        )
    };
    let out = scan(Budget::of(64 << 10));
    assert!(
        out.not_scanned
            .iter()
            .any(|n| n.reason().contains("overlap zip bomb")),
        "{}",
        describe(&out)
    );
    assert!(
        out.findings
            .iter()
            .any(|f| f.rule_id() == "AIG-ZIP-OVERLAP"),
        "{}",
        describe(&out)
    );
    let out = scan(Budget::new());
    assert!(out.not_scanned.is_empty(), "{}", describe(&out));
}
