//! age v1 file encryption (<https://age-encryption.org/v1>), interoperable with `age` ≥ 1.3 and
//! `rage`: X25519, scrypt (passphrase) and mlkem768x25519 (hybrid post-quantum) recipients,
//! ASCII armor, and a parallel STREAM payload.
//!
//! ```
//! use aigis_crypto::age::{self, EncryptOptions, Identity};
//!
//! let identity = Identity::X25519(age::X25519Identity::generate()?);
//! let recipient = identity.to_recipient()?.expect("a key, not a passphrase");
//! let mut sealed = Vec::new();
//! age::encrypt(&[recipient], &EncryptOptions::default(), &b"weights"[..], &mut sealed)?;
//! let mut plain = Vec::new();
//! age::decrypt(&[identity], &sealed[..], &mut plain)?;
//! assert_eq!(plain, b"weights");
//! # Ok::<(), age::Error>(())
//! ```
//!
//! What the format does not do: it does not authenticate the sender (anyone holding a recipient
//! can encrypt to it), hide the file length, or protect metadata. Sign what you encrypt when the
//! origin matters.

mod armor;
mod encoding;
mod header;
mod keys;
mod pq;
mod primitives;
mod scrypt;
mod seek;
mod stream;
mod x25519;

use std::io::{self, BufRead, BufReader, Read, Write};

pub use armor::{ArmorReader, ArmorWriter, MAX_ARMOR_LINE, looks_armored};
pub use encoding::MAX_BECH32_LEN;
pub use header::{Header, MAX_ARGUMENT_LINE, Stanza};
pub use keys::{Identity, MAX_KEY_FILE_LEN, Recipient};
pub use pq::{PqIdentity, PqRecipient};
pub use primitives::FileKey;
pub use scrypt::{
    DEFAULT_LOG_N, DEFAULT_MAX_LOG_N, MAX_LOG_N, MIN_LOG_N, ScryptIdentity, ScryptRecipient,
};
pub use seek::SeekableReader;
pub use stream::{BATCH_CHUNKS, CHUNK_LEN, SEALED_CHUNK_LEN};
pub use x25519::{X25519Identity, X25519Recipient};

use header::read_nonce;
use primitives::fill_random;
use stream::PayloadKey;

/// Headers longer than this are refused (a header with a few hundred PQ stanzas fits).
pub const MAX_HEADER_LEN: usize = 1024 * 1024;
/// Most recipient stanzas accepted in one header.
pub const MAX_STANZAS: usize = 1024;

/// Why a payload chunk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadFailure {
    /// The chunk did not authenticate: modified, corrupted, or reordered data.
    Tampered,
    /// The file ends before its final chunk (cut short, e.g. an interrupted copy).
    Truncated,
    /// The header is followed by no chunk at all.
    NoChunks,
    /// An empty final chunk after other chunks, which encoders never produce.
    EmptyFinalChunk,
    /// Data follows the chunk marked final.
    TrailingData,
}

impl std::fmt::Display for PayloadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tampered => "failed authentication: the file was modified or corrupted",
            Self::Truncated => "the file is truncated (it ends before the final chunk)",
            Self::NoChunks => "the file is truncated (no payload after the header)",
            Self::EmptyFinalChunk => "empty final chunk (not produced by any encoder)",
            Self::TrailingData => "data follows the final chunk (appended or spliced data)",
        })
    }
}

/// The class of a decryption failure, as the age test vectors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The ASCII armor is malformed.
    Armor,
    /// The header (or a stanza addressed to one of our identity types) is malformed.
    Header,
    /// The header MAC does not verify under the unwrapped file key.
    HeaderMac,
    /// No identity unwraps any stanza.
    NoMatch,
    /// The payload does not decrypt all the way to the end.
    Payload,
    /// Anything else (I/O, bad arguments).
    Other,
}

/// Errors of age encryption and decryption. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed ASCII armor.
    #[error("armor, line {line}: {reason}")]
    Armor {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Malformed header.
    #[error("header, byte {offset}: {reason}")]
    Header {
        /// Byte offset in the (decoded) file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A stanza of a type we implement is malformed.
    #[error("malformed {kind} stanza: {reason}")]
    Stanza {
        /// Recipient type.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// An scrypt stanza above the accepted work factor.
    #[error(
        "scrypt work factor 2^{log_n} exceeds the limit 2^{max} (raise it only for files you trust)"
    )]
    WorkFactorTooHigh {
        /// log2 N in the file.
        log_n: u8,
        /// The cap in force.
        max: u8,
    },
    /// An scrypt stanza next to other stanzas.
    #[error("an scrypt (passphrase) stanza must be the only stanza in the header")]
    ScryptNotAlone,
    /// The header MAC does not verify.
    #[error("header MAC mismatch: the header was modified")]
    HeaderMac,
    /// No identity matched.
    #[error("{}", no_match_message(stanza_types))]
    NoMatch {
        /// The recipient type of each stanza in the file.
        stanza_types: Vec<String>,
    },
    /// A payload chunk failed.
    #[error("payload chunk {chunk} at byte offset {offset}: {failure}")]
    Payload {
        /// 0-based chunk index.
        chunk: u64,
        /// Byte offset of the chunk in the (decoded) file.
        offset: u64,
        /// What went wrong.
        failure: PayloadFailure,
    },
    /// A recipient cannot be used.
    #[error("invalid recipient: {reason}")]
    InvalidRecipient {
        /// What is wrong.
        reason: String,
    },
    /// A secret key cannot be used.
    #[error("invalid identity: {reason}")]
    InvalidKey {
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// Post-quantum and classical recipients were mixed without opting in.
    #[error(
        "refusing to mix post-quantum (age1pq1…) and classical recipients: the file would only be as strong as the classical key (force with --allow-mixed-pq)"
    )]
    MixedRecipients,
    /// Nothing to encrypt to.
    #[error("no recipients")]
    NoRecipients,
    /// A seekable reader needs the binary format.
    #[error("seeking needs a binary age file (this one is ASCII-armored)")]
    ArmoredNotSeekable,
    /// The system random number generator or a primitive failed.
    #[error("cryptographic backend failure")]
    Random,
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn no_match_message(types: &[String]) -> String {
    let mut kinds: Vec<&str> = types.iter().map(String::as_str).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds == ["scrypt"] {
        return "wrong passphrase (the file is passphrase-encrypted)".to_owned();
    }
    format!(
        "no identity matched any recipient; the file is encrypted to: {}",
        kinds.join(", ")
    )
}

pub(crate) fn stanza_err(kind: &str, reason: &str) -> Error {
    Error::Stanza {
        kind: kind.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Error {
    /// Recovers an [`Error`] carried inside an `io::Error` (armor errors travel that way).
    pub(crate) fn from_io(e: io::Error) -> Self {
        if e.get_ref()
            .is_some_and(<dyn std::error::Error + Send + Sync>::is::<Self>)
        {
            if let Some(Ok(err)) = e
                .into_inner()
                .map(<dyn std::error::Error + Send + Sync>::downcast::<Self>)
            {
                return *err;
            }
            return Self::Random;
        }
        Self::Io(e)
    }

    /// The failure class (for callers that map errors to outcomes, and the test vectors).
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Armor { .. } => FailureClass::Armor,
            Self::Header { .. }
            | Self::Stanza { .. }
            | Self::WorkFactorTooHigh { .. }
            | Self::ScryptNotAlone => FailureClass::Header,
            Self::HeaderMac => FailureClass::HeaderMac,
            Self::NoMatch { .. } => FailureClass::NoMatch,
            Self::Payload { .. } => FailureClass::Payload,
            _ => FailureClass::Other,
        }
    }
}

/// How to encrypt.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncryptOptions {
    /// Write ASCII armor instead of binary.
    pub armor: bool,
    /// Allow post-quantum and classical recipients in one file.
    pub allow_mixed_pq: bool,
}

fn check_recipients(recipients: &[Recipient], options: EncryptOptions) -> Result<(), Error> {
    if recipients.is_empty() {
        return Err(Error::NoRecipients);
    }
    let scrypt = recipients.iter().any(|r| matches!(r, Recipient::Scrypt(_)));
    if scrypt && recipients.len() > 1 {
        return Err(Error::ScryptNotAlone);
    }
    let pq = recipients.iter().filter(|r| r.is_post_quantum()).count();
    if pq > 0 && pq < recipients.len() && !options.allow_mixed_pq {
        return Err(Error::MixedRecipients);
    }
    Ok(())
}

/// Encrypts `input` to `recipients`, writing an age file to `output`; returns the plaintext
/// length. Memory stays bounded (one batch of chunks) whatever the input size.
pub fn encrypt(
    recipients: &[Recipient],
    options: &EncryptOptions,
    input: impl Read,
    output: impl Write,
) -> Result<u64, Error> {
    check_recipients(recipients, *options)?;
    let file_key = FileKey::generate()?;
    let stanzas = recipients
        .iter()
        .map(|r| r.wrap(&file_key))
        .collect::<Result<Vec<_>, _>>()?;
    let header = Header::encode(&stanzas, &file_key)?;
    let mut nonce = [0u8; 16];
    fill_random(&mut nonce)?;
    let key = PayloadKey::derive(&file_key, &nonce)?;
    drop(file_key);
    if options.armor {
        let mut out = ArmorWriter::new(output)?;
        let n = write_file(&header, &nonce, &key, input, &mut out)?;
        out.finish()?;
        Ok(n)
    } else {
        let mut out = output;
        write_file(&header, &nonce, &key, input, &mut out)
    }
}

fn write_file(
    header: &[u8],
    nonce: &[u8; 16],
    key: &PayloadKey,
    input: impl Read,
    out: &mut impl Write,
) -> Result<u64, Error> {
    out.write_all(header)?;
    out.write_all(nonce)?;
    let n = stream::seal(key, input, out)?;
    out.flush()?;
    Ok(n)
}

/// Finds the file key: the first stanza any identity unwraps. Malformed stanzas of a type an
/// identity implements are errors, not skipped.
pub(crate) fn unwrap_file_key(header: &Header, identities: &[Identity]) -> Result<FileKey, Error> {
    if header.stanzas.len() > 1 && header.stanzas.iter().any(|s| s.kind() == "scrypt") {
        return Err(Error::ScryptNotAlone);
    }
    for identity in identities {
        for stanza in &header.stanzas {
            if let Some(key) = identity.unwrap(stanza)? {
                header.verify_mac(&key)?;
                return Ok(key);
            }
        }
    }
    Err(Error::NoMatch {
        stanza_types: header.stanzas.iter().map(|s| s.kind().to_owned()).collect(),
    })
}

/// An age file whose header has been read and whose file key has been unwrapped; the payload is
/// next.
pub struct Decryptor<R> {
    input: R,
    key: PayloadKey,
    payload_offset: u64,
}

impl<'a> Decryptor<Box<dyn BufRead + 'a>> {
    /// Reads the header of `input` (binary or armored, detected) and unwraps the file key.
    pub fn new(identities: &[Identity], input: impl Read + 'a) -> Result<Self, Error> {
        let mut buffered = BufReader::with_capacity(64 * 1024, input);
        let start = buffered.fill_buf().map_err(Error::from_io)?;
        let mut input: Box<dyn BufRead + 'a> = if looks_armored(start) {
            Box::new(BufReader::with_capacity(
                64 * 1024,
                ArmorReader::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let header = Header::parse(&mut input)?;
        let file_key = unwrap_file_key(&header, identities)?;
        let nonce = read_nonce(&mut input, header.len)?;
        let key = PayloadKey::derive(&file_key, &nonce)?;
        Ok(Self {
            input,
            key,
            payload_offset: header.len,
        })
    }
}

impl<R: Read> Decryptor<R> {
    /// Decrypts the payload into `output`; returns the plaintext length. On error, `output`
    /// has received exactly the chunks that authenticated before the failing one.
    pub fn decrypt_to(self, output: &mut impl Write) -> Result<u64, Error> {
        let n = stream::open(&self.key, self.input, output, self.payload_offset)?;
        output.flush()?;
        Ok(n)
    }
}

/// Decrypts an age file (binary or armored) with the first identity that matches.
pub fn decrypt(
    identities: &[Identity],
    input: impl Read,
    mut output: impl Write,
) -> Result<u64, Error> {
    Decryptor::new(identities, input)?.decrypt_to(&mut output)
}

/// True when `start` looks like the beginning of an age file (binary or armored), e.g. to
/// recognise a passphrase-protected identity file.
pub fn is_age_file(start: &[u8]) -> bool {
    start.starts_with(b"age-encryption.org/")
        || String::from_utf8_lossy(start)
            .trim_start()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
}

#[cfg(test)]
mod tests;
