//! `aigis verify key|certificate MODEL --signature SIG`: verify an OpenSSF model signature
//! (made by aigis or by `model_signing`), optionally requiring a post-quantum signature.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_crypto::dsse::MAX_ENVELOPE_LEN;
use aigis_supply::signing::bundle::MAX_BUNDLE_LEN;
use aigis_supply::signing::keys::load_verifying_key;
use aigis_supply::signing::sigstore::{MAX_TRUSTED_ROOT_LEN, SigstorePolicy};
use aigis_supply::signing::verify::check_scan;
use aigis_supply::signing::x509::pem_certificates;
use aigis_supply::signing::{
    Method, Problem, SigningError, Trust, Verified, VerifyOptions, provenance,
    verify_model_with_progress,
};
use serde_json::json;

use crate::Format;
use crate::crypt_io::read_bounded;

/// Verify that a model directory (or file) is exactly what an OpenSSF model signature says:
/// the signature is valid for the given key or certificate chain, and every file on disk
/// hashes to the signed digest, with no file missing and none added.
///
/// Reads bundles from aigis and from model_signing 0.2–1.1 (key and certificate methods, file
/// and shard serialization; shard_size written as 256.0 by model_signing 1.1.1 is accepted).
/// Sigstore keyless bundles verify offline with `aigis verify sigstore --trusted-root`.
///
/// Errors are precise: "hash mismatch for \"a/b.bin\"", "missing: ...", "extra: ...", "key
/// mismatch" (the bundle names another key), "certificate verification failed: ...".
///
/// Exit codes: 0 verified; 1 verification failed (tampered file or bundle, wrong key, untrusted
/// certificate, post-quantum signature required but absent); 2 could not verify (unreadable
/// file or key, bad arguments).
///
/// Examples:
///
///   aigis verify key ./my-model --signature model.sig --public-key ec.pub
///
///   aigis verify key ./my-model --signature model.sig --public-key ec.pub --public-key pq.pub --require-pq
///
///   aigis verify certificate ./my-model --signature model.sig --certificate-chain ca.pem
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    method: VerifyMethod,
}

/// The exit codes, repeated in each method's own `--help`.
const VERIFY_EXIT_CODES: &str = "Exit codes: 0 verified; 1 verification failed (tampered file or \
     bundle, wrong key, untrusted certificate, post-quantum signature required but absent); 2 \
     could not verify (unreadable file or key, bad arguments).";

#[derive(clap::Subcommand)]
enum VerifyMethod {
    /// Verify with public key(s): each given key must have a valid signature in the bundle.
    #[command(after_long_help = VERIFY_EXIT_CODES)]
    Key {
        #[command(flatten)]
        common: Common,
        /// Public key (PEM). Repeat to require several signers (e.g. ECDSA and ML-DSA-65+Ed25519).
        #[arg(long, alias = "public_key", value_name = "PEM", required = true)]
        public_key: Vec<PathBuf>,
    },
    /// Verify the bundle's certificate chain against trusted CA certificates.
    #[command(after_long_help = VERIFY_EXIT_CODES)]
    Certificate {
        #[command(flatten)]
        common: Common,
        /// Trusted CA certificates (PEM; repeatable, or several in one file).
        #[arg(long, alias = "certificate_chain", value_name = "PEM", required = true)]
        certificate_chain: Vec<PathBuf>,
    },
    /// Verify a Sigstore keyless signature offline against a Sigstore trusted root
    /// (Fulcio chain, signer identity and OIDC issuer, Rekor signed entry timestamp).
    #[command(after_long_help = VERIFY_EXIT_CODES)]
    Sigstore {
        #[command(flatten)]
        common: Common,
        /// Sigstore `trusted_root.json` (from Sigstore's TUF repository; the `sigstore` PyPI
        /// package ships a copy). Its freshness is not checked: no TUF update happens offline.
        #[arg(long, value_name = "JSON", required = true)]
        trusted_root: PathBuf,
        /// Expected signer identity (email or URI in the certificate).
        #[arg(long, required = true)]
        identity: String,
        /// Expected OIDC issuer (e.g. https://accounts.google.com).
        #[arg(long, alias = "identity_provider", required = true)]
        identity_provider: String,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The model directory or file.
    model: PathBuf,
    /// The signature bundle.
    #[arg(long, value_name = "FILE")]
    signature: PathBuf,
    /// Paths to ignore in addition to those the signature records.
    #[arg(long, alias = "ignore_paths", value_name = "PATH")]
    ignore_paths: Vec<PathBuf>,
    /// Do not ignore .git, .gitattributes, .github and .gitignore.
    #[arg(long)]
    no_ignore_git_paths: bool,
    /// Only check the files the signature lists; files it does not list are not reported.
    #[arg(long, alias = "ignore_unsigned_files")]
    ignore_unsigned_files: bool,
    /// Fail unless a post-quantum (ML-DSA-65 or ML-DSA-65+Ed25519) signature verifies.
    #[arg(long)]
    require_pq: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also require a clean `aigis scan` (nothing at or above high, every file scanned) and
    /// this provenance (DSSE-signed in-toto SLSA v1, from `aigis provenance record`) naming
    /// this model.
    #[arg(long, value_name = "FILE")]
    provenance: Option<PathBuf>,
    /// Key(s) that must have signed the provenance (default: the --public-key keys).
    #[arg(long, value_name = "PEM")]
    provenance_key: Vec<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (common, trust) = match &args.method {
        VerifyMethod::Key { common, public_key } => {
            let keys = public_key
                .iter()
                .map(|p| load_verifying_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            (common, Trust::Keys(keys))
        }
        VerifyMethod::Certificate {
            common,
            certificate_chain,
        } => (common, Trust::Certificates(read_certs(certificate_chain)?)),
        VerifyMethod::Sigstore {
            common,
            trusted_root,
            identity,
            identity_provider,
        } => {
            let root = read_bounded(trusted_root, MAX_TRUSTED_ROOT_LEN, "trusted root")?;
            let policy = SigstorePolicy::from_trusted_root(&root, identity, identity_provider)?;
            (common, Trust::Sigstore(policy))
        }
    };
    let bundle = read_bounded(&common.signature, MAX_BUNDLE_LEN, "signature bundle")?;
    let opts = VerifyOptions {
        ignore_paths: common.ignore_paths.clone(),
        ignore_git_paths: !common.no_ignore_git_paths,
        ignore_unsigned_files: common.ignore_unsigned_files,
        signature_path: Some(common.signature.clone()),
        require_pq: common.require_pq,
        threads: common.threads,
    };
    let bar = crate::progress::bytes();
    let mut outcome =
        verify_model_with_progress(&common.model, &bundle, &trust, &opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    // What the JSON report adds to the signature's result (the scan and provenance checks).
    let mut also = json!({});
    if let (Ok(_), Some(prov)) = (&outcome, &common.provenance) {
        let keys = if common.provenance_key.is_empty() {
            match &trust {
                Trust::Keys(k) => k.clone(),
                Trust::Certificates(_) | Trust::Sigstore(_) => {
                    anyhow::bail!(
                        "--provenance with the certificate or sigstore method needs --provenance-key"
                    )
                }
            }
        } else {
            common
                .provenance_key
                .iter()
                .map(|p| load_verifying_key(p))
                .collect::<Result<Vec<_>, _>>()?
        };
        let bytes = read_bounded(prov, MAX_ENVELOPE_LEN, "provenance")?;
        // Explicit --provenance-key: all must have signed. Defaulting to the signature keys:
        // any one of them is enough (the provenance may be signed by just the PQ key).
        let sets: Vec<Vec<_>> = if common.provenance_key.is_empty() {
            keys.iter().map(|k| vec![k.clone()]).collect()
        } else {
            vec![keys]
        };
        let bar = crate::progress::bytes();
        let checked = check_scan(&common.model).and_then(|scanned| {
            let mut last = None;
            for set in &sets {
                match provenance::verify(
                    &bytes,
                    set,
                    common.require_pq,
                    &common.model,
                    common.threads,
                    &|n| bar.inc(n),
                ) {
                    Ok(p) => return Ok((scanned, p)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or(SigningError::BadSignature {
                detail: "no provenance key".into(),
            }))
        });
        bar.finish_and_clear();
        match checked {
            Ok((scanned, p)) => {
                let builder = &p.statement["predicate"]["runDetails"]["builder"]["id"];
                if common.format == Format::Table {
                    println!(
                        "scan clean ({scanned} files); provenance verified: built by {builder}"
                    );
                }
                also = json!({
                    "scan": {"clean": true, "files": scanned},
                    "provenance": {"verified": true, "builder": builder, "key_ids": p.key_ids},
                });
            }
            Err(e) => outcome = Err(e),
        }
    }
    report(&common.model, common.format, outcome, also)
}

/// Reads every certificate of the given PEM files.
pub fn read_certs(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut certs = Vec::new();
    for p in paths {
        let text =
            crate::crypt_io::read_text(p, crate::crypt_io::MAX_CERT_FILE, "certificate file")?;
        certs.extend(pem_certificates(&text, &p.display().to_string())?);
    }
    Ok(certs)
}

/// Whether an error means "verification failed" (1) rather than "could not verify" (2). What
/// the walk finds planted in the model (a symlink, a FIFO or device, an unsafe name) is not in
/// what was signed: the model differs, so it fails.
pub fn is_failure(e: &SigningError) -> bool {
    use aigis_crypto::digest::DigestError;
    match e {
        SigningError::Digest(d) => matches!(
            d,
            DigestError::Symlink { .. }
                | DigestError::SpecialFile { .. }
                | DigestError::UnsafeName { .. }
        ),
        SigningError::Io { .. } | SigningError::Key { .. } | SigningError::Unsupported { .. } => {
            false
        }
        _ => true,
    }
}

/// Prints the outcome and chooses the exit code.
pub fn report(
    model: &std::path::Path,
    format: Format,
    outcome: Result<Verified, SigningError>,
    also: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok(v) => {
            print_verified(model, format, &v, also);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if is_failure(&e) => {
            match format {
                Format::Table => eprintln!("verification FAILED for {}: {e}", model.display()),
                Format::Json => {
                    let problems: Vec<_> = match &e {
                        SigningError::Mismatch { problems } => {
                            problems.iter().map(problem_json).collect()
                        }
                        _ => Vec::new(),
                    };
                    println!(
                        "{}",
                        json!({"verified": false, "model": model.display().to_string(), "error": e.to_string(), "problems": problems})
                    );
                }
            }
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn problem_json(p: &Problem) -> serde_json::Value {
    match p {
        Problem::HashMismatch {
            name,
            expected,
            actual,
        } => json!({"kind": "hash_mismatch", "name": name, "expected": expected, "actual": actual}),
        Problem::Missing { name } => json!({"kind": "missing", "name": name}),
        Problem::Extra { name } => json!({"kind": "extra", "name": name}),
        Problem::SizeChanged {
            name,
            signed,
            actual,
        } => json!({"kind": "size_changed", "name": name, "signed": signed, "actual": actual}),
    }
}

fn print_verified(model: &std::path::Path, format: Format, v: &Verified, also: serde_json::Value) {
    let method = match v.manifest.serialization.method {
        Method::Files => "files".to_string(),
        Method::Shards { shard_size } => format!("shards of {shard_size} bytes"),
    };
    match format {
        Format::Table => {
            println!(
                "verified: {} ({} resources, {method}, {}), subject digest sha256:{}",
                model.display(),
                v.manifest.resources.len(),
                v.manifest.serialization.hash_type.name(),
                v.root_digest
            );
            for s in &v.signers {
                println!(
                    "  signed by {} key {}{}",
                    s.alg,
                    s.key_id,
                    s.subject
                        .as_ref()
                        .map(|c| format!(" (certificate {c})"))
                        .unwrap_or_default()
                );
            }
            for w in &v.warnings {
                eprintln!("warning: {w}");
            }
        }
        Format::Json => {
            let mut out = json!({
                "verified": true,
                "model": model.display().to_string(),
                "subject_digest": v.root_digest,
                "method": method,
                "resources": v.manifest.resources.len(),
                "signers": v.signers.iter().map(|s| json!({"alg": s.alg, "key_id": s.key_id, "certificate_subject": s.subject})).collect::<Vec<_>>(),
                "warnings": v.warnings,
            });
            if let (Some(out), serde_json::Value::Object(also)) = (out.as_object_mut(), also) {
                out.extend(also);
            }
            println!("{out}");
        }
    }
}
