//! Model signing (OpenSSF Model Signing), ML-BOMs and provenance for model directories.
//!
//! - [`sign::sign_model`] / [`verify::verify_model`]: OMS signatures byte-compatible with
//!   `model_signing` 1.1.x — a Sigstore bundle holding a DSSE envelope over an in-toto
//!   statement that lists every file (or shard) of the model with its digest
//!   ([`statement`]), signed with an ECDSA P-256/P-384 key ([`bundle`]) or a key with an X.509
//!   certificate chain ([`x509`]). Hashing runs on aigis-crypto's parallel tree hasher
//!   ([`hashing`]).
//! - [`sigstore`]: Sigstore keyless bundles verified offline against a Sigstore trusted root.
//! - Post-quantum profile (aigis extension): the same statement also (or only) signed with
//!   ML-DSA-65+Ed25519 in the same DSSE envelope; [`verify::VerifyOptions::require_pq`]
//!   requires it.
//!
//! - [`sbom::model_bom`]: a CycloneDX 1.6 ML-BOM of a model directory (model card fields,
//!   parameter counts and dtypes from safetensors/GGUF headers via [`weights`], file hashes,
//!   the scan verdict, datasets, pinned dependencies).
//!
//! - [`provenance`]: in-toto SLSA provenance v1 for training/conversion runs, DSSE-signed, and
//!   its verification against a model directory.
//!
//! Errors name the file, resource or certificate involved; a verification that fails on
//! content lists every difference ([`Problem`]).

pub mod bundle;
pub mod hashing;
pub mod keys;
pub mod provenance;
pub mod sbom;
pub mod sign;
pub mod sigstore;
pub mod statement;
pub mod verify;
pub mod weights;
pub mod x509;

use std::fmt;
use std::path::PathBuf;

pub use bundle::{Bundle, Material, key_hint};
pub use sign::{Identity, SignOptions, sign_model};
pub use statement::{HashType, Method, ModelManifest, Resource, Serialization};
pub use verify::{Trust, Verified, VerifyOptions, verify_model, verify_model_with_progress};

/// One difference between a model on disk and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A signed file (or shard) whose digest changed.
    HashMismatch {
        /// Resource name.
        name: String,
        /// Signed digest.
        expected: String,
        /// Digest on disk.
        actual: String,
    },
    /// A signed file (or shard) that is not on disk (or no longer covers that range).
    Missing {
        /// Resource name.
        name: String,
    },
    /// A file (or shard) on disk that the signature does not cover.
    Extra {
        /// Resource name.
        name: String,
    },
    /// A file signed in shards whose size on disk differs from the signed size (bytes appended
    /// at a shard boundary only add shards, which `--ignore-unsigned-files` would not report).
    SizeChanged {
        /// File path.
        name: String,
        /// Size covered by the signed shards.
        signed: u64,
        /// Size on disk.
        actual: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::HashMismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "hash mismatch for {name:?}: signed {expected}, on disk {actual}"
            ),
            Problem::Missing { name } => write!(f, "missing: {name:?} is signed but not on disk"),
            Problem::Extra { name } => write!(
                f,
                "extra: {name:?} is on disk but not in the signature (remove it, re-sign, or pass --ignore-unsigned-files)"
            ),
            Problem::SizeChanged {
                name,
                signed,
                actual,
            } => write!(
                f,
                "size changed: {name:?} is {actual} bytes on disk but its signed shards cover {signed} bytes"
            ),
        }
    }
}

/// Errors from signing and verifying models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Hashing the model failed.
    #[error(transparent)]
    Digest(#[from] aigis_crypto::digest::DigestError),
    /// A key could not be loaded or used.
    #[error("{}{reason}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Key {
        /// The key file, if any.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// The bundle is malformed.
    #[error("invalid signature bundle: {reason}")]
    Bundle {
        /// What is wrong.
        reason: String,
    },
    /// A size limit was exceeded.
    #[error("{what}: {len} exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size (bytes or entries).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The DSSE payload is not an in-toto statement.
    #[error(
        "DSSE payloadType is {found:?}, expected \"application/vnd.in-toto+json\"; this is not an OpenSSF model signature"
    )]
    PayloadType {
        /// The payload type found.
        found: String,
    },
    /// The statement is malformed.
    #[error("invalid model signature statement: {reason}")]
    Statement {
        /// What is wrong.
        reason: String,
    },
    /// A path in a statement or an option is unsafe (absolute, `..`, control characters).
    #[error("unsafe path {name:?}: {reason}")]
    UnsafePath {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The statement lists a resource twice.
    #[error("the statement lists {name:?} twice; a signed manifest names each file once")]
    DuplicatePath {
        /// The duplicated name.
        name: String,
    },
    /// The subject digest does not match the resources.
    #[error(
        "statement is inconsistent: the subject digest is {expected} but the listed resources hash to {actual}"
    )]
    SubjectDigest {
        /// The subject digest.
        expected: String,
        /// The digest recomputed from the resources.
        actual: String,
    },
    /// The bundle names a different key than the one given.
    #[error(
        "key mismatch: the signature was made with the key whose hint is {expected}, but the given public key(s) have hint {actual}; use the signer's public key"
    )]
    KeyMismatch {
        /// The bundle's key hint.
        expected: String,
        /// The given keys' hints.
        actual: String,
    },
    /// No valid signature.
    #[error("signature verification failed: {detail}")]
    BadSignature {
        /// Which key and why.
        detail: String,
    },
    /// A certificate problem.
    #[error("certificate verification failed: {reason}")]
    Certificate {
        /// What is wrong.
        reason: String,
    },
    /// A post-quantum signature was required.
    #[error(
        "a post-quantum signature is required but only {found} signatures verified; sign with an ML-DSA-65+Ed25519 key too (aigis sign key --private-key ec.pem --private-key pq.key) and verify with its public key"
    )]
    PqRequired {
        /// Algorithms that verified.
        found: String,
    },
    /// The model on disk differs from the signed manifest.
    #[error("the model does not match its signature:\n  {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Mismatch {
        /// Every difference.
        problems: Vec<Problem>,
    },
    /// A symlink that cannot be followed.
    #[error("{path}: {reason}")]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The malicious-code scan did not come back clean.
    #[error(
        "the model is signed but its scan is not clean: {verdict}; run `aigis scan` on it for details"
    )]
    ScanNotClean {
        /// Findings summary.
        verdict: String,
    },
    /// Something valid that aigis does not implement.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
}

#[cfg(test)]
mod tests;
