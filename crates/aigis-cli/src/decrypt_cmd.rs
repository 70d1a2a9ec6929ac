//! `aigis decrypt`: age decryption with age's flags.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_crypto::age::{self, Identity, ScryptIdentity};

use crate::crypt_io::{self, Output};

/// Decrypt an age file (binary or ASCII-armored, detected) made by aigis, age or rage.
///
/// Identities (-i, repeatable, mixed types) are age identity files: AGE-SECRET-KEY-1… and
/// AGE-SECRET-KEY-PQ-1… lines, # comments. A passphrase-protected identity file (itself an age
/// file) is unlocked with a prompt or --identity-passphrase-file. Without -i the file is taken
/// to be passphrase-encrypted.
///
/// With -o, plaintext is written to a temporary file and renamed only after the whole file
/// authenticated: a tampered or truncated file never leaves partial plaintext behind. On stdout
/// that is impossible: chunks that authenticated before the failure have already been written,
/// and the exit code is non-zero.
///
/// Exit codes: 0 decrypted; 1 the file did not decrypt (not for these identities or this
/// passphrase, altered, truncated, or not an age file); 2 could not try (unreadable input or
/// identity, unwritable output, bad arguments).
///
/// Examples:
///   aigis decrypt -i key.txt -o model.safetensors model.safetensors.age
///   aigis decrypt --passphrase-file pass.txt backup.age > backup.tar
#[derive(clap::Args)]
pub struct Args {
    /// Identity file (repeatable).
    #[arg(short, long = "identity", value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// The file's passphrase, from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// The passphrase of encrypted identity files, from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    identity_passphrase_file: Option<PathBuf>,
    /// Highest scrypt work factor (log2 N) accepted; higher files are refused unread.
    #[arg(long, value_name = "LOG2N", default_value_t = age::DEFAULT_MAX_LOG_N)]
    max_work_factor: u8,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads for opening chunks (default: one per core, or RAYON_NUM_THREADS).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// File to decrypt (stdin when absent or '-').
    input: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    crypt_io::set_threads(args.threads)?;
    let mut identities = Vec::new();
    for f in &args.identities {
        identities.extend(crypt_io::load_identities(
            f,
            args.identity_passphrase_file.as_deref(),
            args.max_work_factor,
        )?);
    }
    if args.passphrase_file.is_some() || identities.is_empty() {
        let pass = crypt_io::passphrase(args.passphrase_file.as_deref(), "Passphrase: ", false)?;
        identities.push(Identity::Scrypt(ScryptIdentity::new(
            pass,
            args.max_work_factor,
        )));
    }
    let name = args
        .input
        .as_deref()
        .filter(|p| p.as_os_str() != "-")
        .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let input = crypt_io::open_input(args.input.as_deref())?;
    let decryptor = match age::Decryptor::new(&identities, input) {
        Ok(d) => d,
        Err(e) => return failed(&name, &e),
    };
    let mut output = Output::create(args.output.as_deref(), false, 0o600)?;
    if let Err(e) = decryptor.decrypt_to(&mut output) {
        // Dropped unfinished, the output's temporary file is removed.
        return failed(&name, &e);
    }
    output.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// Reports a file that did not decrypt (exit 1), or an error that kept it from being tried,
/// such as reading or writing (exit 2).
fn failed(name: &str, e: &age::Error) -> anyhow::Result<ExitCode> {
    let hint = match e.class() {
        age::FailureClass::Other => anyhow::bail!("decrypting {name}: {e}"),
        age::FailureClass::NoMatch => {
            "\nhint: pass the matching identity with -i (or the passphrase)"
        }
        age::FailureClass::Armor => {
            "\nhint: the ASCII armor was altered (line ends and surrounding whitespace are the only freedom)"
        }
        _ => "",
    };
    eprintln!("error: {name} did not decrypt: {e}{hint}");
    Ok(ExitCode::from(1))
}
