//! Check-digit algorithms for the checksummed PII types.
//!
//! Every function takes the value already stripped of separators (ASCII only) and returns
//! `false`, never panics, on any malformed input (wrong length, non-digit, ...). The `*_digit`
//! functions compute the check character for a body; [`super::generate`] uses them to make valid
//! synthetic values.

use sha2::{Digest as _, Sha256};
use sha3::{Digest as _, Keccak256};

/// Value of an ASCII digit, `None` for anything else.
fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

/// All bytes are ASCII digits (and there is at least one).
pub fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Luhn (mod 10) check digit for `body` (the number without its last digit).
pub fn luhn_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, &b) in body.iter().rev().enumerate() {
        let mut d = digit(b)?;
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    u8::try_from((10 - sum % 10) % 10).ok().map(|d| b'0' + d)
}

/// Luhn check over a full number (payment cards, Canadian SIN, IMEI).
pub fn luhn_valid(num: &[u8]) -> bool {
    match num.split_last() {
        Some((&last, body)) if all_digits(num) && !body.is_empty() => {
            luhn_digit(body) == Some(last)
        }
        _ => false,
    }
}

/// IBAN length by ISO 3166 country code (SWIFT IBAN registry), `None` for unknown countries.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE
        .iter()
        .find(|(cc, _)| cc.as_slice() == country)
        .map(|&(_, len)| len)
}

/// ISO 7064 mod 97-10 remainder of an IBAN-ordered alphanumeric string (letters count 10..35).
fn mod97(chars: impl Iterator<Item = u8>) -> Option<u32> {
    let mut rem = 0u32;
    for c in chars {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        }
    }
    Some(rem)
}

/// Full IBAN check: known country, its exact length, digits in the check position, mod-97 == 1.
pub fn iban_valid(iban: &[u8]) -> bool {
    if iban.len() < 5 || iban_length(&iban[..2]) != Some(iban.len()) || !all_digits(&iban[2..4]) {
        return false;
    }
    mod97(iban[4..].iter().chain(&iban[..4]).copied()) == Some(1)
}

/// The two IBAN check digits for a country code and BBAN.
pub fn iban_check_digits(country: &[u8], bban: &[u8]) -> Option<[u8; 2]> {
    let rem = mod97(bban.iter().chain(country).chain(b"00").copied())?;
    let check = u8::try_from(98 - rem).ok()?;
    Some([b'0' + check / 10, b'0' + check % 10])
}

/// UK NHS number check digit (mod 11, weights 10..2); `None` when the remainder makes the body
/// unusable (check value 10).
pub fn nhs_digit(body: &[u8]) -> Option<u8> {
    if body.len() != 9 || !all_digits(body) {
        return None;
    }
    let sum: u32 = body
        .iter()
        .zip((2..=10).rev())
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(b'0'),
        10 => None,
        d => u8::try_from(d).ok().map(|d| b'0' + d),
    }
}

/// UK NHS number (10 digits, mod 11).
pub fn nhs_valid(num: &[u8]) -> bool {
    num.len() == 10 && nhs_digit(&num[..9]) == Some(num[9])
}

const NIF_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish DNI/NIF control letter for an 8-digit number.
pub fn nif_letter(digits: &[u8]) -> Option<u8> {
    if !all_digits(digits) {
        return None;
    }
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    NIF_LETTERS.get(n % 23).copied()
}

/// Spanish NIF: 8 digits + control letter.
pub fn nif_valid(v: &[u8]) -> bool {
    v.len() == 9 && nif_letter(&v[..8]) == Some(v[8])
}

/// Spanish NIE: X/Y/Z + 7 digits + control letter (X=0, Y=1, Z=2 prefixed to the digits).
pub fn nie_valid(v: &[u8]) -> bool {
    if v.len() != 9 {
        return false;
    }
    let lead = match v[0] {
        b'X' => b'0',
        b'Y' => b'1',
        b'Z' => b'2',
        _ => return false,
    };
    let mut body = [0u8; 8];
    body[0] = lead;
    body[1..].copy_from_slice(&v[1..8]);
    nif_letter(&body) == Some(v[8])
}

/// Italian codice fiscale check character over the first 15 characters.
pub fn it_fiscal_char(body: &[u8]) -> Option<u8> {
    // Values of characters in odd positions (1st, 3rd, ...), for 0-9 / A-Z alike.
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if body.len() != 15 {
        return None;
    }
    let mut sum = 0u32;
    for (i, &c) in body.iter().enumerate() {
        let idx = match c {
            b'0'..=b'9' => usize::from(c - b'0'),
            b'A'..=b'Z' => usize::from(c - b'A'),
            _ => return None,
        };
        sum += if i % 2 == 0 {
            ODD[idx]
        } else {
            u32::try_from(idx).ok()?
        };
    }
    u8::try_from(sum % 26).ok().map(|r| b'A' + r)
}

/// Italian codice fiscale (16 characters, check character last).
pub fn it_fiscal_valid(v: &[u8]) -> bool {
    v.len() == 16 && it_fiscal_char(&v[..15]) == Some(v[15])
}

/// Polish PESEL check digit over the first 10 digits.
pub fn pesel_digit(body: &[u8]) -> Option<u8> {
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    if body.len() != 10 || !all_digits(body) {
        return None;
    }
    let sum: u32 = body
        .iter()
        .zip(W)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    u8::try_from((10 - sum % 10) % 10).ok().map(|d| b'0' + d)
}

/// Polish PESEL: 11 digits, checksum, and an encoded month that exists (01-12 plus the century
/// offsets 20, 40, 60, 80) with a day 01-31.
pub fn pesel_valid(v: &[u8]) -> bool {
    if v.len() != 11 || pesel_digit(&v[..10]) != Some(v[10]) {
        return false;
    }
    let month = (v[2] - b'0') * 10 + (v[3] - b'0');
    let day = (v[4] - b'0') * 10 + (v[5] - b'0');
    (1..=12).contains(&(month % 20)) && (1..=31).contains(&day)
}

/// ISO 7064 MOD 11,10 check digit (German Steuer-IdNr) over 10 digits.
pub fn de_tax_digit(body: &[u8]) -> Option<u8> {
    if body.len() != 10 || !all_digits(body) {
        return None;
    }
    let mut product = 10u32;
    for &b in body {
        let mut sum = (u32::from(b - b'0') + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    u8::try_from((11 - product) % 10).ok().map(|d| b'0' + d)
}

/// German Steuer-IdNr: 11 digits, no leading zero, in the first ten digits exactly one digit
/// occurs twice or three times (and, if three times, never three in a row), and the
/// ISO 7064 MOD 11,10 check digit.
pub fn de_tax_valid(v: &[u8]) -> bool {
    if v.len() != 11 || v[0] == b'0' || de_tax_digit(&v[..10]) != Some(v[10]) {
        return false;
    }
    let mut counts = [0u8; 10];
    for &b in &v[..10] {
        counts[usize::from(b - b'0')] += 1;
    }
    let repeated: Vec<u8> = counts.iter().copied().filter(|&c| c > 1).collect();
    match repeated.as_slice() {
        [2] => true,
        [3] => !v[..10].windows(3).any(|w| w[0] == w[1] && w[1] == w[2]),
        _ => false,
    }
}

/// Singapore NRIC/FIN check letter (S/T citizens, F/G/M foreigners).
pub fn sg_nric_letter(prefix: u8, digits: &[u8]) -> Option<u8> {
    const W: [u32; 7] = [2, 7, 6, 5, 4, 3, 2];
    const ST: &[u8; 11] = b"JZIHGFEDCBA";
    const FG: &[u8; 11] = b"XWUTRQPNMLK";
    const M: &[u8; 11] = b"XWUTRQPNJLK";
    if digits.len() != 7 || !all_digits(digits) {
        return None;
    }
    let mut sum: u32 = digits
        .iter()
        .zip(W)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    let table = match prefix {
        b'S' => ST,
        b'T' => {
            sum += 4;
            ST
        }
        b'F' => FG,
        b'G' => {
            sum += 4;
            FG
        }
        b'M' => {
            sum += 3;
            M
        }
        _ => return None,
    };
    let idx = usize::try_from(sum % 11).ok()?;
    // The M series counts down from the other end of its table.
    let idx = if prefix == b'M' { 10 - idx } else { idx };
    table.get(idx).copied()
}

/// Singapore NRIC/FIN: prefix letter, 7 digits, check letter.
pub fn sg_nric_valid(v: &[u8]) -> bool {
    v.len() == 9 && sg_nric_letter(v[0], &v[1..8]) == Some(v[8])
}

/// Australian TFN (8 or 9 digits), weighted sum mod 11 == 0.
pub fn au_tfn_valid(v: &[u8]) -> bool {
    const W9: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    const W8: [u32; 8] = [10, 7, 8, 4, 6, 3, 5, 1];
    if !all_digits(v) {
        return false;
    }
    let sum: u32 = match v.len() {
        9 => v
            .iter()
            .zip(W9)
            .map(|(&b, w)| u32::from(b - b'0') * w)
            .sum(),
        8 => v
            .iter()
            .zip(W8)
            .map(|(&b, w)| u32::from(b - b'0') * w)
            .sum(),
        _ => return false,
    };
    sum.is_multiple_of(11)
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Longest base58 string decoded (a P2PKH/P2SH address is at most 35 characters).
const MAX_BASE58_LEN: usize = 64;

/// Decode base58 (Bitcoin alphabet) into bytes.
pub fn base58_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() > MAX_BASE58_LEN {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    for &c in s {
        let mut carry = u32::try_from(BASE58.iter().position(|&a| a == c)?).ok()?;
        for byte in out.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.iter().take_while(|&&c| c == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(out);
    Some(full)
}

/// Encode bytes as base58 (Bitcoin alphabet).
pub fn base58_encode(data: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian base-58 digits
    for &byte in data {
        let mut carry = u32::from(byte);
        for d in &mut digits {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    let mut s = "1".repeat(zeros);
    s.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(BASE58[usize::from(d)])),
    );
    s
}

/// First four bytes of double SHA-256.
pub fn double_sha256_prefix(data: &[u8]) -> [u8; 4] {
    let h = Sha256::digest(Sha256::digest(data));
    [h[0], h[1], h[2], h[3]]
}

/// Bitcoin base58check P2PKH (version 0x00) or P2SH (0x05) address.
pub fn btc_base58_valid(s: &[u8]) -> bool {
    let Some(raw) = base58_decode(s) else {
        return false;
    };
    if raw.len() != 25 || !matches!(raw[0], 0x00 | 0x05) {
        return false;
    }
    double_sha256_prefix(&raw[..21]) == raw[21..]
}

/// The bech32 data alphabet (BIP-173).
pub(crate) const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BECH32_CONST: u32 = 1;
const BECH32M_CONST: u32 = 0x2bc8_30a3;

/// The BIP-173 checksum polymod over `values`.
pub(crate) fn bech32_polymod(values: impl IntoIterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
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
        .chain([0])
        .chain(hrp.iter().map(|c| c & 31))
}

/// Six bech32 checksum characters for `hrp` and 5-bit `data`; `bech32m` selects BIP 350.
pub fn bech32_checksum(hrp: &[u8], data: &[u8], bech32m: bool) -> [u8; 6] {
    let konst = if bech32m { BECH32M_CONST } else { BECH32_CONST };
    let pm = bech32_polymod(hrp_expand(hrp).chain(data.iter().copied()).chain([0; 6])) ^ konst;
    std::array::from_fn(|i| BECH32_CHARSET[((pm >> (5 * (5 - i))) & 31) as usize])
}

/// Bitcoin segwit address (`bc1...`, bech32 for witness v0, bech32m for v1+; BIP 173/350).
/// Mixed case is invalid; program lengths follow BIP 141 (v0: 20 or 32 bytes).
pub fn btc_bech32_valid(s: &[u8]) -> bool {
    if s.len() > 90
        || (s.iter().any(u8::is_ascii_lowercase) && s.iter().any(u8::is_ascii_uppercase))
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let Some(sep) = lower.iter().rposition(|&c| c == b'1') else {
        return false;
    };
    let (hrp, data) = (&lower[..sep], &lower[sep + 1..]);
    if hrp != b"bc" || data.len() < 7 {
        return false;
    }
    let Some(values) = data
        .iter()
        .map(|c| {
            BECH32_CHARSET
                .iter()
                .position(|a| a == c)
                .and_then(|p| u8::try_from(p).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let pm = bech32_polymod(hrp_expand(hrp).chain(values.iter().copied()));
    let version = values[0];
    let expected = if version == 0 {
        BECH32_CONST
    } else {
        BECH32M_CONST
    };
    // 5-bit groups of the witness program, without version and checksum.
    let prog_bits = (values.len() - 7) * 5;
    let prog_len = prog_bits / 8;
    pm == expected
        && version <= 16
        && (2..=40).contains(&prog_len)
        && (version != 0 || prog_len == 20 || prog_len == 32)
}

/// EIP-55 mixed-case checksum of a 40-hex-digit Ethereum address (without `0x`).
pub fn eip55_encode(hex40: &[u8]) -> Option<String> {
    if hex40.len() != 40 || !hex40.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let lower = hex40.to_ascii_lowercase();
    let hash = Keccak256::digest(&lower);
    let out = lower
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
            char::from(if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            })
        })
        .collect();
    Some(out)
}

/// EIP-55 check: true when `hex40` is in its checksummed mixed-case form.
pub fn eip55_valid(hex40: &[u8]) -> bool {
    eip55_encode(hex40).is_some_and(|e| e.as_bytes() == hex40)
}

/// US SSN area/group/serial rules (SSA): area not 000, 666 or 900-999; group not 00; serial
/// not 0000; and not the publicly known advertising/sample numbers.
pub fn ssn_valid(v: &[u8]) -> bool {
    if v.len() != 9 || !all_digits(v) {
        return false;
    }
    let (area, group, serial) = (&v[..3], &v[3..5], &v[5..]);
    let known_invalid: [&[u8]; 3] = [b"078051120", b"219099999", b"123456789"];
    area != b"000"
        && area != b"666"
        && area[0] != b'9'
        && group != b"00"
        && serial != b"0000"
        && !known_invalid.contains(&v)
        && !v.iter().all(|&b| b == v[0])
}

/// US ITIN: 9 digits starting with 9, group (digits 4-5) in 50-65, 70-88, 90-92 or 94-99.
pub fn itin_valid(v: &[u8]) -> bool {
    if v.len() != 9 || !all_digits(v) || v[0] != b'9' {
        return false;
    }
    let group = (v[3] - b'0') * 10 + (v[4] - b'0');
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// Indian PAN structure: 5 letters (4th = holder type), 4 digits, 1 letter.
pub fn in_pan_valid(v: &[u8]) -> bool {
    v.len() == 10
        && v[..5].iter().all(u8::is_ascii_uppercase)
        && b"ABCFGHLJPT".contains(&v[3])
        && all_digits(&v[5..9])
        && v[9].is_ascii_uppercase()
}

/// UK National Insurance number structure (HMRC): prefix letters and suffix A-D.
pub fn uk_nino_valid(v: &[u8]) -> bool {
    const BAD_PREFIX: [&[u8]; 7] = [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"];
    v.len() == 9
        && !b"DFIQUV".contains(&v[0])
        && !b"DFIQUVO".contains(&v[1])
        && !BAD_PREFIX.contains(&&v[..2])
        && all_digits(&v[2..8])
        && (b'A'..=b'D').contains(&v[8])
}
