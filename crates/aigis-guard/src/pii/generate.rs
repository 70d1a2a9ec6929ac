//! Synthetic values with valid check digits, for evaluation data and format-preserving
//! pseudonyms. Deterministic: every generator draws from a caller-owned [`Rng`].

use super::checksum as ck;

/// SplitMix64: a tiny, fixed-seed pseudo-random generator (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish value in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// `n` random ASCII digits.
    pub fn digits(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.digit()).collect()
    }

    fn digit(&mut self) -> u8 {
        b"0123456789"[self.below(10)]
    }

    fn upper(&mut self) -> u8 {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"[self.below(26)]
    }
}

fn string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_default()
}

/// Entity names [`valid`] can generate.
pub const GENERATED: &[&str] = &[
    "CREDIT_CARD",
    "IBAN_CODE",
    "UK_NHS",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "DE_TAX_ID",
    "SG_NRIC",
    "AU_TFN",
    "CRYPTO",
    "US_SSN",
    "US_ITIN",
    "IP_ADDRESS",
];

/// A payment card of a random brand (Visa 16, Mastercard 51-55 and 2221-2720, Amex, Discover,
/// JCB, Diners), optionally grouped with spaces or dashes.
pub fn credit_card(rng: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match rng.below(7) {
        0 => ("4".into(), 16),
        1 => (format!("5{}", 1 + rng.below(5)), 16),
        2 => (format!("{}", 2221 + rng.below(500)), 16),
        3 => (if rng.below(2) == 0 { "34" } else { "37" }.into(), 15),
        4 => ("6011".into(), 16),
        5 => (format!("{}", 3528 + rng.below(62)), 16),
        _ => ("4".into(), 13),
    };
    let mut body = prefix.into_bytes();
    let fill = len - 1 - body.len();
    body.extend(rng.digits(fill));
    let check = ck::luhn_digit(&body).unwrap_or(b'0');
    body.push(check);
    let sep = match rng.below(3) {
        0 => None,
        1 => Some(b' '),
        _ => Some(b'-'),
    };
    let groups: &[usize] = if len == 15 {
        &[4, 6, 5]
    } else if len == 13 {
        &[13]
    } else {
        &[4, 4, 4, 4]
    };
    let mut out = Vec::new();
    let mut pos = 0;
    for (i, g) in groups.iter().enumerate() {
        if let (true, Some(s)) = (i > 0, sep) {
            out.push(s);
        }
        out.extend_from_slice(&body[pos..pos + g]);
        pos += g;
    }
    string(out)
}

/// An IBAN of one of several countries, printed compact or in groups of four.
pub fn iban(rng: &mut Rng) -> String {
    // Country and BBAN shape: 'n' digit, 'a' upper-case letter, 'c' alphanumeric.
    const SHAPES: &[(&[u8; 2], &str)] = &[
        (b"DE", "nnnnnnnnnnnnnnnnnn"),
        (b"GB", "aaaannnnnnnnnnnnnn"),
        (b"FR", "nnnnnnnnnncccccccccccnn"),
        (b"ES", "nnnnnnnnnnnnnnnnnnnn"),
        (b"IT", "annnnnnnnnncccccccccccc"),
        (b"NL", "aaaannnnnnnnnn"),
        (b"PL", "nnnnnnnnnnnnnnnnnnnnnnnn"),
        (b"CH", "nnnnncccccccccccc"),
        (b"BE", "nnnnnnnnnnnn"),
    ];
    let (cc, shape) = SHAPES[rng.below(SHAPES.len())];
    let bban: Vec<u8> = shape
        .bytes()
        .map(|k| match k {
            b'n' => rng.digit(),
            b'a' => rng.upper(),
            _ => {
                if rng.below(2) == 0 {
                    rng.digit()
                } else {
                    rng.upper()
                }
            }
        })
        .collect();
    let check = ck::iban_check_digits(cc, &bban).unwrap_or(*b"00");
    let mut v = cc.to_vec();
    v.extend_from_slice(&check);
    v.extend(bban);
    if rng.below(2) == 0 {
        return string(v);
    }
    let groups: Vec<String> = v.chunks(4).map(|c| string(c.to_vec())).collect();
    groups.join(" ")
}

/// A UK NHS number, compact or 3-3-4 with spaces.
pub fn uk_nhs(rng: &mut Rng) -> String {
    loop {
        let mut body = rng.digits(9);
        if let Some(d) = ck::nhs_digit(&body) {
            body.push(d);
            let s = string(body);
            return if rng.below(2) == 0 {
                s
            } else {
                format!("{} {} {}", &s[..3], &s[3..6], &s[6..])
            };
        }
    }
}

/// A Spanish NIF (8 digits + letter).
pub fn es_nif(rng: &mut Rng) -> String {
    let mut v = rng.digits(8);
    let l = ck::nif_letter(&v).unwrap_or(b'T');
    v.push(l);
    string(v)
}

/// A Spanish NIE (X/Y/Z + 7 digits + letter).
pub fn es_nie(rng: &mut Rng) -> String {
    let i = rng.below(3);
    let digits = rng.digits(7);
    let mut body = vec![b"012"[i]];
    body.extend_from_slice(&digits);
    let l = ck::nif_letter(&body).unwrap_or(b'T');
    let mut v = vec![b"XYZ"[i]];
    v.extend(digits);
    v.push(l);
    string(v)
}

/// An Italian codice fiscale (surname/name letters, birth data, municipality code, check).
pub fn it_fiscal_code(rng: &mut Rng) -> String {
    let mut v: Vec<u8> = (0..6).map(|_| rng.upper()).collect();
    v.extend(rng.digits(2));
    v.push(b"ABCDEHLMPRST"[rng.below(12)]);
    let day = 1 + rng.below(28) + if rng.below(2) == 0 { 0 } else { 40 };
    v.extend(format!("{day:02}").bytes());
    v.push(rng.upper());
    v.extend(rng.digits(3));
    let c = ck::it_fiscal_char(&v).unwrap_or(b'A');
    v.push(c);
    string(v)
}

/// A Polish PESEL with a real birth date (1900-2099 encodings).
pub fn pl_pesel(rng: &mut Rng) -> String {
    let month = 1 + rng.below(12) + if rng.below(2) == 0 { 0 } else { 20 };
    let day = 1 + rng.below(28);
    let mut v = format!("{:02}{month:02}{day:02}", rng.below(100)).into_bytes();
    v.extend(rng.digits(4));
    let d = ck::pesel_digit(&v).unwrap_or(b'0');
    v.push(d);
    string(v)
}

/// A German Steuer-IdNr (one digit repeated twice, ISO 7064 MOD 11,10).
pub fn de_tax_id(rng: &mut Rng) -> String {
    loop {
        let mut pool: Vec<u8> = b"0123456789".to_vec();
        // Shuffle, keep nine distinct digits, repeat one: exactly one digit occurs twice.
        for i in (1..pool.len()).rev() {
            let j = rng.below(i + 1);
            pool.swap(i, j);
        }
        let mut v = pool[..9].to_vec();
        let dup = v[rng.below(9)];
        let at = rng.below(10);
        v.insert(at, dup);
        if v[0] == b'0' {
            continue;
        }
        if let Some(d) = ck::de_tax_digit(&v) {
            v.push(d);
            if ck::de_tax_valid(&v) {
                return string(v);
            }
        }
    }
}

/// A Singapore NRIC/FIN of the S, T, F or G series.
pub fn sg_nric(rng: &mut Rng) -> String {
    let p = b"STFG"[rng.below(4)];
    let digits = rng.digits(7);
    let l = ck::sg_nric_letter(p, &digits).unwrap_or(b'A');
    let mut v = vec![p];
    v.extend(digits);
    v.push(l);
    string(v)
}

/// A 9-digit Australian TFN.
pub fn au_tfn(rng: &mut Rng) -> String {
    loop {
        let v = rng.digits(9);
        if ck::au_tfn_valid(&v) {
            return string(v);
        }
    }
}

/// A Bitcoin address (P2PKH, P2SH, bech32 v0 or bech32m v1) or an EIP-55 Ethereum address.
pub fn crypto(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 | 1 => {
            let mut raw = vec![if rng.below(2) == 0 { 0x00 } else { 0x05 }];
            raw.extend((0..20).map(|_| (rng.next_u64() & 0xff) as u8));
            let check = ck::double_sha256_prefix(&raw);
            raw.extend_from_slice(&check);
            ck::base58_encode(&raw)
        }
        2 => {
            let v1 = rng.below(2) == 0;
            // Witness version, then a 20-byte (v0) or 32-byte (v1) program as 5-bit groups.
            let groups = if v1 { 52 } else { 32 };
            let mut data = vec![u8::from(v1)];
            data.extend((0..groups).map(|_| (rng.next_u64() & 31) as u8));
            let check = ck::bech32_checksum(b"bc", &data, v1);
            let charset = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
            let mut s = String::from("bc1");
            s.extend(data.iter().map(|&d| char::from(charset[usize::from(d)])));
            s.extend(check.iter().map(|&c| char::from(c)));
            s
        }
        _ => loop {
            let hex: Vec<u8> = (0..40)
                .map(|_| b"0123456789abcdef"[rng.below(16)])
                .collect();
            if let Some(e) = ck::eip55_encode(&hex) {
                // Need at least one upper and one lower letter for the checksum to be visible.
                if e.bytes().any(|b| b.is_ascii_uppercase())
                    && e.bytes().any(|b| b.is_ascii_lowercase())
                {
                    return format!("0x{e}");
                }
            }
        },
    }
}

/// A US SSN in AAA-GG-SSSS form satisfying the SSA rules.
pub fn us_ssn(rng: &mut Rng) -> String {
    loop {
        let v = rng.digits(9);
        if ck::ssn_valid(&v) && !ck::itin_valid(&v) {
            let s = string(v);
            return format!("{}-{}-{}", &s[..3], &s[3..5], &s[5..]);
        }
    }
}

/// A US ITIN in 9XX-GG-XXXX form.
pub fn us_itin(rng: &mut Rng) -> String {
    loop {
        let mut v = vec![b'9'];
        v.extend(rng.digits(8));
        if ck::itin_valid(&v) {
            let s = string(v);
            return format!("{}-{}-{}", &s[..3], &s[3..5], &s[5..]);
        }
    }
}

/// An IPv4 (public-looking) or IPv6 address.
pub fn ip_address(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        let g: Vec<String> = (0..8)
            .map(|_| format!("{:x}", rng.below(0x10000)))
            .collect();
        return g.join(":");
    }
    format!(
        "{}.{}.{}.{}",
        1 + rng.below(223),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

/// A valid value of entity `kind` (one of [`GENERATED`]).
pub fn valid(kind: &str, rng: &mut Rng) -> Option<String> {
    Some(match kind {
        "CREDIT_CARD" => credit_card(rng),
        "IBAN_CODE" => iban(rng),
        "UK_NHS" => uk_nhs(rng),
        "ES_NIF" => es_nif(rng),
        "ES_NIE" => es_nie(rng),
        "IT_FISCAL_CODE" => it_fiscal_code(rng),
        "PL_PESEL" => pl_pesel(rng),
        "DE_TAX_ID" => de_tax_id(rng),
        "SG_NRIC" => sg_nric(rng),
        "AU_TFN" => au_tfn(rng),
        "CRYPTO" => crypto(rng),
        "US_SSN" => us_ssn(rng),
        "US_ITIN" => us_itin(rng),
        "IP_ADDRESS" => ip_address(rng),
        _ => return None,
    })
}

/// `value` with one digit (or, for values without digits, one letter) replaced by a different
/// one at a random position: a checksum-invalid near miss. Separators are kept.
pub fn corrupt(value: &str, rng: &mut Rng) -> String {
    let mut v = value.as_bytes().to_vec();
    let digit_positions: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_ascii_digit()).collect();
    let positions = if digit_positions.is_empty() {
        (0..v.len())
            .filter(|&i| v[i].is_ascii_alphabetic())
            .collect()
    } else {
        digit_positions
    };
    if let Some(&i) = rng.pick(&positions) {
        let old = v[i];
        let replacement = if old.is_ascii_digit() {
            b'0' + u8::try_from((usize::from(old - b'0') + 1 + rng.below(9)) % 10).unwrap_or(0)
        } else if old.is_ascii_uppercase() {
            b'A' + u8::try_from((usize::from(old - b'A') + 1 + rng.below(25)) % 26).unwrap_or(0)
        } else {
            b'a' + u8::try_from((usize::from(old - b'a') + 1 + rng.below(25)) % 26).unwrap_or(0)
        };
        v[i] = replacement;
    }
    string(v)
}
