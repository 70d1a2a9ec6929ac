//! The two text encodings of the format: unpadded canonical base64 (header) and Bech32 without
//! a length limit (keys). Both decoders reject anything a strict encoder would not produce.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

/// Unpadded standard base64 that rejects padding and non-zero trailing bits.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes `bytes` as unpadded standard base64.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes canonical unpadded base64; `None` for any deviation.
pub(crate) fn b64_decode(text: &[u8]) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

/// Decodes canonical unpadded base64 of exactly `N` bytes.
pub(crate) fn b64_decode_exact<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    b64_decode(text)?.try_into().ok()
}

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATORS: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];
/// Bech32 strings longer than this are refused before any work (PQ recipients are ~1960).
pub const MAX_BECH32_LEN: usize = 4096;

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATORS.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &[u8]) -> impl Iterator<Item = u8> + '_ {
    hrp.iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31))
}

fn to_5bit(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(((acc >> bits) & 31) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (5 - bits)) & 31) as u8);
    }
    out
}

fn from_5bit(values: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in values {
        acc = (acc << 5) | u32::from(*v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    // Strict: at most 4 padding bits, all zero.
    (bits < 5 && acc == 0).then_some(out)
}

/// Encodes `data` under `hrp` (given in lower case); `upper` selects the all-caps form used by
/// age for secret keys.
/// Secret keys pass through here: the 5-bit values are wiped, and the upper-case form is made
/// in place (`to_ascii_uppercase` would leave the lower-case copy behind).
pub(crate) fn bech32_encode(hrp: &str, data: &[u8], upper: bool) -> String {
    let hrp = hrp.to_ascii_lowercase();
    let values = Zeroizing::new(to_5bit(data));
    let chk = polymod(
        hrp_expand(hrp.as_bytes())
            .chain(values.iter().copied())
            .chain([0u8; 6]),
    ) ^ 1;
    let mut s = String::with_capacity(hrp.len() + 1 + values.len() + 6);
    s.push_str(&hrp);
    s.push('1');
    for v in values.iter() {
        s.push(char::from(CHARSET[usize::from(*v)]));
    }
    for i in 0..6 {
        s.push(char::from(CHARSET[((chk >> (5 * (5 - i))) & 31) as usize]));
    }
    if upper {
        s.make_ascii_uppercase();
    }
    s
}

/// Why a Bech32 string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bech32Error {
    TooLong,
    MixedCase,
    NoSeparator,
    BadCharacter,
    Checksum,
    Padding,
}

impl std::fmt::Display for Bech32Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TooLong => "too long",
            Self::MixedCase => "mixes upper and lower case",
            Self::NoSeparator => "has no '1' separator",
            Self::BadCharacter => "contains a character outside the Bech32 alphabet",
            Self::Checksum => "has a wrong checksum (typo?)",
            Self::Padding => "has non-zero padding bits",
        })
    }
}

/// Decodes a Bech32 string into its lower-case HRP and data bytes. The data may be a secret
/// key: it and every intermediate copy (the lower-cased text, the 5-bit values) are wiped.
pub(crate) fn bech32_decode(s: &str) -> Result<(String, Zeroizing<Vec<u8>>), Bech32Error> {
    if s.len() > MAX_BECH32_LEN {
        return Err(Bech32Error::TooLong);
    }
    let has_lower = s.bytes().any(|c| c.is_ascii_lowercase());
    let has_upper = s.bytes().any(|c| c.is_ascii_uppercase());
    if has_lower && has_upper {
        return Err(Bech32Error::MixedCase);
    }
    let lower = Zeroizing::new(s.to_ascii_lowercase());
    let sep = lower.rfind('1').ok_or(Bech32Error::NoSeparator)?;
    let (hrp, rest) = (&lower[..sep], &lower[sep + 1..]);
    if hrp.is_empty() || rest.len() < 6 || !hrp.bytes().all(|c| (33..=126).contains(&c)) {
        return Err(Bech32Error::NoSeparator);
    }
    let mut values = Zeroizing::new(Vec::with_capacity(rest.len()));
    for c in rest.bytes() {
        let v = CHARSET
            .iter()
            .position(|x| *x == c)
            .ok_or(Bech32Error::BadCharacter)?;
        values.push(u8::try_from(v).map_err(|_| Bech32Error::BadCharacter)?);
    }
    if polymod(hrp_expand(hrp.as_bytes()).chain(values.iter().copied())) != 1 {
        return Err(Bech32Error::Checksum);
    }
    let data_len = values.len() - 6;
    // Zeroizing<Vec> wipes the whole capacity on drop, the truncated checksum included.
    values.truncate(data_len);
    let data = Zeroizing::new(from_5bit(&values).ok_or(Bech32Error::Padding)?);
    Ok((hrp.to_owned(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bech32_round_trip_and_spec_example() {
        // The X25519 identity/recipient pair from the age spec.
        let (hrp, key) = bech32_decode(
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
        )
        .unwrap();
        assert_eq!(hrp, "age-secret-key-");
        assert_eq!(key.len(), 32);
        assert_eq!(
            bech32_encode("AGE-SECRET-KEY-", &key, true),
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
        );
        let long = vec![7u8; 1216];
        let s = bech32_encode("age1pq", &long, false);
        let (hrp, data) = bech32_decode(&s).unwrap();
        assert_eq!((hrp.as_str(), data.as_slice()), ("age1pq", long.as_slice()));
    }

    /// Decoded data may be a secret key: its type wipes it on drop (a plain `Vec` here does not
    /// compile).
    #[test]
    fn bech32_decoded_data_is_zeroizing() {
        let decoded: Result<(String, Zeroizing<Vec<u8>>), Bech32Error> = bech32_decode(
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
        );
        assert_eq!(decoded.unwrap().1.len(), 32);
    }

    #[test]
    fn bech32_rejects_typos_and_mixed_case() {
        let good = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        assert!(bech32_decode(good).is_ok());
        assert_eq!(
            bech32_decode(&good.replace("zvk", "zvq")),
            Err(Bech32Error::Checksum)
        );
        assert_eq!(
            bech32_decode(&good.replacen('z', "Z", 1)),
            Err(Bech32Error::MixedCase)
        );
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(b64_decode(b"AAAA").unwrap(), vec![0, 0, 0]);
        assert!(b64_decode(b"AA==").is_none());
        assert!(b64_decode(b"AB").is_none(), "non-zero trailing bits");
        assert!(b64_decode(b"AA").is_some());
    }
}
