//! `aigis config …`

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_gateway::config::{self, Diagnostic, Level};
use anyhow::Context;

use crate::Format;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate a config file and report every problem with its key path, line and a hint.
    ///
    /// Exit codes: 0 = valid (warnings allowed), 1 = invalid, 2 = the file cannot be read.
    /// Relative `file:` paths resolve from the config's folder; an unset `env:` secret is a
    /// warning unless --strict.
    Check {
        /// The config file.
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Check {
        file,
        strict,
        format,
    } = cmd;
    let src = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let base = file.parent().unwrap_or(std::path::Path::new("."));
    let (valid, diags) = match config::parse(&src, base, strict) {
        Ok(loaded) => (true, loaded.warnings),
        Err(errors) => (false, errors),
    };
    match format {
        Format::Table => {
            for d in &diags {
                println!("{}:{d}", file.display());
            }
            let errors = diags.iter().filter(|d| d.level == Level::Error).count();
            let warnings = diags.len() - errors;
            if valid {
                println!("{}: valid ({warnings} warning(s))", file.display());
            } else {
                println!(
                    "{}: invalid ({errors} error(s), {warnings} warning(s))",
                    file.display()
                );
            }
        }
        Format::Json => {
            let list: Vec<_> = diags.iter().map(json).collect();
            let out = serde_json::json!({"file": file, "valid": valid, "diagnostics": list});
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "level": match d.level { Level::Error => "error", Level::Warning => "warning" },
        "path": d.path, "line": d.line, "message": d.message, "hint": d.hint,
    })
}
