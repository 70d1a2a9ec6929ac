//! `aigis limits`: see how much of each limit a caller has used (from a running gateway's
//! admin API), and count prompt tokens the way the gateway does.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use aigis_gateway::admit::tokens::Counter;
use aigis_gateway::config::Tokenizer;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::Format;

#[derive(Subcommand)]
pub enum Command {
    /// Current usage of every limit for one caller, read from a running gateway.
    ///
    /// Give the scope values the limits are kept by: a principal-scoped limit needs
    /// --principal, a team-scoped one --team (repeat it for several teams), and so on.
    /// Limits whose values are not given are listed with a note.
    ///
    /// Example: aigis limits status --principal key:3f2a… --team search --model gpt-4o
    Status(StatusArgs),
    /// Count prompt tokens as the gateway does before a request is admitted.
    ///
    /// Reads JSON lines: a string is counted as text, an object as a chat request body
    /// (messages, tools). Prints one count per line (or a JSON list with --format json).
    ///
    /// Example: echo '"hello world"' | aigis limits tokens --model gpt-4o
    Tokens(TokensArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    /// The principal id (as in the access log: `key:<id>`, `oidc:<issuer>#<sub>`, …).
    #[arg(long)]
    principal: Option<String>,
    /// A team of the caller (repeatable).
    #[arg(long)]
    team: Vec<String>,
    /// A model name.
    #[arg(long)]
    model: Option<String>,
    /// A route name.
    #[arg(long)]
    route: Option<String>,
    /// A client IP address.
    #[arg(long)]
    ip: Option<String>,
    /// The gateway's admin listener.
    #[arg(long, default_value = "http://127.0.0.1:9090", value_name = "URL")]
    admin: String,
    /// An aigis key with the admin role.
    #[arg(long, env = "AIGIS_KEY", hide_env_values = true)]
    key: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Args)]
pub struct TokensArgs {
    /// The model the requests are for (chooses the encoding).
    #[arg(long)]
    model: String,
    /// Override the encoding: auto, o200k_base, cl100k_base or estimate.
    #[arg(long, default_value = "auto")]
    tokenizer: String,
    /// JSON-lines file (`-` or omitted: standard input).
    file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Status(args) => status(&args),
        Command::Tokens(args) => tokens(&args),
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    let mut add = |k: &str, v: &str| query.push(format!("{k}={}", encode(v)));
    for (k, v) in [
        ("principal", &args.principal),
        ("model", &args.model),
        ("route", &args.route),
        ("ip", &args.ip),
    ] {
        if let Some(v) = v {
            add(k, v);
        }
    }
    for t in &args.team {
        add("team", t);
    }
    let url = format!(
        "{}/admin/limits?{}",
        args.admin.trim_end_matches('/'),
        query.join("&")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(aigis_gateway::admin_client::get(&url, &args.key))?;
    if status != 200 {
        bail!(
            "the gateway answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).context("the gateway's answer is not JSON")?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        Format::Table => print_table(&json),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(json: &serde_json::Value) {
    println!("store: {}", json["store"].as_str().unwrap_or("unknown"));
    println!(
        "{:<24} {:<48} {:>14} {:>14}  RESETS IN",
        "LIMIT", "COUNTER", "USED", "REMAINING"
    );
    for l in json["limits"].as_array().into_iter().flatten() {
        let name = l["limit"].as_str().unwrap_or("");
        if let Some(note) = l["note"].as_str() {
            println!("{name:<24} {note}");
            continue;
        }
        println!(
            "{:<24} {:<48} {:>14} {:>14}  {}",
            name,
            l["counter"].as_str().unwrap_or(""),
            format!("{}/{}", l["used"], l["max"]),
            l["remaining"],
            l["resets_in"].as_str().unwrap_or(""),
        );
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn tokens(args: &TokensArgs) -> anyhow::Result<ExitCode> {
    let tokenizer = Tokenizer::parse(&args.tokenizer)
        .with_context(|| format!("unknown tokenizer `{}`", args.tokenizer))?;
    let counter = Counter::for_model(tokenizer, &args.model);
    let (reader, name): (Box<dyn std::io::BufRead>, String) = match &args.file {
        Some(p) if p.as_os_str() != "-" => (
            Box::new(std::io::BufReader::new(
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
            )),
            p.display().to_string(),
        ),
        _ => (Box::new(std::io::stdin().lock()), "stdin".to_owned()),
    };
    let mut counts = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = line.with_context(|| format!("{at}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{at}: not JSON"))?;
        let n = match &value {
            serde_json::Value::String(s) => counter.count(s),
            serde_json::Value::Object(_) => counter.chat_prompt(&value),
            _ => bail!("{at}: expected a JSON string or a request object"),
        };
        counts.push(n);
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"encoding": counter.name(), "counts": counts})
        ),
        Format::Table => counts.iter().for_each(|n| println!("{n}")),
    }
    Ok(ExitCode::SUCCESS)
}
