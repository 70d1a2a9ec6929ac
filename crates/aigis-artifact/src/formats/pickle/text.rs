//! Decoding of the text operands of protocol 0 (STRING reprs, raw-unicode-escape) and the check
//! that an imported name is importable at all.

#[allow(
    clippy::many_single_char_names,
    reason = "byte-level decoder: quote, char, escape, index"
)]
/// Decodes a Python 2 style quoted string repr (`'abc'`, `"a\x00"`) as written by STRING.
pub fn decode_string_repr(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let q = *line.first()?;
    if !(q == b'\'' || q == b'"') || line.len() < 2 || line.last() != Some(&q) {
        return None;
    }
    let body = line.get(1..line.len() - 1)?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&c) = body.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = body.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v & 0xff).unwrap_or(0));
            }
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\n' => {}
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes `raw-unicode-escape` (UNICODE operands): bytes are Latin-1, except `\uXXXX` and
/// `\UXXXXXXXX`.
pub fn decode_raw_unicode_escape(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while let Some(&c) = line.get(i) {
        if c == b'\\' {
            let width = match line.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if width > 0 {
                let hex = line
                    .get(i + 2..i + 2 + width)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32);
                if let Some(ch) = hex {
                    out.push(ch);
                    i += 2 + width;
                    continue;
                }
            }
        }
        out.push(char::from(c));
        i += 1;
    }
    out
}

/// Whether `s` is a dotted sequence of identifiers (what `import` and `getattr` can reach).
pub fn valid_dotted(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_reprs() {
        assert_eq!(decode_string_repr(b"'os'").as_deref(), Some(&b"os"[..]));
        assert_eq!(
            decode_string_repr(b"\"a\\x41\\n\"").as_deref(),
            Some(&b"aA\n"[..])
        );
        assert_eq!(decode_string_repr(b"'a\\'b'").as_deref(), Some(&b"a'b"[..]));
        assert_eq!(decode_string_repr(b"os"), None);
        assert_eq!(decode_raw_unicode_escape(b"sys\\u0074em"), "system");
        assert!(valid_dotted("os.path"));
        assert!(!valid_dotted("os path"));
        assert!(!valid_dotted("a..b"));
    }
}
