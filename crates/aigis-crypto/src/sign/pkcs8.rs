//! PKCS#8 private keys (RFC 5958), SubjectPublicKeyInfo public keys (RFC 5280) and PEM.
//!
//! | algorithm | OID | PKCS#8 `privateKey` content |
//! |---|---|---|
//! | Ed25519 | 1.3.101.112 (RFC 8410) | `OCTET STRING` seed (32) |
//! | ECDSA P-256/P-384 | 1.2.840.10045.2.1 + curve OID (RFC 5480) | RFC 5915 `ECPrivateKey` |
//! | ML-DSA-65 | 2.16.840.1.101.3.4.3.18 (RFC 9881) | `[0] IMPLICIT` seed (32), seed-only form |
//! | ML-DSA-65+Ed25519 | 1.3.6.1.5.5.7.6.48 (draft-ietf-lamps-pq-composite-sigs) | raw `mldsaSeed \|\| ed25519Seed` |
//!
//! SPKI `subjectPublicKey` is the raw public key in every case (composite: concatenation,
//! parameters absent). Inputs are bounded by [`MAX_KEY_DER`] / [`MAX_PEM_LEN`].

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::der::{self, Reader, TAG_BIT_STRING, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE};
use super::{Secret, SignAlg, SignError, SigningKey, VerifyingKey, composite, ed25519_seed, mldsa};

/// Largest DER key accepted (the composite public key SPKI is about 2 KiB).
pub const MAX_KEY_DER: usize = 16 * 1024;
/// Largest PEM text accepted.
pub const MAX_PEM_LEN: usize = 32 * 1024;

pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(crate) const OID_ML_DSA_65: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];
pub(crate) const OID_MLDSA65_ED25519: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x30];

const PEM_PRIVATE: &str = "PRIVATE KEY";
const PEM_PUBLIC: &str = "PUBLIC KEY";
const PEM_EC_PRIVATE: &str = "EC PRIVATE KEY";

fn alg_oids(alg: SignAlg) -> (&'static [u8], Option<&'static [u8]>) {
    match alg {
        SignAlg::Ed25519 => (OID_ED25519, None),
        SignAlg::EcdsaP256 => (OID_EC_PUBLIC_KEY, Some(OID_P256)),
        SignAlg::EcdsaP384 => (OID_EC_PUBLIC_KEY, Some(OID_P384)),
        SignAlg::MlDsa65 => (OID_ML_DSA_65, None),
        SignAlg::MlDsa65Ed25519 => (OID_MLDSA65_ED25519, None),
    }
}

fn alg_from_oids(oid: &[u8], param: Option<&[u8]>) -> Result<SignAlg, SignError> {
    let alg = match (oid, param) {
        (OID_ED25519, None) => SignAlg::Ed25519,
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => SignAlg::EcdsaP256,
        (OID_EC_PUBLIC_KEY, Some(OID_P384)) => SignAlg::EcdsaP384,
        (OID_ML_DSA_65, None) => SignAlg::MlDsa65,
        (OID_MLDSA65_ED25519, None) => SignAlg::MlDsa65Ed25519,
        _ => {
            let mut oid = hex::encode(oid);
            if let Some(p) = param {
                oid.push_str(" / curve ");
                oid.push_str(&hex::encode(p));
            }
            return Err(SignError::UnsupportedOid { oid });
        }
    };
    Ok(alg)
}

fn check_size(len: usize) -> Result<(), SignError> {
    if len > MAX_KEY_DER {
        return Err(SignError::MalformedDer {
            offset: 0,
            what: format!("{len} bytes exceeds the {MAX_KEY_DER}-byte key limit"),
        });
    }
    Ok(())
}

impl VerifyingKey {
    /// Encodes as SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let (oid, param) = alg_oids(self.alg());
        let mut content = der::algorithm_identifier(oid, param);
        let mut bits = Vec::with_capacity(self.raw().len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(self.raw());
        content.extend_from_slice(&der::tlv(TAG_BIT_STRING, &bits));
        der::tlv(TAG_SEQUENCE, &content)
    }

    /// Parses SubjectPublicKeyInfo DER.
    pub fn from_spki_der(input: &[u8]) -> Result<Self, SignError> {
        check_size(input.len())?;
        let mut outer = Reader::new(input);
        let seq = outer.expect(TAG_SEQUENCE, "SubjectPublicKeyInfo")?;
        outer.finish("SubjectPublicKeyInfo")?;
        let mut r = seq.reader();
        let (oid, param) = der::read_algorithm_identifier(&mut r)?;
        let alg = alg_from_oids(oid, param)?;
        let bits = r.expect(TAG_BIT_STRING, "subjectPublicKey BIT STRING")?;
        r.finish("SubjectPublicKeyInfo")?;
        match bits.content.split_first() {
            Some((0, raw)) => VerifyingKey::from_raw(alg, raw),
            _ => Err(SignError::MalformedDer {
                offset: bits.offset,
                what: "subjectPublicKey must have 0 unused bits".into(),
            }),
        }
    }

    /// Encodes as a `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        pem_encode(PEM_PUBLIC, &self.to_spki_der())
    }

    /// Parses a `PUBLIC KEY` PEM block.
    pub fn from_pem(text: &str) -> Result<Self, SignError> {
        let der = pem_decode(text, PEM_PUBLIC)?;
        Self::from_spki_der(&der)
    }
}

impl SigningKey {
    /// Encodes as PKCS#8 v1 (`PrivateKeyInfo`) DER. The buffer is zeroized on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, SignError> {
        let private_key: Zeroizing<Vec<u8>> = match &self.secret {
            Secret::Ecdsa(alg, kp) => {
                let doc = kp.to_pkcs8v1().map_err(|_| SignError::InvalidKey {
                    alg: super::alg_label(*alg),
                    reason: "PKCS#8 export failed".into(),
                })?;
                return Ok(Zeroizing::new(doc.as_ref().to_vec()));
            }
            Secret::Ed25519(kp) => Zeroizing::new(der::tlv(TAG_OCTET_STRING, &ed25519_seed(kp)?)),
            Secret::MlDsa65(sk) => Zeroizing::new(der::tlv(0x80, sk.seed())),
            Secret::Composite(sk) => sk.to_bytes()?,
        };
        let (oid, param) = alg_oids(self.alg());
        let mut content = Zeroizing::new(der::tlv(TAG_INTEGER, &[0]));
        content.extend_from_slice(&der::algorithm_identifier(oid, param));
        content.extend_from_slice(&Zeroizing::new(der::tlv(TAG_OCTET_STRING, &private_key)));
        Ok(Zeroizing::new(der::tlv(TAG_SEQUENCE, &content)))
    }

    /// Parses PKCS#8 v1 or v2 DER. A v2 `publicKey` must match the private key.
    pub fn from_pkcs8_der(input: &[u8]) -> Result<Self, SignError> {
        check_size(input.len())?;
        let mut outer = Reader::new(input);
        let seq = outer.expect(TAG_SEQUENCE, "PrivateKeyInfo")?;
        outer.finish("PrivateKeyInfo")?;
        let mut r = seq.reader();
        let version = r.expect(TAG_INTEGER, "version")?;
        if version.content != [0] && version.content != [1] {
            return Err(SignError::MalformedDer {
                offset: version.offset,
                what: "PKCS#8 version must be 0 or 1".into(),
            });
        }
        let (oid, param) = der::read_algorithm_identifier(&mut r)?;
        let alg = alg_from_oids(oid, param)?;
        let private_key = r.expect(TAG_OCTET_STRING, "privateKey OCTET STRING")?;
        let mut embedded_public = None;
        while !r.is_empty() {
            let el = r.any()?;
            match el.tag {
                0xa0 => {} // attributes: ignored
                0x81 => embedded_public = el.content.split_first().map(|(_, pk)| pk),
                tag => {
                    return Err(SignError::MalformedDer {
                        offset: el.offset,
                        what: format!("unexpected tag 0x{tag:02x} in PrivateKeyInfo"),
                    });
                }
            }
        }
        let secret = secret_from_private_key(alg, private_key.content, private_key.offset, input)?;
        let key = SigningKey::from_secret(secret);
        if let Some(pk) = embedded_public
            && pk != key.verifying_key().raw()
        {
            return Err(SignError::InvalidKey {
                alg: super::alg_label(alg),
                reason: "the PKCS#8 publicKey does not match the private key".into(),
            });
        }
        Ok(key)
    }

    /// Encodes as a `PRIVATE KEY` PEM block (zeroized on drop).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, SignError> {
        Ok(Zeroizing::new(pem_encode(
            PEM_PRIVATE,
            &self.to_pkcs8_der()?,
        )))
    }

    /// Parses a `PRIVATE KEY` PEM block.
    pub fn from_pem(text: &str) -> Result<Self, SignError> {
        let der = Zeroizing::new(pem_decode(text, PEM_PRIVATE)?);
        Self::from_pkcs8_der(&der)
    }

    /// Parses an RFC 5915 `EC PRIVATE KEY` (SEC1) PEM block on P-256 or P-384, the form
    /// `openssl ecparam -genkey` and many signing tools write.
    pub fn from_sec1_pem(text: &str) -> Result<Self, SignError> {
        let der = Zeroizing::new(pem_decode(text, PEM_EC_PRIVATE)?);
        for alg in [SignAlg::EcdsaP256, SignAlg::EcdsaP384] {
            if let Some((signing, _)) = alg.ecdsa()
                && let Ok(kp) = EcdsaKeyPair::from_private_key_der(signing, &der)
            {
                return Ok(SigningKey::from_secret(Secret::Ecdsa(alg, kp)));
            }
        }
        Err(SignError::InvalidKey {
            alg: "ECDSA",
            reason: "not a P-256 or P-384 ECPrivateKey (P-521 and other curves are not supported)"
                .into(),
        })
    }

    /// Parses the first private key PEM block of `text`, whichever of `PRIVATE KEY` (PKCS#8)
    /// or `EC PRIVATE KEY` (SEC1) it is. Encrypted keys are refused with a hint.
    pub fn from_any_pem(text: &str) -> Result<Self, SignError> {
        let first = text.lines().find(|l| l.starts_with("-----BEGIN "));
        match first.map(str::trim_end) {
            Some("-----BEGIN EC PRIVATE KEY-----") => Self::from_sec1_pem(text),
            Some("-----BEGIN ENCRYPTED PRIVATE KEY-----") => Err(SignError::Pem(
                "encrypted private keys are not supported; decrypt first (openssl pkcs8 -in KEY -out PLAIN)"
                    .into(),
            )),
            _ => Self::from_pem(text),
        }
    }
}

fn secret_from_private_key(
    alg: SignAlg,
    content: &[u8],
    offset: usize,
    whole: &[u8],
) -> Result<Secret, SignError> {
    let invalid = |reason: &str| SignError::InvalidKey {
        alg: super::alg_label(alg),
        reason: format!("{reason} (privateKey at byte {offset})"),
    };
    match alg {
        SignAlg::Ed25519 => {
            let mut r = Reader::new(content);
            let seed = r.expect(TAG_OCTET_STRING, "Ed25519 CurvePrivateKey")?;
            r.finish("CurvePrivateKey")?;
            Ed25519KeyPair::from_seed_unchecked(seed.content)
                .map(Secret::Ed25519)
                .map_err(|_| invalid("seed rejected"))
        }
        SignAlg::EcdsaP256 | SignAlg::EcdsaP384 => {
            let (signing, _) = alg.ecdsa().ok_or_else(|| invalid("not ECDSA"))?;
            EcdsaKeyPair::from_pkcs8(signing, whole)
                .map(|kp| Secret::Ecdsa(alg, kp))
                .map_err(|e| invalid(&format!("ECPrivateKey rejected: {e}")))
        }
        SignAlg::MlDsa65 => {
            let mut r = Reader::new(content);
            let el = r.any()?;
            r.finish("ML-DSA-PrivateKey")?;
            let seed = match el.tag {
                0x80 => el.content,
                TAG_SEQUENCE => {
                    // `both`: seed plus expanded key; we keep the seed and check the expansion.
                    let mut b = el.reader();
                    let seed = b.expect(TAG_OCTET_STRING, "ML-DSA seed")?.content;
                    let expanded = b.expect(TAG_OCTET_STRING, "ML-DSA expandedKey")?.content;
                    b.finish("ML-DSA-PrivateKey both")?;
                    let seed: &[u8; mldsa::SEED_LEN] = seed
                        .try_into()
                        .map_err(|_| invalid("seed must be 32 bytes"))?;
                    let sk = mldsa::Secret::from_seed(seed);
                    if !sk.expanded_matches(expanded) {
                        return Err(invalid("the expandedKey does not match the seed"));
                    }
                    return Ok(Secret::MlDsa65(Box::new(sk)));
                }
                _ => {
                    return Err(invalid(
                        "only the seed and both forms of ML-DSA-PrivateKey are supported",
                    ));
                }
            };
            let seed: &[u8; mldsa::SEED_LEN] = seed
                .try_into()
                .map_err(|_| invalid("seed must be 32 bytes"))?;
            Ok(Secret::MlDsa65(Box::new(mldsa::Secret::from_seed(seed))))
        }
        SignAlg::MlDsa65Ed25519 => Ok(Secret::Composite(Box::new(composite::Secret::from_bytes(
            content,
        )?))),
    }
}

/// Encodes DER as a PEM block with 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    // `der` may be a private key: its base64 text is wiped too.
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first PEM block labelled `label` (text before and after it is ignored).
pub fn pem_decode(text: &str, label: &str) -> Result<Vec<u8>, SignError> {
    if text.len() > MAX_PEM_LEN {
        return Err(SignError::Pem(format!(
            "{} bytes exceeds the {MAX_PEM_LEN}-byte limit",
            text.len()
        )));
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(|| {
        let found = text
            .lines()
            .find(|l| l.starts_with("-----BEGIN "))
            .map_or_else(|| "no PEM block".to_string(), |l| format!("found {l:?}"));
        SignError::Pem(format!("expected {begin:?}; {found}"))
    })?;
    let body_start = start + begin.len();
    let body_len = text
        .get(body_start..)
        .and_then(|rest| rest.find(&end))
        .ok_or_else(|| SignError::Pem(format!("missing {end:?}")))?;
    let body = text
        .get(body_start..body_start + body_len)
        .unwrap_or_default();
    // The block may be a private key: its base64 text, gathered here, is wiped too (sized up
    // front so it never reallocates and leaves a copy behind).
    let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
    b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
    STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| SignError::Pem(format!("bad base64 in {label} block: {e}")))
}
