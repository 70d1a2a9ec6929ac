//! aigis-crypto: signatures, DSSE envelopes and file-tree digests.
//!
//! - [`sign`]: Ed25519, ECDSA P-256/P-384, ML-DSA-65 and the composite ML-DSA-65 + Ed25519
//!   (`id-MLDSA65-Ed25519-SHA512`, draft-ietf-lamps-pq-composite-sigs); PKCS#8/SPKI/PEM and JWK
//!   key formats; the key id convention.
//! - [`dsse`]: Dead Simple Signing Envelopes, signed and verified against a set of trusted keys.
//! - [`digest`]: a parallel, streaming file-tree hasher (SHA-256, BLAKE3) producing a canonical
//!   manifest.
//!
//! ```
//! use aigis_crypto::sign::{SignAlg, SigningKey};
//!
//! let key = SigningKey::generate(SignAlg::MlDsa65Ed25519)?;
//! let sig = key.sign(b"model.safetensors digest")?;
//! key.verifying_key().verify(b"model.safetensors digest", &sig)?;
//! # Ok::<(), aigis_crypto::sign::SignError>(())
//! ```
#![deny(missing_docs)]

pub mod digest;
pub mod dsse;
pub mod sign;
