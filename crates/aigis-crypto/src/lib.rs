//! Cryptography for models and data: age v1 file encryption (classical and hybrid
//! post-quantum), with streaming, parallel chunk processing and seekable decryption.
//!
//! [`age`] implements the format to <https://age-encryption.org/v1>; files it writes decrypt
//! with stock `age` ≥ 1.3 and `rage`.

#![deny(missing_docs)]

pub mod age;
