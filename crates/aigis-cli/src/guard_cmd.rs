//! `aigis guard scan | eval | train`: the guard engine offline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use aigis_guard::eval::{DETECTORS, Metrics, Sample, detector_named, parse_jsonl};
use aigis_guard::injection::model::{TrainOptions, train};
use aigis_guard::injection::training::FitOptions;
use aigis_guard::injection::{Injection, Model, training};
use aigis_guard::profile::{self, Profile, ProfileSpec};
use aigis_guard::{Action, Decision, Detector, Finding, Guard, Part, Policy, Source};
use aigis_report::{Evidence, Location, NotScanned, Report, Severity};
use anyhow::{Context, bail};

mod eval;
mod input;
use input::{Record, read_input, records};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Scan text or JSONL for prompt injection, jailbreaks, PII, secrets and hidden characters.
    ///
    /// A plain file is one text; a `.jsonl` file (or --jsonl) is one text per line, read from
    /// --field. Findings are printed with masked evidence (never the secret itself).
    ///
    /// Exit codes: 0 = no finding at or above --fail-on and everything scanned; 1 = such
    /// findings; 2 = some of the input could not be scanned (unreadable, over --max-bytes, a
    /// JSONL line without the field). When 1 and 2 both apply, 1 wins, as for every command;
    /// the report names what was not scanned.
    ///
    /// Examples:
    ///   aigis guard scan prompt.txt
    ///   cat prompts.jsonl | aigis guard scan --jsonl --field prompt --format sarif -
    ///   aigis guard scan --profile strict --detectors pii,secrets notes.md
    Scan(ScanArgs),
    /// Measure the detectors (each, and the whole profile) on labelled JSONL.
    ///
    /// Each line needs the text field and `label` (1 = injection or jailbreak). Optional:
    /// `source` and `category` (grouping), `role` (user, system, assistant, definition; tool,
    /// document or indirect for text judged at the indirect threshold) and `expect`, ground truth
    /// for other detectors ({"pii": 1, "secrets": 0}); a detector is measured only on rows
    /// that give its ground truth. Prints accuracy, balanced accuracy, precision, recall, F1,
    /// FPR and ROC AUC per detector, overall and per source, category and role, and latency
    /// percentiles of the injection verdict, of the whole inspection and of each detector alone.
    ///
    /// Example: aigis guard eval --data validation.jsonl --data hard-negatives.jsonl
    Eval(EvalArgs),
    /// Train the injection model's weights from labelled JSONL (reproducible: a deterministic
    /// full-batch fit, or with --sgd a fixed shuffling seed).
    ///
    /// Example (docs/guard.md, "Training", has the exact command of the committed weights):
    ///   aigis guard train --data ../shared/data/guard/injection/s-labs-train.jsonl \
    ///     --data ../shared/data/guard/injection/neuralchemy-train.jsonl \
    ///     --data crates/aigis-guard/data/train/trigger-words.jsonl \
    ///     --validation ../shared/data/guard/injection/s-labs-validation.jsonl \
    ///     --validation ../shared/data/guard/injection/neuralchemy-validation.jsonl \
    ///     --out crates/aigis-guard/model/injection.bin
    Train(TrainArgs),
}

/// Which profile, from where.
#[derive(clap::Args)]
struct ProfileArgs {
    /// Guard profile: strict, balanced, permissive, or one defined in --config. Default: the
    /// config's `[guard] profile` with --config, else balanced.
    #[arg(long)]
    profile: Option<String>,
    /// A gateway config whose `[guard.profiles.*]` define more profiles.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Detectors to run (comma-separated): injection, pii, secrets, invisible, banned, topic
    /// (the names findings carry; `topics` is accepted too). Default: all.
    #[arg(long, value_delimiter = ',')]
    detectors: Vec<String>,
    /// Treat the text as a tool result or retrieved document (indirect-injection threshold).
    #[arg(long)]
    indirect: bool,
    /// Read JSONL (one record per line) even without a `.jsonl` extension.
    #[arg(long)]
    jsonl: bool,
    /// The JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Lowest severity that makes the exit code 1: critical, high, medium, low, info.
    #[arg(long, default_value = "medium")]
    fail_on: Severity,
    /// Refuse inputs larger than this many bytes (exit 2).
    #[arg(long, default_value_t = 64 << 20)]
    max_bytes: u64,
    /// Output format; `jsonl` prints one decision per input record.
    #[arg(long, value_enum, default_value = "table")]
    format: ScanFormat,
    /// The file to scan, or `-` for standard input.
    input: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScanFormat {
    Table,
    Json,
    Jsonl,
    Sarif,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Labelled JSONL (repeat for several files).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// The JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Evaluate these weights instead of the built-in ones.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: crate::Format,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Training JSONL (repeat).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Validation JSONL, for the printed metrics only (repeat).
    #[arg(long)]
    validation: Vec<PathBuf>,
    /// Where to write the weights.
    #[arg(long, short)]
    out: PathBuf,
    /// log2 of the hash buckets.
    #[arg(long, default_value_t = FitOptions::default().bits)]
    bits: u8,
    /// L2 penalty of the full-batch fit (the default trainer).
    #[arg(long, default_value_t = FitOptions::default().l2)]
    l2: f64,
    /// Use the older stochastic trainer (shuffled SGD, seed `0x5eed`) instead of the
    /// deterministic full-batch fit.
    #[arg(long)]
    sgd: bool,
    /// Passes over the data (with --sgd only).
    #[arg(long, default_value_t = TrainOptions::default().epochs, requires = "sgd")]
    epochs: u32,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Scan(args) => scan(&args),
        Command::Eval(args) => eval::eval(&args),
        Command::Train(args) => train_cmd(&args),
    }
}

/// The `[guard]` part of a gateway config, for `--config`.
#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    guard: GuardSection,
}
#[derive(serde::Deserialize, Default)]
struct GuardSection {
    /// The gateway's profile for routes without their own: ours when --profile is not given.
    profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, ProfileSpec>,
}

/// The profile the gateway uses when `[guard] profile` is not set (and ours without --config).
const DEFAULT_PROFILE: &str = "balanced";

/// The profile to scan with and its name: --profile, else the config's `[guard] profile`, else
/// balanced.
fn load_profile(args: &ProfileArgs) -> anyhow::Result<(String, Profile)> {
    let guard = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<ConfigFile>(&text)
                .with_context(|| format!("{}: invalid [guard] section", path.display()))?
                .guard
        }
        None => GuardSection::default(),
    };
    let name = match (&args.profile, guard.profile) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) if name == "off" => bail!(
            "the config's [guard] profile is `off` (requests are not inspected); \
             choose one with --profile"
        ),
        (None, Some(name)) => name,
        (None, None) => DEFAULT_PROFILE.to_owned(),
    };
    let mut profiles =
        profile::resolve(&guard.profiles).map_err(|errors| anyhow::anyhow!(errors.join("\n")))?;
    let profile = profiles.remove(&name).with_context(|| {
        format!(
            "unknown profile `{name}`; available: {}",
            profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    Ok((name, profile))
}

fn scan(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let (_, mut profile) = load_profile(&args.profile)?;
    if !args.detectors.is_empty() {
        let mut wanted = Vec::new();
        for name in &args.detectors {
            let detector = detector_named(name).with_context(|| {
                let known: Vec<&str> = DETECTORS.iter().map(|d| d.as_str()).collect();
                format!(
                    "unknown detector `{name}`; known: {} (`topics` is accepted for `topic`)",
                    known.join(", ")
                )
            })?;
            wanted.push(detector);
        }
        only(&mut profile, &wanted);
    }
    let policy = Policy::new(profile)?;
    let guard = Guard::new();
    let name = if args.input == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        args.input.display().to_string()
    };
    let mut report = Report::new("aigis guard", env!("CARGO_PKG_VERSION"));
    let source = if args.indirect {
        Source::Tool
    } else {
        Source::User
    };
    let jsonl = args.jsonl || args.input.extension().is_some_and(|e| e == "jsonl");

    let records = match read_input(&args.input, args.max_bytes) {
        Ok(bytes) => records(&bytes, jsonl, &args.field, &name, &mut report),
        Err(e) => {
            report.add_not_scanned(NotScanned::new(&name, format!("{e:#}")));
            Vec::new()
        }
    };
    let mut out = std::io::stdout().lock();
    for record in &records {
        let decision = guard.inspect(
            &policy,
            &[Part {
                text: &record.text,
                source,
            }],
            None,
        );
        if let ScanFormat::Jsonl = args.format {
            let line = jsonl_line(record, &decision);
            writeln!(out, "{line}")?;
        }
        add_findings(&mut report, &name, record, &decision);
    }
    let format = match args.format {
        ScanFormat::Table => Some(aigis_report::Format::Table),
        ScanFormat::Json => Some(aigis_report::Format::Json),
        ScanFormat::Sarif => Some(aigis_report::Format::Sarif),
        ScanFormat::Jsonl => None,
    };
    if let Some(format) = format {
        report.render(format, &mut out)?;
    } else {
        // The stream says what it left out too: a consumer must not take a missing record
        // for a clean one.
        for n in report.not_scanned() {
            eprintln!("not scanned: {}: {}", n.path(), n.reason());
            let line = serde_json::json!({"not_scanned": n.path(), "reason": n.reason()});
            writeln!(out, "{line}")?;
        }
    }
    let code = report.exit_code(args.fail_on);
    if code == aigis_report::EXIT_FINDINGS && !report.not_scanned().is_empty() {
        eprintln!(
            "exit 1 (findings at or above {}); part of the input was also not scanned",
            args.fail_on
        );
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)))
}

/// Turns off every detector of `profile` not in `wanted`.
fn only(profile: &mut Profile, wanted: &[Detector]) {
    let off = |a: &mut Action, d: Detector| {
        if !wanted.contains(&d) {
            *a = Action::Off;
        }
    };
    off(&mut profile.injection.action, Detector::Injection);
    off(&mut profile.pii.action, Detector::Pii);
    off(&mut profile.secrets, Detector::Secrets);
    off(&mut profile.invisible, Detector::Invisible);
    off(&mut profile.banned.action, Detector::Banned);
    off(&mut profile.topics.action, Detector::Topic);
}

/// One record's decision for `--format jsonl`: the findings as the gateway records them (spans
/// in the record's text), each with `file_offset`, where its span starts in the file.
fn jsonl_line(record: &Record, decision: &Decision) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = decision
        .findings
        .iter()
        .map(|f| {
            let mut value = serde_json::to_value(f).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert(
                    "file_offset".into(),
                    record.file_offset(f.detection.span.start).into(),
                );
            }
            value
        })
        .collect();
    serde_json::json!({ "line": record.line, "blocked": decision.blocked, "findings": findings })
}

fn add_findings(report: &mut Report, name: &str, record: &Record, decision: &Decision) {
    for f in &decision.findings {
        let (rule, severity, message) = describe(f);
        let mut location = Location::new(name);
        if let Some(offset) = record.file_offset(f.detection.span.start) {
            location = location.with_byte_offset(offset);
        }
        if let Some(line) = record.line {
            location = location.with_line(line);
        }
        let value = record
            .text
            .get(f.detection.span.clone())
            .unwrap_or_default();
        let evidence = match f.detection.detector {
            Detector::Pii | Detector::Secrets => Evidence::masked(value),
            _ => Evidence::text(value.chars().take(120).collect::<String>()),
        };
        let mut finding = aigis_report::Finding::new(rule, severity, message, location)
            .with_evidence(evidence)
            .with_tag(format!("action:{}", f.action.as_str()))
            .with_tag(f.version);
        if let Some(encoding) = f.encoding {
            finding = finding.with_tag(format!(
                "encoding:{}",
                serde_json::to_value(encoding)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            ));
        }
        report.add(finding);
    }
}

fn describe(f: &Finding) -> (String, Severity, String) {
    let d = &f.detection;
    match d.detector {
        Detector::Injection if d.kind == "decode-limit" => {
            let limits = aigis_guard::normalize::Limits::default();
            (
                "AIG-GUARD-DECODE-LIMIT".into(),
                Severity::High,
                format!(
                    "decoding stopped at its limit ({} layers, {} payloads or {} KiB decoded) with \
                     payloads left unread, the first here; they were not inspected",
                    limits.max_depth,
                    limits.max_segments,
                    limits.max_decoded_bytes / 1024
                ),
            )
        }
        Detector::Injection => {
            let signals: Vec<&str> = f.signals.iter().map(|s| s.id).collect();
            let why = if signals.is_empty() {
                "learned model".to_owned()
            } else {
                signals.join(", ")
            };
            let rule = if d.kind == "indirect-prompt-injection" {
                "AIG-GUARD-INDIRECT-INJECTION"
            } else {
                "AIG-GUARD-INJECTION"
            };
            (
                rule.into(),
                Severity::High,
                format!("{} (score {:.2}; {why})", d.kind.replace('-', " "), d.score),
            )
        }
        Detector::Secrets => (
            format!("AIG-GUARD-SECRET-{}", d.kind),
            Severity::High,
            format!("{} credential", d.kind),
        ),
        Detector::Pii => {
            let severity = if d.validated || d.score >= 0.8 {
                Severity::Medium
            } else {
                Severity::Low
            };
            let checked = if d.validated { ", checksum valid" } else { "" };
            (
                format!("AIG-GUARD-PII-{}", d.kind),
                severity,
                format!("{} (score {:.2}{checked})", d.kind, d.score),
            )
        }
        Detector::Invisible => (
            "AIG-GUARD-INVISIBLE".into(),
            Severity::Medium,
            format!("{} hide text from reviewers", d.kind.replace('-', " ")),
        ),
        Detector::Banned => (
            "AIG-GUARD-BANNED".into(),
            Severity::Medium,
            format!("matches the profile's {}", d.kind.replace('-', " ")),
        ),
        Detector::Topic => (
            "AIG-GUARD-TOPIC".into(),
            Severity::Medium,
            format!("mentions {}", d.kind),
        ),
    }
}

fn load_samples(paths: &[PathBuf], field: &str) -> anyhow::Result<Vec<Sample>> {
    let mut all = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let samples = parse_jsonl(&text, field).map_err(|errors| {
            let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
            anyhow::anyhow!(
                "{}: {} bad lines:\n  {}",
                path.display(),
                errors.len(),
                shown.join("\n  ")
            )
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        all.extend(samples.into_iter().map(|mut s| {
            if s.source.is_empty() {
                s.source.clone_from(&stem);
            }
            s
        }));
    }
    Ok(all)
}

fn train_cmd(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let samples = load_samples(&args.data, "text")?;
    let injection = Injection::new();
    let examples = training::examples(&samples, injection.signatures());
    let started = Instant::now();
    let spinner = crate::progress::spinner("{spinner} training {elapsed}");
    let model = if args.sgd {
        let options = TrainOptions {
            bits: args.bits,
            epochs: args.epochs,
            ..TrainOptions::default()
        };
        Ok(train(&examples, options))
    } else {
        let options = FitOptions {
            bits: args.bits,
            l2: args.l2,
            ..FitOptions::default()
        };
        training::fit(&examples, options)
    };
    spinner.finish_and_clear();
    let model = model?;
    eprintln!(
        "trained on {} examples in {:.1}s",
        examples.len(),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&args.out, model.to_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let trained = Injection::with_model(Model::from_bytes(&model.to_bytes())?);
    for path in &args.validation {
        let samples = load_samples(std::slice::from_ref(path), "text")?;
        let scored: Vec<(f32, bool)> = samples
            .iter()
            .map(|s| {
                (
                    trained
                        .assess(&aigis_guard::normalize::normalize(&s.text).text)
                        .score,
                    s.label,
                )
            })
            .collect();
        println!("{}: {}", path.display(), Metrics::new(&scored, 0.5));
    }
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
