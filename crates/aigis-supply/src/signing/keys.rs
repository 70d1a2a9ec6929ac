//! Loading signing and verification keys from files (PEM: PKCS#8, SEC1 `EC PRIVATE KEY`,
//! SubjectPublicKeyInfo; explanatory text around the PEM block is ignored).

use std::path::Path;

use aigis_crypto::sign::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::SigningError;

/// Largest key file read.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

fn read(path: &Path) -> Result<Zeroizing<String>, SigningError> {
    let meta = std::fs::metadata(path).map_err(|source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_KEY_FILE {
        return Err(SigningError::Key {
            path: Some(path.to_path_buf()),
            reason: format!("larger than {MAX_KEY_FILE} bytes; not a key file"),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes)
        .map(Zeroizing::new)
        .map_err(|_| SigningError::Key {
            path: Some(path.to_path_buf()),
            reason: "not PEM text".into(),
        })
}

/// Loads a private key (PKCS#8 `PRIVATE KEY` of any aigis algorithm, or SEC1 `EC PRIVATE KEY`).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let text = read(path)?;
    SigningKey::from_any_pem(&text).map_err(|e| SigningError::Key {
        path: Some(path.to_path_buf()),
        reason: e.to_string(),
    })
}

/// Loads a public key (`PUBLIC KEY` PEM).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, SigningError> {
    let text = read(path)?;
    VerifyingKey::from_pem(&text).map_err(|e| SigningError::Key {
        path: Some(path.to_path_buf()),
        reason: e.to_string(),
    })
}
