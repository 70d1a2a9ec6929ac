//! DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, protocol v1).
//!
//! A signature covers `PAE(payloadType, payload)`:
//!
//! ```text
//! "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body      (LEN: ASCII decimal, no leading zeros)
//! ```
//!
//! and the JSON envelope is `{"payload": b64, "payloadType": str, "signatures":
//! [{"keyid": str, "sig": b64}]}`. We write standard base64 with padding and accept standard or
//! URL-safe, padded or not, as the spec allows. `keyid` is the aigis key id (hex SHA-256 of
//! the SPKI DER) and is only a hint: verification never trusts it, it only selects the key.
//!
//! [`TrustedKeys::verify`] is the only way to obtain a [`Verified`] payload: it requires valid
//! signatures from at least `threshold` distinct trusted keys. A composite key verifies only
//! complete composite signatures (both ML-DSA-65 and Ed25519), never one half.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};

use crate::sign::{SignError, SigningKey, VerifyingKey};

/// Largest envelope JSON accepted.
pub const MAX_ENVELOPE_LEN: usize = 32 * 1024 * 1024;
/// Largest number of signatures in one envelope.
pub const MAX_SIGNATURES: usize = 16;
/// Largest `payloadType` accepted.
pub const MAX_PAYLOAD_TYPE_LEN: usize = 256;

/// Errors from building, parsing and verifying envelopes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsseError {
    /// The envelope is larger than [`MAX_ENVELOPE_LEN`].
    #[error("envelope of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope is not valid JSON of the DSSE shape.
    #[error("invalid DSSE envelope JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde reported.
        message: String,
    },
    /// A base64 member does not decode.
    #[error("member {member} is not valid base64: {message}")]
    Base64 {
        /// Which member (`payload`, `signatures[2].sig`).
        member: String,
        /// What is wrong.
        message: String,
    },
    /// A structural limit or rule is violated.
    #[error("invalid DSSE envelope: {0}")]
    Invalid(String),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Not enough valid signatures from trusted keys.
    #[error(
        "DSSE verification failed: {valid} of {threshold} required trusted signatures valid ({details})"
    )]
    Untrusted {
        /// Valid signatures from distinct trusted keys.
        valid: usize,
        /// Required.
        threshold: usize,
        /// Per-signature reasons.
        details: String,
    },
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key id hint (may be empty).
    #[serde(default)]
    pub keyid: String,
    /// Base64 signature over the PAE.
    pub sig: String,
}

/// A DSSE envelope as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    /// The payload's media type, e.g. `application/vnd.in-toto+json`.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<Signature>,
}

/// Pre-Authentication Encoding (DSSE v1).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const LENIENT_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn decode_b64(member: &str, text: &str) -> Result<Vec<u8>, DsseError> {
    let url = text.contains(['-', '_']);
    let engine = if url { &LENIENT_URL } else { &LENIENT_STANDARD };
    engine.decode(text).map_err(|e| DsseError::Base64 {
        member: member.to_string(),
        message: e.to_string(),
    })
}

fn check_payload_type(payload_type: &str) -> Result<(), DsseError> {
    if payload_type.is_empty() || payload_type.len() > MAX_PAYLOAD_TYPE_LEN {
        return Err(DsseError::Invalid(format!(
            "payloadType must be 1..={MAX_PAYLOAD_TYPE_LEN} bytes, got {}",
            payload_type.len()
        )));
    }
    Ok(())
}

impl Envelope {
    /// Signs `payload` with each key (at least one).
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        keys: &[&SigningKey],
    ) -> Result<Self, DsseError> {
        check_payload_type(payload_type)?;
        if keys.is_empty() || keys.len() > MAX_SIGNATURES {
            return Err(DsseError::Invalid(format!(
                "sign with 1..={MAX_SIGNATURES} keys, got {}",
                keys.len()
            )));
        }
        let message = pae(payload_type, payload);
        let signatures = keys
            .iter()
            .map(|key| {
                Ok(Signature {
                    keyid: key.verifying_key().key_id(),
                    sig: STANDARD.encode(key.sign(&message)?),
                })
            })
            .collect::<Result<_, SignError>>()?;
        Ok(Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
            signatures,
        })
    }

    /// Parses an envelope from JSON, enforcing the size limits.
    pub fn from_json(text: &[u8]) -> Result<Self, DsseError> {
        if text.len() > MAX_ENVELOPE_LEN {
            return Err(DsseError::TooLarge {
                len: text.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        let envelope: Envelope = serde_json::from_slice(text).map_err(|e| DsseError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        check_payload_type(&envelope.payload_type)?;
        if envelope.signatures.is_empty() || envelope.signatures.len() > MAX_SIGNATURES {
            return Err(DsseError::Invalid(format!(
                "an envelope carries 1..={MAX_SIGNATURES} signatures, got {}",
                envelope.signatures.len()
            )));
        }
        Ok(envelope)
    }

    /// Serializes to compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A payload whose envelope carried enough valid signatures from trusted keys. Only
/// [`TrustedKeys::verify`] constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    payload_type: String,
    payload: Vec<u8>,
    key_ids: Vec<String>,
}

impl Verified {
    /// The verified payload type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The verified payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The trusted keys whose signatures verified, sorted.
    pub fn key_ids(&self) -> &[String] {
        &self.key_ids
    }
}

/// The verifier's trust configuration: a set of public keys and a threshold.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
    threshold: usize,
    post_quantum_only: bool,
}

impl Default for TrustedKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl TrustedKeys {
    /// No keys, threshold 1.
    pub fn new() -> Self {
        TrustedKeys {
            keys: BTreeMap::new(),
            threshold: 1,
            post_quantum_only: false,
        }
    }

    /// Trusts `key` (indexed by its key id).
    #[must_use]
    pub fn with_key(mut self, key: VerifyingKey) -> Self {
        self.keys.insert(key.key_id(), key);
        self
    }

    /// Requires valid signatures from `n` (at least 1) distinct trusted keys.
    #[must_use]
    pub fn with_threshold(mut self, n: usize) -> Self {
        self.threshold = n.max(1);
        self
    }

    /// Counts only ML-DSA-65 and composite signatures (classical-only keys do not satisfy).
    #[must_use]
    pub fn post_quantum_only(mut self) -> Self {
        self.post_quantum_only = true;
        self
    }

    /// Verifies an envelope; fails closed on any doubt.
    pub fn verify(&self, envelope: &Envelope) -> Result<Verified, DsseError> {
        check_payload_type(&envelope.payload_type)?;
        if envelope.signatures.len() > MAX_SIGNATURES {
            return Err(DsseError::Invalid(format!(
                "more than {MAX_SIGNATURES} signatures"
            )));
        }
        let payload = decode_b64("payload", &envelope.payload)?;
        let message = pae(&envelope.payload_type, &payload);
        let mut valid = BTreeSet::new();
        let mut details = Vec::new();
        for (i, signature) in envelope.signatures.iter().enumerate() {
            let sig = match decode_b64(&format!("signatures[{i}].sig"), &signature.sig) {
                Ok(sig) => sig,
                Err(e) => {
                    details.push(format!("signatures[{i}]: {e}"));
                    continue;
                }
            };
            let candidates: Vec<(&String, &VerifyingKey)> = if signature.keyid.is_empty() {
                self.keys.iter().collect()
            } else {
                self.keys
                    .get_key_value(&signature.keyid)
                    .into_iter()
                    .collect()
            };
            if candidates.is_empty() {
                details.push(format!(
                    "signatures[{i}]: key {:?} is not trusted",
                    signature.keyid
                ));
                continue;
            }
            let (eligible, classical): (Vec<_>, Vec<_>) = candidates
                .into_iter()
                .partition(|(_, key)| !self.post_quantum_only || key.alg().is_post_quantum());
            if eligible.is_empty() {
                details.push(format!(
                    "signatures[{i}]: key {} is {}; post-quantum signatures are required",
                    classical.first().map_or("?", |(id, _)| id.as_str()),
                    classical
                        .first()
                        .map_or("classical".into(), |(_, k)| k.alg().to_string()),
                ));
                continue;
            }
            match eligible
                .into_iter()
                .find(|(_, key)| key.verify(&message, &sig).is_ok())
            {
                Some((id, _)) => {
                    valid.insert(id.clone());
                }
                None => details.push(format!("signatures[{i}]: does not verify")),
            }
        }
        if valid.len() < self.threshold {
            return Err(DsseError::Untrusted {
                valid: valid.len(),
                threshold: self.threshold,
                details: if details.is_empty() {
                    "no trusted keys".into()
                } else {
                    details.join("; ")
                },
            });
        }
        Ok(Verified {
            payload_type: envelope.payload_type.clone(),
            payload,
            key_ids: valid.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests;
