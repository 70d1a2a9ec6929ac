//! `aigis`: the security layer for AI infrastructure. This binary parses the command line,
//! dispatches to the library crates and renders their results; it holds no domain logic.

mod config_cmd;
mod gateway_cmd;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gateway(args) => gateway_cmd::run(&args),
        Command::Config(cmd) => config_cmd::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
