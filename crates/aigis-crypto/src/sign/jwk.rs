//! JSON Web Keys (RFC 7517) for every aigis signature algorithm.
//!
//! - Ed25519: `{"kty":"OKP","crv":"Ed25519","x",["d"]}` (RFC 8037).
//! - ECDSA: `{"kty":"EC","crv":"P-256"|"P-384","x","y",["d"]}` (RFC 7518 §6.2).
//! - ML-DSA-65: `{"kty":"AKP","alg":"ML-DSA-65","pub",["priv"]}` (RFC 9964, formerly
//!   draft-ietf-cose-dilithium; `priv` is the 32-byte seed).
//! - Composite: the same `AKP` shape with `"alg":"MLDSA65-Ed25519-SHA512"`, `pub` the composite
//!   public key and `priv` the composite private key of draft-ietf-lamps-pq-composite-sigs.
//!   No JOSE registration exists for this composite yet; this `alg` value is aigis's choice and
//!   is documented in docs/crypto.md.
//!
//! Every JWK also carries `"kid"`, the aigis key id. On import, `kid` (if present) must match.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{Secret, SignAlg, SignError, SigningKey, VerifyingKey, composite, ed25519_seed, mldsa};

/// Largest JWK text accepted.
pub const MAX_JWK_LEN: usize = 32 * 1024;

const COMPOSITE_ALG: &str = "MLDSA65-Ed25519-SHA512";

fn jwk_err(msg: impl Into<String>) -> SignError {
    SignError::Jwk(msg.into())
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

fn coordinate_len(alg: SignAlg) -> usize {
    if alg == SignAlg::EcdsaP256 { 32 } else { 48 }
}

impl VerifyingKey {
    /// The public JWK.
    pub fn to_jwk(&self) -> Value {
        let mut m = Map::new();
        let raw = self.raw();
        match self.alg() {
            SignAlg::Ed25519 => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), b64(raw));
            }
            alg @ (SignAlg::EcdsaP256 | SignAlg::EcdsaP384) => {
                let n = coordinate_len(alg);
                m.insert("kty".into(), "EC".into());
                let crv = if alg == SignAlg::EcdsaP256 {
                    "P-256"
                } else {
                    "P-384"
                };
                m.insert("crv".into(), crv.into());
                m.insert("x".into(), b64(raw.get(1..=n).unwrap_or_default()));
                m.insert("y".into(), b64(raw.get(n + 1..).unwrap_or_default()));
            }
            SignAlg::MlDsa65 => {
                m.insert("kty".into(), "AKP".into());
                m.insert("alg".into(), "ML-DSA-65".into());
                m.insert("pub".into(), b64(raw));
            }
            SignAlg::MlDsa65Ed25519 => {
                m.insert("kty".into(), "AKP".into());
                m.insert("alg".into(), COMPOSITE_ALG.into());
                m.insert("pub".into(), b64(raw));
            }
        }
        m.insert("kid".into(), self.key_id().into());
        Value::Object(m)
    }

    /// Imports a public JWK (private members, if any, are ignored).
    pub fn from_jwk(text: &str) -> Result<Self, SignError> {
        let m = parse(text)?;
        let (alg, raw) = public_parts(&m)?;
        let key = VerifyingKey::from_raw(alg, &raw)?;
        check_kid(&m, &key)?;
        Ok(key)
    }
}

impl SigningKey {
    /// The private JWK (zeroized on drop).
    pub fn to_jwk(&self) -> Result<Zeroizing<String>, SignError> {
        let Value::Object(mut m) = self.verifying_key().to_jwk() else {
            return Err(jwk_err("internal: public JWK is not an object"));
        };
        let private: Zeroizing<Vec<u8>> = match &self.secret {
            Secret::Ed25519(kp) => ed25519_seed(kp)?,
            Secret::Ecdsa(_, kp) => {
                let d = kp
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| jwk_err("EC export failed"))?;
                Zeroizing::new(d.as_ref().to_vec())
            }
            Secret::MlDsa65(sk) => Zeroizing::new(sk.seed().to_vec()),
            Secret::Composite(sk) => sk.to_bytes()?,
        };
        let name = if matches!(self.alg(), SignAlg::MlDsa65 | SignAlg::MlDsa65Ed25519) {
            "priv"
        } else {
            "d"
        };
        m.insert(name.into(), b64(&private));
        let text = Zeroizing::new(Value::Object(m).to_string());
        Ok(text)
    }

    /// Imports a private JWK; the public members must match the private key.
    pub fn from_jwk(text: &str) -> Result<Self, SignError> {
        let m = parse(text)?;
        let (alg, raw) = public_parts(&m)?;
        let private_name = if alg.is_post_quantum() { "priv" } else { "d" };
        let private = Zeroizing::new(member_bytes(&m, private_name)?);
        let secret = match alg {
            SignAlg::Ed25519 => Secret::Ed25519(
                Ed25519KeyPair::from_seed_and_public_key(&private, &raw)
                    .map_err(|e| jwk_err(format!("\"d\" does not match \"x\": {e}")))?,
            ),
            SignAlg::EcdsaP256 | SignAlg::EcdsaP384 => {
                let (signing, _) = alg.ecdsa().ok_or_else(|| jwk_err("not ECDSA"))?;
                let kp = EcdsaKeyPair::from_private_key_and_public_key(signing, &private, &raw)
                    .map_err(|e| jwk_err(format!("\"d\" does not match \"x\"/\"y\": {e}")))?;
                Secret::Ecdsa(alg, kp)
            }
            SignAlg::MlDsa65 => {
                let seed: &[u8; mldsa::SEED_LEN] = private
                    .as_slice()
                    .try_into()
                    .map_err(|_| jwk_err("\"priv\" must be the 32-byte ML-DSA seed"))?;
                Secret::MlDsa65(Box::new(mldsa::Secret::from_seed(seed)))
            }
            SignAlg::MlDsa65Ed25519 => {
                Secret::Composite(Box::new(composite::Secret::from_bytes(&private)?))
            }
        };
        let key = SigningKey::from_secret(secret);
        if key.verifying_key().raw() != raw.as_slice() {
            return Err(jwk_err("the public members do not match the private key"));
        }
        check_kid(&m, key.verifying_key())?;
        Ok(key)
    }
}

fn parse(text: &str) -> Result<Map<String, Value>, SignError> {
    if text.len() > MAX_JWK_LEN {
        return Err(jwk_err(format!(
            "{} bytes exceeds the {MAX_JWK_LEN}-byte limit",
            text.len()
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(jwk_err("not a JSON object")),
        Err(e) => Err(jwk_err(format!(
            "bad JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))),
    }
}

fn member_str<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, SignError> {
    m.get(name)
        .ok_or_else(|| jwk_err(format!("missing member {name:?}")))?
        .as_str()
        .ok_or_else(|| jwk_err(format!("member {name:?} must be a string")))
}

fn member_bytes(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, SignError> {
    URL_SAFE_NO_PAD
        .decode(member_str(m, name)?)
        .map_err(|e| jwk_err(format!("member {name:?} is not unpadded base64url: {e}")))
}

fn public_parts(m: &Map<String, Value>) -> Result<(SignAlg, Vec<u8>), SignError> {
    match member_str(m, "kty")? {
        "OKP" => match member_str(m, "crv")? {
            "Ed25519" => Ok((SignAlg::Ed25519, member_bytes(m, "x")?)),
            other => Err(jwk_err(format!(
                "unsupported OKP curve {other:?} (only Ed25519)"
            ))),
        },
        "EC" => {
            let alg = match member_str(m, "crv")? {
                "P-256" => SignAlg::EcdsaP256,
                "P-384" => SignAlg::EcdsaP384,
                other => {
                    return Err(jwk_err(format!(
                        "unsupported EC curve {other:?} (P-256, P-384)"
                    )));
                }
            };
            let (x, y) = (member_bytes(m, "x")?, member_bytes(m, "y")?);
            let n = coordinate_len(alg);
            if x.len() != n || y.len() != n {
                return Err(jwk_err(format!("\"x\" and \"y\" must be {n} bytes each")));
            }
            let mut point = Vec::with_capacity(1 + 2 * n);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok((alg, point))
        }
        "AKP" => {
            let alg = match member_str(m, "alg")? {
                "ML-DSA-65" => SignAlg::MlDsa65,
                COMPOSITE_ALG => SignAlg::MlDsa65Ed25519,
                other => {
                    return Err(jwk_err(format!(
                        "unsupported AKP alg {other:?} (ML-DSA-65, {COMPOSITE_ALG})"
                    )));
                }
            };
            Ok((alg, member_bytes(m, "pub")?))
        }
        other => Err(jwk_err(format!("unsupported kty {other:?} (OKP, EC, AKP)"))),
    }
}

fn check_kid(m: &Map<String, Value>, key: &VerifyingKey) -> Result<(), SignError> {
    match m.get("kid") {
        None => Ok(()),
        Some(Value::String(kid)) if *kid == key.key_id() => Ok(()),
        Some(_) => Err(jwk_err(
            "\"kid\" does not match the key (expected the aigis key id)",
        )),
    }
}
