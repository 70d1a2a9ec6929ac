//! `aigis gateway`

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_gateway::Gateway;
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
        let gateway = Gateway::start(loaded.config, source).await?;
        eprintln!(
            "aigis gateway on http://{} (admin on http://{})",
            gateway.public_addr(),
            gateway.admin_addr()
        );
        gateway.run_until_signal().await?;
        Ok(ExitCode::SUCCESS)
    })
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
