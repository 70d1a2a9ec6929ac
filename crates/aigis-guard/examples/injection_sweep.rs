//! Training-settings sweep for the injection model (how the settings in docs/guard.md were
//! chosen). Loads the data once, then for each setting trains a model and prints its metrics at
//! the balanced threshold (0.50) on every evaluation file.
//!
//! Usage: `injection_sweep --train FILE[*N]... --eval FILE... [--dump FILE] SETTING...`, where
//! `*N` repeats a training file N times and a SETTING is `key=value,...` over `bits`,
//! `epochs`, `lr`, `l2`, `seed` (the stochastic trainer, `model::train`) or, with `fit=1`, the
//! full-batch trainer (`training::fit`, the one `aigis guard train` uses) with `fl2` (its L2)
//! and `iters`. `--dump` writes the misclassified rows of the last setting.
// A measurement harness: panics on bad input and float casts of counts are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

use std::fmt::Write as _;
use std::time::Instant;

use aigis_guard::eval::{Metrics, parse_jsonl};
use aigis_guard::injection::model::{TrainOptions, train};
use aigis_guard::injection::training::FitOptions;
use aigis_guard::injection::{Injection, Verdict, training};
use aigis_guard::normalize::{Limits, decode_segments, normalize};

struct EvalSet {
    name: String,
    /// Per sample: its normalised text and the normalised texts decoded from it, and the label.
    rows: Vec<(String, Vec<String>, bool)>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut train_files = Vec::new();
    let mut eval_files = Vec::new();
    let mut settings = Vec::new();
    let mut dump = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--train" => train_files.push(it.next().unwrap().clone()),
            "--eval" => eval_files.push(it.next().unwrap().clone()),
            "--dump" => dump = Some(it.next().unwrap().clone()),
            _ => settings.push(a.clone()),
        }
    }
    let signatures = Injection::new();
    let mut examples = Vec::new();
    for spec in &train_files {
        let (path, times) = spec
            .split_once('*')
            .map_or((spec.as_str(), 1), |(p, n)| (p, n.parse().unwrap()));
        let samples = parse_jsonl(&std::fs::read_to_string(path).unwrap(), "text").unwrap();
        let ex = training::examples(&samples, signatures.signatures());
        for _ in 0..times {
            examples.extend(ex.iter().cloned());
        }
    }
    let limits = Limits::default();
    let sets: Vec<EvalSet> = eval_files
        .iter()
        .map(|path| {
            let samples = parse_jsonl(&std::fs::read_to_string(path).unwrap(), "text").unwrap();
            EvalSet {
                name: path.rsplit('/').next().unwrap().to_owned(),
                rows: samples
                    .iter()
                    .map(|s| {
                        let decoded = decode_segments(&s.text, limits)
                            .into_iter()
                            .map(|d| normalize(&d.text).text)
                            .collect();
                        (normalize(&s.text).text, decoded, s.label)
                    })
                    .collect(),
            }
        })
        .collect();
    eprintln!("{} training examples", examples.len());
    for setting in &settings {
        let mut options = TrainOptions::default();
        let mut fit_options = FitOptions::default();
        let mut full_batch = false;
        for kv in setting.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "bits" => options.bits = v.parse().unwrap(),
                "epochs" => options.epochs = v.parse().unwrap(),
                "lr" => options.learning_rate = v.parse().unwrap(),
                "l2" => options.l2 = v.parse().unwrap(),
                "seed" => options.seed = v.parse().unwrap(),
                "fit" => full_batch = v == "1",
                "fl2" => fit_options.l2 = v.parse().unwrap(),
                "iters" => fit_options.iterations = v.parse().unwrap(),
                _ => panic!("unknown setting {k}"),
            }
        }
        let start = Instant::now();
        fit_options.bits = options.bits;
        let model = if full_batch {
            training::fit(&examples, fit_options).unwrap()
        } else {
            train(&examples, options)
        };
        let seconds = start.elapsed().as_secs_f64();
        // The model as the weights file holds it (16-bit weights), as `aigis guard train` writes it.
        let model = aigis_guard::injection::Model::from_bytes(&model.to_bytes()).unwrap();
        let detector = Injection::with_model(model);
        let mut line = format!("{setting:<40} ({seconds:.0}s)");
        let mut misses = String::new();
        for set in &sets {
            let verdicts: Vec<Verdict> = set
                .rows
                .iter()
                .map(|(text, decoded, _)| {
                    std::iter::once(text)
                        .chain(decoded)
                        .map(|t| detector.assess(t))
                        .reduce(|a, b| if b.score > a.score { b } else { a })
                        .unwrap()
                })
                .collect();
            let scored: Vec<(f32, bool)> = verdicts
                .iter()
                .zip(&set.rows)
                .map(|(v, row)| (v.score, row.2))
                .collect();
            let m = Metrics::new(&scored, 0.5);
            let short = set.name.trim_end_matches(".jsonl");
            // SWEEP_THRESHOLDS=0.4,0.45,...: the same set at other thresholds, on stderr.
            for t in std::env::var("SWEEP_THRESHOLDS")
                .unwrap_or_default()
                .split(',')
            {
                let Ok(t) = t.parse::<f32>() else { continue };
                let m = Metrics::new(&scored, t);
                eprintln!(
                    "  t={t:.3} {short}: bal {:.4} fpr {:.4} ({}) rec {:.4} ({} missed)",
                    m.balanced_accuracy(),
                    m.fpr(),
                    m.fp,
                    m.recall(),
                    m.fn_
                );
            }
            if m.tp + m.fn_ == 0 {
                write!(line, " | {short} fpr {:.4} ({})", m.fpr(), m.fp).unwrap();
            } else if m.fp + m.tn == 0 {
                write!(line, " | {short} rec {:.4} ({})", m.recall(), m.fn_).unwrap();
            } else {
                write!(
                    line,
                    " | {short} bal {:.4} (fpr {:.3} rec {:.3} auc {:.4})",
                    m.balanced_accuracy(),
                    m.fpr(),
                    m.recall(),
                    m.roc_auc.unwrap_or(0.0)
                )
                .unwrap();
            }
            for (v, (text, _, label)) in verdicts.iter().zip(&set.rows) {
                if (v.score >= 0.5) != *label {
                    let ids: Vec<&str> = v.signals.iter().map(|s| s.id).collect();
                    writeln!(
                        misses,
                        "{short}\t{}\t{:.3}\t{:.2}\t{}\t{text}",
                        u8::from(*label),
                        v.score,
                        v.model_logit,
                        ids.join(",")
                    )
                    .unwrap();
                }
            }
        }
        println!("{line}");
        if let Some(path) = &dump {
            std::fs::write(path, &misses).unwrap();
        }
    }
}
