//! 7-Zip archives through the pure-Rust `sevenz-rust2` decoder: each member is decompressed
//! within the member and total limits and scanned before the next one is read.

use std::io::{Read, SeekFrom};

use crate::formats::pickle::Options;
use crate::reader::{MAX_ARCHIVE_ENTRIES, MAX_MEMBER_IN_MEMORY, read_bounded};
use crate::scan::Ctx;
use crate::{Input, Outcome};

/// Scans every file in a 7z archive.
pub fn scan(ctx: &Ctx, input: &mut Input) -> Outcome {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    if let Err(e) = input.source.seek(SeekFrom::Start(0)) {
        out.not_scanned
            .push(origin.not_scanned(format!("cannot read: {e}")));
        return out;
    }
    let mut reader =
        match sevenz_rust2::ArchiveReader::new(&mut *input.source, sevenz_rust2::Password::empty())
        {
            Ok(r) => r,
            Err(e) => {
                out.not_scanned
                    .push(origin.not_scanned(format!("7z archive cannot be read: {e}")));
                return out;
            }
        };
    let inner = ctx.deeper();
    let mut count = 0usize;
    let mut found = Outcome::default();
    let result = reader.for_each_entries(|entry, r| {
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            return Ok(false);
        }
        if entry.is_directory() {
            return Ok(true);
        }
        let name = entry.name().to_owned();
        match read_bounded(r as &mut dyn Read, MAX_MEMBER_IN_MEMORY, &inner.budget) {
            Ok(data) => found.merge(super::scan_memory(
                &inner,
                &data,
                origin.child(&name),
                &name,
                Options::default(),
            )),
            Err(e) => found
                .not_scanned
                .push(origin.child(&name).not_scanned(e.to_string())),
        }
        Ok(true)
    });
    out.merge(found);
    if let Err(e) = result {
        out.not_scanned
            .push(origin.not_scanned(format!("7z archive cannot be decoded: {e}")));
    }
    if count > MAX_ARCHIVE_ENTRIES {
        out.not_scanned
            .push(origin.not_scanned(format!("more than {MAX_ARCHIVE_ENTRIES} entries")));
    }
    out
}
