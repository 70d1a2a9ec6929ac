//! What `aigis guard scan` reads: the file as one text or as JSONL records, each with the way
//! back from a byte of its text to the byte of the file it came from.
//!
//! Two things move a text's bytes away from the file's: invalid UTF-8, which is scanned as
//! U+FFFD (3 bytes standing for 1 to 3 bytes of the file), and JSON escapes (`\n`, `\u00e9`,
//! a surrogate pair: 2, 6 or 12 bytes of the file for 1 to 4 bytes of text).

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use aigis_report::{Location, NotScanned, Report, Severity};
use anyhow::{Context, bail};

/// One text to scan and where it came from.
pub(super) struct Record {
    /// 1-based line of a JSONL record; `None` for a whole file.
    pub line: Option<u64>,
    pub text: String,
    origin: Origin,
}

/// From offsets in a record's text to offsets in the file.
enum Origin {
    /// The text is the file, read as UTF-8.
    File(Origins),
    /// The text is a JSON string value in a line: from the value to the line, from the line to
    /// the file.
    Field { in_line: Origins, line: Origins },
    /// The value could not be found in the line as serde_json read it (never seen; kept so a
    /// wrong offset is never reported).
    Unknown,
}

impl Record {
    /// The offset in the file of byte `offset` of the text (a character boundary), if known.
    pub fn file_offset(&self, offset: usize) -> Option<u64> {
        let offset = match &self.origin {
            Origin::File(file) => file.map(offset),
            Origin::Field { in_line, line } => line.map(in_line.map(offset)),
            Origin::Unknown => return None,
        };
        u64::try_from(offset).ok()
    }
}

/// Reads `path` (`-` for standard input), refusing more than `max` bytes.
pub(super) fn read_input(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
    };
    reader
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("larger than --max-bytes ({max} bytes)");
    }
    Ok(bytes)
}

/// The texts of `bytes`: the whole file, or with `jsonl` the string `field` of each non-blank
/// line. Invalid UTF-8 and lines without the field are added to `report`.
pub(super) fn records(
    bytes: &[u8],
    jsonl: bool,
    field: &str,
    name: &str,
    report: &mut Report,
) -> Vec<Record> {
    if let Err(e) = std::str::from_utf8(bytes) {
        report.add(aigis_report::Finding::new(
            "AIG-GUARD-INVALID-UTF8",
            Severity::Low,
            "input is not valid UTF-8; invalid bytes were replaced with U+FFFD and the rest scanned",
            Location::new(name).with_byte_offset(e.valid_up_to() as u64),
        ));
    }
    if !jsonl {
        let (text, origin) = lossy(bytes, 0);
        return vec![Record {
            line: None,
            text,
            origin: Origin::File(origin),
        }];
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_start = start;
        start += raw.len() + 1;
        let (line, line_origin) = lossy(raw, line_start);
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i as u64 + 1;
        let Some(text) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get(field)?.as_str().map(str::to_owned))
        else {
            report.add_not_scanned(NotScanned::new(
                format!("{name}:{line_no}"),
                format!("not a JSON object with a string field `{field}`"),
            ));
            continue;
        };
        // Where the value's bytes are in the line, checked against serde_json's reading.
        let origin = field_value(&line, field)
            .and_then(|token| unescape(&line, token))
            .filter(|(unescaped, _)| *unescaped == text)
            .map_or(Origin::Unknown, |(_, in_line)| Origin::Field {
                in_line,
                line: line_origin,
            });
        out.push(Record {
            line: Some(line_no),
            text,
            origin,
        });
    }
    out
}

/// Maps offsets of a text to offsets of what it was read from, piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origins {
    /// Sorted by `text`; a piece runs to the next one's start.
    pieces: Vec<Piece>,
    /// The text's length.
    text_len: usize,
    /// Where the text's end maps to.
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Where the piece starts in the text.
    text: usize,
    /// Where it starts in the source.
    source: usize,
    /// Byte for byte (plain text) or one character for a longer or shorter source (U+FFFD for
    /// invalid bytes, a JSON escape).
    byte_for_byte: bool,
}

impl Origins {
    fn new() -> Self {
        Self {
            pieces: Vec::new(),
            text_len: 0,
            end: 0,
        }
    }

    fn push(&mut self, text: usize, source: usize, byte_for_byte: bool) {
        self.pieces.push(Piece {
            text,
            source,
            byte_for_byte,
        });
    }

    /// The source offset of text offset `offset`. A character standing for several source bytes
    /// maps to its first; an offset inside one (never a character boundary) maps there too.
    fn map(&self, offset: usize) -> usize {
        if offset >= self.text_len {
            return self.end;
        }
        let i = self.pieces.partition_point(|p| p.text <= offset);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(p) if p.byte_for_byte => p.source + (offset - p.text),
            Some(p) => p.source,
            None => self.end,
        }
    }
}

/// `bytes` as text, each invalid sequence replaced with U+FFFD (as `String::from_utf8_lossy`
/// does), and where each piece of it starts in the file (`bytes` starts at `start`).
fn lossy(bytes: &[u8], start: usize) -> (String, Origins) {
    let mut text = String::with_capacity(bytes.len());
    let mut origin = Origins::new();
    let mut at = start;
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            origin.push(text.len(), at, true);
            text.push_str(chunk.valid());
            at += chunk.valid().len();
        }
        if !chunk.invalid().is_empty() {
            origin.push(text.len(), at, false);
            text.push(char::REPLACEMENT_CHARACTER);
            at += chunk.invalid().len();
        }
    }
    origin.text_len = text.len();
    origin.end = at;
    (text, origin)
}

/// The range of the last value of key `field` in the JSON object `line` (serde_json keeps the
/// last of repeated keys too). `None` when `line` is not such an object.
fn field_value(line: &str, field: &str) -> Option<Range<usize>> {
    let b = line.as_bytes();
    let ws = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut found = None;
    while b.get(i) == Some(&b'"') {
        let key_end = string_end(b, i)?;
        let key: String = serde_json::from_str(line.get(i..key_end)?).ok()?;
        i = ws(key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(i + 1);
        let end = value_end(b, start)?;
        if key == field {
            found = Some(start..end);
        }
        i = ws(end);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return found,
            _ => return None,
        }
    }
    (b.get(i) == Some(&b'}')).then_some(found).flatten()
}

/// The end of the JSON string starting at `b[start] == b'"'`.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of the JSON value starting at `start`.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match *b.get(i)? {
            b'"' => {
                i = string_end(b, i)?;
                if depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b'}' | b']' if depth == 0 => return Some(i),
            c if depth == 0 && c.is_ascii_whitespace() => return Some(i),
            _ => {}
        }
        i += 1;
    }
}

/// The JSON string at `token` in `line`, unescaped, with where each piece of it is in `line`.
fn unescape(line: &str, token: Range<usize>) -> Option<(String, Origins)> {
    let raw = line.get(token.clone())?;
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let base = token.start + 1;
    let mut text = String::with_capacity(inner.len());
    let mut origin = Origins::new();
    let mut rest = inner;
    let at = |rest: &str| base + inner.len() - rest.len();
    while !rest.is_empty() {
        let plain = rest.find('\\').unwrap_or(rest.len());
        if plain > 0 {
            origin.push(text.len(), at(rest), true);
            text.push_str(rest.get(..plain)?);
            rest = rest.get(plain..)?;
            continue;
        }
        origin.push(text.len(), at(rest), false);
        let (c, len) = escape(rest)?;
        text.push(c);
        rest = rest.get(len..)?;
    }
    origin.text_len = text.len();
    origin.end = base + inner.len();
    Some((text, origin))
}

/// The character an escape at the start of `s` stands for, and its length.
fn escape(s: &str) -> Option<(char, usize)> {
    let unit = |s: &str| u32::from_str_radix(s.get(2..6)?, 16).ok();
    let c = match s.as_bytes().get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = unit(s)?;
            if (0xD800..0xDC00).contains(&high) {
                let low = s.get(6..).filter(|r| r.starts_with("\\u")).and_then(unit)?;
                let c = 0x10000 + ((high - 0xD800) << 10) + low.checked_sub(0xDC00)?;
                return Some((char::from_u32(c)?, 12));
            }
            return Some((char::from_u32(high)?, 6));
        }
        _ => return None,
    };
    Some((c, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(records: &[Record]) -> &Record {
        assert_eq!(records.len(), 1);
        &records[0]
    }

    #[test]
    fn text_offsets_step_over_replaced_bytes() {
        let bytes = b"a\xff\xfeb\xe2\x82c\xf0\x9f\x98\x80d";
        let mut report = Report::new("t", "0");
        let records = records(bytes, false, "text", "f", &mut report);
        let r = only(&records);
        assert_eq!(r.text, "a\u{fffd}\u{fffd}b\u{fffd}c😀d");
        for (c, file) in [('a', 0), ('b', 3), ('c', 6), ('😀', 7), ('d', 11)] {
            let offset = r.text.find(c).unwrap();
            assert_eq!(r.file_offset(offset), Some(file), "{c}");
        }
        assert_eq!(r.file_offset(1), Some(1));
        assert_eq!(r.file_offset(4), Some(2));
        assert_eq!(r.file_offset(r.text.len()), Some(bytes.len() as u64));
    }

    #[test]
    fn jsonl_offsets_point_into_the_raw_string() {
        let file = "{\"id\": 1}\n\n{\"a\": [1, {\"text\": \"no\"}], \"text\": \"x\\n\\u00e9\\ud83d\\ude00\\\"y éz\"}\r\n";
        let mut report = Report::new("t", "0");
        let records = records(file.as_bytes(), true, "text", "f", &mut report);
        let r = only(&records);
        assert_eq!(r.line, Some(3));
        assert_eq!(r.text, "x\né😀\"y éz");
        for c in ['x', '\n', 'é', '😀', '"', 'y', 'z'] {
            let offset = r.text.find(c).unwrap();
            let file_offset = usize::try_from(r.file_offset(offset).unwrap()).unwrap();
            let raw = &file[file_offset..];
            let expected = match c {
                '\n' => "\\n",
                'é' => "\\u00e9",
                '😀' => "\\ud83d",
                '"' => "\\\"",
                _ => &c.to_string(),
            };
            assert!(raw.starts_with(expected), "{c:?}: {raw:?}");
        }
        // The second é is the raw one.
        let second = r.text.rfind('é').unwrap();
        assert!(file[usize::try_from(r.file_offset(second).unwrap()).unwrap()..].starts_with("éz"));
    }

    #[test]
    fn jsonl_offsets_step_over_invalid_bytes_before_the_value() {
        let mut file =
            b"{\"text\":\"ok\"}\n{\"note\":\"\xff\xff\xff\",\"text\":\"\xfe ab\"}\n".to_vec();
        let mut report = Report::new("t", "0");
        let records = records(&file, true, "text", "f", &mut report);
        assert_eq!(records.len(), 2);
        let r = &records[1];
        assert_eq!(r.text, "\u{fffd} ab");
        let a = usize::try_from(r.file_offset(r.text.find('a').unwrap()).unwrap()).unwrap();
        file.truncate(a + 2);
        assert!(file.ends_with(b"ab"));
        assert_eq!(
            r.file_offset(0),
            Some(file.iter().position(|&b| b == 0xfe).unwrap() as u64)
        );
    }

    #[test]
    fn repeated_keys_take_the_last_value_as_serde_json_does() {
        let line = "{\"text\":\"first\",\"text\":\"second\"}";
        let mut report = Report::new("t", "0");
        let records = records(line.as_bytes(), true, "text", "f", &mut report);
        let r = only(&records);
        assert_eq!(r.text, "second");
        assert_eq!(r.file_offset(0), Some(line.find("second").unwrap() as u64));
    }
}
