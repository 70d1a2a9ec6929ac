//! `aigis sbom MODEL_DIR`: a CycloneDX 1.6 ML-BOM of a model directory.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_supply::signing::sbom::{Dataset, SbomOptions, model_bom};

/// Write a CycloneDX 1.6 ML-BOM (machine-learning bill of materials) for a model directory.
///
/// The model becomes a `machine-learning-model` component with what the files say about it:
/// architecture (config.json, GGUF), task and license (model card front matter in README.md,
/// GGUF/safetensors metadata), parameter count and dtypes (safetensors and GGUF headers; only
/// headers are read), its SHA-256 subject digest (the one an OMS signature carries), every file
/// with its SHA-256, and the `aigis scan` verdict as properties. Datasets become `data`
/// components (hashed when you give a path), and pinned packages from requirements*.txt,
/// uv.lock or poetry.lock in the directory become `library` components and dependencies.
///
/// Exit codes: 0 written; 2 could not read the model.
///
/// Examples:
///
///   aigis sbom ./my-model > my-model.cdx.json
///
///   aigis sbom ./my-model --dataset wikitext=./data/wikitext --dataset c4 -o bom.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The model directory (or a single model file).
    model: PathBuf,
    /// Output format (CycloneDX 1.6 JSON).
    #[arg(long, value_enum, default_value = "cyclonedx-json")]
    format: SbomFormat,
    /// A dataset used to train or evaluate the model: NAME, or NAME=PATH to record its digest.
    #[arg(long, value_name = "NAME[=PATH]")]
    dataset: Vec<String>,
    /// Do not run the malicious-code scan (no scan verdict in the BOM).
    #[arg(long)]
    no_scan: bool,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads for hashing (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let SbomFormat::CyclonedxJson = args.format;
    let datasets = args
        .dataset
        .iter()
        .map(|d| match d.split_once('=') {
            Some((name, path)) => Dataset {
                name: name.to_string(),
                path: Some(PathBuf::from(path)),
            },
            None => Dataset {
                name: d.clone(),
                path: None,
            },
        })
        .collect();
    let opts = SbomOptions {
        datasets,
        scan: !args.no_scan,
        threads: args.threads,
        fixed: None,
    };
    let bar = crate::progress::bytes();
    let bom = model_bom(&args.model, &opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    let bom = bom?;
    let text = format!("{}\n", serde_json::to_string_pretty(&bom)?);
    match &args.output {
        Some(path) => crate::sign_cmd::write_atomically(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
