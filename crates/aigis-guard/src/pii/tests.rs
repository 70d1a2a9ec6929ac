use proptest::prelude::*;

use super::checksum as ck;
use super::generate::{self, Rng};
use super::*;

fn scan(text: &str) -> Vec<Detection> {
    let mut out = Vec::new();
    Pii::new().scan(text, &mut out);
    out
}

fn found(text: &str, kind: &str, value: &str) -> bool {
    scan(text)
        .iter()
        .any(|d| d.kind == kind && &text[d.span.clone()] == value)
}

fn kinds(text: &str) -> Vec<String> {
    scan(text).iter().map(|d| d.kind.to_string()).collect()
}

#[test]
fn luhn_published_examples() {
    for n in [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
    ] {
        assert!(ck::luhn_valid(n.as_bytes()), "{n}");
    }
    assert!(!ck::luhn_valid(b"4111111111111112"));
    assert!(!ck::luhn_valid(b""));
    assert!(!ck::luhn_valid(b"4111x11111111111"));
}

#[test]
fn iban_published_examples() {
    for n in [
        "GB82WEST12345698765432",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    ] {
        assert!(ck::iban_valid(n.as_bytes()), "{n}");
    }
    assert!(!ck::iban_valid(b"GB82WEST12345698765433"));
    assert!(
        !ck::iban_valid(b"GB82WEST1234569876543"),
        "wrong length for GB"
    );
    assert!(
        !ck::iban_valid(b"QQ82WEST12345698765432"),
        "unknown country"
    );
    assert_eq!(
        ck::iban_check_digits(b"GB", b"WEST12345698765432"),
        Some(*b"82")
    );
}

#[test]
fn nhs_published_examples() {
    assert!(ck::nhs_valid(b"9434765919"));
    assert!(ck::nhs_valid(b"4010232137"));
    assert!(!ck::nhs_valid(b"9434765918"));
}

#[test]
fn spanish_ids() {
    assert!(ck::nif_valid(b"12345678Z"));
    assert!(!ck::nif_valid(b"12345678A"));
    assert!(ck::nie_valid(b"X1234567L"));
    assert!(!ck::nie_valid(b"X1234567A"));
}

#[test]
fn italian_fiscal_code() {
    assert!(ck::it_fiscal_valid(b"RSSMRA85T10A562S"));
    assert!(!ck::it_fiscal_valid(b"RSSMRA85T10A562T"));
}

#[test]
fn pesel_published_example() {
    assert!(ck::pesel_valid(b"44051401359"));
    assert!(!ck::pesel_valid(b"44051401358"));
    assert!(!ck::pesel_valid(b"44131401353"), "month 13 does not exist");
}

#[test]
fn german_tax_id() {
    assert!(ck::de_tax_valid(b"36574261809"));
    assert!(!ck::de_tax_valid(b"36574261808"));
    assert!(!ck::de_tax_valid(b"01234567890"), "leading zero");
}

#[test]
fn singapore_and_australia() {
    assert!(ck::sg_nric_valid(b"S1234567D"));
    assert!(!ck::sg_nric_valid(b"S1234567E"));
    assert!(ck::au_tfn_valid(b"123456782"));
    assert!(!ck::au_tfn_valid(b"123456783"));
}

#[test]
fn crypto_published_examples() {
    assert!(ck::btc_base58_valid(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
    assert!(ck::btc_base58_valid(b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
    assert!(!ck::btc_base58_valid(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
    assert!(ck::btc_bech32_valid(
        b"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    ));
    assert!(!ck::btc_bech32_valid(
        b"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp"
    ));
    assert!(ck::eip55_valid(b"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
    assert!(ck::eip55_valid(b"fB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"));
    assert!(!ck::eip55_valid(
        b"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
    ));
    let raw = ck::base58_decode(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa").unwrap_or_default();
    assert_eq!(
        ck::base58_encode(&raw),
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    );
}

#[test]
fn ssn_rules() {
    assert!(ck::ssn_valid(b"536221234"));
    for bad in [
        "000221234",
        "666221234",
        "936221234",
        "536001234",
        "536220000",
        "078051120",
        "123456789",
    ] {
        assert!(!ck::ssn_valid(bad.as_bytes()), "{bad}");
    }
    assert!(ck::itin_valid(b"912701234"));
    assert!(!ck::itin_valid(b"912931234"));
}

#[test]
fn finds_each_entity_in_a_sentence() {
    let cases = [
        (
            "My card is 4111 1111 1111 1111 thanks",
            "CREDIT_CARD",
            "4111 1111 1111 1111",
        ),
        (
            "Send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa now",
            "CRYPTO",
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        ),
        (
            "eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.",
            "CRYPTO",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        ),
        (
            "mail me: john.doe+x@example.co.uk.",
            "EMAIL_ADDRESS",
            "john.doe+x@example.co.uk",
        ),
        (
            "IBAN GB82 WEST 1234 5698 7654 32 Please",
            "IBAN_CODE",
            "GB82 WEST 1234 5698 7654 32",
        ),
        ("from 192.168.10.1, ok", "IP_ADDRESS", "192.168.10.1"),
        (
            "host 2001:db8::8a2e:370:7334 up",
            "IP_ADDRESS",
            "2001:db8::8a2e:370:7334",
        ),
        ("mac 00:1A:2b:3c:4D:5e", "MAC_ADDRESS", "00:1A:2b:3c:4D:5e"),
        (
            "call me at (415) 555-2671 tonight",
            "PHONE_NUMBER",
            "(415) 555-2671",
        ),
        ("or +44 20 7946 0958", "PHONE_NUMBER", "+44 20 7946 0958"),
        (
            "see https://example.com/a?b=c).",
            "URL",
            "https://example.com/a?b=c",
        ),
        (
            "id 123e4567-e89b-12d3-a456-426614174000",
            "UUID",
            "123e4567-e89b-12d3-a456-426614174000",
        ),
        (
            "I was born on 3/29/1982 in Prague",
            "DATE_OF_BIRTH",
            "3/29/1982",
        ),
        ("My SSN is 536-22-1234", "US_SSN", "536-22-1234"),
        ("ssn: 536221234", "US_SSN", "536221234"),
        ("ITIN 912-70-1234", "US_ITIN", "912-70-1234"),
        ("passport number C03005988", "US_PASSPORT", "C03005988"),
        ("driver's license D1234567", "US_DRIVER_LICENSE", "D1234567"),
        (
            "bank account number 000123456789",
            "US_BANK_NUMBER",
            "000123456789",
        ),
        ("NHS number 943 476 5919", "UK_NHS", "943 476 5919"),
        ("NINO AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
        ("DNI 12345678Z", "ES_NIF", "12345678Z"),
        ("NIE X1234567L", "ES_NIE", "X1234567L"),
        ("CF RSSMRA85T10A562S", "IT_FISCAL_CODE", "RSSMRA85T10A562S"),
        ("PESEL 44051401359", "PL_PESEL", "44051401359"),
        ("Steuer-ID 36574261809", "DE_TAX_ID", "36574261809"),
        ("TFN 123456782", "AU_TFN", "123456782"),
        ("PAN ABCPE1234F", "IN_PAN", "ABCPE1234F"),
        ("NRIC S1234567D", "SG_NRIC", "S1234567D"),
        ("Please ask Mrs. Jane Doe to call", "PERSON", "Jane Doe"),
        ("my name is Marie Hamanová.", "PERSON", "Marie Hamanová"),
        (
            "I live at 221 Baker Street, London",
            "STREET_ADDRESS",
            "221 Baker Street",
        ),
    ];
    for (text, kind, value) in cases {
        assert!(
            found(text, kind, value),
            "{kind} {value:?} not found in {text:?}: {:?}",
            scan(text)
        );
    }
}

#[test]
fn luhn_invalid_is_never_a_card() {
    assert!(!kinds("card 4111 1111 1111 1112").contains(&"CREDIT_CARD".to_string()));
}

#[test]
fn context_required_types_need_context() {
    assert!(kinds("on 3/29/1982 we met").is_empty());
    assert!(kinds("123456782").is_empty(), "{:?}", scan("123456782"));
    assert!(!kinds("number C03005988").contains(&"US_PASSPORT".to_string()));
}

#[test]
fn negative_context_lowers_score() {
    let plain = scan("SSN 536-22-1234");
    let order = scan("order number 536-22-1234");
    assert!(plain[0].score > order[0].score, "{plain:?} {order:?}");
}

#[test]
fn overlaps_are_resolved() {
    let d = scan("visit https://user@example.com/x and 4111-1111-1111-1111");
    for w in d.windows(2) {
        assert!(w[0].span.end <= w[1].span.start, "{d:?}");
    }
}

#[test]
fn adversarial_inputs_are_bounded() {
    for s in [
        "9".repeat(1 << 20),
        "@".repeat(1 << 20),
        ":".repeat(1 << 20),
        "1 ".repeat(1 << 19),
        "a@b.cc ".repeat(1 << 16),
    ] {
        let start = std::time::Instant::now();
        let _ = scan(&s);
        assert!(start.elapsed().as_secs() < 20, "too slow");
    }
}

#[test]
fn entity_table_is_consistent() {
    let infos = Pii::entities();
    for (i, e) in ENTITIES.iter().enumerate() {
        assert_eq!(e.kind as usize, i, "{}", e.info.name);
    }
    assert!(
        infos
            .iter()
            .all(|e| (0.0..=1.0).contains(&e.score_with_context))
    );
}

/// Every checksummed type: generated valid values are found with their exact span; the same
/// value with one digit changed is not reported as that type.
#[test]
fn generated_valid_and_corrupted_values() {
    let sentences: &[(&str, &str)] = &[
        ("CREDIT_CARD", "Please charge my card {} today."),
        ("IBAN_CODE", "Wire it to IBAN {} please"),
        ("UK_NHS", "My NHS number is {}."),
        ("ES_NIF", "DNI: {}"),
        ("ES_NIE", "Mi NIE es {}"),
        ("IT_FISCAL_CODE", "Codice fiscale {} grazie"),
        ("PL_PESEL", "PESEL {}"),
        ("DE_TAX_ID", "Meine Steuer-IdNr lautet {}."),
        ("SG_NRIC", "NRIC {} here"),
        ("AU_TFN", "my TFN is {}"),
        ("CRYPTO", "send BTC to {} now"),
    ];
    let pii = Pii::new();
    let mut rng = Rng::new(0x5EED);
    for &(kind, template) in sentences {
        for _ in 0..300 {
            let value = generate::valid(kind, &mut rng).unwrap_or_default();
            let text = template.replace("{}", &value);
            let start = template.find("{}").unwrap_or(0);
            let mut out = Vec::new();
            pii.scan(&text, &mut out);
            assert!(
                out.iter().any(|d| d.kind == kind
                    && d.span == (start..start + value.len())
                    && d.validated),
                "{kind}: {text:?} -> {out:?}"
            );
            let bad = generate::corrupt(&value, &mut rng);
            let text = template.replace("{}", &bad);
            out.clear();
            pii.scan(&text, &mut out);
            assert!(
                !out.iter().any(|d| d.kind == kind),
                "{kind}: corrupted {text:?} -> {out:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn scan_never_panics_and_spans_are_char_boundaries(s in "(?s).{0,200}|[0-9 +()@:.a-fA-F-]{0,200}") {
        let mut out = Vec::new();
        Pii::new().scan(&s, &mut out);
        for d in &out {
            prop_assert!(s.is_char_boundary(d.span.start) && s.is_char_boundary(d.span.end));
            prop_assert!(d.span.start < d.span.end && d.span.end <= s.len());
            prop_assert!((0.0..=1.0).contains(&d.score));
        }
    }
}
