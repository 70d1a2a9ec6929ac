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
    let input = crypt_io::open_input(args.input.as_deref())?;
    let decryptor = age::Decryptor::new(&identities, input).map_err(explain)?;
    let mut output = Output::create(args.output.as_deref(), false, 0o600)?;
    decryptor.decrypt_to(&mut output).map_err(explain)?;
    output.commit()?;
    Ok(ExitCode::SUCCESS)
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(explain)")]
fn explain(e: age::Error) -> anyhow::Error {
    let hint = match e.class() {
        age::FailureClass::NoMatch => {
            "\nhint: pass the matching identity with -i (or the passphrase)"
        }
        age::FailureClass::Armor => {
            "\nhint: the ASCII armor was altered (line ends and surrounding whitespace are the only freedom)"
        }
        _ => "",
    };
    anyhow::anyhow!("{e}{hint}")
}
