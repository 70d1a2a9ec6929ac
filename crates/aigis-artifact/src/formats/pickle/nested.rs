//! Pickles hidden in operands: raw pickle bytes, or their hex or base64 text.

use base64::Engine as _;

/// Shortest operand considered (a pickle with an import is longer than this).
const MIN_NESTED: usize = 8;

/// Whether `b` starts like a protocol 2–5 pickle.
fn looks_like_pickle(b: &[u8]) -> bool {
    b.len() >= MIN_NESTED
        && b.first() == Some(&0x80)
        && b.get(1).is_some_and(|p| (2..=5).contains(p))
}

/// The pickle embedded in an operand, decoded, and how it was encoded.
pub fn embedded_pickle(b: &[u8]) -> Option<(Vec<u8>, &'static str)> {
    if looks_like_pickle(b) {
        return Some((b.to_vec(), "raw pickle bytes"));
    }
    let trimmed = b.trim_ascii();
    if trimmed.len() >= 2 * MIN_NESTED
        && (trimmed.starts_with(b"800") || trimmed.starts_with(b"\\x80"))
    {
        let hex: Vec<u8> = trimmed
            .iter()
            .copied()
            .filter(u8::is_ascii_hexdigit)
            .collect();
        let hex = if trimmed.starts_with(b"\\x") {
            trimmed
                .split(|&c| c == b'\\')
                .filter_map(|p| p.strip_prefix(b"x"))
                .flat_map(|p| p.iter().copied())
                .collect()
        } else {
            hex
        };
        let decoded: Option<Vec<u8>> = hex
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect();
        if let Some(d) = decoded.filter(|d| looks_like_pickle(d)) {
            return Some((d, "hex-encoded pickle"));
        }
    }
    // base64 of b"\x80\x02".."\x80\x05" starts with gAI, gAM, gAR or gAU.
    if trimmed.len() >= 12 && trimmed.starts_with(b"gA") {
        let engine = base64::engine::general_purpose::STANDARD;
        let clean: Vec<u8> = trimmed
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if let Ok(d) = engine
            .decode(&clean)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&clean))
            && looks_like_pickle(&d)
        {
            return Some((d, "base64-encoded pickle"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let p = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00".to_vec();
        assert!(embedded_pickle(&p).is_some());
        let hex: String = p.iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
        assert_eq!(
            embedded_pickle(hex.as_bytes()).map(|x| x.1),
            Some("hex-encoded pickle")
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&p);
        assert_eq!(
            embedded_pickle(b64.as_bytes()).map(|x| x.1),
            Some("base64-encoded pickle")
        );
        assert!(embedded_pickle(b"hello world, not a pickle").is_none());
    }
}
