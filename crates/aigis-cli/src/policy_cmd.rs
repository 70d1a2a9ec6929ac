//! `aigis policy check`: explain an authorization decision offline.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aigis_gateway::authorize::{ModelResource, RequestFacts};
use aigis_gateway::identify::{Principal, PrincipalKind};
use anyhow::Context;

use crate::Format;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Decide one request against the config's policies and say why.
    ///
    /// Exit codes: 0 = allowed, 1 = denied, 2 = the config or policies cannot be used.
    ///
    /// Example: aigis policy check -c aigis.toml --team search --role reader --action chat --model gpt-4o
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The gateway config (routes and `[policy]`). Default: the embedded quick start.
    #[arg(long, short, value_name = "FILE", env = "AIGIS_CONFIG")]
    config: Option<PathBuf>,
    /// Principal id as policies see it (`Aigis::Principal::"…"`).
    #[arg(long, default_value = "cli-check")]
    principal: String,
    /// A team of the principal (repeat for several).
    #[arg(long = "team")]
    teams: Vec<String>,
    /// A role of the principal (repeat for several).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A principal tag `KEY=VALUE` (repeat for several).
    #[arg(long = "attr", value_parser = parse_attr)]
    attrs: Vec<(String, String)>,
    /// `user` or `service`.
    #[arg(long, default_value = "service", value_parser = ["user", "service"])]
    kind: String,
    /// How the principal authenticated.
    #[arg(long, default_value = "api_key", value_parser = ["api_key", "oidc", "mtls", "anonymous"])]
    auth: String,
    /// The action: chat, complete, embed, responses, models:list, admin:keys, admin:reload, admin:status.
    #[arg(long)]
    action: String,
    /// The model requested (model actions only).
    #[arg(long)]
    model: Option<String>,
    /// The caller's address (`context.source_ip`).
    #[arg(long, default_value = "127.0.0.1")]
    source_ip: IpAddr,
    /// Requested completion tokens (`context.max_tokens`).
    #[arg(long, default_value_t = 0)]
    max_tokens: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn parse_attr(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Check(a) = cmd;
    let loaded = crate::load_config(a.config.as_deref(), false)?;
    let config = loaded.config;
    let policies = config
        .policy
        .as_deref()
        .context("the config has no [policy] section: every request would be denied (or allowed in open mode)")?;
    let principal = Principal {
        id: a.principal.clone(),
        name: a.principal.clone(),
        kind: if a.kind == "user" {
            PrincipalKind::User
        } else {
            PrincipalKind::Service
        },
        teams: a.teams.clone(),
        roles: a.roles.clone(),
        attributes: a.attrs.iter().cloned().collect::<BTreeMap<_, _>>(),
        auth: match a.auth.as_str() {
            "oidc" => "oidc",
            "mtls" => "mtls",
            "anonymous" => "anonymous",
            _ => "api_key",
        },
    };
    let facts = RequestFacts {
        source_ip: a.source_ip,
        listener: "public",
        max_tokens: a.max_tokens,
        stream: false,
    };
    let (decision, resource) = if a.action.starts_with("admin:") {
        (
            policies.authorize_admin(&principal, &a.action, facts),
            serde_json::json!({"type": "Gateway"}),
        )
    } else {
        let model = a
            .model
            .as_deref()
            .context("--model is required for model actions")?;
        let route = config
            .route_for(model)
            .with_context(|| format!("no route serves the model `{model}`"))?;
        let resource = ModelResource {
            model,
            route: &route.name,
            provider: config.route_kind(route).as_str(),
            classification: route.classification.as_deref().unwrap_or("unclassified"),
            tags: &route.tags,
        };
        let json = serde_json::json!({"type": "Model", "id": model, "route": route.name,
            "provider": resource.provider, "classification": resource.classification, "tags": route.tags});
        (
            policies.authorize_model(&principal, &a.action, &resource, facts),
            json,
        )
    };
    match a.format {
        Format::Json => println!(
            "{:#}",
            serde_json::json!({"decision": if decision.allowed { "allow" } else { "deny" },
                "policies": decision.policies, "errors": decision.errors, "resource": resource,
                "principal": {"id": principal.id, "teams": principal.teams, "roles": principal.roles}})
        ),
        Format::Table => {
            println!(
                "decision: {}",
                if decision.allowed { "ALLOW" } else { "DENY" }
            );
            println!("resource: {resource}");
            if decision.policies.is_empty() {
                println!("because:  no policy permits it (default deny)");
            } else {
                println!("because:  {}", decision.policies.join(", "));
            }
            for e in &decision.errors {
                println!("error:    {e}");
            }
        }
    }
    Ok(if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
