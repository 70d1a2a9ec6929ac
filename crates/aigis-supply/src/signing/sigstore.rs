//! Sigstore keyless bundles, verified offline against a Sigstore trusted root
//! (`trusted_root.json`, the file Sigstore's TUF repository distributes; the `sigstore` PyPI
//! package ships a copy).
//!
//! Checked: the Fulcio signing certificate chains to a CA of the trusted root (at its
//! `notBefore`, see [`super::x509`]); the signer identity (subject alternative name) and OIDC
//! issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, or the legacy .1.1) are the expected ones; a
//! Rekor transparency-log entry from a log in the trusted root has a valid signed entry
//! timestamp (SET) over `{body, integratedTime, logID, logIndex}`, its integration time lies in
//! the certificate's validity, and its body (`dsse` kind) names this envelope's payload hash and
//! records exactly the envelope's one signature with this certificate as its verifier. The DSSE
//! signature itself is then checked with the certificate's key.
//!
//! As sigstore-python and model_signing, a keyless envelope carries exactly one signature: the
//! log entry, the certificate and the signature that verifies are then one and the same, and a
//! log entry made for another key or signature cannot vouch for this one.
//!
//! Not checked (documented): freshness of the trusted root (no TUF update offline), the Merkle
//! inclusion proof and signed checkpoint (the SET already binds the entry to the log key), RFC
//! 3161 timestamps, and certificate transparency (SCTs).

use aigis_crypto::sign::VerifyingKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::SigningError;
use super::bundle::Bundle;

/// Largest trusted root accepted.
pub const MAX_TRUSTED_ROOT_LEN: usize = 4 * 1024 * 1024;

/// When a trusted-root CA or log key may be relied on (`validFor`): from `start` until `end`
/// (open-ended without one), in seconds since the epoch. A retired or compromised key keeps
/// verifying old entries but none from after its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidFor {
    /// First second of the window.
    pub start: i64,
    /// Last second of the window, if it ends.
    pub end: Option<i64>,
}

impl ValidFor {
    /// Every time.
    pub const ALWAYS: Self = Self {
        start: i64::MIN,
        end: None,
    };

    /// Reads a `TimeRange` (`{"start": RFC 3339, "end": RFC 3339}`; `start` is required).
    fn read(range: &Value, what: &str) -> Result<Self, SigningError> {
        let time = |v: &Value, member: &str| {
            v.as_str()
                .and_then(aigis_report::time::parse_rfc3339)
                .and_then(|t| i64::try_from(t).ok())
                .ok_or_else(|| err(format!("{what}: validFor.{member} is not an RFC 3339 time")))
        };
        let start = time(&range["start"], "start")?;
        let end = match &range["end"] {
            Value::Null => None,
            v => Some(time(v, "end")?),
        };
        Ok(Self { start, end })
    }

    /// Whether `t` (seconds since the epoch) falls in the window.
    pub fn contains(self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|end| t <= end)
    }
}

/// What a Sigstore verification trusts and expects.
#[derive(Debug, Clone)]
pub struct SigstorePolicy {
    /// Fulcio CA certificates (DER), roots and intermediates, with when each may have issued.
    pub cas: Vec<(Vec<u8>, ValidFor)>,
    /// Rekor logs: (log id bytes, key, when the key may have signed).
    pub logs: Vec<(Vec<u8>, VerifyingKey, ValidFor)>,
    /// Expected signer identity (email or URI in the certificate's SAN).
    pub identity: String,
    /// Expected OIDC issuer.
    pub issuer: String,
}

/// The verified signer.
#[derive(Debug, Clone)]
pub struct SigstoreSigner {
    /// The certificate's key.
    pub key: VerifyingKey,
    /// The SAN identity.
    pub identity: String,
    /// The OIDC issuer.
    pub issuer: String,
}

fn err(reason: impl Into<String>) -> SigningError {
    SigningError::Certificate {
        reason: format!("sigstore: {}", reason.into()),
    }
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, SigningError> {
    STANDARD
        .decode(text)
        .map_err(|e| err(format!("{what} is not base64: {e}")))
}

impl SigstorePolicy {
    /// Reads a `trusted_root.json` (Sigstore `TrustedRoot`, media type
    /// `application/vnd.dev.sigstore.trustedroot+json;version=0.1`). Only ECDSA P-256/P-384 and
    /// Ed25519 Rekor keys are used; others are skipped. Each CA and log key is trusted only
    /// within its `validFor` window.
    pub fn from_trusted_root(
        json: &[u8],
        identity: &str,
        issuer: &str,
    ) -> Result<Self, SigningError> {
        if json.len() > MAX_TRUSTED_ROOT_LEN {
            return Err(SigningError::TooLarge {
                what: "trusted root".into(),
                len: json.len(),
                max: MAX_TRUSTED_ROOT_LEN,
            });
        }
        let root: Value = serde_json::from_slice(json)
            .map_err(|e| err(format!("trusted root is not JSON: {e}")))?;
        let mut cas = Vec::new();
        for (i, ca) in root["certificateAuthorities"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let valid = ValidFor::read(&ca["validFor"], &format!("certificateAuthorities[{i}]"))?;
            for c in ca["certChain"]["certificates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let der = b64(c["rawBytes"].as_str().unwrap_or_default(), "CA certificate")?;
                cas.push((der, valid));
            }
        }
        let mut logs = Vec::new();
        for (i, log) in root["tlogs"].as_array().into_iter().flatten().enumerate() {
            let id = b64(log["logId"]["keyId"].as_str().unwrap_or_default(), "logId")?;
            let key = &log["publicKey"];
            let raw = b64(key["rawBytes"].as_str().unwrap_or_default(), "log key")?;
            if let Ok(verifying) = VerifyingKey::from_spki_der(&raw) {
                let valid = ValidFor::read(&key["validFor"], &format!("tlogs[{i}]"))?;
                logs.push((id, verifying, valid));
            }
        }
        if cas.is_empty() || logs.is_empty() {
            return Err(err(
                "the trusted root has no certificate authorities or no usable transparency-log keys",
            ));
        }
        Ok(SigstorePolicy {
            cas,
            logs,
            identity: identity.to_string(),
            issuer: issuer.to_string(),
        })
    }
}

/// Verifies the keyless material of `bundle`; returns the certificate's key to check the DSSE
/// signature with.
pub fn verify(
    policy: &SigstorePolicy,
    certificate: &[u8],
    tlog_entries: &[Value],
    bundle: &Bundle,
) -> Result<SigstoreSigner, SigningError> {
    let [signature] = bundle.signatures.as_slice() else {
        return Err(err(format!(
            "a keyless bundle carries exactly one DSSE signature (the one its transparency-log entry records); this one has {}",
            bundle.signatures.len()
        )));
    };
    let (_, leaf) =
        X509Certificate::from_der(certificate).map_err(|e| err(format!("bad certificate: {e}")))?;
    let (identity, issuer) = identity_of(&leaf)?;
    if identity != policy.identity {
        return Err(err(format!(
            "signed by {identity:?}, expected {:?}",
            policy.identity
        )));
    }
    if issuer != policy.issuer {
        return Err(err(format!(
            "identity issued by {issuer:?}, expected {:?}",
            policy.issuer
        )));
    }
    let validity = leaf.validity();
    let (from, to) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let mut reasons = Vec::new();
    for (i, entry) in tlog_entries.iter().enumerate() {
        let signed = Signed {
            payload: &bundle.payload,
            signature: &signature.sig,
            certificate,
        };
        // The certificate must chain to a CA that could issue when the log saw the signature.
        let chained = check_entry(policy, entry, &signed, from, to).and_then(|time| {
            let cas: Vec<Vec<u8>> = policy
                .cas
                .iter()
                .filter(|(_, valid)| valid.contains(time))
                .map(|(der, _)| der.clone())
                .collect();
            super::x509::verify_chain(&[certificate.to_vec()], &cas).map_err(|e| e.to_string())
        });
        match chained {
            Ok(chain) => {
                return Ok(SigstoreSigner {
                    key: chain.key,
                    identity,
                    issuer,
                });
            }
            Err(e) => reasons.push(format!("tlogEntries[{i}]: {e}")),
        }
    }
    Err(err(format!(
        "no valid transparency-log entry ({})",
        if reasons.is_empty() {
            "the bundle has none".to_string()
        } else {
            reasons.join("; ")
        }
    )))
}

fn identity_of(leaf: &X509Certificate<'_>) -> Result<(String, String), SigningError> {
    let mut identity = None;
    let mut issuer = None;
    for ext in leaf.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::RFC822Name(e) => identity = Some((*e).to_string()),
                        GeneralName::URI(u) => identity = Some((*u).to_string()),
                        _ => {}
                    }
                }
            }
            _ => match ext.oid.to_id_string().as_str() {
                // v2 issuer: a DER UTF8String.
                "1.3.6.1.4.1.57264.1.8" => {
                    if let Some((&0x0c, rest)) = ext.value.split_first()
                        && let Some((&len, s)) = rest.split_first()
                        && usize::from(len) == s.len()
                    {
                        issuer = Some(String::from_utf8_lossy(s).into_owned());
                    }
                }
                // v1 issuer: raw bytes.
                "1.3.6.1.4.1.57264.1.1" if issuer.is_none() => {
                    issuer = Some(String::from_utf8_lossy(ext.value).into_owned());
                }
                _ => {}
            },
        }
    }
    match (identity, issuer) {
        (Some(i), Some(s)) => Ok((i, s)),
        _ => Err(err(
            "the certificate has no SAN identity or no OIDC issuer extension; not a Fulcio certificate",
        )),
    }
}

/// What a log entry must record: this payload, signed with this signature by this certificate.
struct Signed<'a> {
    payload: &'a [u8],
    signature: &'a [u8],
    certificate: &'a [u8],
}

fn check_entry(
    policy: &SigstorePolicy,
    entry: &Value,
    signed: &Signed<'_>,
    from: i64,
    to: i64,
) -> Result<i64, String> {
    let num = |v: &Value| -> Option<i64> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_i64())
    };
    let log_id = STANDARD
        .decode(entry["logId"]["keyId"].as_str().unwrap_or_default())
        .map_err(|_| "logId is not base64")?;
    let time = num(&entry["integratedTime"]).ok_or("no integratedTime")?;
    let mut keys = policy
        .logs
        .iter()
        .filter(|(id, ..)| *id == log_id)
        .peekable();
    if keys.peek().is_none() {
        return Err("the entry's log is not in the trusted root".into());
    }
    let key = keys
        .find(|(.., valid)| valid.contains(time))
        .map(|(_, k, _)| k)
        .ok_or_else(|| format!("integrated at {time}, outside the log key's validFor window"))?;
    let index = num(&entry["logIndex"]).ok_or("no logIndex")?;
    let body_b64 = entry["canonicalizedBody"]
        .as_str()
        .ok_or("no canonicalizedBody")?;
    let set = STANDARD
        .decode(
            entry["inclusionPromise"]["signedEntryTimestamp"]
                .as_str()
                .unwrap_or_default(),
        )
        .map_err(|_| "no signedEntryTimestamp")?;
    // The SET signs the canonical JSON (sorted keys, no spaces) of these four members.
    let canonical = format!(
        "{{\"body\":{},\"integratedTime\":{time},\"logID\":\"{}\",\"logIndex\":{index}}}",
        Value::String(body_b64.to_string()),
        hex::encode(&log_id)
    );
    key.verify(canonical.as_bytes(), &set)
        .map_err(|_| "the signed entry timestamp does not verify with the log's key")?;
    if time < from || time > to {
        return Err(format!(
            "integrated at {time}, outside the certificate's validity ({from}..{to})"
        ));
    }
    let body: Value = serde_json::from_slice(
        &STANDARD
            .decode(body_b64)
            .map_err(|_| "body is not base64")?,
    )
    .map_err(|_| "body is not JSON")?;
    check_body(&body, signed)?;
    Ok(time)
}

/// Checks a `dsse` entry body: this payload's hash, and exactly one signature, ours, whose
/// verifier is our certificate (base64 of its PEM, as Rekor records it).
fn check_body(body: &Value, signed: &Signed<'_>) -> Result<(), String> {
    if body["kind"] != "dsse" {
        return Err(format!("entry kind {} is not dsse", body["kind"]));
    }
    let payload_hash = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        signed.payload,
    ));
    if body["spec"]["payloadHash"]["value"].as_str() != Some(payload_hash.as_str()) {
        return Err("the log entry records another payload".into());
    }
    let [logged] = body["spec"]["signatures"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    else {
        return Err("the log entry does not record exactly one signature".into());
    };
    let logged_sig = logged["signature"]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or("the log entry has no signature")?;
    if logged_sig != signed.signature {
        return Err("the log entry records another signature".into());
    }
    let verifier = logged["verifier"]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .and_then(|pem| String::from_utf8(pem).ok())
        .ok_or("the log entry has no verifier")?;
    let certs = super::x509::pem_certificates(&verifier, "log entry verifier")
        .map_err(|_| "the log entry's verifier is not a certificate")?;
    if !matches!(certs.as_slice(), [c] if c.as_slice() == signed.certificate) {
        return Err(
            "the log entry records another signer (its verifier is not this bundle's certificate)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aigis_crypto::sign::{SignAlg, SigningKey};
    use serde_json::json;

    use super::*;
    use crate::signing::bundle::{EnvelopeSignature, Material};

    const CERT: &[u8] = b"\x30\x03\x02\x01\x01";

    fn pem_b64(der: &[u8]) -> String {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der)
        );
        STANDARD.encode(pem)
    }

    fn body(sigs: &[(&[u8], &[u8])]) -> Value {
        let hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"payload",
        ));
        json!({"kind": "dsse", "apiVersion": "0.0.1", "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hash},
            "signatures": sigs.iter().map(|(sig, cert)| json!({
                "signature": STANDARD.encode(sig), "verifier": pem_b64(cert),
            })).collect::<Vec<_>>(),
        }})
    }

    const SIGNED: Signed<'static> = Signed {
        payload: b"payload",
        signature: b"sig",
        certificate: CERT,
    };

    #[test]
    fn log_body_must_name_our_signature_and_certificate() {
        check_body(&body(&[(b"sig", CERT)]), &SIGNED).unwrap();
        let e = check_body(&body(&[(b"other", CERT)]), &SIGNED).unwrap_err();
        assert!(e.contains("another signature"), "{e}");
        let e = check_body(&body(&[(b"sig", b"\x30\x03\x02\x01\x02")]), &SIGNED).unwrap_err();
        assert!(e.contains("another signer"), "{e}");
        let e = check_body(&body(&[(b"sig", CERT), (b"sig2", CERT)]), &SIGNED).unwrap_err();
        assert!(e.contains("exactly one signature"), "{e}");
    }

    #[test]
    fn trusted_root_windows_are_read_and_bound_what_they_trust() {
        let range =
            serde_json::json!({"start": "2021-03-07T03:20:29.000Z", "end": "2022-12-31T23:59:59Z"});
        let v = ValidFor::read(&range, "tlogs[0]").unwrap();
        assert!(v.contains(1_615_087_229) && v.contains(1_672_531_199));
        assert!(!v.contains(1_615_087_228) && !v.contains(1_672_531_200));
        let open =
            ValidFor::read(&serde_json::json!({"start": "2022-04-13T20:06:15Z"}), "x").unwrap();
        assert!(open.contains(i64::MAX) && !open.contains(0));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"start": "yesterday"}),
            Value::Null,
        ] {
            let e = ValidFor::read(&bad, "certificateAuthorities[1]")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("certificateAuthorities[1]: validFor.start"),
                "{e}"
            );
        }
        // A root whose only log key has no window is refused, not trusted for all time.
        let log = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
        let spki = STANDARD.encode(log.verifying_key().to_spki_der());
        let mut root = serde_json::json!({
            "certificateAuthorities": [{"certChain": {"certificates": [{"rawBytes": STANDARD.encode(CERT)}]},
                                         "validFor": {"start": "2022-04-13T20:06:15Z"}}],
            "tlogs": [{"logId": {"keyId": STANDARD.encode([1u8])}, "publicKey": {"rawBytes": spki}}],
        });
        let read = |root: &Value| {
            SigstorePolicy::from_trusted_root(&serde_json::to_vec(root).unwrap(), "a", "b")
        };
        assert!(
            read(&root)
                .unwrap_err()
                .to_string()
                .contains("tlogs[0]: validFor.start")
        );
        root["tlogs"][0]["publicKey"]["validFor"] =
            serde_json::json!({"start": "2021-01-12T11:53:27Z"});
        let policy = read(&root).unwrap();
        assert_eq!(policy.logs[0].2.start, 1_610_452_407);
        assert_eq!(policy.cas[0].1.end, None);
    }

    #[test]
    fn keyless_bundle_with_two_signatures_is_refused() {
        let log = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
        let policy = SigstorePolicy {
            cas: vec![(CERT.to_vec(), ValidFor::ALWAYS)],
            logs: vec![(vec![1], log.verifying_key().clone(), ValidFor::ALWAYS)],
            identity: "a@example.com".into(),
            issuer: "https://issuer.example".into(),
        };
        let sig = |s: &[u8]| EnvelopeSignature {
            keyid: String::new(),
            sig: s.to_vec(),
        };
        let bundle = Bundle {
            material: Material::Sigstore {
                certificate: CERT.to_vec(),
                tlog_entries: Vec::new(),
            },
            payload_type: super::super::statement::PAYLOAD_TYPE.into(),
            payload: b"payload".to_vec(),
            signatures: vec![sig(b"logged"), sig(b"verifies")],
        };
        let e = verify(&policy, CERT, &[], &bundle).unwrap_err().to_string();
        assert!(e.contains("exactly one DSSE signature"), "{e}");
    }
}
