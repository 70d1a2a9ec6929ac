//! `aigis keygen`: age identities in age-keygen's layout, `-y` to print recipients, and
//! `--sign ALG` for signing keys (see `keygen_sign`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aigis_crypto::age::{Identity, PqIdentity, X25519Identity};
use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Generate an age identity (secret key), or print the recipients of an identity file.
///
/// Output uses age-keygen's layout, so `age`/`rage` read it unchanged:
///   # created: 2026-01-02T15:04:05Z
///   # public key: age1…
///   AGE-SECRET-KEY-1…
///
/// Examples:
///   aigis keygen -o key.txt                 X25519 (classical)
///   aigis keygen --pq -o key.txt            ML-KEM-768 + X25519 hybrid, safe against
///                                           "harvest now, decrypt later"
///   aigis keygen -y key.txt > recipients.txt
///
/// With --sign ALG it writes a signing key instead: a PKCS#8 PEM private key and an SPKI PEM
/// public key with its key id (the hex SHA-256 of the SPKI DER). ALG: ed25519, p256, p384
/// (interop with existing tooling), mldsa65 (post-quantum) or mldsa65-ed25519 (composite: both
/// halves must verify; the recommended choice).
///   aigis keygen --sign mldsa65-ed25519 -o signing.key   (writes signing.key, signing.key.pub)
///
/// Exit codes: 0 written; 2 could not (the output exists, an unreadable identity file).
#[derive(clap::Args)]
pub struct Args {
    /// Generate a hybrid post-quantum identity (age1pq1… recipient, needs age >= 1.3 to read).
    #[arg(long)]
    pq: bool,
    /// Write the identity to FILE (created with mode 0600; an existing file is not replaced).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the recipient (public key) of every identity in FILE instead of generating one.
    #[arg(short = 'y', value_name = "FILE", conflicts_with = "pq")]
    convert: Option<PathBuf>,
    /// Generate a signing key of this algorithm instead of an age identity.
    #[arg(long, value_name = "ALG", conflicts_with_all = ["pq", "convert"])]
    sign: Option<aigis_crypto::sign::SignAlg>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(alg) = args.sign {
        return crate::keygen_sign::run(alg, args.output.as_deref());
    }
    if let Some(file) = &args.convert {
        return print_recipients(file, args.output.as_deref());
    }
    let identity = if args.pq {
        Identity::Pq(PqIdentity::generate()?)
    } else {
        Identity::X25519(X25519Identity::generate()?)
    };
    let recipient = identity
        .to_recipient()?
        .context("a generated key has a recipient")?;
    let secret = match &identity {
        Identity::Pq(i) => i.to_bech32(),
        Identity::X25519(i) => i.to_bech32(),
        _ => bail!("unexpected identity type"),
    };
    let text = Zeroizing::new(format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        aigis_report::time::now_rfc3339(),
        secret.as_str()
    ));
    match &args.output {
        Some(path) => {
            write_secret_file(path, text.as_bytes())?;
            eprintln!("Public key: {recipient}");
        }
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("Public key: {recipient}");
            }
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_recipients(file: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let bytes = Zeroizing::new(crate::crypt_io::read_bounded(
        file,
        aigis_crypto::age::MAX_KEY_FILE_LEN,
        "identity file",
    )?);
    let text = crate::crypt_io::utf8_secret(&bytes).with_context(|| file.display().to_string())?;
    let identities =
        Identity::parse_file(&text).with_context(|| format!("in {}", file.display()))?;
    let mut out = String::new();
    for id in &identities {
        if let Some(r) = id.to_recipient()? {
            out.push_str(&r.to_string());
            out.push('\n');
        }
    }
    match output {
        Some(p) => {
            std::fs::write(p, out).with_context(|| format!("cannot write {}", p.display()))?;
        }
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| {
        format!(
            "cannot create {} (an existing key file is never overwritten)",
            path.display()
        )
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
