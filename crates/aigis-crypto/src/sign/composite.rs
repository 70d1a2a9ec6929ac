//! Composite ML-DSA-65 + Ed25519 (`id-MLDSA65-Ed25519-SHA512`, draft-ietf-lamps-pq-composite-sigs).
//!
//! ```text
//! M'  = Prefix || Label || len(ctx) || ctx || SHA-512(M)
//! sig = ML-DSA-65.Sign(sk1, M', ctx = Label) || Ed25519.Sign(sk2, M')
//! pk  = mldsaPK (1952) || ed25519PK (32);  sk = mldsaSeed (32) || ed25519 seed (32)
//! ```
//!
//! Verification is valid only if BOTH components verify; there is no code path that accepts
//! one half.

use aws_lc_rs::digest::{SHA512, digest};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::{SignError, ed25519_seed, mldsa};

/// `"CompositeAlgorithmSignatures2025"`: marks a message as the input of a composite signature.
pub const PREFIX: &[u8] = b"CompositeAlgorithmSignatures2025";
/// The signature label of `id-MLDSA65-Ed25519-SHA512`; also the ML-DSA context string.
pub const LABEL: &[u8] = b"COMPSIG-MLDSA65-Ed25519-SHA512";
/// Ed25519 public key length.
pub const ED25519_PUBLIC_LEN: usize = 32;
/// Ed25519 signature length.
pub const ED25519_SIGNATURE_LEN: usize = 64;
/// Composite public key length: ML-DSA-65 || Ed25519.
pub const PUBLIC_LEN: usize = mldsa::PUBLIC_LEN + ED25519_PUBLIC_LEN;
/// Composite private key length: ML-DSA seed || Ed25519 seed.
pub const SECRET_LEN: usize = mldsa::SEED_LEN + 32;
/// Composite signature length: ML-DSA-65 || Ed25519.
pub const SIGNATURE_LEN: usize = mldsa::SIGNATURE_LEN + ED25519_SIGNATURE_LEN;

/// Builds the message representative `M'`.
pub fn message_representative(msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, SignError> {
    let ctx_len =
        u8::try_from(ctx.len()).map_err(|_| SignError::ContextTooLong { len: ctx.len() })?;
    let ph = digest(&SHA512, msg);
    let mut m = Vec::with_capacity(PREFIX.len() + LABEL.len() + 1 + ctx.len() + 64);
    m.extend_from_slice(PREFIX);
    m.extend_from_slice(LABEL);
    m.push(ctx_len);
    m.extend_from_slice(ctx);
    m.extend_from_slice(ph.as_ref());
    Ok(m)
}

pub(crate) struct Secret {
    mldsa: mldsa::Secret,
    ed25519: Ed25519KeyPair,
    public: Public,
}

#[derive(Clone)]
pub(crate) struct Public {
    mldsa: mldsa::Public,
    ed25519: [u8; ED25519_PUBLIC_LEN],
    bytes: Box<[u8]>,
}

impl Secret {
    /// Fresh, independent key material for both components (the draft forbids reuse).
    pub fn generate() -> Result<Self, SignError> {
        let mut sk = Zeroizing::new([0u8; SECRET_LEN]);
        aws_lc_rs::rand::fill(sk.as_mut()).map_err(|_| SignError::Random)?;
        Self::from_bytes(sk.as_ref())
    }

    /// `DeserializePrivateKey`: `mldsaSeed || ed25519Seed`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignError> {
        let invalid = || SignError::InvalidKey {
            alg: "ML-DSA-65+Ed25519",
            reason: format!(
                "private key is {} bytes, expected {SECRET_LEN}",
                bytes.len()
            ),
        };
        let (seed, ed_seed) = bytes
            .split_at_checked(mldsa::SEED_LEN)
            .ok_or_else(invalid)?;
        let seed: &[u8; mldsa::SEED_LEN] = seed.try_into().map_err(|_| invalid())?;
        if ed_seed.len() != 32 {
            return Err(invalid());
        }
        let mldsa = mldsa::Secret::from_seed(seed);
        let ed25519 =
            Ed25519KeyPair::from_seed_unchecked(ed_seed).map_err(|_| SignError::InvalidKey {
                alg: "ML-DSA-65+Ed25519",
                reason: "the Ed25519 component was rejected".into(),
            })?;
        let mut ed_public = [0u8; ED25519_PUBLIC_LEN];
        ed_public.copy_from_slice(ed25519.public_key().as_ref());
        let public = Public::from_parts(mldsa.public().clone(), ed_public);
        Ok(Secret {
            mldsa,
            ed25519,
            public,
        })
    }

    /// `SerializePrivateKey`.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, SignError> {
        let mut out = Zeroizing::new(Vec::with_capacity(SECRET_LEN));
        out.extend_from_slice(self.mldsa.seed());
        out.extend_from_slice(ed25519_seed(&self.ed25519)?.as_ref());
        Ok(out)
    }

    pub fn public(&self) -> &Public {
        &self.public
    }

    pub fn sign(&self, msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, SignError> {
        let m = message_representative(msg, ctx)?;
        let mut sig = self.mldsa.sign(&m, LABEL)?;
        sig.extend_from_slice(self.ed25519.sign(&m).as_ref());
        Ok(sig)
    }
}

impl Public {
    fn from_parts(mldsa: mldsa::Public, ed25519: [u8; ED25519_PUBLIC_LEN]) -> Self {
        let mut bytes = Vec::with_capacity(PUBLIC_LEN);
        bytes.extend_from_slice(mldsa.as_bytes());
        bytes.extend_from_slice(&ed25519);
        Public {
            mldsa,
            ed25519,
            bytes: bytes.into(),
        }
    }

    /// `DeserializePublicKey`: `mldsaPK || ed25519PK`, lengths fixed by the algorithm.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignError> {
        if bytes.len() != PUBLIC_LEN {
            return Err(SignError::InvalidKey {
                alg: "ML-DSA-65+Ed25519",
                reason: format!("public key is {} bytes, expected {PUBLIC_LEN}", bytes.len()),
            });
        }
        let (m, e) = bytes.split_at(mldsa::PUBLIC_LEN);
        let mut ed = [0u8; ED25519_PUBLIC_LEN];
        ed.copy_from_slice(e);
        Ok(Self::from_parts(mldsa::Public::from_bytes(m)?, ed))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True only if the ML-DSA-65 AND the Ed25519 component verify over `M'`.
    pub fn verify(&self, msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
        if sig.len() != SIGNATURE_LEN {
            return false;
        }
        let Ok(m) = message_representative(msg, ctx) else {
            return false;
        };
        let (mldsa_sig, ed_sig) = sig.split_at(mldsa::SIGNATURE_LEN);
        let mldsa_ok = self.mldsa.verify(&m, LABEL, mldsa_sig);
        let ed_ok = UnparsedPublicKey::new(&ED25519, &self.ed25519)
            .verify(&m, ed_sig)
            .is_ok();
        mldsa_ok && ed_ok
    }
}
