//! `aigis`: the security layer for AI infrastructure. This binary parses the command line,
//! dispatches to the library crates and renders their results; it holds no domain logic.
#![allow(
    rustdoc::bare_urls,
    reason = "doc comments here are clap's --help text, printed as written"
)]

mod audit_cmd;
mod config_cmd;
mod crypt_io;
mod decrypt_cmd;
mod deps_cmd;
mod digest_cmd;
mod encrypt_cmd;
mod gateway_cmd;
mod guard_cmd;
mod keygen_cmd;
mod keygen_sign;
mod keys_cmd;
mod limits_cmd;
mod policy_cmd;
mod progress;
mod provenance_cmd;
mod sbom_cmd;
mod scan_cmd;
mod sign_cmd;
mod verify_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: the gateway allocates and frees on every request
/// (hyper's buffers and headers, parsed bodies, audit events), and under load glibc spent
/// ~8% of the gateway's CPU in `malloc`/`free` and their bin consolidation (perf, session 9;
/// docs/BENCHMARKS.md). Built with `no_thp`: with transparent huge pages its arenas grew
/// the RSS with 1,000 stalled connections from 41 to 62 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The security layer for AI infrastructure: one binary that puts zero trust in front of every
/// model, inspects what goes in and out, and proves what happened.
#[derive(Parser)]
#[command(name = "aigis", version, propagate_version = true)]
struct Cli {
    /// No progress display, even on a terminal (progress is never drawn into pipes or logs).
    #[arg(long, global = true)]
    quiet: bool,
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
    ///
    /// Routes with `[routes.model_check]` serve only a self-hosted model whose OpenSSF
    /// signature (and scan) verifies, checked at start and at every reload; a failing route
    /// answers 503 `model_unverified` (docs/signing.md, "Gateway").
    ///
    /// Exit codes: 0 stopped by a signal after draining; 2 could not start (an invalid config,
    /// an address in use, unreadable TLS files).
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
    // The about text and the long help come from `keygen_cmd::Args` (a doc comment here would
    // replace them).
    Keygen(keygen_cmd::Args),
    // The about text and the long help come from `encrypt_cmd::Args`.
    Encrypt(encrypt_cmd::Args),
    // The about text and the long help come from `decrypt_cmd::Args`.
    Decrypt(decrypt_cmd::Args),
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
    // The about text and the long help come from `sign_cmd::Args`.
    Sign(sign_cmd::Args),
    // The about text and the long help come from `verify_cmd::Args`.
    Verify(verify_cmd::Args),
    // The about text and the long help come from `sbom_cmd::Args`.
    Sbom(sbom_cmd::Args),
    // The about text and the long help come from `provenance_cmd::Command`.
    #[command(subcommand)]
    Provenance(provenance_cmd::Command),
    // The about text and the long help come from `deps_cmd::Args`.
    Deps(deps_cmd::Args),
    /// The tamper-evident audit ledger: verify it, prove a request with an offline-verifiable
    /// receipt, export to a SIEM (JSON lines, OCSF, CEF), prune content.
    #[command(subcommand)]
    Audit(audit_cmd::Command),
}

/// Output format of commands that report.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
    if cli.quiet {
        progress::set_quiet();
    }
    let result = match cli.command {
        Command::Gateway(args) => gateway_cmd::run(&args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Keys(cmd) => keys_cmd::run(cmd),
        Command::Limits(cmd) => limits_cmd::run(cmd),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Guard(cmd) => guard_cmd::run(cmd),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Digest(args) => digest_cmd::run(&args),
        Command::Keygen(args) => keygen_cmd::run(&args),
        Command::Encrypt(args) => encrypt_cmd::run(&args),
        Command::Decrypt(args) => decrypt_cmd::run(&args),
        Command::Sign(args) => sign_cmd::run(&args),
        Command::Verify(args) => verify_cmd::run(&args),
        Command::Sbom(args) => sbom_cmd::run(&args),
        Command::Provenance(cmd) => provenance_cmd::run(&cmd),
        Command::Deps(args) => deps_cmd::run(&args),
        Command::Audit(cmd) => audit_cmd::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if wants_json(std::env::args_os().map(|a| a.to_string_lossy().into_owned())) {
                // A program reading stdout gets an answer it can parse, not nothing.
                println!(
                    "{}",
                    serde_json::json!({"error": format!("{e:#}"), "exit": 2})
                );
            }
            ExitCode::from(2)
        }
    }
}

/// Whether the command line asks for `--format json`.
fn wants_json(args: impl Iterator<Item = String>) -> bool {
    let mut previous = String::new();
    for arg in args {
        if arg == "--format=json" || (previous == "--format" && arg == "json") {
            return true;
        }
        previous = arg;
    }
    false
}
