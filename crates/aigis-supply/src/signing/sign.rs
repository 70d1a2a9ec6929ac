//! Signing a model directory: hash it, build the OMS statement, sign it into a bundle.

use std::path::{Path, PathBuf};

use aigis_crypto::sign::{SignAlg, SigningKey};

use super::SigningError;
use super::bundle::{Bundle, Material, key_hint};
use super::hashing::{self, HashOptions};
use super::statement::{HashType, Method, ModelManifest, Serialization};

/// Signing options (model_signing's CLI flags plus the serialization choice).
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// Files or shards.
    pub method: Method,
    /// Resource hash.
    pub hash_type: HashType,
    /// Paths to leave out (absolute, or relative to the current directory or the model).
    pub ignore_paths: Vec<PathBuf>,
    /// Ignore `.git`, `.gitattributes`, `.github`, `.gitignore` (default true).
    pub ignore_git_paths: bool,
    /// Follow symlinks that resolve to files inside the model directory.
    pub allow_symlinks: bool,
    /// Where the signature will be written (ignored when inside the model directory).
    pub signature_path: Option<PathBuf>,
    /// Worker threads.
    pub threads: Option<usize>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            method: Method::Files,
            hash_type: HashType::Sha256,
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            allow_symlinks: false,
            signature_path: None,
            threads: None,
        }
    }
}

/// How the signer is identified in the bundle.
#[derive(Debug, Clone)]
pub enum Identity {
    /// By public-key hint (key method).
    Key,
    /// By certificate chain, leaf first (DER); the leaf's key must be the first signing key.
    Chain(Vec<Vec<u8>>),
}

/// Hashes the model as `opts` says.
pub fn manifest_for(
    model: &Path,
    opts: &SignOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ModelManifest, SigningError> {
    if matches!(opts.method, Method::Shards { .. }) && opts.hash_type == HashType::Blake3 {
        return Err(SigningError::Unsupported {
            what: "blake3 with shard serialization (model_signing falls back to files for blake3; use --method files)".into(),
        });
    }
    let ser = Serialization {
        method: opts.method,
        hash_type: opts.hash_type,
        allow_symlinks: opts.allow_symlinks,
        ignore_paths: hashing::ignore_list(
            model,
            &opts.ignore_paths,
            opts.ignore_git_paths,
            opts.signature_path.as_deref(),
        )?,
    };
    let hopts = HashOptions {
        threads: opts.threads,
        only: None,
    };
    hashing::hash_model(model, &ser, &hopts, progress)
}

/// Signs `model` with `keys` (the first one is the OMS signature model_signing verifies; more
/// keys, e.g. a composite ML-DSA-65+Ed25519 key, add signatures to the same envelope) and
/// returns the bundle JSON.
pub fn sign_model(
    model: &Path,
    keys: &[&SigningKey],
    identity: Identity,
    opts: &SignOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, SigningError> {
    let first = keys.first().ok_or_else(|| SigningError::Key {
        path: None,
        reason: "no signing key given".into(),
    })?;
    let material = match identity {
        Identity::Key => Material::PublicKey {
            hint: Some(key_hint(first.verifying_key())),
            raw_pem: None,
        },
        Identity::Chain(chain) => {
            let leaf = chain.first().ok_or_else(|| SigningError::Certificate {
                reason: "no signing certificate".into(),
            })?;
            check_cert_matches_key(leaf, first)?;
            Material::Chain(chain)
        }
    };
    let manifest = manifest_for(model, opts, progress)?;
    let payload = manifest.to_statement()?;
    Ok(Bundle::sign(material, payload, keys)?.to_json())
}

/// Refuses a certificate whose public key is not the signing key's (model_signing does too).
fn check_cert_matches_key(leaf: &[u8], key: &SigningKey) -> Result<(), SigningError> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf).map_err(|e| {
        SigningError::Certificate {
            reason: format!("signing certificate is not DER X.509: {e}"),
        }
    })?;
    if cert.public_key().raw != key.verifying_key().to_spki_der().as_slice() {
        return Err(SigningError::Certificate {
            reason: "the signing certificate's public key does not match the private key".into(),
        });
    }
    Ok(())
}

/// Whether a key can make a signature model_signing verifies (ECDSA P-256/P-384).
pub fn is_oms_compatible(alg: SignAlg) -> bool {
    matches!(alg, SignAlg::EcdsaP256 | SignAlg::EcdsaP384)
}
