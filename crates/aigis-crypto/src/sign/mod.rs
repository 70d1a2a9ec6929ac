//! Signing keys and signatures: Ed25519, ECDSA P-256/P-384, ML-DSA-65 and the composite
//! ML-DSA-65 + Ed25519 of draft-ietf-lamps-pq-composite-sigs.
//!
//! Signature encodings are the ones existing tooling uses: Ed25519 64 raw bytes (RFC 8032),
//! ECDSA ASN.1 DER `Ecdsa-Sig-Value` over SHA-256 (P-256) or SHA-384 (P-384) as sigstore and
//! DSSE tools do, ML-DSA-65 its 3309-byte FIPS 204 encoding, and the composite
//! `mldsaSig || ed25519Sig`.
//!
//! Key formats: PKCS#8 (RFC 5958) private keys and SubjectPublicKeyInfo public keys, in DER or
//! PEM ([`pkcs8`]), and JWK ([`jwk`]). The key id is the lowercase hex SHA-256 of the public
//! key's SPKI DER ([`VerifyingKey::key_id`]).

pub mod composite;
mod der;
pub mod jwk;
pub mod mldsa;
pub mod pkcs8;

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING, ED25519, EcdsaKeyPair, EcdsaSigningAlgorithm,
    EcdsaVerificationAlgorithm, Ed25519KeyPair, KeyPair, UnparsedPublicKey,
};
use zeroize::Zeroizing;

/// Errors from key handling, signing and verification. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The algorithm name is not one aigis signs with.
    #[error(
        "unknown signature algorithm {0:?} (expected ed25519, p256, p384, mldsa65 or mldsa65-ed25519)"
    )]
    UnknownAlgorithm(String),
    /// A key's algorithm OID is not supported.
    #[error(
        "unsupported key algorithm (OID {oid}); aigis supports Ed25519, ECDSA P-256/P-384, ML-DSA-65 and id-MLDSA65-Ed25519-SHA512"
    )]
    UnsupportedOid {
        /// Dotted-hex of the OID content bytes.
        oid: String,
    },
    /// A DER structure is malformed.
    #[error("malformed DER at byte {offset}: {what}")]
    MalformedDer {
        /// Byte offset of the offending element.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// PEM armor is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// A JWK is malformed or unsupported.
    #[error("invalid JWK: {0}")]
    Jwk(String),
    /// Key material was rejected by the algorithm.
    #[error("invalid {alg} key: {reason}")]
    InvalidKey {
        /// Algorithm name.
        alg: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A context string longer than 255 bytes, or one given to an algorithm without contexts.
    #[error(
        "context string of {len} bytes is not allowed (ML-DSA and the composite take at most 255; other algorithms none)"
    )]
    ContextTooLong {
        /// The context length given.
        len: usize,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The signing primitive failed.
    #[error("{alg} signing failed")]
    Signing {
        /// Algorithm name.
        alg: &'static str,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignAlg {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA on P-256 with SHA-256, DER signatures.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384, DER signatures.
    EcdsaP384,
    /// ML-DSA-65 (FIPS 204).
    MlDsa65,
    /// Composite ML-DSA-65 + Ed25519, `id-MLDSA65-Ed25519-SHA512`.
    MlDsa65Ed25519,
}

impl SignAlg {
    /// Every algorithm, in CLI order.
    pub const ALL: [SignAlg; 5] = [
        SignAlg::Ed25519,
        SignAlg::EcdsaP256,
        SignAlg::EcdsaP384,
        SignAlg::MlDsa65,
        SignAlg::MlDsa65Ed25519,
    ];

    /// The CLI name (`ed25519`, `p256`, `p384`, `mldsa65`, `mldsa65-ed25519`).
    pub fn name(self) -> &'static str {
        match self {
            SignAlg::Ed25519 => "ed25519",
            SignAlg::EcdsaP256 => "p256",
            SignAlg::EcdsaP384 => "p384",
            SignAlg::MlDsa65 => "mldsa65",
            SignAlg::MlDsa65Ed25519 => "mldsa65-ed25519",
        }
    }

    /// Whether the algorithm is (partly) post-quantum.
    pub fn is_post_quantum(self) -> bool {
        matches!(self, SignAlg::MlDsa65 | SignAlg::MlDsa65Ed25519)
    }

    fn ecdsa(
        self,
    ) -> Option<(
        &'static EcdsaSigningAlgorithm,
        &'static EcdsaVerificationAlgorithm,
    )> {
        match self {
            SignAlg::EcdsaP256 => Some((&ECDSA_P256_SHA256_ASN1_SIGNING, &ECDSA_P256_SHA256_ASN1)),
            SignAlg::EcdsaP384 => Some((&ECDSA_P384_SHA384_ASN1_SIGNING, &ECDSA_P384_SHA384_ASN1)),
            _ => None,
        }
    }
}

impl fmt::Display for SignAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignAlg {
    type Err = SignError;

    fn from_str(s: &str) -> Result<Self, SignError> {
        SignAlg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| SignError::UnknownAlgorithm(s.to_string()))
    }
}

enum Secret {
    Ed25519(Ed25519KeyPair),
    Ecdsa(SignAlg, EcdsaKeyPair),
    MlDsa65(Box<mldsa::Secret>),
    Composite(Box<composite::Secret>),
}

/// A private signing key. Key material is zeroized on drop (aws-lc-rs cleanses its keys on
/// free; seeds we hold are `Zeroizing`); `Debug` shows only the algorithm and key id.
pub struct SigningKey {
    secret: Secret,
    public: VerifyingKey,
}

#[derive(Clone)]
enum Public {
    Ed25519([u8; 32]),
    Ecdsa(SignAlg, Box<[u8]>),
    MlDsa65(Box<mldsa::Public>),
    Composite(Box<composite::Public>),
}

/// A public verification key.
#[derive(Clone)]
pub struct VerifyingKey {
    public: Public,
}

pub(crate) fn ed25519_seed(kp: &Ed25519KeyPair) -> Result<Zeroizing<Vec<u8>>, SignError> {
    let seed = kp.seed().map_err(|_| SignError::InvalidKey {
        alg: "Ed25519",
        reason: "seed unavailable".into(),
    })?;
    let bytes = seed.as_be_bytes().map_err(|_| SignError::InvalidKey {
        alg: "Ed25519",
        reason: "seed unavailable".into(),
    })?;
    Ok(Zeroizing::new(bytes.as_ref().to_vec()))
}

impl SigningKey {
    /// Generates a fresh key.
    pub fn generate(alg: SignAlg) -> Result<Self, SignError> {
        let secret = match alg {
            SignAlg::Ed25519 => {
                Secret::Ed25519(Ed25519KeyPair::generate().map_err(|_| SignError::Random)?)
            }
            SignAlg::EcdsaP256 | SignAlg::EcdsaP384 => {
                let (signing, _) = alg.ecdsa().ok_or(SignError::Random)?;
                Secret::Ecdsa(
                    alg,
                    EcdsaKeyPair::generate(signing).map_err(|_| SignError::Random)?,
                )
            }
            SignAlg::MlDsa65 => Secret::MlDsa65(Box::new(mldsa::Secret::generate()?)),
            SignAlg::MlDsa65Ed25519 => Secret::Composite(Box::new(composite::Secret::generate()?)),
        };
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: Secret) -> Self {
        let public = match &secret {
            Secret::Ed25519(kp) => {
                let mut pk = [0u8; 32];
                pk.copy_from_slice(kp.public_key().as_ref());
                Public::Ed25519(pk)
            }
            Secret::Ecdsa(alg, kp) => Public::Ecdsa(*alg, kp.public_key().as_ref().into()),
            Secret::MlDsa65(sk) => Public::MlDsa65(Box::new(sk.public().clone())),
            Secret::Composite(sk) => Public::Composite(Box::new(sk.public().clone())),
        };
        SigningKey {
            secret,
            public: VerifyingKey { public },
        }
    }

    /// The algorithm.
    pub fn alg(&self) -> SignAlg {
        self.public.alg()
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `msg` (empty context).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_with_context(msg, &[])
    }

    /// Signs `msg` with an application context string (ML-DSA-65 and the composite only;
    /// other algorithms accept only an empty context).
    pub fn sign_with_context(&self, msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.secret {
            Secret::Ed25519(kp) => {
                no_context(ctx)?;
                Ok(kp.sign(msg).as_ref().to_vec())
            }
            Secret::Ecdsa(alg, kp) => {
                no_context(ctx)?;
                let sig = kp
                    .sign(&SystemRandom::new(), msg)
                    .map_err(|_| SignError::Signing {
                        alg: alg_label(*alg),
                    })?;
                Ok(sig.as_ref().to_vec())
            }
            Secret::MlDsa65(sk) => sk.sign(msg, ctx),
            Secret::Composite(sk) => sk.sign(msg, ctx),
        }
    }
}

fn no_context(ctx: &[u8]) -> Result<(), SignError> {
    if ctx.is_empty() {
        Ok(())
    } else {
        Err(SignError::ContextTooLong { len: ctx.len() })
    }
}

fn alg_label(alg: SignAlg) -> &'static str {
    match alg {
        SignAlg::Ed25519 => "Ed25519",
        SignAlg::EcdsaP256 => "ECDSA P-256",
        SignAlg::EcdsaP384 => "ECDSA P-384",
        SignAlg::MlDsa65 => "ML-DSA-65",
        SignAlg::MlDsa65Ed25519 => "ML-DSA-65+Ed25519",
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Builds a key from its raw public encoding (Ed25519 32 bytes, ECDSA uncompressed point,
    /// ML-DSA-65 1952 bytes, composite `mldsaPK || ed25519PK`).
    pub fn from_raw(alg: SignAlg, bytes: &[u8]) -> Result<Self, SignError> {
        let invalid = |reason: String| SignError::InvalidKey {
            alg: alg_label(alg),
            reason,
        };
        let public = match alg {
            SignAlg::Ed25519 => Public::Ed25519(bytes.try_into().map_err(|_| {
                invalid(format!("public key is {} bytes, expected 32", bytes.len()))
            })?),
            SignAlg::EcdsaP256 | SignAlg::EcdsaP384 => {
                let expected = if alg == SignAlg::EcdsaP256 { 65 } else { 97 };
                if bytes.len() != expected || bytes.first() != Some(&0x04) {
                    return Err(invalid(format!(
                        "public key must be an uncompressed point of {expected} bytes starting 0x04"
                    )));
                }
                Public::Ecdsa(alg, bytes.into())
            }
            SignAlg::MlDsa65 => Public::MlDsa65(Box::new(mldsa::Public::from_bytes(bytes)?)),
            SignAlg::MlDsa65Ed25519 => {
                Public::Composite(Box::new(composite::Public::from_bytes(bytes)?))
            }
        };
        Ok(VerifyingKey { public })
    }

    /// The algorithm.
    pub fn alg(&self) -> SignAlg {
        match &self.public {
            Public::Ed25519(_) => SignAlg::Ed25519,
            Public::Ecdsa(alg, _) => *alg,
            Public::MlDsa65(_) => SignAlg::MlDsa65,
            Public::Composite(_) => SignAlg::MlDsa65Ed25519,
        }
    }

    /// The raw public key encoding (the SPKI `subjectPublicKey` bits).
    pub fn raw(&self) -> &[u8] {
        match &self.public {
            Public::Ed25519(pk) => pk,
            Public::Ecdsa(_, pk) => pk,
            Public::MlDsa65(pk) => pk.as_bytes(),
            Public::Composite(pk) => pk.as_bytes(),
        }
    }

    /// The key id: lowercase hex SHA-256 of the SubjectPublicKeyInfo DER (the convention of
    /// sigstore's `keyid` for public keys and OpenSSF model signing).
    pub fn key_id(&self) -> String {
        let spki = self.to_spki_der();
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki))
    }

    /// Verifies a signature over `msg` (empty context).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignError> {
        self.verify_with_context(msg, &[], sig)
    }

    /// Verifies a signature over `msg` with an application context string.
    pub fn verify_with_context(&self, msg: &[u8], ctx: &[u8], sig: &[u8]) -> Result<(), SignError> {
        let ok = match &self.public {
            Public::Ed25519(pk) => {
                no_context(ctx)?;
                UnparsedPublicKey::new(&ED25519, pk)
                    .verify(msg, sig)
                    .is_ok()
            }
            Public::Ecdsa(alg, pk) => {
                no_context(ctx)?;
                let (_, verify) = alg.ecdsa().ok_or(SignError::BadSignature)?;
                UnparsedPublicKey::new(verify, pk).verify(msg, sig).is_ok()
            }
            Public::MlDsa65(pk) => pk.verify(msg, ctx, sig),
            Public::Composite(pk) => pk.verify(msg, ctx, sig),
        };
        if ok {
            Ok(())
        } else {
            Err(SignError::BadSignature)
        }
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg() == other.alg() && self.raw() == other.raw()
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg())
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[cfg(test)]
mod tests;
