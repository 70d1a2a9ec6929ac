//! Verifying an OMS signature: who signed (key, certificate chain, post-quantum policy), that
//! the statement is well formed, and that the model on disk is exactly what was signed.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use aigis_crypto::sign::VerifyingKey;

use super::bundle::{Bundle, Material, key_hint};
use super::hashing::{self, HashOptions};
use super::statement::{Method, ModelManifest, PAYLOAD_TYPE};
use super::x509;
use super::{Problem, SigningError};

/// Who the verifier trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Public keys; each must have a valid signature in the envelope.
    Keys(Vec<VerifyingKey>),
    /// Trusted CA certificates (DER) for the certificate method.
    Certificates(Vec<Vec<u8>>),
    /// Sigstore keyless: a trusted root (Fulcio CAs, Rekor keys) and the expected signer.
    Sigstore(super::sigstore::SigstorePolicy),
}

/// Verification options (model_signing's CLI flags, plus aigis policy).
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Extra paths to ignore (absolute, or relative to the current directory or the model).
    pub ignore_paths: Vec<PathBuf>,
    /// Ignore `.git`, `.gitattributes`, `.github`, `.gitignore` (default true).
    pub ignore_git_paths: bool,
    /// Hash only the files the signature lists; other files are not reported.
    pub ignore_unsigned_files: bool,
    /// The signature file (ignored when it lies inside the model directory).
    pub signature_path: Option<PathBuf>,
    /// Require a valid post-quantum (ML-DSA-65 or composite) signature from a trusted key.
    pub require_pq: bool,
    /// Worker threads.
    pub threads: Option<usize>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            ignore_unsigned_files: false,
            signature_path: None,
            require_pq: false,
            threads: None,
        }
    }
}

/// A signer whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Algorithm name (`p256`, `mldsa65-ed25519`, …).
    pub alg: String,
    /// aigis key id (SHA-256 of the SPKI DER).
    pub key_id: String,
    /// Certificate subject, for the certificate method.
    pub subject: Option<String>,
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verified manifest.
    pub manifest: ModelManifest,
    /// The subject digest (SHA-256 over the resource digests).
    pub root_digest: String,
    /// Signers whose signatures verified.
    pub signers: Vec<Signer>,
    /// Things that verified but deserve attention (e.g. empty files a shard signature cannot
    /// cover).
    pub warnings: Vec<String>,
}

/// The verified payload: a proof that the envelope was checked, only built here.
pub struct SignedStatement {
    manifest: ModelManifest,
    signers: Vec<Signer>,
}

impl SignedStatement {
    /// The verified manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Who signed.
    pub fn signers(&self) -> &[Signer] {
        &self.signers
    }
}

/// Checks the bundle's signatures against `trust` and parses the statement.
pub fn verify_bundle(
    bundle: &Bundle,
    trust: &Trust,
    require_pq: bool,
) -> Result<SignedStatement, SigningError> {
    if bundle.payload_type != PAYLOAD_TYPE {
        return Err(SigningError::PayloadType {
            found: bundle.payload_type.clone(),
        });
    }
    let signers = match (trust, &bundle.material) {
        (
            Trust::Sigstore(policy),
            Material::Sigstore {
                certificate,
                tlog_entries,
            },
        ) => {
            // sigstore::verify admits exactly one signature, the one the log entry records.
            let leaf = super::sigstore::verify(policy, certificate, tlog_entries, bundle)?;
            let signer = verify_one(bundle, &leaf.key).ok_or_else(|| SigningError::BadSignature {
                detail: format!("no DSSE signature verifies with the key of the Sigstore certificate for {:?}", leaf.identity),
            })?;
            vec![Signer {
                subject: Some(format!("{} (issuer {})", leaf.identity, leaf.issuer)),
                ..signer
            }]
        }
        (_, Material::Sigstore { tlog_entries, .. }) => {
            return Err(SigningError::Unsupported {
                what: format!(
                    "Sigstore keyless signature (Fulcio certificate, {} transparency-log entries): verify it with `aigis verify sigstore --trusted-root trusted_root.json --identity ... --identity-provider ...`",
                    tlog_entries.len()
                ),
            });
        }
        (Trust::Sigstore(_), _) => {
            return Err(SigningError::Certificate {
                reason: "the bundle is not a Sigstore keyless signature (no Fulcio certificate); use `aigis verify key` or `aigis verify certificate`".into(),
            });
        }
        (Trust::Keys(keys), material) => verify_with_keys(bundle, keys, material)?,
        (Trust::Certificates(anchors), Material::Chain(chain)) => {
            let verified = x509::verify_chain(chain, anchors)?;
            let signer =
                verify_one(bundle, &verified.key).ok_or_else(|| SigningError::BadSignature {
                    detail: format!(
                        "no DSSE signature verifies with the key of certificate {:?}",
                        verified.subject
                    ),
                })?;
            vec![Signer {
                subject: Some(verified.subject),
                ..signer
            }]
        }
        (Trust::Certificates(_), Material::PublicKey { .. }) => {
            return Err(SigningError::Certificate {
                reason: "the bundle was signed with a key, not a certificate; verify with `aigis verify key --public-key`".into(),
            });
        }
    };
    if require_pq && !signers.iter().any(|s| is_pq(&s.alg)) {
        return Err(SigningError::PqRequired {
            found: signers
                .iter()
                .map(|s| s.alg.clone())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let manifest = ModelManifest::from_statement(&bundle.payload)?;
    Ok(SignedStatement { manifest, signers })
}

fn is_pq(alg: &str) -> bool {
    alg.parse::<aigis_crypto::sign::SignAlg>()
        .is_ok_and(aigis_crypto::sign::SignAlg::is_post_quantum)
}

fn verify_with_keys(
    bundle: &Bundle,
    keys: &[VerifyingKey],
    material: &Material,
) -> Result<Vec<Signer>, SigningError> {
    if keys.is_empty() {
        return Err(SigningError::Key {
            path: None,
            reason: "no public key given".into(),
        });
    }
    let mut signers = Vec::new();
    for key in keys {
        match verify_one(bundle, key) {
            Some(signer) => signers.push(signer),
            None => return Err(mismatch_or_bad(key, keys, material)),
        }
    }
    Ok(signers)
}

/// Why `key` verified no signature: the bundle names another key (its hint or embedded key),
/// or the signature does not verify (tampered payload or signature).
fn mismatch_or_bad(key: &VerifyingKey, keys: &[VerifyingKey], material: &Material) -> SigningError {
    let ours = keys.iter().map(key_hint).collect::<Vec<_>>().join(", ");
    if let Material::PublicKey { hint, raw_pem } = material {
        if let Some(h) = hint
            && *h != key_hint(key)
            && !keys.iter().any(|k| key_hint(k) == *h)
        {
            return SigningError::KeyMismatch {
                expected: h.clone(),
                actual: ours,
            };
        }
        if let Some(embedded) = raw_pem
            .as_deref()
            .and_then(|p| VerifyingKey::from_pem(p).ok())
            && !keys.contains(&embedded)
        {
            return SigningError::KeyMismatch {
                expected: key_hint(&embedded),
                actual: ours,
            };
        }
    }
    SigningError::BadSignature {
        detail: format!(
            "no DSSE signature verifies with the {} key {} (the payload or signature was changed after signing)",
            key.alg(),
            key.key_id()
        ),
    }
}

/// Finds a signature made by `key`: one whose keyid is empty or names the key.
fn verify_one(bundle: &Bundle, key: &VerifyingKey) -> Option<Signer> {
    let id = key.key_id();
    let pae = aigis_crypto::dsse::pae(&bundle.payload_type, &bundle.payload);
    let candidates = || {
        bundle
            .signatures
            .iter()
            .filter(|s| s.keyid.is_empty() || s.keyid == id)
    };
    let ok = candidates().any(|s| key.verify(&pae, &s.sig).is_ok()) || {
        let compat = pae_v02(&bundle.payload);
        candidates()
            .any(|s| key.verify(&compat, &s.sig).is_ok() || p384_sha256(key, &compat, &s.sig))
    };
    ok.then(|| Signer {
        alg: key.alg().name().to_string(),
        key_id: id,
        subject: None,
    })
}

/// model_signing 0.2 hashed with SHA-256 whatever the curve; its P-384 signatures verify only
/// that way (and only over [`pae_v02`]).
fn p384_sha256(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    key.alg() == aigis_crypto::sign::SignAlg::EcdsaP384
        && aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA256_ASN1,
            key.raw(),
        )
        .verify(msg, sig)
        .is_ok()
}

/// The pre-authentication encoding model_signing 0.2 actually signed: a Python `str` format of
/// the payload `bytes` (`DSSEV1 <len> <type> <len> b'...'`, the payload as its Python `repr`).
/// Signatures made by 0.2.x only verify over this; model_signing ≥ 1.0 accepts them too.
fn pae_v02(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEV1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(python_bytes_repr(payload).as_bytes());
    out
}

/// Python's `repr(bytes)`.
fn python_bytes_repr(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c == quote as u8 => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => {
                s.push_str("\\x");
                s.push(char::from(HEX[usize::from(c >> 4)]));
                s.push(char::from(HEX[usize::from(c & 15)]));
            }
        }
    }
    s.push(quote);
    s
}

/// Verifies `model` against the signature in `bundle_bytes`.
pub fn verify_model(
    model: &Path,
    bundle_bytes: &[u8],
    trust: &Trust,
    opts: &VerifyOptions,
) -> Result<Verified, SigningError> {
    verify_model_with_progress(model, bundle_bytes, trust, opts, &|_| {})
}

/// [`verify_model`], calling `progress` with the number of bytes hashed as hashing goes on
/// (from several threads).
pub fn verify_model_with_progress(
    model: &Path,
    bundle_bytes: &[u8],
    trust: &Trust,
    opts: &VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verified, SigningError> {
    let bundle = Bundle::parse(bundle_bytes)?;
    let signed = verify_bundle(&bundle, trust, opts.require_pq)?;
    let expected = signed.manifest;
    let mut ser = expected.serialization.clone();
    let mut ignore = hashing::ignore_list(
        model,
        &opts.ignore_paths,
        opts.ignore_git_paths,
        opts.signature_path.as_deref(),
    )?;
    // The signer's ignore list applies too (model_signing does the same).
    ignore.extend(ser.ignore_paths.iter().cloned());
    ignore.sort();
    ignore.dedup();
    ser.ignore_paths = ignore;
    let only = opts.ignore_unsigned_files.then(|| signed_files(&expected));
    if only.as_ref().is_some_and(Vec::is_empty) {
        // Every file of any model would be "unsigned", hence ignored: nothing would be checked.
        return Err(SigningError::Statement {
            reason: "the signature covers no file; with --ignore-unsigned-files it would verify \
                     any model"
                .into(),
        });
    }
    let hopts = HashOptions {
        threads: opts.threads,
        only,
    };
    let listing = hashing::list(model, &ser, &hopts)?;
    let sizes: BTreeMap<String, u64> = listing
        .plan
        .files
        .iter()
        .map(|f| (f.path.clone(), f.size))
        .collect();
    let actual = hashing::hash_listing(model, &ser, listing, &hopts, progress)?;
    let (problems, warnings) = compare(&expected, &actual, &sizes, opts.ignore_unsigned_files);
    if !problems.is_empty() {
        return Err(SigningError::Mismatch { problems });
    }
    Ok(Verified {
        root_digest: expected.root_digest()?,
        manifest: expected,
        signers: signed.signers,
        warnings,
    })
}

/// The file paths a manifest covers.
fn signed_files(m: &ModelManifest) -> Vec<String> {
    let mut files: Vec<String> = m
        .resources
        .iter()
        .map(|r| match m.serialization.method {
            Method::Files => r.name.clone(),
            Method::Shards { .. } => super::statement::split_shard_name(&r.name).0.to_string(),
        })
        .chain(m.empty_files.iter().flatten().cloned())
        .filter(|p| p != ".")
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The differences between the signed manifest and the one hashed from disk; `sizes` are the
/// sizes of the files hashed.
fn compare(
    expected: &ModelManifest,
    actual: &ModelManifest,
    sizes: &BTreeMap<String, u64>,
    ignore_unsigned: bool,
) -> (Vec<Problem>, Vec<String>) {
    let empty_present: Vec<String> = sizes
        .iter()
        .filter(|(_, size)| **size == 0)
        .map(|(path, _)| path.clone())
        .collect();
    let exp: BTreeMap<&str, &str> = expected
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.digest.as_str()))
        .collect();
    let act: BTreeMap<&str, &str> = actual
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.digest.as_str()))
        .collect();
    let mut problems = Vec::new();
    for (name, digest) in &exp {
        match act.get(name) {
            None => problems.push(Problem::Missing {
                name: (*name).to_string(),
            }),
            Some(a) if a != digest => problems.push(Problem::HashMismatch {
                name: (*name).to_string(),
                expected: (*digest).to_string(),
                actual: (*a).to_string(),
            }),
            Some(_) => {}
        }
    }
    if !ignore_unsigned {
        for name in act.keys().filter(|n| !exp.contains_key(*n)) {
            problems.push(Problem::Extra {
                name: (*name).to_string(),
            });
        }
    }
    let mut warnings = Vec::new();
    if let Method::Shards { .. } = expected.serialization.method {
        problems.extend(size_changes(expected, sizes));
        match &expected.empty_files {
            Some(signed) => {
                for p in signed.iter().filter(|p| !empty_present.contains(p)) {
                    problems.push(Problem::Missing {
                        name: format!("{p} (empty file)"),
                    });
                }
                if !ignore_unsigned {
                    for p in empty_present.iter().filter(|p| !signed.contains(p)) {
                        problems.push(Problem::Extra {
                            name: format!("{p} (empty file)"),
                        });
                    }
                }
            }
            None => {
                for p in empty_present {
                    warnings.push(format!(
                        "{p}: empty file not covered by the signature (shard-mode signatures from model_signing 1.1.1 omit empty files, so adding or removing one cannot be detected; re-sign with aigis to cover them)"
                    ));
                }
            }
        }
    }
    (problems, warnings)
}

/// Signed files (in shards) whose size on disk is not the end of their last signed shard. Bytes
/// appended at a shard boundary leave every signed shard intact and only add shards; this is
/// what reports them when extra shards are not (`--ignore-unsigned-files`).
fn size_changes(expected: &ModelManifest, sizes: &BTreeMap<String, u64>) -> Vec<Problem> {
    let mut signed_end: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &expected.resources {
        if let (path, Some((_, end))) = super::statement::split_shard_name(&r.name) {
            let e = signed_end.entry(path).or_default();
            *e = (*e).max(end);
        }
    }
    signed_end
        .into_iter()
        .filter_map(|(path, signed)| {
            let actual = *sizes.get(path)?;
            (actual != signed).then(|| Problem::SizeChanged {
                name: path.to_string(),
                signed,
                actual,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) fn python_bytes_repr_for_test(b: &[u8]) -> String {
    python_bytes_repr(b)
}

/// Runs aigis-artifact's malicious-code scan over the model: clean means no finding at or above
/// `high` and every file scanned. Returns the number of files scanned.
pub fn check_scan(model: &Path) -> Result<usize, SigningError> {
    let (files, skipped) = aigis_artifact::scan::collect_files(&[model.to_path_buf()]);
    let outcomes = aigis_artifact::scan::scan_files(&files, 0, &|| {});
    let max = outcomes
        .iter()
        .filter_map(aigis_artifact::scan::max_severity)
        .max();
    let not_scanned = skipped.len() + outcomes.iter().map(|o| o.not_scanned.len()).sum::<usize>();
    match max {
        Some(s) if s >= aigis_report::Severity::High => Err(SigningError::ScanNotClean {
            verdict: format!("a {s} finding"),
        }),
        _ if not_scanned > 0 => Err(SigningError::ScanNotClean {
            verdict: format!("{not_scanned} part(s) could not be scanned"),
        }),
        _ => Ok(files.len()),
    }
}

/// What a deployment requires of a model before serving it (the gateway's
/// `[routes.model_check]`): a valid OMS signature over every file, from `trust`, and
/// optionally a clean malicious-code scan.
#[derive(Debug, Clone)]
pub struct ModelRequirement<'a> {
    /// The model directory (or file).
    pub model: &'a Path,
    /// Its signature bundle (ignored when it lies inside the model directory).
    pub signature: &'a Path,
    /// Who must have signed.
    pub trust: &'a Trust,
    /// Require a valid post-quantum signature too.
    pub require_pq: bool,
    /// Also require [`check_scan`] to pass.
    pub scan: bool,
}

/// Checks `req`: the signature verifies over every file (none missing, none added) and, when
/// asked, the scan is clean. Returns a one-line summary (resources, subject digest, signers,
/// files scanned).
///
/// # Errors
/// The first requirement that failed: an unreadable or oversized signature, a verification
/// failure naming every differing file, or an unclean scan.
pub fn check_model(req: &ModelRequirement<'_>) -> Result<String, SigningError> {
    let io = |source| SigningError::Io {
        path: req.signature.to_path_buf(),
        source,
    };
    let too_large = |len: u64| SigningError::TooLarge {
        what: format!("signature bundle {}", req.signature.display()),
        len: usize::try_from(len).unwrap_or(usize::MAX),
        max: super::bundle::MAX_BUNDLE_LEN,
    };
    let max = super::bundle::MAX_BUNDLE_LEN as u64;
    let file = std::fs::File::open(req.signature).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > max {
        return Err(too_large(len));
    }
    // At most one byte past the limit even if the file grew since (or is not a regular file).
    let mut bundle = Vec::new();
    file.take(max + 1).read_to_end(&mut bundle).map_err(io)?;
    if bundle.len() as u64 > max {
        return Err(too_large(bundle.len() as u64));
    }
    let opts = VerifyOptions {
        signature_path: Some(req.signature.to_path_buf()),
        require_pq: req.require_pq,
        ..VerifyOptions::default()
    };
    let verified = verify_model(req.model, &bundle, req.trust, &opts)?;
    let signers: Vec<String> = verified
        .signers
        .iter()
        .map(|s| format!("{} key {}", s.alg, s.key_id))
        .collect();
    let mut summary = format!(
        "signature verified: {} resources, subject digest sha256:{}, signed by {}",
        verified.manifest.resources.len(),
        verified.root_digest,
        signers.join(", ")
    );
    if req.scan {
        let scanned = check_scan(req.model)?;
        summary = format!("{summary}; scan clean ({scanned} files)");
    }
    Ok(summary)
}
