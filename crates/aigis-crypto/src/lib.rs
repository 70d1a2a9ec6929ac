//! aigis-crypto: quantum-safe encryption and signatures for models and data.
//!
//! - [`age`]: age v1 file encryption to <https://age-encryption.org/v1> (X25519, scrypt and
//!   the hybrid post-quantum mlkem768x25519), streaming with chunks sealed and opened in
//!   parallel, and seekable decryption; files decrypt with stock `age` ≥ 1.3 and `rage`.
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

pub mod age;
pub mod digest;
pub mod dsse;
pub mod sign;
