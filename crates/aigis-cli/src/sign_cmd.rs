//! `aigis sign key|certificate MODEL`: OpenSSF model signing (OMS), compatible with
//! `model_signing` 1.1.x, with an optional post-quantum signature in the same envelope.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_supply::signing::keys::load_signing_key;
use aigis_supply::signing::sign::is_oms_compatible;
use aigis_supply::signing::x509::pem_certificates;
use aigis_supply::signing::{HashType, Identity, Method, SignOptions, sign_model};
use anyhow::Context as _;

/// Sign a model directory (or a single model file) as OpenSSF Model Signing does: a Sigstore
/// bundle holding a DSSE envelope over an in-toto statement that lists every file with its
/// SHA-256. `model_signing verify key|certificate` verifies the result, and
/// `aigis verify` verifies model_signing's signatures.
///
/// Files are hashed in parallel (all cores); with --method shards, every 1 GB (--shard-size)
/// range of every file is hashed in parallel too, so one huge checkpoint keeps every core busy.
/// `.git`, `.gitattributes`, `.github`, `.gitignore` and the signature file itself are left out
/// (recorded in the signature, so the verifier leaves them out too).
///
/// Post-quantum profile (aigis extension): give a second --private-key made with
/// `aigis keygen --sign mldsa65-ed25519`; the same statement is then also signed with
/// ML-DSA-65+Ed25519 in the same envelope. model_signing still verifies the ECDSA signature;
/// `aigis verify --require-pq` demands the post-quantum one.
///
/// Exit codes: 0 signed; 2 could not sign (unreadable file, symlink, bad key).
///
/// Examples:
///
///   aigis sign key ./my-model --private-key ec.pem --signature my-model.sig
///
///   aigis sign key ./my-model --private-key ec.pem --private-key pq.key
///
///   aigis sign certificate ./my-model --private-key leaf.key --signing-certificate leaf.pem --certificate-chain int.pem
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    method: SignMethod,
}

/// The exit codes, repeated in each method's own `--help`.
const SIGN_EXIT_CODES: &str = "Exit codes: 0 signed; 2 could not sign (unreadable file, symlink, \
     bad key).";

#[derive(clap::Subcommand)]
enum SignMethod {
    /// Sign with private key(s); the bundle names the key by its hint (SHA-256 of its PEM).
    #[command(after_long_help = SIGN_EXIT_CODES)]
    Key {
        #[command(flatten)]
        common: Common,
    },
    /// Sign with a private key and its X.509 certificate; the bundle carries the chain.
    #[command(after_long_help = SIGN_EXIT_CODES)]
    Certificate {
        #[command(flatten)]
        common: Common,
        /// The signing certificate (PEM) for the first --private-key.
        #[arg(long, alias = "signing_certificate", value_name = "PEM")]
        signing_certificate: PathBuf,
        /// Intermediate certificates to include in the bundle (PEM, repeatable).
        #[arg(long, alias = "certificate_chain", value_name = "PEM")]
        certificate_chain: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The model directory or file.
    model: PathBuf,
    /// Private key (PEM: PKCS#8 or `EC PRIVATE KEY`). The first must be ECDSA P-256/P-384 for
    /// model_signing to verify it; a second (e.g. mldsa65-ed25519) adds a post-quantum
    /// signature.
    #[arg(long, alias = "private_key", value_name = "PEM", required = true)]
    private_key: Vec<PathBuf>,
    /// Where to write the signature bundle.
    #[arg(long, default_value = "model.sig", value_name = "FILE")]
    signature: PathBuf,
    /// Paths to leave out (inside the model; relative to the current directory or the model).
    #[arg(long, alias = "ignore_paths", value_name = "PATH")]
    ignore_paths: Vec<PathBuf>,
    /// Include .git, .gitattributes, .github and .gitignore.
    #[arg(long)]
    no_ignore_git_paths: bool,
    /// Follow symlinks that point to files inside the model directory.
    #[arg(long, alias = "allow_symlinks")]
    allow_symlinks: bool,
    /// files: one digest per file (model_signing's default); shards: one per --shard-size range.
    #[arg(long, value_enum, default_value = "files")]
    method: MethodArg,
    /// Shard size in bytes for --method shards.
    #[arg(long, default_value_t = 1_000_000_000, value_name = "BYTES")]
    shard_size: u64,
    /// Per-file hash: sha256 (every OMS verifier) or blake3 (files method only).
    #[arg(long, value_enum, default_value = "sha256")]
    hash: HashArg,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Files,
    Shards,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HashArg {
    Sha256,
    Blake3,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (common, identity) = match &args.method {
        SignMethod::Key { common } => (common, Identity::Key),
        SignMethod::Certificate {
            common,
            signing_certificate,
            certificate_chain,
        } => {
            let mut chain = Vec::new();
            for p in std::iter::once(signing_certificate).chain(certificate_chain) {
                let text = crate::crypt_io::read_text(
                    p,
                    crate::crypt_io::MAX_CERT_FILE,
                    "certificate file",
                )?;
                chain.extend(pem_certificates(&text, &p.display().to_string())?);
            }
            (common, Identity::Chain(chain))
        }
    };
    let keys = common
        .private_key
        .iter()
        .map(|p| load_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = keys.first()
        && !is_oms_compatible(first.alg())
    {
        eprintln!(
            "warning: the first key is {}; model_signing verifies only ECDSA P-256/P-384 signatures (put an ECDSA key first for interop)",
            first.alg()
        );
    }
    let key_refs: Vec<_> = keys.iter().collect();
    let opts = SignOptions {
        method: match common.method {
            MethodArg::Files => Method::Files,
            MethodArg::Shards => Method::Shards {
                shard_size: common.shard_size,
            },
        },
        hash_type: match common.hash {
            HashArg::Sha256 => HashType::Sha256,
            HashArg::Blake3 => HashType::Blake3,
        },
        ignore_paths: common.ignore_paths.clone(),
        ignore_git_paths: !common.no_ignore_git_paths,
        allow_symlinks: common.allow_symlinks,
        signature_path: Some(common.signature.clone()),
        threads: common.threads,
    };
    let bar = crate::progress::bytes();
    let bundle = sign_model(&common.model, &key_refs, identity, &opts, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    write_atomically(&common.signature, bundle.as_bytes())?;
    eprintln!(
        "signed {} -> {} ({})",
        common.model.display(),
        common.signature.display(),
        keys.iter()
            .map(|k| k.alg().name())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
