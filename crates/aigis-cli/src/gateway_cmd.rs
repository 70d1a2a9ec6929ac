//! `aigis gateway`

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use aigis_gateway::Gateway;
use aigis_gateway::config::{ModelCheckSpec, ModelTrust};
use aigis_supply::signing::Trust;
use aigis_supply::signing::keys::load_verifying_key;
use aigis_supply::signing::verify::{ModelRequirement, check_model};
use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The config file (see docs/gateway.md). Default: the embedded quick start.
    #[arg(long, short, value_name = "FILE", env = "AIGIS_CONFIG")]
    config: Option<PathBuf>,
    /// Treat config warnings (such as an unset `env:` secret) as errors.
    #[arg(long)]
    strict: bool,
    /// Log format on stderr. Logs never contain prompts, responses or credentials.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let loaded = crate::load_config(args.config.as_deref(), args.strict)?;
    let source = args.config.clone().map(|p| (p, args.strict));
    for w in &loaded.warnings {
        tracing::warn!(path = %w.path, line = w.line, hint = w.hint.as_deref(), "config: {}", w.message);
    }
    // One worker per core this process may run on (taskset and cgroup limits included); on a
    // single core the current-thread scheduler avoids the work-stealing machinery.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cores);
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let gateway =
            Gateway::start_with(loaded.config, source, Some(Arc::new(SignedModels))).await?;
        eprintln!(
            "aigis gateway on http://{} (admin on http://{})",
            gateway.public_addr(),
            gateway.admin_addr()
        );
        gateway.run_until_signal().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `[routes.model_check]` backed by OpenSSF model signature verification (the same as
/// `aigis verify`) and the malicious-code scan (the same as `aigis scan`).
struct SignedModels;

impl aigis_gateway::ModelCheck for SignedModels {
    fn check(&self, spec: &ModelCheckSpec) -> Result<String, String> {
        let trust = match &spec.trust {
            ModelTrust::Keys(paths) => Trust::Keys(
                paths
                    .iter()
                    .map(|p| load_verifying_key(p))
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?,
            ),
            ModelTrust::CertificateChain(paths) => Trust::Certificates(
                crate::verify_cmd::read_certs(paths).map_err(|e| format!("{e:#}"))?,
            ),
        };
        check_model(&ModelRequirement {
            model: &spec.dir,
            signature: &spec.signature,
            trust: &trust,
            require_pq: spec.require_pq,
            scan: spec.scan,
        })
        .map_err(|e| e.to_string())
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIGIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => {
            aigis_gateway::access_log::use_json_lines();
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .init();
        }
        LogFormat::Text => builder.init(),
    }
}
