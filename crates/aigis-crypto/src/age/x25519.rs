//! The X25519 recipient type: `age1…` recipients, `AGE-SECRET-KEY-1…` identities.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use zeroize::Zeroizing;

use super::encoding::{b64_decode_exact, b64_encode, bech32_encode};
use super::header::Stanza;
use super::primitives::{
    FileKey, WRAPPED_KEY_LEN, fill_random, hkdf32, unwrap_file_key, wrap_file_key,
};
use super::{Error, stanza_err};

const TAG: &str = "X25519";
const INFO: &[u8] = b"age-encryption.org/v1/X25519";
pub(crate) const RECIPIENT_HRP: &str = "age";
pub(crate) const IDENTITY_HRP: &str = "AGE-SECRET-KEY-";

/// An X25519 public key (`age1…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X25519Recipient(pub(crate) [u8; 32]);

/// An X25519 secret key (`AGE-SECRET-KEY-1…`); wiped when dropped.
#[derive(Clone)]
pub struct X25519Identity(pub(crate) Zeroizing<[u8; 32]>);

/// X25519(scalar, point); `None` when the result is the all-zero value (a low-order point),
/// which the spec requires to abort on.
pub(crate) fn diffie_hellman(scalar: &[u8; 32], point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let sk = PrivateKey::from_private_key(&X25519, scalar).ok()?;
    // aws-lc refuses an all-zero shared secret itself; the explicit check below keeps the
    // rule visible and independent of that behaviour.
    agreement::agree(&sk, UnparsedPublicKey::new(&X25519, point), (), |ss| {
        let mut out = Zeroizing::new([0u8; 32]);
        if ss.len() != 32 {
            return Err(());
        }
        out.copy_from_slice(ss);
        Ok(out)
    })
    .ok()
    .filter(|ss| ss.iter().any(|b| *b != 0))
}

fn base_point_mult(scalar: &[u8; 32]) -> Result<[u8; 32], Error> {
    let sk = PrivateKey::from_private_key(&X25519, scalar).map_err(|_| Error::Random)?;
    let pk = sk.compute_public_key().map_err(|_| Error::Random)?;
    pk.as_ref().try_into().map_err(|_| Error::Random)
}

impl X25519Identity {
    /// A new random identity.
    pub fn generate() -> Result<Self, Error> {
        let mut sk = Zeroizing::new([0u8; 32]);
        fill_random(sk.as_mut())?;
        Ok(Self(sk))
    }

    /// The matching recipient.
    pub fn to_recipient(&self) -> Result<X25519Recipient, Error> {
        base_point_mult(&self.0).map(X25519Recipient)
    }

    /// The Bech32 encoding (`AGE-SECRET-KEY-1…`).
    pub fn to_bech32(&self) -> Zeroizing<String> {
        Zeroizing::new(bech32_encode(IDENTITY_HRP, self.0.as_ref(), true))
    }

    /// Tries to unwrap the file key from `stanza`. `Ok(None)`: not addressed to this identity.
    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, Error> {
        if stanza.kind() != TAG {
            return Ok(None);
        }
        let [_, share] = stanza.args.as_slice() else {
            return Err(stanza_err(TAG, "must have exactly two arguments"));
        };
        let share = b64_decode_exact::<32>(share.as_bytes())
            .ok_or_else(|| stanza_err(TAG, "share is not canonical base64 of 32 bytes"))?;
        let body: &[u8; WRAPPED_KEY_LEN] = stanza
            .body
            .as_slice()
            .try_into()
            .map_err(|_| stanza_err(TAG, "body is not 32 bytes"))?;
        let shared = diffie_hellman(&self.0, &share).ok_or_else(|| {
            stanza_err(TAG, "share is a low-order point (all-zero shared secret)")
        })?;
        let recipient = self.to_recipient()?;
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&recipient.0);
        let wrap_key = hkdf32(shared.as_ref(), &salt, INFO)?;
        Ok(unwrap_file_key(&wrap_key, body))
    }
}

impl X25519Recipient {
    /// The Bech32 encoding (`age1…`).
    pub fn to_bech32(&self) -> String {
        bech32_encode(RECIPIENT_HRP, &self.0, false)
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza, Error> {
        let mut eph = Zeroizing::new([0u8; 32]);
        fill_random(eph.as_mut())?;
        let share = base_point_mult(&eph)?;
        let shared = diffie_hellman(&eph, &self.0).ok_or(Error::InvalidRecipient {
            reason: "X25519 recipient is a low-order point".to_owned(),
        })?;
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&self.0);
        let wrap_key = hkdf32(shared.as_ref(), &salt, INFO)?;
        Ok(Stanza {
            args: vec![TAG.to_owned(), b64_encode(&share)],
            body: wrap_file_key(&wrap_key, file_key)?.to_vec(),
        })
    }
}
