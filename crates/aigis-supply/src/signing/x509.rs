//! Certificate-chain verification for the OMS certificate method: the bundle carries the
//! signing certificate and intermediates; the verifier supplies trusted CA certificates.
//!
//! Rules (those of model_signing's OpenSSL store, made explicit):
//! - the chain is checked at the signing certificate's `notBefore` (model_signing's rule: a
//!   signing certificate may be short-lived; the signature is taken to be made when it was
//!   issued), every certificate valid at that instant;
//! - each issuer is found by subject name among the bundle's intermediates and the trusted
//!   certificates, and its key must verify the child's signature (ECDSA P-256/P-384 with
//!   SHA-256/384, RSA PKCS#1 v1.5 with SHA-256/384/512, Ed25519);
//! - every issuer is a CA (`basicConstraints cA`), with `keyCertSign` if it has a key usage,
//!   within its `pathLenConstraint`; the path ends at a trusted certificate;
//! - unknown critical extensions are refused;
//! - the signing certificate has `digitalSignature` key usage or the `codeSigning` EKU, and
//!   neither extension, when present, leaves those out (stricter than model_signing, which
//!   accepts `digitalSignature` with an EKU of only `serverAuth`).

use aigis_crypto::sign::VerifyingKey;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::SigningError;

/// Longest certification path followed.
pub const MAX_PATH_LEN: usize = 8;
/// Most trusted certificates accepted.
pub const MAX_TRUSTED: usize = 1000;

fn cert_err(reason: impl Into<String>) -> SigningError {
    SigningError::Certificate {
        reason: reason.into(),
    }
}

/// Parses every `CERTIFICATE` PEM block of `text`.
pub fn pem_certificates(text: &str, source: &str) -> Result<Vec<Vec<u8>>, SigningError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = body
            .find(END)
            .ok_or_else(|| cert_err(format!("{source}: unterminated CERTIFICATE block")))?;
        let b64: String = body
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| cert_err(format!("{source}: bad base64 in certificate: {e}")))?;
        out.push(der);
        if out.len() > MAX_TRUSTED {
            return Err(cert_err(format!(
                "{source}: more than {MAX_TRUSTED} certificates"
            )));
        }
        rest = body.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(cert_err(format!("{source}: no CERTIFICATE PEM block")));
    }
    Ok(out)
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, SigningError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(cert_err(format!(
            "{what}: trailing bytes after the certificate"
        ))),
        Err(e) => Err(cert_err(format!(
            "{what}: not a DER X.509 certificate: {e}"
        ))),
    }
}

fn subject_cn(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

/// The signer identity and key established by a verified chain.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The signing certificate's subject.
    pub subject: String,
    /// The subjects of the path, leaf first, ending at the trust anchor.
    pub path: Vec<String>,
    /// The signing key.
    pub key: VerifyingKey,
}

/// Verifies `chain` (leaf first, from the bundle) against `trusted` CA certificates.
pub fn verify_chain(chain: &[Vec<u8>], trusted: &[Vec<u8>]) -> Result<VerifiedChain, SigningError> {
    let leaf_der = chain
        .first()
        .ok_or_else(|| cert_err("empty certificate chain"))?;
    let leaf = parse(leaf_der, "signing certificate")?;
    let at = leaf.validity().not_before.timestamp();
    let intermediates = chain
        .iter()
        .skip(1)
        .enumerate()
        .map(|(i, d)| parse(d, &format!("bundle certificate {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let anchors = trusted
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("trusted certificate {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if anchors.is_empty() {
        return Err(cert_err(
            "no trusted certificates given (--certificate-chain)",
        ));
    }
    check_common(&leaf, at, "signing certificate")?;
    check_leaf_usage(&leaf)?;
    let mut path = vec![subject_cn(&leaf)];
    let mut current = leaf.clone();
    let mut depth = 0usize;
    loop {
        if anchors.iter().any(|a| a.as_ref() == current.as_ref()) {
            break;
        }
        if depth >= MAX_PATH_LEN {
            return Err(cert_err(format!(
                "no trusted issuer within {MAX_PATH_LEN} certificates"
            )));
        }
        let (issuer, trusted_issuer) = find_issuer(&current, &anchors, &intermediates)
            .ok_or_else(|| {
                cert_err(format!(
                    "no trusted path: the issuer {:?} of {:?} is not among the bundle's intermediates or the trusted certificates (or its signature does not verify)",
                    current.issuer().to_string(),
                    subject_cn(&current)
                ))
            })?;
        check_common(issuer, at, &format!("issuer {:?}", subject_cn(issuer)))?;
        check_ca(issuer, depth)?;
        path.push(subject_cn(issuer));
        current = issuer.clone();
        depth += 1;
        if trusted_issuer {
            break;
        }
    }
    let key = VerifyingKey::from_spki_der(leaf.public_key().raw).map_err(|e| {
        cert_err(format!(
            "signing certificate key is not usable (aigis verifies ECDSA P-256/P-384 and Ed25519 signing keys): {e}"
        ))
    })?;
    Ok(VerifiedChain {
        subject: subject_cn(&leaf),
        path,
        key,
    })
}

fn find_issuer<'a, 'b>(
    child: &X509Certificate<'_>,
    anchors: &'a [X509Certificate<'b>],
    intermediates: &'a [X509Certificate<'b>],
) -> Option<(&'a X509Certificate<'b>, bool)> {
    let candidates = anchors
        .iter()
        .map(|c| (c, true))
        .chain(intermediates.iter().map(|c| (c, false)));
    for (cand, trusted) in candidates {
        if cand.subject().as_raw() == child.issuer().as_raw()
            && verify_signed_by(child, cand).is_ok()
        {
            return Some((cand, trusted));
        }
    }
    None
}

fn check_common(cert: &X509Certificate<'_>, at: i64, what: &str) -> Result<(), SigningError> {
    let v = cert.validity();
    if at < v.not_before.timestamp() || at > v.not_after.timestamp() {
        return Err(cert_err(format!(
            "{what} is not valid at the signing time {} (valid {} to {})",
            leaf_time(at),
            v.not_before,
            v.not_after
        )));
    }
    for ext in cert.extensions() {
        if ext.critical
            && matches!(
                ext.parsed_extension(),
                ParsedExtension::UnsupportedExtension { .. }
            )
        {
            return Err(cert_err(format!(
                "{what} has an unknown critical extension {}",
                ext.oid
            )));
        }
    }
    Ok(())
}

fn leaf_time(at: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(at)
        .map_or_else(|_| at.to_string(), |t| t.to_string())
}

fn check_ca(cert: &X509Certificate<'_>, below: usize) -> Result<(), SigningError> {
    let name = subject_cn(cert);
    let bc = cert
        .basic_constraints()
        .map_err(|e| cert_err(format!("{name:?}: bad basicConstraints: {e}")))?;
    let Some(bc) = bc.filter(|b| b.value.ca) else {
        return Err(cert_err(format!(
            "{name:?} issued a certificate but is not a CA (basicConstraints cA is not set)"
        )));
    };
    if let Some(limit) = bc.value.path_len_constraint
        && below > limit as usize
    {
        return Err(cert_err(format!(
            "{name:?} has pathLenConstraint {limit} but {below} intermediate CA(s) follow it"
        )));
    }
    if let Ok(Some(ku)) = cert.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(cert_err(format!(
            "{name:?} lacks the keyCertSign key usage"
        )));
    }
    Ok(())
}

/// The signing certificate may sign code: `digitalSignature` or the `codeSigning` EKU says so,
/// as model_signing requires, and neither extension, when present, restricts the key to other
/// uses (RFC 5280 4.2.1.3 and 4.2.1.12: a TLS server certificate from the same CA, with
/// `digitalSignature` and only `serverAuth`, does not sign models). Fulcio certificates carry
/// both.
fn check_leaf_usage(leaf: &X509Certificate<'_>) -> Result<(), SigningError> {
    let refuse = |why: &str| {
        Err(cert_err(format!(
            "signing certificate {:?} may not sign: {why}",
            subject_cn(leaf)
        )))
    };
    let ku = leaf
        .key_usage()
        .map_err(|e| cert_err(format!("signing certificate: bad keyUsage: {e}")))?;
    let eku = leaf
        .extended_key_usage()
        .map_err(|e| cert_err(format!("signing certificate: bad extendedKeyUsage: {e}")))?;
    let digital = ku.as_ref().map(|k| k.value.digital_signature());
    let code_signing = eku.as_ref().is_some_and(|e| e.value.code_signing);
    // anyExtendedKeyUsage does not restrict the key, but does not name code signing either.
    let eku_allows = eku
        .as_ref()
        .is_none_or(|e| e.value.code_signing || e.value.any);
    if digital == Some(false) {
        refuse("its key usage lacks digitalSignature")
    } else if !eku_allows {
        refuse("its extended key usage lacks codeSigning (the key is restricted to other purposes)")
    } else if digital.is_none() && !code_signing {
        refuse(
            "it has neither the digitalSignature key usage nor the codeSigning extended key usage",
        )
    } else {
        Ok(())
    }
}

const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const OID_RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Verifies that `issuer`'s key signed `child`.
fn verify_signed_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), SigningError> {
    let spki = issuer.public_key();
    let sig_oid = child.signature_algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let alg: &'static dyn VerificationAlgorithm = match (sig_oid.as_str(), curve.as_deref()) {
        (OID_ECDSA_SHA256, Some(OID_P256)) => &signature::ECDSA_P256_SHA256_ASN1,
        (OID_ECDSA_SHA384, Some(OID_P256)) => &signature::ECDSA_P256_SHA384_ASN1,
        (OID_ECDSA_SHA256, Some(OID_P384)) => &signature::ECDSA_P384_SHA256_ASN1,
        (OID_ECDSA_SHA384, Some(OID_P384)) => &signature::ECDSA_P384_SHA384_ASN1,
        (OID_RSA_SHA256, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (OID_RSA_SHA384, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (OID_RSA_SHA512, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (OID_ED25519, _) => &signature::ED25519,
        (other, c) => {
            return Err(cert_err(format!(
                "unsupported certificate signature algorithm {other} (issuer key curve {c:?})"
            )));
        }
    };
    UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(
            child.tbs_certificate.as_ref(),
            child.signature_value.data.as_ref(),
        )
        .map_err(|_| cert_err("certificate signature does not verify"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(u8::try_from(len).unwrap());
        } else {
            out.push(0x82);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    const KU: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
    const EKU: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
    const CODE_SIGNING: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
    const SERVER_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    /// keyUsage bit strings: digitalSignature; keyCertSign only.
    const DIGITAL: &[u8] = &[0x03, 0x02, 0x07, 0x80];
    const CERT_SIGN: &[u8] = &[0x03, 0x02, 0x02, 0x04];

    fn ext(oid: &[u8], value: &[u8]) -> Vec<u8> {
        seq(&[oid.to_vec(), tlv(0x04, value)])
    }

    fn eku(purposes: &[&[u8]]) -> Vec<u8> {
        ext(EKU, &tlv(0x30, &purposes.concat()))
    }

    /// A structurally valid (unsigned) P-256 certificate with these extensions: enough for the
    /// usage check, which looks at nothing else.
    fn leaf_with(extensions: &[Vec<u8>]) -> Vec<u8> {
        let ecdsa_sha256 = seq(&[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]);
        let name = seq(&[tlv(
            0x31,
            &seq(&[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, b"leaf")]),
        )]);
        let validity = seq(&[tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")]);
        let mut point = vec![0x00, 0x04];
        point.extend_from_slice(&[1u8; 64]);
        let spki = seq(&[
            seq(&[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            ]),
            tlv(0x03, &point),
        ]);
        let mut tbs = vec![
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            ecdsa_sha256.clone(),
            name.clone(),
            validity,
            name,
            spki,
        ];
        if !extensions.is_empty() {
            tbs.push(tlv(0xa3, &seq(extensions)));
        }
        let tbs = seq(&tbs);
        seq(&[tbs, ecdsa_sha256, tlv(0x03, &[0, 0x30, 0])])
    }

    fn usage(extensions: &[Vec<u8>]) -> Result<(), String> {
        let der = leaf_with(extensions);
        check_leaf_usage(&parse(&der, "test leaf").unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn leaf_usage_follows_both_extensions_when_present() {
        // What model_signing, Fulcio and the test PKIs issue.
        usage(&[ext(KU, DIGITAL), eku(&[CODE_SIGNING])]).unwrap();
        usage(&[ext(KU, DIGITAL)]).unwrap();
        usage(&[eku(&[CODE_SIGNING])]).unwrap();
        usage(&[ext(KU, DIGITAL), eku(&[SERVER_AUTH, CODE_SIGNING])]).unwrap();
        // A TLS server certificate: digitalSignature, but its EKU restricts it to serverAuth.
        let e = usage(&[ext(KU, DIGITAL), eku(&[SERVER_AUTH])]).unwrap_err();
        assert!(e.contains("lacks codeSigning"), "{e}");
        // A CA-style key usage does not become a signing key through its EKU.
        let e = usage(&[ext(KU, CERT_SIGN), eku(&[CODE_SIGNING])]).unwrap_err();
        assert!(e.contains("lacks digitalSignature"), "{e}");
        let e = usage(&[]).unwrap_err();
        assert!(e.contains("neither"), "{e}");
    }
}
