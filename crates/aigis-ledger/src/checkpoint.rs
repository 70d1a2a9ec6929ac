//! C2SP tlog-checkpoints: the note text `origin\nsize\nbase64(root)\n`, signed by the log's
//! Ed25519 key and cosigned with its ML-DSA-65 key ([`crate::note`]).

use crate::merkle::Hash;
use crate::note::{Note, NoteError, NoteSigner, NoteVerifier};
use crate::{b64, unb64};

/// A tree head: origin, size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
}

/// A malformed or unverifiable checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note is malformed or its signatures fail.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint.
    #[error("malformed checkpoint body, line {line}: {what}")]
    Body {
        /// 1-based line of the body.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The origin is not the expected one.
    #[error("checkpoint origin {got:?} is not the log's origin {want:?}")]
    WrongOrigin {
        /// Origin in the checkpoint.
        got: String,
        /// Expected origin.
        want: String,
    },
    /// The Ed25519 log signature is missing (a cosignature alone is not enough).
    #[error("the checkpoint carries no valid Ed25519 signature by the log key {0}")]
    MissingLogSignature(String),
}

impl Checkpoint {
    /// The note text (with final newline).
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, b64(&self.root))
    }

    /// Parses a note text as a checkpoint (extension lines are allowed and ignored).
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = |line, what: &str| CheckpointError::Body {
            line,
            what: what.to_owned(),
        };
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| body(1, "empty origin"))?;
        let size_s = lines.next().ok_or_else(|| body(2, "missing tree size"))?;
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(body(2, "tree size is not a decimal without leading zeroes"));
        }
        let size = size_s
            .parse()
            .map_err(|_| body(2, "tree size does not fit in 64 bits"))?;
        let root = lines
            .next()
            .and_then(unb64)
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or_else(|| body(3, "root is not a base64 32-byte hash"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Signs the checkpoint with every signer (the log key first), returning the note.
    pub fn sign(&self, signers: &[&NoteSigner], timestamp: u64) -> Result<String, NoteError> {
        let text = self.text();
        let signatures = signers
            .iter()
            .map(|s| s.sign(&text, timestamp))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note { text, signatures }.encode())
    }

    /// Parses and verifies a signed checkpoint: the note must verify against `known`, carry a
    /// valid signature from `log_key` (Ed25519), and name `origin` when given.
    pub fn verify(
        note: &str,
        log_key: &NoteVerifier,
        cosigners: &[NoteVerifier],
        origin: Option<&str>,
    ) -> Result<(Self, Vec<String>), CheckpointError> {
        let note = Note::parse(note)?;
        let mut known = vec![log_key.clone()];
        known.extend(cosigners.iter().cloned());
        let verified = note.verify(&known)?;
        if !verified
            .iter()
            .any(|v| v.id() == log_key.id() && v.name() == log_key.name())
        {
            return Err(CheckpointError::MissingLogSignature(log_key.to_vkey()));
        }
        let cp = Self::from_text(&note.text)?;
        if let Some(want) = origin
            && cp.origin != want
        {
            return Err(CheckpointError::WrongOrigin {
                got: cp.origin,
                want: want.to_owned(),
            });
        }
        let names = verified
            .iter()
            .map(|v| format!("{}+{:08x}", v.name(), v.id()))
            .collect();
        Ok((cp, names))
    }
}
