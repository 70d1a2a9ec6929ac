//! The primitives every part of the format shares, all from aws-lc-rs: HKDF-SHA-256,
//! HMAC-SHA-256, ChaCha20-Poly1305 with the zero nonce (stanza bodies) and the CSPRNG.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, rand};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::Error;

/// Size of a file key (128 bits).
pub const FILE_KEY_LEN: usize = 16;
/// A wrapped file key: the 16-byte key plus the 16-byte Poly1305 tag.
pub const WRAPPED_KEY_LEN: usize = FILE_KEY_LEN + 16;

/// The per-file symmetric key; wiped when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; FILE_KEY_LEN]);

impl FileKey {
    /// A fresh key from the CSPRNG.
    pub(crate) fn generate() -> Result<Self, Error> {
        let mut k = [0u8; FILE_KEY_LEN];
        fill_random(&mut k)?;
        Ok(Self(k))
    }

    pub(crate) fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }
}

/// Fills `out` from the operating system CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), Error> {
    rand::fill(out).map_err(|_| Error::Random)
}

/// HKDF-SHA-256 with a 32-byte output, as every derivation in the format uses. (32 bytes are
/// within HKDF's 255-block bound, so the backend never fails here; if it did, no key would be
/// derived rather than a predictable one.)
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut out = Zeroizing::new([0u8; 32]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    prk.expand(&info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(out.as_mut()))
        .map_err(|_| Error::Random)?;
    Ok(out)
}

fn zero_nonce_key(key: &[u8; 32]) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Random)
}

/// Encrypts the file key under a 32-byte wrap key with the all-zero nonce.
pub(crate) fn wrap_file_key(
    wrap_key: &[u8; 32],
    file_key: &FileKey,
) -> Result<[u8; WRAPPED_KEY_LEN], Error> {
    let key = zero_nonce_key(wrap_key)?;
    let mut body = [0u8; WRAPPED_KEY_LEN];
    body[..FILE_KEY_LEN].copy_from_slice(file_key.expose());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut body[..FILE_KEY_LEN],
        )
        .map_err(|_| Error::Random)?;
    body[FILE_KEY_LEN..].copy_from_slice(tag.as_ref());
    Ok(body)
}

/// Decrypts a wrapped file key; `None` when the tag does not verify (not this identity).
/// The body length must have been checked to be exactly [`WRAPPED_KEY_LEN`] by the caller,
/// before any key derivation, to avoid a partitioning oracle.
pub(crate) fn unwrap_file_key(
    wrap_key: &[u8; 32],
    body: &[u8; WRAPPED_KEY_LEN],
) -> Option<FileKey> {
    let key = zero_nonce_key(wrap_key).ok()?;
    let mut buf = Zeroizing::new(*body);
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            buf.as_mut(),
        )
        .ok()?;
    let bytes: [u8; FILE_KEY_LEN] = plain.try_into().ok()?;
    Some(FileKey::from_bytes(bytes))
}
