//! `aigis scan`: find malicious code in model files before anyone loads them.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_report::{Report, Severity};
use clap::ValueEnum;

/// Scan model files (PyTorch, pickle, joblib, NumPy, zip/tar/7z archives and compressed
/// wrappers) for code that runs when they are loaded.
///
/// Every file and archive member is recognised by its content, never by its extension, and
/// scanned recursively. Pickles are analysed without being loaded: every imported callable is
/// checked against an allowlist of names that normal PyTorch, NumPy, scikit-learn and
/// transformers files use. Known-dangerous callables (os.system, eval, subprocess, …) are
/// critical; anything else that is called is high, anything only imported is medium. Archive
/// tricks (zip headers that disagree, CRC and flag tricks, hidden or overlapping entries, path
/// traversal, links) are reported too. Multi-GB PyTorch checkpoints are scanned by reading
/// only their pickles, never the tensor data.
///
/// Exit codes: 0 nothing at or above --fail-on and everything scanned; 1 a finding at or above
/// --fail-on; 2 something could not be scanned (an encrypted member, a limit hit, an unreadable
/// file). Limits fail closed: a zip bomb is "not scanned" (2), never "clean".
///
/// Examples:
///
///   aigis scan pytorch_model.bin
///
///   aigis scan ./models --jobs 4 --format sarif > scan.sarif
///
///   aigis scan model.joblib --fail-on medium
///
///   aigis scan -i key.txt model.pt.age       (scans the plaintext, never written to disk)
///
/// Encrypted models: an age file (binary) is scanned through a decrypting reader when its
/// identity is given with -i; without one it is "not scanned" (2), never clean.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Files or directories to scan (directories are walked; symbolic links out of the tree
    /// are not followed and are reported as not scanned).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Exit 1 when a finding is at or above this severity: critical, high, medium, low, info.
    #[arg(long, default_value = "high")]
    fail_on: Severity,
    /// Files scanned in parallel (0: one per CPU core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Age identity file for encrypted models (repeatable).
    #[arg(short, long = "identity", value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// The passphrase of encrypted identity files, from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    identity_passphrase_file: Option<PathBuf>,
}

/// Report formats.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Human-readable table.
    Table,
    /// JSON (aigis report document).
    Json,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
}

/// Runs the scan and prints the report.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut identities = Vec::new();
    for f in &args.identities {
        identities.extend(crate::crypt_io::load_identities(
            f,
            args.identity_passphrase_file.as_deref(),
            aigis_crypto::age::DEFAULT_MAX_LOG_N,
        )?);
    }
    let (mut files, skipped) = aigis_artifact::scan::collect_files(&args.paths);
    let encrypted: Vec<PathBuf> = if identities.is_empty() {
        Vec::new()
    } else {
        let (age, plain) = files.into_iter().partition(|f| is_age(f));
        files = plain;
        age
    };
    // Worth a bar: a folder, several files, or files large enough to take a while.
    let long = args.paths.iter().any(|p| p.is_dir())
        || files.len() + encrypted.len() > 1
        || files
            .iter()
            .chain(&encrypted)
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            > 64 << 20;
    let bar = if long {
        crate::progress::bar(
            (files.len() + encrypted.len()) as u64,
            "{spinner} {bar:40} {pos}/{len} files {elapsed}",
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let mut outcomes = aigis_artifact::scan::scan_files(&files, args.jobs, &tick);
    outcomes.extend(encrypted.iter().map(|f| {
        tick();
        scan_encrypted(f, &identities)
    }));
    bar.finish_and_clear();
    let mut report = Report::new("aigis scan", env!("CARGO_PKG_VERSION"));
    for (id, text) in aigis_artifact::rules::RULES {
        report.describe_rule(*id, *text);
    }
    for n in skipped {
        report.add_not_scanned(n);
    }
    for o in outcomes {
        for f in o.findings {
            report.add(f);
        }
        for n in o.not_scanned {
            report.add_not_scanned(n);
        }
    }
    let format = match args.format {
        Format::Table => aigis_report::Format::Table,
        Format::Json => aigis_report::Format::Json,
        Format::Sarif => aigis_report::Format::Sarif,
    };
    report.render(format, &mut std::io::stdout().lock())?;
    Ok(ExitCode::from(
        u8::try_from(report.exit_code(args.fail_on)).unwrap_or(2),
    ))
}

/// True for a binary age file.
fn is_age(path: &std::path::Path) -> bool {
    let mut head = [0u8; 22];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == *b"age-encryption.org/v1\n"
}

/// Scans an age file's plaintext through a decrypting reader (only the chunks the parsers
/// touch are decrypted; nothing is written to disk).
fn scan_encrypted(
    path: &std::path::Path,
    identities: &[aigis_crypto::age::Identity],
) -> aigis_artifact::Outcome {
    use aigis_artifact::{Input, Origin, Outcome};
    let display = path.display().to_string();
    let origin = Origin::file(display.clone());
    let reader = std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            aigis_crypto::age::SeekableReader::new(identities, f).map_err(|e| e.to_string())
        });
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => {
            let mut out = Outcome::default();
            out.not_scanned
                .push(origin.not_scanned(format!("cannot decrypt: {e}")));
            return out;
        }
    };
    let len = reader.len();
    let mut input = Input {
        source: &mut reader,
        len,
        origin,
    };
    let name = display.strip_suffix(".age").unwrap_or(&display).to_owned();
    aigis_artifact::scan::scan_source(&mut input, &name)
}
