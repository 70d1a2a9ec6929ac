//! C2SP signed notes (`c2sp.org/signed-note`): text, a blank line, and signature lines
//! `— <key name> base64(key ID || signature)`; verifier keys (`name+hex(id)+base64(type||key)`).
//!
//! Two signature types are used:
//! - `0x01` Ed25519 over the note text (the log's own signature, as the spec defines it);
//! - an ML-DSA-65 subtree cosignature: the `subtree/v1` message of `c2sp.org/tlog-cosignature`
//!   signed with ML-DSA-65 instead of ML-DSA-44. The spec assigns type `0x06` to ML-DSA-44
//!   only, so this uses the escape type `0xff` followed by the identifier
//!   [`MLDSA65_TYPE_ID`] (as the spec recommends for unassigned types). The signature is
//!   `u64 timestamp || ML-DSA-65 signature` (3309 bytes).
//!
//! Signing and verifying go through `aigis_crypto::sign`; this module only frames bytes.

use aigis_crypto::sign::{SignAlg, SigningKey, VerifyingKey};
use aws_lc_rs::digest::{SHA256, digest};

use crate::{b64, unb64};

/// Largest note accepted (16 ML-DSA signatures fit with room to spare).
pub const MAX_NOTE_LEN: usize = 128 * 1024;
/// Most signature lines accepted in one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// Signature type byte of Ed25519 note signatures.
pub const TYPE_ED25519: u8 = 0x01;
/// Identifier after the `0xff` type byte for the ML-DSA-65 subtree cosignature.
pub const MLDSA65_TYPE_ID: &[u8] = b"aigis/mldsa65-subtree/v1";

/// A malformed note or verifier key, or a failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note breaks the signed-note format.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// A verifier key string is malformed.
    #[error("malformed verifier key: {0} (expected name+hex8+base64)")]
    BadVerifierKey(String),
    /// A signature from a known key does not verify.
    #[error(
        "signature by {name} (key ID {id:08x}) does not verify: the note was altered or signed by another key"
    )]
    BadSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: u32,
    },
    /// No signature from a known key.
    #[error("no signature from a known key (known: {known})")]
    NoKnownSignature {
        /// The verifier keys tried.
        known: String,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The algorithm of a note key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteAlg {
    /// Ed25519 note signature (type 0x01).
    Ed25519,
    /// ML-DSA-65 timestamped subtree cosignature (type 0xff + [`MLDSA65_TYPE_ID`]).
    MlDsa65Cosig,
}

impl NoteAlg {
    fn type_prefix(self) -> Vec<u8> {
        match self {
            NoteAlg::Ed25519 => vec![TYPE_ED25519],
            NoteAlg::MlDsa65Cosig => {
                let mut v = vec![0xff];
                v.extend_from_slice(MLDSA65_TYPE_ID);
                v
            }
        }
    }

    fn sign_alg(self) -> SignAlg {
        match self {
            NoteAlg::Ed25519 => SignAlg::Ed25519,
            NoteAlg::MlDsa65Cosig => SignAlg::MlDsa65,
        }
    }
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`, big-endian.
pub fn key_id(name: &str, alg: NoteAlg, public: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 32 + public.len());
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(&alg.type_prefix());
    buf.extend_from_slice(public);
    let d = digest(&SHA256, &buf);
    let b = d.as_ref();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadVerifierKey(format!(
            "key name {name:?} must be non-empty without spaces or '+'"
        )));
    }
    Ok(())
}

/// A public note key: name, ID, algorithm and key.
#[derive(Clone)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    alg: NoteAlg,
    key: VerifyingKey,
}

impl std::fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteVerifier({}+{:08x})", self.name, self.id)
    }
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, alg: NoteAlg, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        if key.alg() != alg.sign_alg() {
            return Err(NoteError::BadVerifierKey(format!(
                "{} key given for a {alg:?} note key",
                key.alg()
            )));
        }
        let id = key_id(name, alg, key.raw());
        Ok(Self {
            name: name.to_owned(),
            id,
            alg,
            key,
        })
    }

    /// Parses `name+hex(id)+base64(type || key)`; the ID must match the key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadVerifierKey(
                "expected three '+'-separated parts".into(),
            ));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 {
            return Err(NoteError::BadVerifierKey(format!(
                "key ID {id_hex:?} is not 8 hex digits"
            )));
        }
        let id = u32::from_str_radix(id_hex, 16)
            .map_err(|_| NoteError::BadVerifierKey(format!("key ID {id_hex:?} is not hex")))?;
        let raw = unb64(key_b64)
            .ok_or_else(|| NoteError::BadVerifierKey("key part is not base64".into()))?;
        let (alg, public) = match raw.split_first() {
            Some((&TYPE_ED25519, pk)) => (NoteAlg::Ed25519, pk),
            Some((0xff, rest)) if rest.starts_with(MLDSA65_TYPE_ID) => {
                (NoteAlg::MlDsa65Cosig, &rest[MLDSA65_TYPE_ID.len()..])
            }
            Some((t, _)) => {
                return Err(NoteError::BadVerifierKey(format!(
                    "signature type 0x{t:02x} is not supported (0x01 Ed25519, 0xff ML-DSA-65 cosignature)"
                )));
            }
            None => return Err(NoteError::BadVerifierKey("empty key".into())),
        };
        let key = VerifyingKey::from_raw(alg.sign_alg(), public)
            .map_err(|e| NoteError::BadVerifierKey(e.to_string()))?;
        let v = Self::new(name, alg, key)?;
        if v.id != id {
            return Err(NoteError::BadVerifierKey(format!(
                "key ID {id_hex} does not match the key (computed {:08x})",
                v.id
            )));
        }
        Ok(v)
    }

    /// The `name+hex(id)+base64(type || key)` encoding.
    pub fn to_vkey(&self) -> String {
        let mut raw = self.alg.type_prefix();
        raw.extend_from_slice(self.key.raw());
        format!("{}+{:08x}+{}", self.name, self.id, b64(&raw))
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Algorithm.
    pub fn alg(&self) -> NoteAlg {
        self.alg
    }

    /// Verifies `sig` (without the key ID) over a note `text`.
    fn verify(&self, text: &str, sig: &[u8]) -> bool {
        match self.alg {
            NoteAlg::Ed25519 => self.key.verify(text.as_bytes(), sig).is_ok(),
            NoteAlg::MlDsa65Cosig => {
                let Some((ts, sig)) = sig.split_first_chunk::<8>() else {
                    return false;
                };
                let ts = u64::from_be_bytes(*ts);
                match cosigned_message(&self.name, ts, text) {
                    Some(msg) => self.key.verify(&msg, sig).is_ok(),
                    None => false,
                }
            }
        }
    }
}

/// The `subtree/v1` cosigned message for a checkpoint note text (origin, size, root).
fn cosigned_message(cosigner: &str, timestamp: u64, text: &str) -> Option<Vec<u8>> {
    let mut lines = text.split('\n');
    let origin = lines.next()?;
    let size: u64 = lines.next()?.parse().ok()?;
    let root = unb64(lines.next()?)?;
    if root.len() != 32
        || origin.is_empty()
        || origin.len() > 255
        || cosigner.is_empty()
        || cosigner.len() > 255
    {
        return None;
    }
    let mut m = Vec::with_capacity(12 + 1 + cosigner.len() + 8 + 1 + origin.len() + 16 + 32);
    m.extend_from_slice(b"subtree/v1\n\0");
    m.push(u8::try_from(cosigner.len()).ok()?);
    m.extend_from_slice(cosigner.as_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.push(u8::try_from(origin.len()).ok()?);
    m.extend_from_slice(origin.as_bytes());
    m.extend_from_slice(&0u64.to_be_bytes());
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(&root);
    Some(m)
}

/// A private note key.
pub struct NoteSigner {
    verifier: NoteVerifier,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NoteSigner({}+{:08x})",
            self.verifier.name, self.verifier.id
        )
    }
}

impl NoteSigner {
    /// A signer named `name` with `key` (Ed25519 for [`NoteAlg::Ed25519`], ML-DSA-65 for the
    /// cosignature).
    pub fn new(name: &str, alg: NoteAlg, key: SigningKey) -> Result<Self, NoteError> {
        let verifier = NoteVerifier::new(name, alg, key.verifying_key().clone())?;
        Ok(Self { verifier, key })
    }

    /// The matching verifier.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The underlying signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A signature line body (`base64(id || sig)`) over `text`; `timestamp` is used by the
    /// cosignature type only.
    pub fn sign(&self, text: &str, timestamp: u64) -> Result<Signature, NoteError> {
        let msg_sig = match self.verifier.alg {
            NoteAlg::Ed25519 => self.key.sign(text.as_bytes()),
            NoteAlg::MlDsa65Cosig => {
                let msg =
                    cosigned_message(&self.verifier.name, timestamp, text).ok_or_else(|| {
                        NoteError::Signing(
                            "the note is not a checkpoint (origin, size, root)".into(),
                        )
                    })?;
                self.key.sign(&msg).map(|s| {
                    let mut out = timestamp.to_be_bytes().to_vec();
                    out.extend_from_slice(&s);
                    out
                })
            }
        }
        .map_err(|e| NoteError::Signing(e.to_string()))?;
        Ok(Signature {
            name: self.verifier.name.clone(),
            id: self.verifier.id,
            sig: msg_sig,
        })
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// Signature bytes (after the key ID).
    pub sig: Vec<u8>,
}

/// A parsed signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, including its final newline.
    pub text: String,
    /// Its signatures, in order.
    pub signatures: Vec<Signature>,
}

impl Note {
    /// Parses a signed note.
    pub fn parse(input: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| Err(NoteError::Malformed(m.to_owned()));
        if input.len() > MAX_NOTE_LEN {
            return bad("longer than the 128 KiB limit");
        }
        if input.chars().any(|c| c < ' ' && c != '\n') {
            return bad("contains a control character other than newline");
        }
        if !input.ends_with('\n') {
            return bad("does not end with a newline");
        }
        let Some(split) = input.rfind("\n\n") else {
            return bad("no blank line between text and signatures");
        };
        let text = &input[..=split];
        let sigs = &input[split + 2..];
        let mut signatures = Vec::new();
        for line in sigs.strip_suffix('\n').unwrap_or(sigs).split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return bad("more than 64 signatures");
            }
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return bad("signature line does not start with an em dash and a space");
            };
            let Some((name, sig_b64)) = rest.split_once(' ') else {
                return bad("signature line has no space between key name and signature");
            };
            if name.is_empty() || name.contains('+') || sig_b64.contains(' ') {
                return bad("signature line has a bad key name or extra fields");
            }
            let Some(raw) = unb64(sig_b64) else {
                return bad("signature is not base64");
            };
            let Some((id, sig)) = raw.split_first_chunk::<4>() else {
                return bad("signature shorter than a key ID");
            };
            signatures.push(Signature {
                name: name.to_owned(),
                id: u32::from_be_bytes(*id),
                sig: sig.to_vec(),
            });
        }
        if signatures.is_empty() {
            return bad("no signature lines");
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note in its wire form.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.sig);
            out.push_str("\u{2014} ");
            out.push_str(&s.name);
            out.push(' ');
            out.push_str(&b64(&raw));
            out.push('\n');
        }
        out
    }

    /// Verifies the note against `known` keys. Signatures from unknown keys are ignored; a
    /// known key's signature that fails rejects the note; at least one must verify. Returns the
    /// verifiers whose signatures verified.
    pub fn verify<'k>(
        &self,
        known: &'k [NoteVerifier],
    ) -> Result<Vec<&'k NoteVerifier>, NoteError> {
        let mut ok = Vec::new();
        for s in &self.signatures {
            let Some(v) = known.iter().find(|v| v.name == s.name && v.id == s.id) else {
                continue;
            };
            if !v.verify(&self.text, &s.sig) {
                return Err(NoteError::BadSignature {
                    name: s.name.clone(),
                    id: s.id,
                });
            }
            if !ok
                .iter()
                .any(|o: &&NoteVerifier| o.id == v.id && o.name == v.name)
            {
                ok.push(v);
            }
        }
        if ok.is_empty() {
            return Err(NoteError::NoKnownSignature {
                known: known
                    .iter()
                    .map(|v| format!("{}+{:08x}", v.name, v.id))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(ok)
    }
}
