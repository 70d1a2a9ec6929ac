//! Recipients and identities as users write them: Bech32 strings, recipients files and identity
//! files (one key per line, `#` comments and blank lines allowed, age-keygen's layout).

use zeroize::Zeroizing;

use super::Error;
use super::encoding::bech32_decode;
use super::header::Stanza;
use super::pq::{self, PqIdentity, PqRecipient};
use super::primitives::FileKey;
use super::scrypt::{ScryptIdentity, ScryptRecipient};
use super::x25519::{self, X25519Identity, X25519Recipient};

/// Identity and recipient files larger than this are refused unread.
pub const MAX_KEY_FILE_LEN: usize = 1024 * 1024;

/// Someone a file is encrypted to.
#[derive(Clone)]
#[non_exhaustive]
pub enum Recipient {
    /// `age1…`
    X25519(X25519Recipient),
    /// `age1pq1…` (hybrid post-quantum)
    Pq(Box<PqRecipient>),
    /// A passphrase; must be the only recipient.
    Scrypt(ScryptRecipient),
}

/// A key that can decrypt files.
#[derive(Clone)]
#[non_exhaustive]
pub enum Identity {
    /// `AGE-SECRET-KEY-1…`
    X25519(X25519Identity),
    /// `AGE-SECRET-KEY-PQ-1…`
    Pq(PqIdentity),
    /// A passphrase.
    Scrypt(ScryptIdentity),
}

impl Recipient {
    /// Parses an `age1…` or `age1pq1…` string.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let bad = |reason: String| Error::InvalidRecipient { reason };
        if text.starts_with("ssh-") {
            return Err(bad(
                "SSH keys are not supported; use an age1… or age1pq1… recipient".into(),
            ));
        }
        let (hrp, data) =
            bech32_decode(text).map_err(|e| bad(format!("'{}' {e}", shorten(text))))?;
        match hrp.as_str() {
            x25519::RECIPIENT_HRP => {
                if text.bytes().any(|c| c.is_ascii_uppercase()) {
                    return Err(bad("recipients are written in lower case".into()));
                }
                let key: [u8; 32] = data
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("X25519 recipient is not 32 bytes".into()))?;
                Ok(Self::X25519(X25519Recipient(key)))
            }
            pq::RECIPIENT_HRP => {
                if data.len() != pq::PUBLIC_KEY_LEN {
                    return Err(bad("age1pq recipient is not 1216 bytes".into()));
                }
                Ok(Self::Pq(Box::new(PqRecipient::from_bytes(&data)?)))
            }
            other => Err(bad(format!("unknown recipient type '{other}1…'"))),
        }
    }

    /// Parses a recipients file: one recipient per line, `#` comments and blank lines ignored.
    pub fn parse_file(text: &str) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r = Self::parse(line).map_err(|e| Error::InvalidRecipient {
                reason: format!("line {}: {e}", no + 1),
            })?;
            out.push(r);
        }
        Ok(out)
    }

    /// True for recipient types that resist a quantum adversary.
    pub fn is_post_quantum(&self) -> bool {
        matches!(self, Self::Pq(_))
    }

    /// The recipient type as it appears in a stanza.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::X25519(_) => "X25519",
            Self::Pq(_) => "mlkem768x25519",
            Self::Scrypt(_) => "scrypt",
        }
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza, Error> {
        match self {
            Self::X25519(r) => r.wrap(file_key),
            Self::Pq(r) => r.wrap(file_key),
            Self::Scrypt(r) => r.wrap(file_key),
        }
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::X25519(r) => f.write_str(&r.to_bech32()),
            Self::Pq(r) => f.write_str(&r.to_bech32()),
            Self::Scrypt(_) => f.write_str("(passphrase)"),
        }
    }
}

fn shorten(s: &str) -> String {
    let head: String = s.chars().take(16).collect();
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

impl Identity {
    /// Parses one `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` string.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidKey {
            reason: reason.to_owned(),
        };
        // The error never echoes the key: it is secret.
        let (hrp, data) =
            bech32_decode(text.trim()).map_err(|e| bad(&format!("secret key {e}")))?;
        if text.bytes().any(|c| c.is_ascii_lowercase()) {
            return Err(bad("secret keys are written in upper case"));
        }
        let seed: [u8; 32] = data
            .as_slice()
            .try_into()
            .map_err(|_| bad("secret key is not 32 bytes"))?;
        let seed = Zeroizing::new(seed);
        if hrp.eq_ignore_ascii_case(x25519::IDENTITY_HRP) {
            Ok(Self::X25519(X25519Identity(seed)))
        } else if hrp.eq_ignore_ascii_case(pq::IDENTITY_HRP) {
            Ok(Self::Pq(PqIdentity::from_seed(seed)))
        } else {
            Err(bad(
                "unknown secret key type (expected AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…)",
            ))
        }
    }

    /// Parses an identity file: one key per line, `#` comments and blank lines ignored. Errors
    /// name the line, never its content.
    pub fn parse_file(text: &str) -> Result<Vec<Self>, Error> {
        if text.len() > MAX_KEY_FILE_LEN {
            return Err(Error::InvalidKey {
                reason: "identity file is too large".to_owned(),
            });
        }
        let mut out = Vec::new();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = Self::parse(line).map_err(|e| Error::InvalidKey {
                reason: format!("line {}: {e}", no + 1),
            })?;
            out.push(id);
        }
        if out.is_empty() {
            return Err(Error::InvalidKey {
                reason: "no secret key in the identity file".to_owned(),
            });
        }
        Ok(out)
    }

    /// The recipient that encrypts to this identity (`None` for a passphrase).
    pub fn to_recipient(&self) -> Result<Option<Recipient>, Error> {
        Ok(match self {
            Self::X25519(i) => Some(Recipient::X25519(i.to_recipient()?)),
            Self::Pq(i) => Some(Recipient::Pq(Box::new(i.to_recipient()?))),
            Self::Scrypt(_) => None,
        })
    }

    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, Error> {
        match self {
            Self::X25519(i) => i.unwrap(stanza),
            Self::Pq(i) => i.unwrap(stanza),
            Self::Scrypt(i) => i.unwrap(stanza),
        }
    }
}
