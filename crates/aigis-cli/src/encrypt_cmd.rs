//! `aigis encrypt`: age encryption with age's flags.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_crypto::age::{self, EncryptOptions, Recipient, ScryptRecipient};
use anyhow::{Context, bail};

use crate::crypt_io::{self, Output};

/// Encrypt a file to recipients or a passphrase (the age v1 format; `age`/`rage` decrypt it).
///
/// Recipients: age1… (X25519) and age1pq1… (ML-KEM-768 + X25519 hybrid post-quantum; stock
/// age >= 1.3 decrypts it). Mixing both kinds is refused unless --allow-mixed-pq: the file
/// would only be as strong as its classical key. A passphrase (-p) must be the only recipient.
///
/// Reads IN (or stdin) and writes -o OUT (or stdout). OUT is written to a temporary file and
/// renamed only on success.
///
/// Exit codes: 0 encrypted; 2 could not (a bad recipient, an unreadable input, an unwritable
/// output).
///
/// Examples:
///   aigis encrypt -r age1pq1… -o model.safetensors.age model.safetensors
///   aigis encrypt -R team-recipients.txt -a < notes.txt > notes.txt.age
///   aigis encrypt -p --passphrase-file pass.txt -o backup.age backup.tar
#[derive(clap::Args)]
pub struct Args {
    /// Encrypt to RECIPIENT (repeatable).
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// Encrypt to every recipient listed in FILE (one per line, # comments; repeatable).
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipients_files: Vec<PathBuf>,
    /// Encrypt with a passphrase (asked on the terminal unless --passphrase-file).
    #[arg(short, long)]
    passphrase: bool,
    /// Read the passphrase from the first line of FILE (implies -p).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// scrypt work factor as log2(N) for -p (minimum 18, age's default).
    #[arg(long, value_name = "LOG2N", default_value_t = age::DEFAULT_LOG_N)]
    work_factor: u8,
    /// Write ASCII armor (PEM) instead of binary.
    #[arg(short, long)]
    armor: bool,
    /// Allow post-quantum and classical recipients in the same file.
    #[arg(long)]
    allow_mixed_pq: bool,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads for sealing chunks (default: one per core, or RAYON_NUM_THREADS).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// File to encrypt (stdin when absent or '-').
    input: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    crypt_io::set_threads(args.threads)?;
    let mut recipients = Vec::new();
    for r in &args.recipients {
        recipients.push(Recipient::parse(r)?);
    }
    for f in &args.recipients_files {
        let text = crypt_io::read_text(f, age::MAX_KEY_FILE_LEN, "recipients file")?;
        recipients
            .extend(Recipient::parse_file(&text).with_context(|| format!("in {}", f.display()))?);
    }
    if args.passphrase || args.passphrase_file.is_some() {
        if !recipients.is_empty() {
            bail!(
                "a passphrase cannot be combined with recipients (-r/-R): it must be the only one"
            );
        }
        let pass = crypt_io::passphrase(args.passphrase_file.as_deref(), "Passphrase: ", true)?;
        recipients.push(Recipient::Scrypt(ScryptRecipient::new(
            pass,
            args.work_factor,
        )?));
    }
    if recipients.is_empty() {
        bail!("no recipients: give -r RECIPIENT, -R FILE or -p");
    }
    let options = EncryptOptions {
        armor: args.armor,
        allow_mixed_pq: args.allow_mixed_pq,
    };
    let input = crypt_io::open_input(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref(), !args.armor, 0o644)?;
    age::encrypt(&recipients, &options, input, &mut output).with_context(|| {
        let from = args
            .input
            .as_deref()
            .filter(|p| p.as_os_str() != "-")
            .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
        let to = args
            .output
            .as_deref()
            .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
        format!("encrypting {from} to {to}")
    })?;
    output.commit()?;
    Ok(ExitCode::SUCCESS)
}
