//! The mlkem768x25519 recipient type (X-Wing through HPKE, age v1.3): `age1pq1…` recipients,
//! `AGE-SECRET-KEY-PQ-1…` identities. The KEM and its combiner come from the `hpke` crate
//! (pinned); this module only frames them as age stanzas.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use super::encoding::{b64_decode, b64_encode, bech32_encode};
use super::header::Stanza;
use super::primitives::{FILE_KEY_LEN, FileKey, WRAPPED_KEY_LEN, fill_random};
use super::{Error, stanza_err};

const TAG: &str = "mlkem768x25519";
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Size of the X-Wing encapsulated key (ML-KEM-768 ciphertext + X25519 share).
pub const ENC_LEN: usize = 1120;
/// Size of an X-Wing public key (ML-KEM-768 encapsulation key + X25519 point).
pub const PUBLIC_KEY_LEN: usize = 1216;
pub(crate) const RECIPIENT_HRP: &str = "age1pq";
pub(crate) const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";

/// A hybrid post-quantum public key (`age1pq1…`).
#[derive(Clone)]
pub struct PqRecipient(<XWing as hpke::Kem>::PublicKey);

/// A hybrid post-quantum secret key (`AGE-SECRET-KEY-PQ-1…`): the 32-byte X-Wing seed.
#[derive(Clone)]
pub struct PqIdentity(Zeroizing<[u8; 32]>);

const fn hex32(s: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        if c >= b'a' { c - b'a' + 10 } else { c - b'0' }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// Every X25519 u-coordinate (top bit cleared) whose product with a clamped scalar is zero:
/// 0, 1, the two order-8 points, and p-1, p, p+1. X-Wing does not reject them itself; age
/// requires aborting on an all-zero X25519 shared secret, and with clamped scalars that happens
/// exactly for these inputs (checked against aws-lc's X25519 in the tests).
pub(crate) const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    hex32(b"0000000000000000000000000000000000000000000000000000000000000000"),
    hex32(b"0100000000000000000000000000000000000000000000000000000000000000"),
    hex32(b"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    hex32(b"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    hex32(b"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32(b"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32(b"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
];

pub(crate) fn is_low_order(point: &[u8]) -> bool {
    let Ok(mut p) = <[u8; 32]>::try_from(point) else {
        return false;
    };
    p[31] &= 0x7f;
    LOW_ORDER_POINTS.contains(&p)
}

impl PqIdentity {
    /// A new random identity.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut())?;
        Ok(Self(seed))
    }

    pub(crate) fn from_seed(seed: Zeroizing<[u8; 32]>) -> Self {
        Self(seed)
    }

    fn secret(&self) -> Result<<XWing as hpke::Kem>::PrivateKey, Error> {
        <XWing as hpke::Kem>::PrivateKey::from_bytes(self.0.as_ref()).map_err(|_| {
            Error::InvalidKey {
                reason: "invalid X-Wing seed".to_owned(),
            }
        })
    }

    /// The matching recipient.
    pub fn to_recipient(&self) -> Result<PqRecipient, Error> {
        Ok(PqRecipient(XWing::sk_to_pk(&self.secret()?)))
    }

    /// The Bech32 encoding (`AGE-SECRET-KEY-PQ-1…`).
    pub fn to_bech32(&self) -> Zeroizing<String> {
        Zeroizing::new(bech32_encode(IDENTITY_HRP, self.0.as_ref(), true))
    }

    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, Error> {
        if stanza.kind() != TAG {
            return Ok(None);
        }
        let [_, enc] = stanza.args.as_slice() else {
            return Err(stanza_err(TAG, "must have exactly two arguments"));
        };
        let enc = b64_decode(enc.as_bytes())
            .filter(|e| e.len() == ENC_LEN)
            .ok_or_else(|| stanza_err(TAG, "enc is not canonical base64 of 1120 bytes"))?;
        if stanza.body.len() != WRAPPED_KEY_LEN {
            return Err(stanza_err(TAG, "body is not 32 bytes"));
        }
        if is_low_order(&enc[ENC_LEN - 32..]) {
            return Err(stanza_err(TAG, "X25519 share is a low-order point"));
        }
        let enc = <XWing as hpke::Kem>::EncappedKey::from_bytes(&enc)
            .map_err(|_| stanza_err(TAG, "enc is malformed"))?;
        let sk = self.secret()?;
        let opened = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &sk,
            &enc,
            INFO,
            &stanza.body,
            b"",
        );
        let Ok(plain) = opened else { return Ok(None) };
        let plain = Zeroizing::new(plain);
        let key: [u8; FILE_KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| stanza_err(TAG, "wrapped file key is not 16 bytes"))?;
        Ok(Some(FileKey::from_bytes(key)))
    }
}

impl PqRecipient {
    /// Parses the raw 1216-byte public key.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        <XWing as hpke::Kem>::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidRecipient {
                reason: "not a valid ML-KEM-768 + X25519 public key".to_owned(),
            })
    }

    /// The Bech32 encoding (`age1pq1…`).
    pub fn to_bech32(&self) -> String {
        bech32_encode(RECIPIENT_HRP, &self.0.to_bytes(), false)
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza, Error> {
        let (enc, body) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeS::Base,
            &self.0,
            INFO,
            file_key.expose(),
            b"",
        )
        .map_err(|_| Error::InvalidRecipient {
            reason: "X-Wing encapsulation failed".to_owned(),
        })?;
        Ok(Stanza {
            args: vec![TAG.to_owned(), b64_encode(&enc.to_bytes())],
            body,
        })
    }
}

impl std::fmt::Debug for PqRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_bech32())
    }
}
