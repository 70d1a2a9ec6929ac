//! `aigis keys …`: manage API keys offline, in the store the config names.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_gateway::config::parse_duration;
use aigis_gateway::identify::{self, ApiKeys, KeyRecord, KeySpec};
use anyhow::{Context, bail};

use crate::Format;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a key and print it once (the store keeps only its HMAC).
    ///
    /// Example: aigis keys create --name ci-bot --team search --role reader --expires 90d
    Create {
        #[command(flatten)]
        target: Target,
        /// A name for humans and logs, e.g. `ci-bot`.
        #[arg(long)]
        name: String,
        /// A team the key acts for (repeat for several).
        #[arg(long = "team")]
        teams: Vec<String>,
        /// A role, e.g. `reader` or `admin` (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// `user` (a person) or `service` (a workload).
        #[arg(long, default_value = "service", value_parser = ["user", "service"])]
        kind: String,
        /// Lifetime, e.g. `90d` or `12h`; no expiry when omitted.
        #[arg(long)]
        expires: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List keys (never their secrets).
    ///
    /// Example: aigis keys list --config aigis.toml --format json
    List {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Revoke a key by id, prefix or name. Gateways stop accepting it within `cache_ttl`.
    ///
    /// Example: aigis keys revoke ci-bot
    Revoke {
        #[command(flatten)]
        target: Target,
        /// Key id, prefix or name.
        key: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Replace a key: a new key with the same name, teams and roles; the old one is revoked.
    ///
    /// Example: aigis keys rotate ci-bot   (prints the new key once)
    Rotate {
        #[command(flatten)]
        target: Target,
        /// Key id, prefix or name.
        key: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// Which config (and so which key store) to use.
#[derive(clap::Args)]
pub struct Target {
    /// The gateway config whose `[identity.api_keys]` store to use. Default: the embedded
    /// quick start (`.aigis/keys.db` in the current folder).
    #[arg(long, short, value_name = "FILE", env = "AIGIS_CONFIG")]
    config: Option<PathBuf>,
}

async fn open(target: &Target) -> anyhow::Result<ApiKeys> {
    let loaded = crate::load_config(target.config.as_deref(), false)?;
    let api = loaded
        .config
        .identity
        .and_then(|i| i.api_keys)
        .context("the config has no [identity.api_keys] section")?;
    Ok(identify::open_api_keys(&api).await?)
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cmd {
            Command::Create {
                target,
                name,
                teams,
                roles,
                kind,
                expires,
                format,
            } => {
                let expires_in = expires
                    .map(|e| parse_duration(&e).map_err(anyhow::Error::msg))
                    .transpose()
                    .context("--expires")?;
                let keys = open(&target).await?;
                let new = keys
                    .create(KeySpec {
                        name,
                        kind,
                        teams,
                        roles,
                        expires_in,
                    })
                    .await?;
                print_new(&new.secret, &new.record, format);
            }
            Command::List { target, format } => {
                let keys = open(&target).await?;
                let list = keys.store().list().await?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&list.iter().map(json).collect::<Vec<_>>())?
                    ),
                    Format::Table => {
                        println!(
                            "{:<12}  {:<16}  {:<8}  {:<20}  {:<16}  STATUS",
                            "PREFIX", "NAME", "KIND", "TEAMS", "ROLES"
                        );
                        for k in &list {
                            println!(
                                "{:<12}  {:<16}  {:<8}  {:<20}  {:<16}  {}",
                                k.prefix,
                                k.name,
                                k.kind,
                                k.teams.join(","),
                                k.roles.join(","),
                                status(k)
                            );
                        }
                    }
                }
            }
            Command::Revoke {
                target,
                key,
                format,
            } => {
                let keys = open(&target).await?;
                match (
                    keys.store().revoke(&key, identify::api_key::now()).await?,
                    format,
                ) {
                    (0, _) => bail!("no active key has the id, prefix or name `{key}`"),
                    (n, Format::Json) => println!("{}", serde_json::json!({"revoked": n})),
                    (n, Format::Table) => println!(
                        "revoked {n} key(s); gateways stop accepting them within their cache_ttl"
                    ),
                }
            }
            Command::Rotate {
                target,
                key,
                format,
            } => {
                let keys = open(&target).await?;
                let new = keys
                    .rotate(&key)
                    .await?
                    .with_context(|| format!("no active key has the id, prefix or name `{key}`"))?;
                print_new(&new.secret, &new.record, format);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn status(k: &KeyRecord) -> String {
    let now = identify::api_key::now();
    if k.revoked_at.is_some() {
        "revoked".into()
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired".into()
    } else if let Some(e) = k.expires_at {
        format!("active, expires in {}d", (e - now) / 86_400)
    } else {
        "active".into()
    }
}

fn json(k: &KeyRecord) -> serde_json::Value {
    let mut v = k.public_json();
    v["status"] = serde_json::Value::String(status(k));
    v
}

fn print_new(secret: &str, record: &KeyRecord, format: Format) {
    match format {
        Format::Json => {
            let mut v = json(record);
            v["key"] = serde_json::Value::String(secret.to_owned());
            println!("{v:#}");
        }
        Format::Table => {
            println!("{secret}");
            eprintln!(
                "created key `{}` (prefix {}). It is shown once: store it now; the gateway keeps only its HMAC.",
                record.name, record.prefix
            );
        }
    }
}
