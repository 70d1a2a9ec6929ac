//! The scrypt (passphrase) recipient type. Encryption refuses work factors below
//! [`MIN_LOG_N`]; decryption refuses work factors above a cap ([`DEFAULT_MAX_LOG_N`] unless
//! raised), so a hostile file cannot make us compute for minutes or allocate gigabytes.

use zeroize::Zeroizing;

use super::encoding::{b64_decode_exact, b64_encode};
use super::header::Stanza;
use super::primitives::{FileKey, WRAPPED_KEY_LEN, fill_random, unwrap_file_key, wrap_file_key};
use super::{Error, stanza_err};

const TAG: &str = "scrypt";
const SALT_LABEL: &[u8] = b"age-encryption.org/v1/scrypt";
/// Work factor (log2 N) used when encrypting unless another is chosen: age's default.
pub const DEFAULT_LOG_N: u8 = 18;
/// Lowest work factor accepted for encryption (below this a passphrase is too cheap to guess).
pub const MIN_LOG_N: u8 = 18;
/// Highest work factor accepted on decryption by default (N = 2^22 takes about 4 GiB·s of
/// memory-time; higher files come from an attacker or a misconfigured tool).
pub const DEFAULT_MAX_LOG_N: u8 = 22;
/// Hard ceiling on any work factor, whatever the caller asks for.
pub const MAX_LOG_N: u8 = 30;

/// Encrypts to a passphrase.
#[derive(Clone)]
pub struct ScryptRecipient {
    passphrase: Zeroizing<String>,
    log_n: u8,
}

/// Decrypts files encrypted to a passphrase.
#[derive(Clone)]
pub struct ScryptIdentity {
    passphrase: Zeroizing<String>,
    max_log_n: u8,
}

fn derive(passphrase: &str, salt: &[u8; 16], log_n: u8) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = scrypt::Params::new(log_n, 8, 1, 32).map_err(|_| Error::InvalidRecipient {
        reason: format!("scrypt work factor 2^{log_n} is not supported"),
    })?;
    let mut salt_full = [0u8; SALT_LABEL.len() + 16];
    salt_full[..SALT_LABEL.len()].copy_from_slice(SALT_LABEL);
    salt_full[SALT_LABEL.len()..].copy_from_slice(salt);
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.as_bytes(), &salt_full, &params, key.as_mut())
        .map_err(|_| Error::Random)?;
    Ok(key)
}

impl ScryptRecipient {
    /// A passphrase recipient with work factor 2^`log_n`; refuses `log_n` below [`MIN_LOG_N`],
    /// above [`MAX_LOG_N`], and an empty passphrase.
    pub fn new(passphrase: Zeroizing<String>, log_n: u8) -> Result<Self, Error> {
        if passphrase.is_empty() {
            return Err(Error::InvalidRecipient {
                reason: "the passphrase is empty".to_owned(),
            });
        }
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(Error::InvalidRecipient {
                reason: format!(
                    "scrypt work factor 2^{log_n} refused: use {MIN_LOG_N}..={MAX_LOG_N}"
                ),
            });
        }
        Ok(Self { passphrase, log_n })
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza, Error> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let key = derive(&self.passphrase, &salt, self.log_n)?;
        Ok(Stanza {
            args: vec![TAG.to_owned(), b64_encode(&salt), self.log_n.to_string()],
            body: wrap_file_key(&key, file_key)?.to_vec(),
        })
    }
}

impl ScryptIdentity {
    /// A passphrase identity that refuses files with a work factor above 2^`max_log_n`
    /// (clamped to [`MAX_LOG_N`]).
    pub fn new(passphrase: Zeroizing<String>, max_log_n: u8) -> Self {
        Self {
            passphrase,
            max_log_n: max_log_n.min(MAX_LOG_N),
        }
    }

    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, Error> {
        if stanza.kind() != TAG {
            return Ok(None);
        }
        let [_, salt, log_n] = stanza.args.as_slice() else {
            return Err(stanza_err(TAG, "must have exactly three arguments"));
        };
        let salt = b64_decode_exact::<16>(salt.as_bytes())
            .ok_or_else(|| stanza_err(TAG, "salt is not canonical base64 of 16 bytes"))?;
        let log_n = parse_log_n(log_n)?;
        if log_n > self.max_log_n {
            return Err(Error::WorkFactorTooHigh {
                log_n,
                max: self.max_log_n,
            });
        }
        let body: &[u8; WRAPPED_KEY_LEN] = stanza
            .body
            .as_slice()
            .try_into()
            .map_err(|_| stanza_err(TAG, "body is not 32 bytes"))?;
        let key = derive(&self.passphrase, &salt, log_n)?;
        Ok(unwrap_file_key(&key, body))
    }
}

/// `^[1-9][0-9]*$`, then a value that fits the ceiling.
fn parse_log_n(text: &str) -> Result<u8, Error> {
    let bytes = text.as_bytes();
    let canonical =
        matches!(bytes.first(), Some(b'1'..=b'9')) && bytes.iter().all(u8::is_ascii_digit);
    if !canonical {
        return Err(stanza_err(
            TAG,
            "work factor is not a canonical decimal number",
        ));
    }
    text.parse::<u8>()
        .ok()
        .filter(|n| *n <= 63)
        .ok_or_else(|| stanza_err(TAG, "work factor is out of range"))
}
