//! `aigis provenance record|verify`: signed in-toto SLSA provenance for training and
//! conversion runs.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_supply::signing::keys::{load_signing_key, load_verifying_key};
use aigis_supply::signing::provenance::{Input, Run, record, verify};
use anyhow::Context as _;
use serde_json::json;

use crate::Format;

/// Record or verify where a model came from: an in-toto Statement with a SLSA provenance v1
/// predicate (builder, build type, parameters, input datasets and base model by digest, output
/// model files by digest), signed as a DSSE envelope.
///
/// Exit codes: 0 recorded / verified; 1 verification failed (bad signature, the model does not
/// match any subject); 2 could not run (unreadable file or key).
///
/// Examples:
///
///   aigis provenance record ./my-model --private-key pq.key --builder-id https://ci.example/train \
///       --dataset wikitext=./data/wikitext --base-model llama-3-8b=./base --param epochs=3 -o my-model.prov.json
///
///   aigis provenance verify ./my-model --provenance my-model.prov.json --public-key pq.key.pub
#[derive(clap::Subcommand)]
#[command(verbatim_doc_comment)]
pub enum Command {
    /// Write signed provenance for the model a run produced.
    #[command(after_long_help = "Exit codes: 0 recorded; 2 could not (unreadable model or key).")]
    Record(RecordArgs),
    /// Check provenance signatures and that the model matches its subject.
    #[command(
        after_long_help = "Exit codes: 0 verified; 1 verification failed (bad signature, the \
                           model does not match any subject); 2 could not verify (unreadable \
                           file or key)."
    )]
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct RecordArgs {
    /// The output model (directory or file).
    model: PathBuf,
    /// Signing key(s) (PEM; any aigis algorithm, e.g. mldsa65-ed25519 or p256).
    #[arg(long, value_name = "PEM", required = true)]
    private_key: Vec<PathBuf>,
    /// Who or what ran the training or conversion (a URI), SLSA `builder.id`.
    #[arg(long, value_name = "URI")]
    builder_id: String,
    /// SLSA `buildType` (default: https://aigis.dev/provenance/ml-run/v1).
    #[arg(long, value_name = "URI", default_value = "")]
    build_type: String,
    /// A run parameter KEY=VALUE (hyper-parameters, command line), repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    param: Vec<String>,
    /// An input dataset NAME or NAME=PATH (hashed), repeatable.
    #[arg(long, value_name = "NAME[=PATH]")]
    dataset: Vec<String>,
    /// The base model NAME or NAME=PATH (hashed), repeatable.
    #[arg(long, value_name = "NAME[=PATH]")]
    base_model: Vec<String>,
    /// The run's id (SLSA `invocationId`).
    #[arg(long)]
    invocation_id: Option<String>,
    /// When the run started (RFC 3339).
    #[arg(long)]
    started_on: Option<String>,
    /// Where to write the DSSE envelope.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Worker threads for hashing.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The model (directory or file).
    model: PathBuf,
    /// The provenance envelope.
    #[arg(long, value_name = "FILE")]
    provenance: PathBuf,
    /// Public key(s) that must have signed it (PEM).
    #[arg(long, value_name = "PEM", required = true)]
    public_key: Vec<PathBuf>,
    /// Fail unless a post-quantum key signed it.
    #[arg(long)]
    require_pq: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Worker threads for hashing.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn inputs(kind: &str, list: &[String]) -> Vec<Input> {
    list.iter()
        .map(|d| {
            let (name, path) = match d.split_once('=') {
                Some((n, p)) => (n.to_string(), Some(PathBuf::from(p))),
                None => (d.clone(), None),
            };
            Input {
                kind: kind.into(),
                name,
                path,
                uri: None,
            }
        })
        .collect()
}

pub fn run(cmd: &Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Record(a) => {
            let keys = a
                .private_key
                .iter()
                .map(|p| load_signing_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            let parameters = a
                .param
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .with_context(|| format!("--param {p:?}: expected KEY=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut all = inputs("dataset", &a.dataset);
            all.extend(inputs("base_model", &a.base_model));
            let run = Run {
                builder_id: a.builder_id.clone(),
                build_type: a.build_type.clone(),
                parameters,
                inputs: all,
                invocation_id: a.invocation_id.clone(),
                started_on: a.started_on.clone(),
                finished_on: None,
            };
            let refs: Vec<_> = keys.iter().collect();
            let bar = crate::progress::bytes();
            let env = record(&a.model, &run, &refs, a.threads, &|n| bar.inc(n));
            bar.finish_and_clear();
            let env = env?;
            crate::sign_cmd::write_atomically(&a.output, format!("{env}\n").as_bytes())?;
            eprintln!(
                "recorded provenance for {} -> {}",
                a.model.display(),
                a.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => {
            let keys = a
                .public_key
                .iter()
                .map(|p| load_verifying_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            let bytes = std::fs::read(&a.provenance)
                .with_context(|| format!("reading {}", a.provenance.display()))?;
            let bar = crate::progress::bytes();
            let verified = verify(&bytes, &keys, a.require_pq, &a.model, a.threads, &|n| {
                bar.inc(n);
            });
            bar.finish_and_clear();
            match verified {
                Ok(v) => {
                    let pred = &v.statement["predicate"];
                    match a.format {
                        Format::Table => println!(
                            "provenance verified: {} is sha256:{} built by {} ({} inputs)",
                            a.model.display(),
                            v.model_digest,
                            pred["runDetails"]["builder"]["id"],
                            pred["buildDefinition"]["resolvedDependencies"]
                                .as_array()
                                .map_or(0, Vec::len)
                        ),
                        Format::Json => println!(
                            "{}",
                            json!({"verified": true, "model_digest": v.model_digest, "key_ids": v.key_ids, "predicate": pred})
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if crate::verify_cmd::is_failure(&e) => {
                    eprintln!(
                        "provenance verification FAILED for {}: {e}",
                        a.model.display()
                    );
                    if a.format == Format::Json {
                        println!("{}", json!({"verified": false, "error": e.to_string()}));
                    }
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
