//! The entity table: names, descriptions, scores and context words of every PII type.

/// Every entity type the recognisers report. The discriminant indexes [`ENTITIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs, reason = "the entity table documents each type")]
pub enum EntityKind {
    CreditCard,
    Crypto,
    Email,
    Iban,
    Ip,
    Mac,
    Phone,
    Url,
    Uuid,
    DateOfBirth,
    UsSsn,
    UsItin,
    UsPassport,
    UsDriverLicense,
    UsBankNumber,
    UkNhs,
    UkNino,
    EsNif,
    EsNie,
    ItFiscalCode,
    PlPesel,
    DeTaxId,
    AuTfn,
    InPan,
    SgNric,
    Person,
    StreetAddress,
}

/// Public description of one entity type, as listed by [`super::Pii::entities`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityInfo {
    /// The `kind` string of its [`crate::Detection`]s (Presidio-style, e.g. `CREDIT_CARD`).
    pub name: &'static str,
    /// What the value is and how it is recognised.
    pub description: &'static str,
    /// True when every reported value passed a check digit or checksum.
    pub checksummed: bool,
    /// True when the value is only reported with a context word nearby.
    pub context_required: bool,
    /// Score without context words nearby.
    pub score: f32,
    /// Score with a context word of this entity nearby.
    pub score_with_context: f32,
}

/// One row of the internal table: public info plus the recogniser's context words.
pub struct Entity {
    pub kind: EntityKind,
    pub info: EntityInfo,
    /// Context words (matched ASCII-case-insensitively, as whole words).
    pub context: &'static [&'static str],
}

/// Subtracted from the score when a negative context word ("order", "tracking", "invoice")
/// is near a value that is not checksummed; half of it for checksummed values.
pub const NEGATIVE_PENALTY: f32 = 0.3;

/// Words that make a nearby digit string less likely to be personal data.
pub const NEGATIVE_CONTEXT: &[&str] = &[
    "order",
    "order number",
    "order no",
    "tracking",
    "invoice",
    "ticket",
    "reference",
    "ref",
    "serial",
    "isbn",
    "sku",
    "part number",
    "model",
    "version",
    "build",
    "commit",
    "transaction id",
    "confirmation",
    "pedido",
    "bestellung",
    "rechnung",
    "commande",
    "factura",
];

macro_rules! entity {
    ($kind:ident, $name:literal, $desc:literal, $sum:literal, $req:literal, $s:literal, $sc:literal, [$($w:literal),* $(,)?]) => {
        Entity {
            kind: EntityKind::$kind,
            info: EntityInfo {
                name: $name,
                description: $desc,
                checksummed: $sum,
                context_required: $req,
                score: $s,
                score_with_context: $sc,
            },
            context: &[$($w),*],
        }
    };
}

/// The entity table, indexed by [`EntityKind`] discriminant.
pub const ENTITIES: &[Entity] = &[
    entity!(
        CreditCard,
        "CREDIT_CARD",
        "Payment card number, 13-19 digits (spaces or dashes allowed) with a known brand prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro); Luhn check",
        true,
        false,
        0.9,
        1.0,
        [
            "card",
            "credit",
            "debit",
            "cc",
            "visa",
            "mastercard",
            "amex",
            "discover",
            "jcb",
            "tarjeta",
            "carte",
            "karte",
            "kreditkarte",
            "carta",
            "cartão"
        ]
    ),
    entity!(
        Crypto,
        "CRYPTO",
        "Bitcoin address (base58check P2PKH/P2SH, bech32/bech32m segwit) or Ethereum address (0x + 40 hex; EIP-55 checksum when mixed case)",
        true,
        false,
        0.95,
        1.0,
        [
            "bitcoin", "btc", "wallet", "ethereum", "eth", "crypto", "address", "send"
        ]
    ),
    entity!(
        Email,
        "EMAIL_ADDRESS",
        "E-mail address local@domain.tld (structure only)",
        false,
        false,
        0.9,
        1.0,
        ["email", "e-mail", "mail", "correo", "courriel"]
    ),
    entity!(
        Iban,
        "IBAN_CODE",
        "International Bank Account Number: known country, its registered length, ISO 7064 mod-97 check (upper case, spaces allowed)",
        true,
        false,
        0.95,
        1.0,
        [
            "iban", "account", "bank", "transfer", "wire", "konto", "cuenta", "compte", "conto",
            "rekening"
        ]
    ),
    entity!(
        Ip,
        "IP_ADDRESS",
        "IPv4 or IPv6 address (parsed by std; IPv6 needs three or more groups)",
        false,
        false,
        0.8,
        0.95,
        ["ip", "address", "host", "server", "client", "ipv4", "ipv6"]
    ),
    entity!(
        Mac,
        "MAC_ADDRESS",
        "MAC address, six hex pairs with ':' or '-', or three dot-separated quads",
        false,
        false,
        0.7,
        0.95,
        ["mac", "hardware", "ethernet", "wifi", "bssid", "device"]
    ),
    entity!(
        Phone,
        "PHONE_NUMBER",
        "Phone number: loose candidate, then parsed and validated by the phonenumber crate (default region, or +CC international form)",
        false,
        false,
        0.7,
        0.9,
        [
            "phone",
            "call",
            "tel",
            "telephone",
            "mobile",
            "cell",
            "fax",
            "whatsapp",
            "contact",
            "teléfono",
            "telefono",
            "téléphone",
            "telefon",
            "handy"
        ]
    ),
    entity!(
        Url,
        "URL",
        "http(s)/ftp URL or www. address (trailing punctuation trimmed)",
        false,
        false,
        0.6,
        0.8,
        ["url", "link", "website", "site", "web"]
    ),
    entity!(
        Uuid,
        "UUID",
        "UUID in 8-4-4-4-12 hex form",
        false,
        false,
        0.5,
        0.7,
        ["uuid", "guid", "id", "identifier"]
    ),
    entity!(
        DateOfBirth,
        "DATE_OF_BIRTH",
        "A date (numeric, ISO or with month name) with a birth context word nearby",
        false,
        true,
        0.0,
        0.85,
        [
            "born",
            "dob",
            "d.o.b",
            "date of birth",
            "birth date",
            "birthdate",
            "birthday",
            "date of birth:",
            "geboren",
            "geburtsdatum",
            "né",
            "née",
            "nacimiento",
            "nato",
            "nata",
            "urodzony",
            "urodzona"
        ]
    ),
    entity!(
        UsSsn,
        "US_SSN",
        "US Social Security number AAA-GG-SSSS (dashes or spaces; 9 bare digits only with context); SSA rules: area not 000/666/9xx, group not 00, serial not 0000, known sample numbers rejected",
        false,
        false,
        0.5,
        0.9,
        [
            "ssn",
            "social security",
            "social security number",
            "ss#",
            "ssn#",
            "social"
        ]
    ),
    entity!(
        UsItin,
        "US_ITIN",
        "US Individual Taxpayer Identification Number 9XX-GG-XXXX with group 50-65, 70-88, 90-92, 94-99",
        false,
        false,
        0.5,
        0.9,
        [
            "itin",
            "taxpayer",
            "tax id",
            "tax identification",
            "individual taxpayer"
        ]
    ),
    entity!(
        UsPassport,
        "US_PASSPORT",
        "US passport number (9 digits, or a letter and 8 digits); context required",
        false,
        true,
        0.0,
        0.6,
        ["passport", "passport number", "passport no", "passport#"]
    ),
    entity!(
        UsDriverLicense,
        "US_DRIVER_LICENSE",
        "US driver's licence (1-2 letters + 4-14 digits, or 7-12 digits); context required",
        false,
        true,
        0.0,
        0.6,
        [
            "driver", "driver's", "drivers", "license", "licence", "dl", "driving"
        ]
    ),
    entity!(
        UsBankNumber,
        "US_BANK_NUMBER",
        "US bank account number (8-17 digits); context required",
        false,
        true,
        0.0,
        0.5,
        [
            "bank account",
            "account number",
            "account no",
            "acct",
            "checking",
            "savings",
            "routing"
        ]
    ),
    entity!(
        UkNhs,
        "UK_NHS",
        "UK NHS number, 10 digits (3-3-4 groups allowed), mod-11 check",
        true,
        false,
        0.5,
        0.95,
        ["nhs", "nhs number", "national health", "health service"]
    ),
    entity!(
        UkNino,
        "UK_NINO",
        "UK National Insurance number (HMRC prefix rules, suffix A-D); structural only",
        false,
        false,
        0.6,
        0.9,
        [
            "national insurance",
            "nino",
            "ni number",
            "insurance number"
        ]
    ),
    entity!(
        EsNif,
        "ES_NIF",
        "Spanish DNI/NIF: 8 digits + control letter (mod 23)",
        true,
        false,
        0.85,
        1.0,
        ["nif", "dni", "documento", "identidad", "fiscal"]
    ),
    entity!(
        EsNie,
        "ES_NIE",
        "Spanish NIE: X/Y/Z + 7 digits + control letter (mod 23)",
        true,
        false,
        0.85,
        1.0,
        ["nie", "extranjero", "extranjería", "identidad"]
    ),
    entity!(
        ItFiscalCode,
        "IT_FISCAL_CODE",
        "Italian codice fiscale, 16 characters with check character",
        true,
        false,
        0.9,
        1.0,
        ["codice fiscale", "fiscal code", "cf", "tessera sanitaria"]
    ),
    entity!(
        PlPesel,
        "PL_PESEL",
        "Polish PESEL, 11 digits, weighted checksum, valid encoded month and day",
        true,
        false,
        0.6,
        0.95,
        ["pesel", "numer pesel"]
    ),
    entity!(
        DeTaxId,
        "DE_TAX_ID",
        "German Steuer-IdNr, 11 digits, digit-repetition rule, ISO 7064 MOD 11,10",
        true,
        false,
        0.5,
        0.95,
        [
            "steuer-id",
            "steuer-idnr",
            "steueridentifikationsnummer",
            "steuernummer",
            "identifikationsnummer",
            "idnr",
            "tax id",
            "tin"
        ]
    ),
    entity!(
        AuTfn,
        "AU_TFN",
        "Australian Tax File Number, 8-9 digits, weighted mod 11; context required",
        true,
        true,
        0.0,
        0.9,
        ["tfn", "tax file", "tax file number"]
    ),
    entity!(
        InPan,
        "IN_PAN",
        "Indian PAN, AAAPA9999A with holder-type 4th letter; structural only",
        false,
        false,
        0.5,
        0.9,
        ["pan", "permanent account", "income tax"]
    ),
    entity!(
        SgNric,
        "SG_NRIC",
        "Singapore NRIC/FIN (S, T, F, G series), check letter",
        true,
        false,
        0.85,
        1.0,
        ["nric", "fin", "ic number", "identity card"]
    ),
    entity!(
        Person,
        "PERSON",
        "Capitalised name after a strong cue only: a title (Mr, Mrs, Ms, Dr, Prof, ...) or 'my name is', 'name:'",
        false,
        false,
        0.6,
        0.6,
        []
    ),
    entity!(
        StreetAddress,
        "STREET_ADDRESS",
        "House number + 1-4 capitalised words + an English street suffix (Street, Ave, Rd, ...)",
        false,
        false,
        0.5,
        0.5,
        []
    ),
];

impl EntityKind {
    /// The entity's row in [`ENTITIES`].
    pub fn entity(self) -> &'static Entity {
        &ENTITIES[self as usize]
    }
}
