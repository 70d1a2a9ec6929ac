//! `aigis`: the security layer for AI infrastructure. This binary parses the command line,
//! dispatches to the library crates and renders their results; it holds no domain logic.

mod config_cmd;
mod digest_cmd;
mod gateway_cmd;
mod guard_cmd;
mod keygen_sign;
mod keys_cmd;
mod limits_cmd;
mod policy_cmd;
mod scan_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The security layer for AI infrastructure: one binary that puts zero trust in front of every
/// model, inspects what goes in and out, and proves what happened.
#[derive(Parser)]
#[command(name = "aigis", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the OpenAI-compatible gateway in front of your model providers.
    ///
    /// Without --config it runs the embedded quick-start config: plain HTTP on
    /// 127.0.0.1:8080, the built-in `echo` model, admin endpoints on 127.0.0.1:9090.
    ///
    /// Signals: SIGHUP reloads the config (a broken file is rejected and the running config
    /// keeps serving); SIGTERM/SIGINT stop accepting and drain in-flight streams.
    Gateway(gateway_cmd::Args),
    /// Work with config files.
    #[command(subcommand)]
    Config(config_cmd::Command),
    /// Create, list, revoke and rotate API keys (offline, in the store the config names).
    #[command(subcommand)]
    Keys(keys_cmd::Command),
    /// See a caller's usage of every limit; count prompt tokens as the gateway does.
    #[command(subcommand)]
    Limits(limits_cmd::Command),
    /// Explain authorization decisions offline.
    #[command(subcommand)]
    Policy(policy_cmd::Command),
    /// Detect prompt injection, jailbreaks, PII and secrets offline; evaluate and train the detector.
    #[command(subcommand)]
    Guard(guard_cmd::Command),
    // The about text and the long help come from `scan_cmd::Args`.
    Scan(scan_cmd::Args),
    /// Generate a key. With --sign ALG: a signing key (PKCS#8 PEM private key + SPKI PEM public
    /// key and its key id, the hex SHA-256 of the public key's SPKI DER).
    ///
    /// ALG: ed25519, p256, p384 (interop with existing tooling), mldsa65 (post-quantum) or
    /// mldsa65-ed25519 (composite: both must verify; the recommended choice).
    ///
    /// Examples:
    ///   aigis keygen --sign mldsa65-ed25519 -o signing.key     (writes signing.key, signing.key.pub)
    ///   aigis keygen --sign ed25519 > ed.key
    Keygen(KeygenArgs),
    /// Hash a file tree into a canonical manifest (sorted paths, sizes, digests).
    ///
    /// Files are hashed in parallel and streamed. Symlinks inside the tree are never followed:
    /// they are an error unless --record-symlinks; FIFOs, sockets and devices are an error.
    ///
    /// Exit codes: 0 = manifest written, 2 = could not hash (unreadable file, symlink,
    /// special file, non-UTF-8 name).
    ///
    /// Examples:
    ///   aigis digest ./my-model -o manifest.json
    ///   aigis digest --algo blake3 --format table model.safetensors
    Digest(digest_cmd::Args),
}

/// `aigis keygen` (signing keys; age identities are added by the age command).
#[derive(clap::Args)]
struct KeygenArgs {
    /// Generate a signing key of this algorithm: ed25519, p256, p384, mldsa65, mldsa65-ed25519.
    #[arg(long, value_name = "ALG", required = true)]
    sign: Option<aigis_crypto::sign::SignAlg>,
    /// Write the private key to FILE (mode 0600, never overwritten) and the public key to FILE.pub.
    #[arg(short, long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

/// Output format of commands that report.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Human-readable.
    Table,
    /// JSON.
    Json,
}

/// The quick-start config, used when `--config` is not given.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../examples/quickstart.toml");

/// Loads `path`, or the embedded quick start (paths relative to the current folder).
pub fn load_config(
    path: Option<&std::path::Path>,
    strict: bool,
) -> anyhow::Result<aigis_gateway::config::Loaded> {
    use aigis_gateway::config;
    Ok(match path {
        Some(p) => config::load(p, strict)?,
        None => {
            config::parse(EMBEDDED_CONFIG, std::path::Path::new("."), strict).map_err(|errors| {
                config::ConfigError {
                    file: "<embedded quickstart>".into(),
                    errors,
                }
            })?
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gateway(args) => gateway_cmd::run(&args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Keys(cmd) => keys_cmd::run(cmd),
        Command::Limits(cmd) => limits_cmd::run(cmd),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Guard(cmd) => guard_cmd::run(cmd),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Keygen(args) => match args.sign {
            Some(alg) => keygen_sign::run(alg, args.output.as_deref()),
            None => Err(anyhow::anyhow!("keygen needs --sign ALG")),
        },
        Command::Digest(args) => digest_cmd::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
