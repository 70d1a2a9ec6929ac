//! The Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) that carries an OMS
//! signature: verification material (a public-key hint, a certificate chain, or a Sigstore
//! certificate with transparency-log entries) and a DSSE envelope.
//!
//! Parsing is bounded ([`MAX_BUNDLE_LEN`], aigis-crypto's DSSE limits) and strict about what it
//! relies on, lenient about what it ignores (unknown members, `keyid: null` from
//! model_signing 0.x).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use aigis_crypto::dsse::{MAX_PAYLOAD_TYPE_LEN, MAX_SIGNATURES};
use aigis_crypto::sign::{SigningKey, VerifyingKey};

use super::SigningError;

/// The bundle media type model_signing writes and requires.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_LEN: usize = 192 * 1024 * 1024;
/// Largest certificate chain accepted.
pub const MAX_CHAIN_LEN: usize = 10;
/// Largest single certificate accepted (DER bytes).
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// What identifies the signer in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// A public key, by hint (model_signing ≥ 1.1) and/or raw PEM (model_signing 0.3–1.0).
    PublicKey {
        /// Lowercase hex SHA-256 of the signer's public key PEM, if present.
        hint: Option<String>,
        /// The signer's public key PEM text, if embedded.
        raw_pem: Option<String>,
    },
    /// An X.509 chain, leaf first (DER).
    Chain(Vec<Vec<u8>>),
    /// A Sigstore (Fulcio) leaf certificate with transparency-log entries: keyless signing.
    Sigstore {
        /// The leaf certificate DER.
        certificate: Vec<u8>,
        /// The transparency-log entries (Rekor), as JSON.
        tlog_entries: Vec<Value>,
    },
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The key id (empty when absent or null).
    pub keyid: String,
    /// Raw signature bytes.
    pub sig: Vec<u8>,
}

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Who signed.
    pub material: Material,
    /// The DSSE payload type.
    pub payload_type: String,
    /// The DSSE payload (the statement).
    pub payload: Vec<u8>,
    /// The DSSE signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct BundleWire {
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(rename = "verificationMaterial")]
    verification_material: MaterialWire,
    #[serde(rename = "dsseEnvelope")]
    dsse_envelope: Option<EnvelopeWire>,
    #[serde(rename = "messageSignature")]
    message_signature: Option<Value>,
}

#[derive(Deserialize)]
struct MaterialWire {
    #[serde(rename = "publicKey")]
    public_key: Option<PublicKeyWire>,
    #[serde(rename = "x509CertificateChain")]
    chain: Option<ChainWire>,
    certificate: Option<CertWire>,
    #[serde(default, rename = "tlogEntries")]
    tlog_entries: Vec<Value>,
}

#[derive(Deserialize)]
struct PublicKeyWire {
    hint: Option<String>,
    #[serde(rename = "rawBytes")]
    raw_bytes: Option<String>,
}

#[derive(Deserialize)]
struct ChainWire {
    certificates: Vec<CertWire>,
}

#[derive(Deserialize)]
struct CertWire {
    #[serde(rename = "rawBytes")]
    raw_bytes: String,
}

#[derive(Deserialize)]
struct EnvelopeWire {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<SignatureWire>,
}

#[derive(Deserialize)]
struct SignatureWire {
    sig: String,
    #[serde(default)]
    keyid: Option<String>,
}

fn bundle_err(reason: impl Into<String>) -> SigningError {
    SigningError::Bundle {
        reason: reason.into(),
    }
}

fn b64(member: &str, text: &str) -> Result<Vec<u8>, SigningError> {
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let url = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let engine = if text.contains(['-', '_']) {
        &url
    } else {
        &lenient
    };
    engine
        .decode(text)
        .map_err(|e| bundle_err(format!("{member} is not valid base64: {e}")))
}

impl Bundle {
    /// Parses bundle JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, SigningError> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(SigningError::TooLarge {
                what: "bundle".into(),
                len: bytes.len(),
                max: MAX_BUNDLE_LEN,
            });
        }
        let wire: BundleWire = serde_json::from_slice(bytes).map_err(|e| {
            bundle_err(format!(
                "not a Sigstore bundle (line {} column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        if wire.media_type != BUNDLE_MEDIA_TYPE {
            return Err(bundle_err(format!(
                "mediaType is {:?}, expected {BUNDLE_MEDIA_TYPE:?}",
                wire.media_type
            )));
        }
        let Some(env) = wire.dsse_envelope else {
            return Err(bundle_err(if wire.message_signature.is_some() {
                "bundle holds a messageSignature, not a DSSE envelope; OMS signatures are DSSE"
            } else {
                "bundle has no dsseEnvelope"
            }));
        };
        if env.payload_type.is_empty() || env.payload_type.len() > MAX_PAYLOAD_TYPE_LEN {
            return Err(bundle_err("dsseEnvelope.payloadType is empty or too long"));
        }
        if env.signatures.is_empty() || env.signatures.len() > MAX_SIGNATURES {
            return Err(bundle_err(format!(
                "dsseEnvelope carries {} signatures; expected 1..={MAX_SIGNATURES}",
                env.signatures.len()
            )));
        }
        let signatures = env
            .signatures
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(EnvelopeSignature {
                    keyid: s.keyid.clone().unwrap_or_default(),
                    sig: b64(&format!("dsseEnvelope.signatures[{i}].sig"), &s.sig)?,
                })
            })
            .collect::<Result<Vec<_>, SigningError>>()?;
        Ok(Bundle {
            material: material(wire.verification_material)?,
            payload_type: env.payload_type,
            payload: b64("dsseEnvelope.payload", &env.payload)?,
            signatures,
        })
    }

    /// Serializes as bundle JSON (what model_signing reads).
    pub fn to_json(&self) -> String {
        let material = match &self.material {
            Material::PublicKey { hint, raw_pem } => {
                let mut pk = json!({});
                if let Some(h) = hint {
                    pk["hint"] = json!(h);
                }
                if let Some(pem) = raw_pem {
                    pk["rawBytes"] = json!(STANDARD.encode(pem));
                }
                json!({"publicKey": pk, "tlogEntries": []})
            }
            Material::Chain(certs) => json!({
                "x509CertificateChain": {"certificates": certs.iter().map(|c| json!({"rawBytes": STANDARD.encode(c)})).collect::<Vec<_>>()},
                "tlogEntries": [],
            }),
            Material::Sigstore { certificate, .. } => json!({
                "certificate": {"rawBytes": STANDARD.encode(certificate)},
                "tlogEntries": [],
            }),
        };
        let bundle = json!({
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": STANDARD.encode(&self.payload),
                "payloadType": self.payload_type,
                "signatures": self.signatures.iter().map(|s| json!({"sig": STANDARD.encode(&s.sig), "keyid": s.keyid})).collect::<Vec<_>>(),
            },
        });
        serde_json::to_string_pretty(&bundle).unwrap_or_default()
    }

    /// Signs `payload` (an in-toto statement) with each key, in order. The first signature has
    /// an empty keyid (as model_signing writes); later ones carry the aigis key id.
    pub fn sign(
        material: Material,
        payload: Vec<u8>,
        keys: &[&SigningKey],
    ) -> Result<Self, SigningError> {
        let pae = aigis_crypto::dsse::pae(super::statement::PAYLOAD_TYPE, &payload);
        let signatures = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Ok(EnvelopeSignature {
                    keyid: if i == 0 {
                        String::new()
                    } else {
                        k.verifying_key().key_id()
                    },
                    sig: k.sign(&pae).map_err(|e| SigningError::Key {
                        path: None,
                        reason: format!("signing failed: {e}"),
                    })?,
                })
            })
            .collect::<Result<Vec<_>, SigningError>>()?;
        Ok(Bundle {
            material,
            payload_type: super::statement::PAYLOAD_TYPE.into(),
            payload,
            signatures,
        })
    }
}

fn material(m: MaterialWire) -> Result<Material, SigningError> {
    if let Some(chain) = m.chain {
        if chain.certificates.is_empty() || chain.certificates.len() > MAX_CHAIN_LEN {
            return Err(bundle_err(format!(
                "x509CertificateChain has {} certificates; expected 1..={MAX_CHAIN_LEN}",
                chain.certificates.len()
            )));
        }
        let certs = chain
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cert_der(
                    &format!("x509CertificateChain.certificates[{i}]"),
                    &c.raw_bytes,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Material::Chain(certs));
    }
    if let Some(cert) = m.certificate {
        return Ok(Material::Sigstore {
            certificate: cert_der("certificate", &cert.raw_bytes)?,
            tlog_entries: m.tlog_entries,
        });
    }
    if let Some(pk) = m.public_key {
        let raw_pem = match pk.raw_bytes {
            Some(raw) => Some(
                String::from_utf8(b64("publicKey.rawBytes", &raw)?)
                    .map_err(|_| bundle_err("publicKey.rawBytes is not PEM text"))?,
            ),
            None => None,
        };
        let hint = pk
            .hint
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase());
        return Ok(Material::PublicKey { hint, raw_pem });
    }
    Err(bundle_err(
        "verificationMaterial has no publicKey, x509CertificateChain or certificate",
    ))
}

fn cert_der(member: &str, text: &str) -> Result<Vec<u8>, SigningError> {
    if text.len() > MAX_CERT_LEN * 4 / 3 + 4 {
        return Err(SigningError::TooLarge {
            what: member.into(),
            len: text.len(),
            max: MAX_CERT_LEN,
        });
    }
    b64(&format!("{member}.rawBytes"), text)
}

/// The public-key hint model_signing ≥ 1.1 writes: lowercase hex SHA-256 of the key's
/// canonical SubjectPublicKeyInfo PEM text (64-column base64, trailing newline). It is
/// computed from the re-encoded key, not from the file's bytes, so comments or different line
/// wrapping in a key file do not change it.
pub fn key_hint(key: &VerifyingKey) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        key.to_pem().as_bytes(),
    ))
}
