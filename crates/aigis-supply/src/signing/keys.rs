//! Loading signing and verification keys from files (PEM: PKCS#8, SEC1 `EC PRIVATE KEY`,
//! SubjectPublicKeyInfo; explanatory text around the PEM block is ignored).

use std::path::Path;

use aigis_crypto::sign::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::SigningError;

/// Largest key file read.
pub const MAX_KEY_FILE: usize = 64 * 1024;

/// Reads a key file whole, at most [`MAX_KEY_FILE`] bytes (a FIFO or device included: the
/// bound is on what is read, not on what the metadata says), into memory wiped when dropped.
fn read(path: &Path) -> Result<Zeroizing<String>, SigningError> {
    use std::io::Read;
    let io = |source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Reserved up front: the buffer never moves, leaving no unwiped copy of the key behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE + 1));
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let invalid = |reason: String| SigningError::Key {
        path: Some(path.to_path_buf()),
        reason,
    };
    if bytes.len() > MAX_KEY_FILE {
        return Err(invalid(format!(
            "larger than {MAX_KEY_FILE} bytes; not a key file"
        )));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not PEM text".into()))?;
    Ok(Zeroizing::new(text.to_owned()))
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
