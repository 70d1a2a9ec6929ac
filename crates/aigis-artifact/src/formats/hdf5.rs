//! Just enough HDF5 to read the root group's attributes of a Keras legacy `.h5` file and hand
//! `model_config` and `training_config` to the Keras config scan.
//!
//! Read: superblock versions 0–3 (signature at 0 or after a user block), object headers v1 and
//! v2 with continuation blocks, compact attribute messages v1–v3, fixed-length strings and
//! variable-length strings (global heap). Not read, reported as not scanned: attributes in dense
//! storage (fractal heap, used for more than 8 attributes or attributes over 64 KiB with
//! `libver="latest"`), shared attribute messages. Nothing but the superblock, the root object
//! header and the global-heap collection an attribute points to is read: datasets are never
//! touched.

use super::bounded::{self, ReadError};
use super::keras;
use crate::{Input, Outcome};

/// The HDF5 format signature.
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// Largest object header chunk or global heap collection read.
pub const MAX_BLOCK: u64 = 64 * 1024 * 1024;
/// Continuation blocks followed per object header.
pub const MAX_CONTINUATIONS: usize = 64;
/// Bytes of object header (all chunks together) read for the root group.
pub const MAX_HEADER_BYTES: u64 = 64 * 1024 * 1024;
/// `model_config`/`training_config` attributes decoded (duplicates beyond this fail closed).
const MAX_KERAS_ATTRS: usize = 8;
/// User-block sizes tried when the signature is not at byte 0 (512 × 2^k).
const MAX_USER_BLOCK_TRIES: u32 = 20;
const UNDEFINED: u64 = u64::MAX;

/// Attributes whose JSON holds Keras model structure.
const KERAS_ATTRS: &[&str] = &["model_config", "training_config"];

/// Whether `prefix` starts with the HDF5 signature.
pub fn sniff(prefix: &[u8]) -> bool {
    prefix.starts_with(SIGNATURE)
}

#[derive(Debug, thiserror::Error)]
enum H5Error {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("malformed HDF5 at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("{0}")]
    Unsupported(String),
}

fn malformed(offset: u64, message: impl Into<String>) -> H5Error {
    H5Error::Malformed {
        offset,
        message: message.into(),
    }
}

/// Scans the root attributes of an HDF5 file.
pub fn scan(input: &mut Input<'_>) -> Outcome {
    let origin = input.origin.clone();
    let mut out = Outcome::default();
    match root_attributes(input) {
        Ok(attrs) => {
            for (name, value) in attrs {
                if KERAS_ATTRS.contains(&name.as_str()) {
                    let mut found = keras::scan_config(&value, &origin);
                    for f in &mut found.findings {
                        let loc = f.location().clone();
                        let key = format!("/@{name}{}", loc.key_path().unwrap_or(""));
                        *f = rebuild(f, loc.with_key_path(key));
                    }
                    out.merge(found);
                }
            }
        }
        Err(e) => out
            .not_scanned
            .push(origin.not_scanned(format!("HDF5 root attributes: {e}"))),
    }
    out
}

fn rebuild(f: &aigis_report::Finding, location: aigis_report::Location) -> aigis_report::Finding {
    let mut n = aigis_report::Finding::new(f.rule_id(), f.severity(), f.message(), location);
    if let Some(e) = f.evidence() {
        n = n.with_evidence(e.clone());
    }
    if let Some(h) = f.help() {
        n = n.with_help(h);
    }
    for t in f.tags() {
        n = n.with_tag(t.clone());
    }
    n
}

struct File<'i, 'a> {
    input: &'i mut Input<'a>,
    base: u64,
    offset_size: usize,
    length_size: usize,
    header_bytes: u64,
}

fn uint(buf: &[u8], pos: usize, size: usize) -> Option<u64> {
    let bytes = buf.get(pos..pos.checked_add(size)?)?;
    if size > 8 {
        return None;
    }
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn root_attributes(input: &mut Input<'_>) -> Result<Vec<(String, Vec<u8>)>, H5Error> {
    let start = find_signature(input)?;
    let sb = bounded::read_at(
        input,
        start,
        96.min(input.len - start),
        96,
        "HDF5 superblock",
    )?;
    let version = *sb
        .get(8)
        .ok_or_else(|| malformed(start, "superblock too short"))?;
    let (offset_size, length_size, base, root) = match version {
        0 | 1 => {
            let o = usize::from(*sb.get(13).unwrap_or(&0));
            let l = usize::from(*sb.get(14).unwrap_or(&0));
            let at = if version == 0 { 24 } else { 28 };
            let base = uint(&sb, at, o);
            // Root group symbol table entry: link name offset, then object header address.
            let root = uint(&sb, at + 4 * o + o, o);
            (o, l, base, root)
        }
        2 | 3 => {
            let o = usize::from(*sb.get(9).unwrap_or(&0));
            let l = usize::from(*sb.get(10).unwrap_or(&0));
            (o, l, uint(&sb, 12, o), uint(&sb, 12 + 3 * o, o))
        }
        v => {
            return Err(H5Error::Unsupported(format!(
                "HDF5 superblock version {v} is not supported"
            )));
        }
    };
    if ![2, 4, 8].contains(&offset_size) || ![2, 4, 8].contains(&length_size) {
        return Err(malformed(
            start + 9,
            format!("offset size {offset_size} / length size {length_size}"),
        ));
    }
    let (Some(base), Some(root)) = (base, root) else {
        return Err(malformed(start, "superblock truncated"));
    };
    let mut file = File {
        input,
        base,
        offset_size,
        length_size,
        header_bytes: 0,
    };
    let root = file.addr(root, start)?;
    file.object_header(root)
}

fn find_signature(input: &mut Input<'_>) -> Result<u64, H5Error> {
    let mut at = 0u64;
    for k in 0..=MAX_USER_BLOCK_TRIES {
        if at.checked_add(8).is_none_or(|e| e > input.len) {
            break;
        }
        if bounded::read_at(input, at, 8, 8, "HDF5 signature")? == SIGNATURE {
            return Ok(at);
        }
        at = 512u64 << k;
    }
    Err(H5Error::Unsupported(
        "no HDF5 signature at byte 0 or after a user block".into(),
    ))
}

impl File<'_, '_> {
    fn addr(&self, relative: u64, at: u64) -> Result<u64, H5Error> {
        self.base
            .checked_add(relative)
            .filter(|a| *a < self.input.len)
            .ok_or_else(|| malformed(at, format!("address {relative} lies outside the file")))
    }

    /// Reads an object header chunk, keeping the total under [`MAX_HEADER_BYTES`].
    fn header_chunk(&mut self, at: u64, len: u64) -> Result<Vec<u8>, H5Error> {
        self.header_bytes = self.header_bytes.saturating_add(len);
        if self.header_bytes > MAX_HEADER_BYTES {
            return Err(H5Error::Unsupported(format!(
                "the root object header is larger than {MAX_HEADER_BYTES} bytes"
            )));
        }
        self.read(at, len, "object header chunk")
    }

    fn read(&mut self, at: u64, len: u64, what: &'static str) -> Result<Vec<u8>, H5Error> {
        Ok(bounded::read_at(self.input, at, len, MAX_BLOCK, what)?)
    }

    /// The root group's compact attributes: (name, raw string value) pairs.
    fn object_header(&mut self, at: u64) -> Result<Vec<(String, Vec<u8>)>, H5Error> {
        let prefix = self.read(at, 16.min(self.input.len - at), "object header prefix")?;
        let mut messages = Vec::new();
        let mut pending = Vec::new();
        if prefix.starts_with(b"OHDR") {
            let flags = *prefix
                .get(5)
                .ok_or_else(|| malformed(at, "object header truncated"))?;
            let mut pos =
                6 + if flags & 0x20 != 0 { 16 } else { 0 } + if flags & 0x10 != 0 { 4 } else { 0 };
            let size_len = 1usize << (flags & 3);
            let head = self.read(at, (pos + size_len) as u64, "object header v2")?;
            let size = uint(&head, pos, size_len)
                .ok_or_else(|| malformed(at, "object header truncated"))?;
            pos += size_len;
            let chunk = self.header_chunk(at + pos as u64, size)?;
            v2_messages(&chunk, flags & 0x04 != 0, &mut messages);
            self.follow(&mut messages, &mut pending, Some(flags & 0x04 != 0))?;
        } else {
            if prefix.first() != Some(&1) {
                return Err(malformed(at, "unknown object header version"));
            }
            let size =
                uint(&prefix, 8, 4).ok_or_else(|| malformed(at, "object header truncated"))?;
            let chunk = self.header_chunk(at + 16, size)?;
            v1_messages(&chunk, &mut messages);
            self.follow(&mut messages, &mut pending, None)?;
        }
        let mut attrs = Vec::new();
        for (kind, flags, data) in &messages {
            match kind {
                0x000C if flags & 0x02 != 0 => {
                    return Err(H5Error::Unsupported(
                        "a shared attribute message is not read".into(),
                    ));
                }
                0x000C => {
                    if let Some(attr) = self.attribute(data, at)? {
                        if attrs.len() >= MAX_KERAS_ATTRS {
                            return Err(H5Error::Unsupported(format!(
                                "more than {MAX_KERAS_ATTRS} model_config/training_config attributes"
                            )));
                        }
                        attrs.push(attr);
                    }
                }
                0x0015 => self.attribute_info(data)?,
                _ => {}
            }
        }
        Ok(attrs)
    }

    /// Follows continuation messages (type 0x10), appending their messages.
    fn follow(
        &mut self,
        messages: &mut Vec<(u16, u8, Vec<u8>)>,
        pending: &mut Vec<(u64, u64)>,
        v2: Option<bool>,
    ) -> Result<(), H5Error> {
        let mut seen = 0;
        let mut next = 0;
        loop {
            while next < messages.len() {
                let (kind, _, data) = &messages[next];
                if *kind == 0x0010 {
                    let addr = uint(data, 0, self.offset_size);
                    let len = uint(data, self.offset_size, self.length_size);
                    if let (Some(a), Some(l)) = (addr, len) {
                        pending.push((a, l));
                    }
                }
                next += 1;
            }
            let Some((addr, len)) = pending.pop() else {
                return Ok(());
            };
            seen += 1;
            if seen > MAX_CONTINUATIONS {
                return Err(H5Error::Unsupported(format!(
                    "more than {MAX_CONTINUATIONS} object header continuations"
                )));
            }
            let at = self.addr(addr, 0)?;
            let block = self.header_chunk(at, len)?;
            match v2 {
                Some(order) => {
                    let inner = block.get(4..block.len().saturating_sub(4)).unwrap_or(&[]);
                    if !block.starts_with(b"OCHK") {
                        return Err(malformed(at, "continuation block without OCHK signature"));
                    }
                    v2_messages(inner, order, messages);
                }
                None => v1_messages(&block, messages),
            }
        }
    }

    fn attribute_info(&self, data: &[u8]) -> Result<(), H5Error> {
        let flags = *data.get(1).unwrap_or(&0);
        let pos = 2 + if flags & 1 != 0 { 2 } else { 0 };
        let heap = uint(data, pos, self.offset_size).unwrap_or(UNDEFINED);
        let undefined = heap == u64::MAX >> (64 - 8 * self.offset_size);
        if undefined {
            Ok(())
        } else {
            Err(H5Error::Unsupported(
                "the root group stores attributes densely (fractal heap), which this scanner does not read".into(),
            ))
        }
    }

    /// Decodes one attribute message; returns its name and string value, if it is a string.
    fn attribute(&mut self, d: &[u8], at: u64) -> Result<Option<(String, Vec<u8>)>, H5Error> {
        let bad = || malformed(at, "attribute message truncated");
        let version = *d.first().ok_or_else(bad)?;
        let name_size = usize::try_from(uint(d, 2, 2).ok_or_else(bad)?).unwrap_or(0);
        let type_size = usize::try_from(uint(d, 4, 2).ok_or_else(bad)?).unwrap_or(0);
        let space_size = usize::try_from(uint(d, 6, 2).ok_or_else(bad)?).unwrap_or(0);
        let (pad, mut pos): (fn(usize) -> usize, usize) = match version {
            1 => (align8, 8),
            2 => (|n| n, 8),
            3 => (|n| n, 9),
            _ => {
                return Err(malformed(
                    at,
                    format!("attribute message version {version}"),
                ));
            }
        };
        let name = d.get(pos..pos + name_size).ok_or_else(bad)?;
        let name = String::from_utf8_lossy(name)
            .trim_end_matches('\0')
            .to_owned();
        if !KERAS_ATTRS.contains(&name.as_str()) {
            return Ok(None); // only the Keras structure attributes are decoded
        }
        pos += pad(name_size);
        let dt = d.get(pos..pos + type_size).ok_or_else(bad)?;
        pos += pad(type_size);
        let ds = d.get(pos..pos + space_size).ok_or_else(bad)?;
        pos += pad(space_size);
        let rank = *ds.get(1).unwrap_or(&0);
        if rank != 0 {
            return Ok(None); // arrays (layer_names, weight_names) carry no model structure
        }
        let value = d.get(pos..).unwrap_or(&[]);
        let class = dt.first().map(|b| b & 0x0f);
        let size = usize::try_from(uint(dt, 4, 4).unwrap_or(0)).unwrap_or(0);
        let text = match class {
            Some(3) => {
                let v = value.get(..size.min(value.len())).unwrap_or(&[]);
                let end = v
                    .iter()
                    .rposition(|b| *b != 0 && *b != b' ')
                    .map_or(0, |i| i + 1);
                v[..end].to_vec()
            }
            Some(9) if dt.get(1).is_some_and(|b| b & 0x0f == 1) => self.vlen_string(value, at)?,
            _ => return Ok(None),
        };
        Ok(Some((name, text)))
    }

    /// A variable-length string: its length, then a global heap ID (collection address, index).
    fn vlen_string(&mut self, value: &[u8], at: u64) -> Result<Vec<u8>, H5Error> {
        let bad = || malformed(at, "variable-length string reference truncated");
        let len = uint(value, 0, 4).ok_or_else(bad)?;
        let collection = uint(value, 4, self.offset_size).ok_or_else(bad)?;
        let index = uint(value, 4 + self.offset_size, 4).ok_or_else(bad)?;
        let gcol = self.addr(collection, at)?;
        let head = self.read(gcol, 8 + self.length_size as u64, "global heap header")?;
        if !head.starts_with(b"GCOL") {
            return Err(malformed(
                gcol,
                "global heap collection without GCOL signature",
            ));
        }
        let collection_size = uint(&head, 8, self.length_size).ok_or_else(bad)?;
        let objects = self.read(gcol, collection_size, "global heap collection")?;
        let mut pos = 8 + self.length_size;
        while pos + 8 + self.length_size <= objects.len() {
            let id = uint(&objects, pos, 2).unwrap_or(0);
            let obj_size = uint(&objects, pos + 8, self.length_size).unwrap_or(0);
            let data = pos + 8 + self.length_size;
            if id == 0 {
                break;
            }
            let obj_len = usize::try_from(obj_size).map_err(|_| bad())?;
            if id == index {
                let take = obj_len.min(usize::try_from(len).unwrap_or(usize::MAX));
                return objects
                    .get(data..data + take)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(bad);
            }
            pos = data.checked_add(align8(obj_len)).ok_or_else(bad)?;
        }
        Err(malformed(
            gcol,
            format!("global heap object {index} not found"),
        ))
    }
}

fn v1_messages(chunk: &[u8], out: &mut Vec<(u16, u8, Vec<u8>)>) {
    let mut pos = 0;
    while pos + 8 <= chunk.len() {
        let kind = u16::try_from(uint(chunk, pos, 2).unwrap_or(0)).unwrap_or(0);
        let size = usize::try_from(uint(chunk, pos + 2, 2).unwrap_or(0)).unwrap_or(0);
        let flags = chunk.get(pos + 4).copied().unwrap_or(0);
        let Some(data) = chunk.get(pos + 8..pos + 8 + size) else {
            return;
        };
        out.push((kind, flags, data.to_vec()));
        pos += 8 + size;
    }
}

fn v2_messages(chunk: &[u8], creation_order: bool, out: &mut Vec<(u16, u8, Vec<u8>)>) {
    let head = if creation_order { 6 } else { 4 };
    let mut pos = 0;
    while pos + head <= chunk.len() {
        let kind = u16::from(chunk[pos]);
        let size = usize::try_from(uint(chunk, pos + 1, 2).unwrap_or(0)).unwrap_or(0);
        let flags = chunk.get(pos + 3).copied().unwrap_or(0);
        let Some(data) = chunk.get(pos + head..pos + head + size) else {
            return;
        };
        out.push((kind, flags, data.to_vec()));
        pos += head + size;
    }
}

#[cfg(test)]
mod tests;
