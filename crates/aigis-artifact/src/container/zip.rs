//! A lenient ZIP reader that reads what PyTorch's loader reads: it walks the central directory
//! and every local header, ignores CRC and the "encrypted" flag on stored members, and reports
//! each discrepancy a strict reader would trip over (and a scanner could be fooled by) as a
//! finding: name and flag differences between the two headers, CRC mismatches, overlapping or
//! hidden entries, path traversal, symlinks and duplicate names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use aigis_report::{Evidence, Finding, Severity};

use crate::formats::pickle::Options;
use crate::reader::{
    MAX_ARCHIVE_ENTRIES, MAX_MEMBER_IN_MEMORY, MAX_NAME_BYTES, MAX_TOTAL_DECOMPRESSED, Window,
    invalid, read_at, read_bounded,
};
use crate::scan::{Ctx, scan_input};
use crate::{Input, Origin, Outcome};

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const LOCAL_SIG: &[u8] = b"PK\x03\x04";
const CD_SIG: &[u8] = b"PK\x01\x02";
/// The end-of-central-directory record is at most this far from the end (record + comment).
const EOCD_SEARCH: u64 = 22 + 65_535;

/// One member as the central directory and its local header describe it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in the central directory (what PyTorch and Python look up).
    pub name: String,
    /// Name in the local header.
    pub local_name: String,
    /// Compression method.
    pub method: u16,
    /// General-purpose flags in the central directory.
    pub flags: u16,
    /// Flags in the local header.
    pub local_flags: u16,
    /// CRC-32 the central directory declares.
    pub crc: u32,
    /// Compressed size.
    pub csize: u64,
    /// Uncompressed size.
    pub usize: u64,
    /// Offset of the local header.
    pub local_offset: u64,
    /// Offset of the member's data.
    pub data_offset: u64,
    /// "Version made by" (high byte: host system, 3 = Unix).
    pub made_by: u16,
    /// External attributes (Unix mode in the high 16 bits).
    pub external: u32,
    /// Listed in the central directory (false: found only by walking local headers).
    pub listed: bool,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    b.get(i..i + 2)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map_or(0, u16::from_le_bytes)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Scans a zip archive and every member in it.
pub fn scan(ctx: &Ctx, input: &mut Input) -> Outcome {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    let entries = match read_entries(input, &mut out) {
        Ok(e) => e,
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("zip structure cannot be read: {e}")));
            return out;
        }
    };
    check_entries(&entries, &origin, &mut out);
    let names: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let torchscript = ctx.torchscript
        || entries
            .iter()
            .any(|e| e.name.contains("/code/") || e.name.starts_with("code/"))
            && entries.iter().any(|e| e.name.ends_with("constants.pkl"));
    let inner = Ctx {
        torchscript,
        ..ctx.deeper()
    };
    // Stored members are read in place and cost no memory, but entries that share their bytes
    // would have them read again and again (an overlap bomb): what is read beyond the archive's
    // own size is charged to the scan's budget, as decompressed bytes are.
    let mut stored = 0u64;
    for entry in &entries {
        if is_tensor_data(&entry.name, &names) {
            continue;
        }
        if entry.method == 0 {
            let before = stored.saturating_sub(input.len);
            stored = stored.saturating_add(entry.csize);
            let again = stored.saturating_sub(input.len) - before;
            if again > 0 && !inner.budget.take(again) {
                out.not_scanned.push(origin.child(&entry.name).not_scanned(format!(
                    "members overlap: reading `{}` again would pass the scan's total of {MAX_TOTAL_DECOMPRESSED} bytes (an overlap zip bomb)",
                    entry.name
                )));
                break;
            }
        }
        scan_member(&inner, input, entry, &origin, &mut out);
    }
    out
}

/// `<prefix>/data/<key>` beside `<prefix>/data.pkl`: raw tensor bytes that PyTorch never
/// unpickles, so they are not read (this is what keeps multi-GB checkpoints fast).
fn is_tensor_data(name: &str, names: &BTreeSet<&str>) -> bool {
    let Some((dir, key)) = name.rsplit_once('/') else {
        return false;
    };
    let Some(prefix) = dir.strip_suffix("data") else {
        return false;
    };
    !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && names.contains(format!("{prefix}data.pkl").as_str())
}

/// Whether Python's `zipfile` opens `input` as an archive: an end record in its last 64 KiB,
/// and a central directory record where that end record says the directory ends (so stray
/// `PK\x05\x06` bytes in tensor data do not count).
pub fn opens(input: &mut Input) -> bool {
    let Ok(Some(at)) = find_end(input) else {
        return false;
    };
    let Ok([_, python]) = end_records(input, at) else {
        return false;
    };
    python.start().is_some_and(|start| {
        read_at(input.source, input.len, start, 4, 4).is_ok_and(|sig| sig == CD_SIG)
    })
}

/// The offset of the last end-of-central-directory signature in the last 64 KiB, where both
/// loaders look for it.
fn find_end(input: &mut Input) -> io::Result<Option<u64>> {
    let len = input.len;
    let tail_len = len.min(EOCD_SEARCH);
    let tail = read_at(input.source, len, len - tail_len, tail_len, EOCD_SEARCH)?;
    Ok(tail
        .windows(4)
        .rposition(|w| w == EOCD_SIG)
        .map(|i| (len - tail_len) + i as u64))
}

fn read_entries(input: &mut Input, out: &mut Outcome) -> io::Result<Vec<Entry>> {
    let len = input.len;
    let mut entries = match find_end(input)? {
        Some(at) => central_directory(input, at, out)?,
        None => {
            out.findings.push(
                Finding::new(
                    "AIG-ZIP-STRUCTURE",
                    Severity::Medium,
                    "zip has no end-of-central-directory record: readers disagree on what it holds (only local headers were walked)",
                    input.origin.location(),
                )
                .with_tag("zip"),
            );
            Vec::new()
        }
    };
    let listed: BTreeSet<u64> = entries.iter().map(|e| e.local_offset).collect();
    let sizes: BTreeMap<u64, u64> = entries.iter().map(|e| (e.local_offset, e.csize)).collect();
    // Walk local headers from the start: entries a loader would not list but another reader
    // (or a streaming extractor) would see.
    let mut pos = 0u64;
    let mut walked = 0usize;
    while pos + 30 <= len && walked < MAX_ARCHIVE_ENTRIES {
        let h = read_at(input.source, len, pos, 30, 30)?;
        if h.get(..4) != Some(LOCAL_SIG) {
            break;
        }
        walked += 1;
        let e = local_entry(input, pos, &h)?;
        let csize = sizes.get(&pos).copied().unwrap_or(e.csize);
        if !listed.contains(&pos) {
            if e.local_flags & 0x8 != 0 && e.csize == 0 {
                break;
            }
            entries.push(e.clone());
        }
        let Some(next) = e.data_offset.checked_add(csize) else {
            break;
        };
        pos = next;
        if e.local_flags & 0x8 != 0 {
            // Optional signature, CRC, two sizes (32 or 64 bit).
            let d = read_at(input.source, len, pos, 4.min(len - pos), 4).unwrap_or_default();
            if d == b"PK\x07\x08" {
                pos += 4;
            }
            pos += 12;
            let probe = read_at(input.source, len, pos, 4.min(len.saturating_sub(pos)), 4)
                .unwrap_or_default();
            if probe != LOCAL_SIG && probe != CD_SIG {
                pos += 8;
            }
        }
    }
    Ok(entries)
}

/// One loader's reading of the end records: where the central directory is, and how many
/// records it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Directory {
    /// Who reads it this way, for findings.
    reader: &'static str,
    /// Entries it counts (miniz, and so PyTorch, reads this many).
    count: u64,
    size: u64,
    offset: u64,
    /// Added to the directory's offset and to every member's: nonzero only in Python's
    /// reading, which moves them by the gap between where the directory is said to end and
    /// where the end records start (data prepended to the archive, or a crafted archive).
    shift: i64,
}

impl Directory {
    /// Where the reader looks for the first directory record.
    fn start(&self) -> Option<u64> {
        self.offset.checked_add_signed(self.shift)
    }

    fn same_records(&self, other: &Self) -> bool {
        (self.count, self.size, self.offset, self.shift)
            == (other.count, other.size, other.offset, other.shift)
    }
}

/// The end records as PyTorch's miniz and Python's `zipfile` read them.
///
/// Both take a ZIP64 end record whenever its locator is there (PyTorch always writes one),
/// not only when a 32-bit field is saturated. miniz reads the record the locator points to;
/// Python's `zipfile` ignores that pointer and reads the 56 bytes just before the locator,
/// and takes the directory to end where the record it used starts. An archive can give each
/// its own directory.
fn end_records(input: &mut Input, eocd: u64) -> io::Result<[Directory; 2]> {
    let len = input.len;
    let rec = read_at(input.source, len, eocd, 22.min(len - eocd), 22)?;
    let plain = Directory {
        reader: "PyTorch",
        count: u64::from(u16_at(&rec, 10)),
        size: u64::from(u32_at(&rec, 12)),
        offset: u64::from(u32_at(&rec, 16)),
        shift: 0,
    };
    let zip64 = |input: &mut Input, at: u64| -> io::Result<Option<Directory>> {
        if at.saturating_add(56) > len {
            return Ok(None);
        }
        let r = read_at(input.source, len, at, 56, 56)?;
        Ok((r.get(..4) == Some(b"PK\x06\x06")).then(|| Directory {
            count: u64_at(&r, 32),
            size: u64_at(&r, 40),
            offset: u64_at(&r, 48),
            ..plain
        }))
    };
    let (mut torch, mut python, mut python_end) = (plain, plain, eocd);
    if eocd >= 20 {
        let loc = read_at(input.source, len, eocd - 20, 20, 20)?;
        if loc.get(..4) == Some(b"PK\x06\x07") {
            if let Some(dir) = zip64(input, u64_at(&loc, 8))? {
                torch = dir;
            }
            if let Some(adjacent) = eocd.checked_sub(76)
                && let Some(dir) = zip64(input, adjacent)?
            {
                (python, python_end) = (dir, adjacent);
            }
        }
    }
    let gap = i128::from(python_end) - i128::from(python.size) - i128::from(python.offset);
    python.shift = i64::try_from(gap).map_err(|_| invalid("central directory offset overflows"))?;
    python.reader = "Python's zipfile";
    Ok([torch, python])
}

/// The members listed in the central directory, as both loaders read it.
///
/// miniz (PyTorch) takes the end records' offsets as they are and reads as many records as
/// they count. Python's `zipfile` (NumPy's `.npz`, Keras, joblib archives) ignores the count,
/// reads records until the directory's size is used up, and moves every offset by
/// [`Directory::shift`]. When the two readings differ, each is scanned, and a reading that
/// fails while the other succeeds is a finding: the loader it belongs to refuses the archive,
/// or reads members the scan could not see.
fn central_directory(input: &mut Input, eocd: u64, out: &mut Outcome) -> io::Result<Vec<Entry>> {
    let [torch, python] = end_records(input, eocd)?;
    if torch.same_records(&python) {
        return listed_entries(input, &torch, out);
    }
    let at = input.origin.at(eocd);
    let structure = |message: String| {
        Finding::new("AIG-ZIP-STRUCTURE", Severity::Medium, message, at.clone()).with_tag("zip")
    };
    if (torch.count, torch.size, torch.offset) != (python.count, python.size, python.offset) {
        out.findings.push(structure(format!(
            "the ZIP64 end record the locator points to differs from the one just before the locator: PyTorch reads the first ({} records at offset {}), Python's zipfile the second ({} at offset {}); both readings were scanned",
            torch.count, torch.offset, python.count, python.offset
        )));
    }
    if python.shift != 0 {
        out.findings.push(structure(format!(
            "the central directory is said to end {} bytes away from the end records: Python's zipfile moves every offset by {} (data prepended to the archive), PyTorch does not; both readings were scanned",
            python.shift.unsigned_abs(),
            python.shift
        )));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut failed = None;
    for dir in [python, torch] {
        match listed_entries(input, &dir, out) {
            Ok(read) => {
                let seen: BTreeSet<u64> = entries.iter().map(|e| e.local_offset).collect();
                entries.extend(read.into_iter().filter(|e| !seen.contains(&e.local_offset)));
            }
            // A self-extracting archive has only Python's reading; a crafted one may give
            // either loader a directory the other cannot read.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                out.findings.push(structure(format!(
                    "{}'s reading of the central directory fails ({e}): it refuses the archive",
                    dir.reader
                )));
                failed.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match failed {
        Some(e) if entries.is_empty() => Err(e),
        _ => Ok(entries),
    }
}

/// The directory's records as `dir`'s reader reads them: at [`Directory::start`], with every
/// local offset moved by [`Directory::shift`].
fn listed_entries(input: &mut Input, dir: &Directory, out: &mut Outcome) -> io::Result<Vec<Entry>> {
    let len = input.len;
    if dir.count > MAX_ARCHIVE_ENTRIES as u64 {
        return Err(crate::reader::limit(format!(
            "{} entries is above the {MAX_ARCHIVE_ENTRIES}-entry limit",
            dir.count
        )));
    }
    let cd_offset = dir
        .start()
        .ok_or_else(|| invalid("the central directory would start before the file"))?;
    let cd = read_at(input.source, len, cd_offset, dir.size, 512 << 20)?;
    let mut entries = Vec::new();
    let mut i = 0usize;
    while i < cd.len() {
        if cd.get(i..i + 4) != Some(CD_SIG) {
            if entries.len() as u64 >= dir.count {
                // miniz stops at its count; Python's zipfile refuses the archive.
                break;
            }
            return Err(invalid(format!(
                "central directory record {} at offset {} has no signature",
                entries.len(),
                cd_offset + i as u64
            )));
        }
        if entries.len() >= MAX_ARCHIVE_ENTRIES {
            return Err(crate::reader::limit(format!(
                "more than {MAX_ARCHIVE_ENTRIES} central directory records"
            )));
        }
        let made_by = u16_at(&cd, i + 4);
        let flags = u16_at(&cd, i + 8);
        let method = u16_at(&cd, i + 10);
        let crc = u32_at(&cd, i + 16);
        let mut csize = u64::from(u32_at(&cd, i + 20));
        let mut usize_ = u64::from(u32_at(&cd, i + 24));
        let nlen = usize::from(u16_at(&cd, i + 28));
        let xlen = usize::from(u16_at(&cd, i + 30));
        let clen = usize::from(u16_at(&cd, i + 32));
        let external = u32_at(&cd, i + 38);
        let mut local_offset = u64::from(u32_at(&cd, i + 42));
        let name_bytes = cd
            .get(i + 46..i + 46 + nlen)
            .ok_or_else(|| invalid("central directory name runs past its end"))?;
        let extra = cd
            .get(i + 46 + nlen..i + 46 + nlen + xlen)
            .unwrap_or_default();
        zip64_sizes(extra, [&mut usize_, &mut csize, &mut local_offset]);
        let local_offset = local_offset
            .checked_add_signed(dir.shift)
            .ok_or_else(|| invalid("local header offset is outside the file"))?;
        let mut e = Entry {
            name: String::from_utf8_lossy(name_bytes).into_owned(),
            local_name: String::new(),
            method,
            flags,
            local_flags: 0,
            crc,
            csize,
            usize: usize_,
            local_offset,
            data_offset: 0,
            made_by,
            external,
            listed: true,
        };
        let h = read_at(input.source, len, local_offset, 30, 30)?;
        if h.get(..4) != Some(LOCAL_SIG) {
            return Err(invalid(format!(
                "member `{}`: no local header at offset {local_offset}",
                e.name
            )));
        }
        let local = local_entry(input, local_offset, &h)?;
        e.local_name = local.local_name;
        e.local_flags = local.local_flags;
        e.data_offset = local.data_offset;
        entries.push(e);
        i += 46 + nlen + xlen + clen;
    }
    if entries.len() as u64 != dir.count {
        out.findings.push(
            Finding::new(
                "AIG-ZIP-STRUCTURE",
                Severity::Medium,
                format!(
                    "the end record counts {} members but the central directory holds {}: PyTorch reads the count, Python's zipfile every record; all were scanned",
                    dir.count,
                    entries.len()
                ),
                input.origin.at(cd_offset),
            )
            .with_tag("zip"),
        );
    }
    Ok(entries)
}

/// Reads the ZIP64 extended information in a central directory record's `extra` field into
/// the fields (uncompressed size, compressed size, local header offset) whose 32-bit value is
/// saturated.
fn zip64_sizes(extra: &[u8], fields: [&mut u64; 3]) {
    let mut j = 0usize;
    while j + 4 <= extra.len() {
        let id = u16_at(extra, j);
        let size = usize::from(u16_at(extra, j + 2));
        if id == 1 {
            let mut k = j + 4;
            for field in fields {
                if *field == 0xffff_ffff && k + 8 <= j + 4 + size {
                    *field = u64_at(extra, k);
                    k += 8;
                }
            }
            return;
        }
        j += 4 + size;
    }
}

fn local_entry(input: &mut Input, at: u64, h: &[u8]) -> io::Result<Entry> {
    let nlen = u64::from(u16_at(h, 26));
    let xlen = u64::from(u16_at(h, 28));
    let name = read_at(
        input.source,
        input.len,
        at + 30,
        nlen,
        MAX_NAME_BYTES as u64,
    )?;
    let name = String::from_utf8_lossy(&name).into_owned();
    Ok(Entry {
        name: name.clone(),
        local_name: name,
        method: u16_at(h, 8),
        flags: u16_at(h, 6),
        local_flags: u16_at(h, 6),
        crc: u32_at(h, 14),
        csize: u64::from(u32_at(h, 18)),
        usize: u64::from(u32_at(h, 22)),
        local_offset: at,
        data_offset: at + 30 + nlen + xlen,
        made_by: 0,
        external: 0,
        listed: false,
    })
}

fn finding(
    rule: &'static str,
    message: String,
    origin: &Origin,
    entry: &Entry,
    evidence: String,
) -> Finding {
    Finding::new(rule, Severity::Medium, message, origin.child(&entry.name).at(entry.local_offset))
        .with_evidence(Evidence::text(evidence))
        .with_help("Archives whose headers disagree are read differently by different tools; a scanner that trusts one view can miss what PyTorch loads. Rebuild the archive from trusted sources.")
        .with_tag("zip")
}

fn check_entries(entries: &[Entry], origin: &Origin, out: &mut Outcome) {
    let mut seen = BTreeSet::new();
    for e in entries {
        if !e.listed {
            out.findings.push(finding("AIG-ZIP-HIDDEN", format!("local entry `{}` is not listed in the central directory (hidden from loaders, seen by streaming extractors)", e.name), origin, e, format!("local header at {}", e.local_offset)));
            continue;
        }
        if e.name != e.local_name {
            out.findings.push(finding(
                "AIG-ZIP-NAME-MISMATCH",
                format!(
                    "central directory names the member `{}` but its local header says `{}`",
                    e.name, e.local_name
                ),
                origin,
                e,
                format!("CD `{}` / local `{}`", e.name, e.local_name),
            ));
        }
        let odd = (e.flags | e.local_flags) & 0x61;
        if odd != 0 || (e.flags & !0x8) != (e.local_flags & !0x8) {
            out.findings.push(finding("AIG-ZIP-FLAGS", format!("member `{}` has unusual general-purpose flags (0x01 encrypted, 0x20 patched, 0x40 strong encryption) or flags that differ between headers: strict readers skip or refuse it, PyTorch reads it", e.name), origin, e, format!("flags CD 0x{:04x} / local 0x{:04x}", e.flags, e.local_flags)));
        }
        if super::escapes(&e.name) || super::escapes(&e.local_name) {
            out.findings.push(finding(
                "AIG-ZIP-PATH",
                format!(
                    "member name `{}` escapes the extraction directory (zip slip)",
                    e.name
                ),
                origin,
                e,
                e.name.clone(),
            ));
        }
        if e.made_by >> 8 == 3 && (e.external >> 16) & 0o170_000 == 0o120_000 {
            out.findings.push(finding("AIG-ZIP-SYMLINK", format!("member `{}` is a symbolic link: extracting it can redirect later writes or reads", e.name), origin, e, format!("mode 0o{:o}", e.external >> 16)));
        }
        if !seen.insert(e.name.as_str()) {
            out.findings.push(finding(
                "AIG-ZIP-DUPLICATE",
                format!(
                    "member name `{}` appears more than once: readers pick different copies",
                    e.name
                ),
                origin,
                e,
                e.name.clone(),
            ));
        }
    }
    let mut ranges: Vec<&Entry> = entries.iter().collect();
    ranges.sort_by_key(|e| e.local_offset);
    for pair in ranges.windows(2) {
        if let [a, b] = pair
            && a.data_offset.saturating_add(a.csize) > b.local_offset
        {
            out.findings.push(finding("AIG-ZIP-OVERLAP", format!("members `{}` and `{}` overlap (the same bytes read twice: a zip-bomb and parser-confusion technique)", a.name, b.name), origin, b, format!("{}+{} > {}", a.data_offset, a.csize, b.local_offset)));
        }
    }
}

fn scan_member(ctx: &Ctx, input: &mut Input, e: &Entry, origin: &Origin, out: &mut Outcome) {
    let child = origin.child(&e.name);
    let len = input.len;
    if e.data_offset
        .checked_add(e.csize)
        .is_none_or(|end| end > len)
    {
        out.not_scanned.push(child.not_scanned(format!(
            "member data {}+{} runs past the end of the archive",
            e.data_offset, e.csize
        )));
        return;
    }
    let encrypted = (e.flags | e.local_flags) & 0x1 != 0;
    let opts = Options {
        known_pickle: e.name.to_ascii_lowercase().ends_with(".pkl"),
        torchscript: ctx.torchscript,
        ..Options::default()
    };
    if e.name.to_ascii_lowercase().ends_with(".py") && ctx.torchscript {
        out.merge(crate::formats::torch::scan_code_member(
            input,
            e.data_offset,
            e.csize,
            e.method,
            &child,
        ));
        return;
    }
    if e.method == 0 {
        let mut win = Window::new(input.source, e.data_offset, e.csize);
        let crc = crc_of(&mut win);
        if encrypted && !plaintext(&mut win, e.csize) {
            out.not_scanned.push(child.not_scanned(
                "member is encrypted (its data is not a readable format): cannot be scanned",
            ));
            return;
        }
        if let Ok(crc) = crc
            && crc != e.crc
        {
            out.findings.push(finding("AIG-ZIP-CRC", format!("member `{}` fails its CRC-32 check: strict readers refuse it, PyTorch loads it anyway", e.name), origin, e, format!("declared 0x{:08x}, actual 0x{crc:08x}", e.crc)));
        }
        let mut sub = Input {
            source: &mut win,
            len: e.csize,
            origin: child,
        };
        out.merge(scan_input(ctx, &mut sub, &e.name, opts));
        return;
    }
    let mut win = Window::new(input.source, e.data_offset, e.csize);
    let data = match decompress(&mut win, e.method, ctx) {
        Ok(d) => d,
        Err(err) if encrypted => {
            out.not_scanned.push(child.not_scanned(format!(
                "member is encrypted and cannot be decompressed: {err}"
            )));
            return;
        }
        Err(err) => {
            out.not_scanned.push(child.not_scanned(format!(
                "member (compression method {}) cannot be decompressed: {err}",
                e.method
            )));
            return;
        }
    };
    let crc = crc32fast::hash(&data);
    if crc != e.crc {
        out.findings.push(finding("AIG-ZIP-CRC", format!("member `{}` fails its CRC-32 check: strict readers refuse it, PyTorch loads it anyway", e.name), origin, e, format!("declared 0x{:08x}, actual 0x{crc:08x}", e.crc)));
    }
    out.merge(super::scan_memory(ctx, &data, child, &e.name, opts));
}

fn crc_of(r: &mut Window) -> io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
}

/// Whether a member flagged as encrypted actually holds a readable format (the flag trick).
fn plaintext(win: &mut Window, len: u64) -> bool {
    let input = Input {
        source: win,
        len,
        origin: Origin::file(""),
    };
    let prefix =
        crate::reader::read_prefix(input.source, crate::reader::SNIFF_BYTES).unwrap_or_default();
    if crate::detect::detect(&prefix, "") != crate::detect::Kind::Unknown {
        return true;
    }
    let Ok(mut s) = crate::formats::pickle::stream::Stream::new(input.source, input.len, 0) else {
        return false;
    };
    let mut m = crate::formats::pickle::machine::Machine::new(false);
    matches!(
        m.run_one(&mut s),
        crate::formats::pickle::machine::End::Stop
    )
}

/// Decompresses one member into memory within the member and total limits.
pub fn decompress(r: &mut dyn Read, method: u16, ctx: &Ctx) -> io::Result<Vec<u8>> {
    match method {
        8 => read_bounded(
            &mut flate2::read::DeflateDecoder::new(r),
            MAX_MEMBER_IN_MEMORY,
            &ctx.budget,
        ),
        12 => read_bounded(
            &mut bzip2::read::BzDecoder::new(r),
            MAX_MEMBER_IN_MEMORY,
            &ctx.budget,
        ),
        93 => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| invalid(format!("zstd: {e}")))?;
            read_bounded(&mut d, MAX_MEMBER_IN_MEMORY, &ctx.budget)
        }
        95 => super::compress::xz_to_vec(r, ctx),
        m => Err(invalid(format!("compression method {m} is not supported"))),
    }
}
