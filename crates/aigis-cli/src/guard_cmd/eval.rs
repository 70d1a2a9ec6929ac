//! `aigis guard eval`: the detectors measured on labelled JSONL, per detector, per data set,
//! category and role, with latency percentiles.
//!
//! Each detector is measured only on rows that give its ground truth: injection on every row
//! (`label`), the others on rows whose `expect` names them. Rows are inspected as their `role`
//! says, so text from tools and documents is judged at the indirect threshold, as the gateway
//! judges it.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use aigis_guard::eval::{DETECTORS, Metrics, Outcome, Sample, percentile, role_name};
use aigis_guard::injection::{Injection, Model};
use aigis_guard::{Action, Detector, Guard, Part, Policy, Profile, Source};

use super::{EvalArgs, load_profile, load_samples, only};

/// p50, p90 and p99 of per-text times, in microseconds.
type Latency = [f64; 3];

/// One line of the results: a detector (or `all-detectors`) on a group of rows.
struct Row {
    detector: &'static str,
    group: String,
    metrics: Metrics,
}

/// What one pass over the samples measured.
struct Measured {
    /// Per detector, per sample with ground truth for it: (sample index, outcome).
    outcomes: BTreeMap<Detector, Vec<(usize, Outcome)>>,
    /// Per sample: any finding of the profile, against any positive ground truth.
    any: Vec<Outcome>,
    /// The injection verdict alone.
    injection_latency: Latency,
    /// A whole inspection under the profile.
    inspection_latency: Latency,
    /// An inspection with only one detector on (normalisation and decoding included).
    detector_latency: Vec<(Detector, Latency)>,
}

pub(super) fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let (profile_name, profile) = load_profile(&args.profile)?;
    // Timings are of inspections, not of the findings cache.
    let guard = match &args.weights {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read weights {}", path.display()))?;
            let model =
                Model::from_bytes(&bytes).with_context(|| format!("weights {}", path.display()))?;
            Guard::with_injection(Injection::with_model(model))
        }
        None => Guard::new(),
    }
    .with_cache(0);
    let samples = load_samples(&args.data, &args.field)?;
    let measured = measure(&guard, &profile, &samples)?;
    let rows = rows(&samples, &measured);
    print(args, &profile_name, &profile, &rows, &measured)?;
    Ok(ExitCode::SUCCESS)
}

fn latency(mut micros: Vec<f64>) -> Latency {
    [0.5, 0.9, 0.99].map(|q| percentile(&mut micros, q))
}

/// Every text inspected in one pass per measurement, so one measurement does not warm the
/// caches for the next on the same text.
fn measure(guard: &Guard, profile: &Profile, samples: &[Sample]) -> anyhow::Result<Measured> {
    // The injection verdict: the model and signatures on the text and every decoded payload,
    // called at the threshold of the row's role.
    let mut micros = Vec::with_capacity(samples.len());
    let mut injection = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let started = Instant::now();
        let mut verdict = guard.injection_verdict(&s.text);
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        if s.role == Source::Definition {
            verdict = verdict.signatures_only();
        }
        let threshold = if s.role == Source::Tool {
            profile.injection.indirect_threshold
        } else {
            profile.injection.threshold
        };
        injection.push((
            i,
            Outcome {
                score: verdict.score,
                predicted: verdict.score >= threshold,
                label: s.label,
            },
        ));
    }
    let injection_latency = latency(micros);

    // The whole profile, as the gateway runs it.
    let policy = Policy::new(profile.clone())?;
    let mut micros = Vec::with_capacity(samples.len());
    let mut found: Vec<Vec<Detector>> = Vec::with_capacity(samples.len());
    for s in samples {
        let started = Instant::now();
        let decision = guard.inspect(&policy, &[part(s)], None);
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        found.push(
            decision
                .findings
                .iter()
                .map(|f| f.detection.detector)
                .collect(),
        );
    }
    let inspection_latency = latency(micros);
    let any = samples
        .iter()
        .zip(&found)
        .map(|(s, found)| Outcome {
            score: if found.is_empty() { 0.0 } else { 1.0 },
            predicted: !found.is_empty(),
            label: s.label || s.expect.values().any(|&e| e),
        })
        .collect();

    // Each detector the profile runs, alone.
    let mut detector_latency = Vec::new();
    for detector in DETECTORS {
        if !runs(profile, detector) {
            continue;
        }
        let mut alone = profile.clone();
        only(&mut alone, &[detector]);
        let policy = Policy::new(alone)?;
        let micros = samples
            .iter()
            .map(|s| {
                let started = Instant::now();
                guard.inspect(&policy, &[part(s)], None);
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        detector_latency.push((detector, latency(micros)));
    }

    // Other detectors on the rows that give their ground truth. A call is a finding under the
    // profile; the score ranking them for ROC AUC is the highest of the detector's findings
    // with no minimum PII score, so values the profile drops still rank above none.
    let mut outcomes = BTreeMap::from([(Detector::Injection, injection)]);
    if samples.iter().any(|s| !s.expect.is_empty()) {
        let mut unfiltered = profile.clone();
        unfiltered.pii.min_score = 0.0;
        let scoring = Policy::new(unfiltered)?;
        for (i, s) in samples.iter().enumerate() {
            if s.expect.is_empty() {
                continue;
            }
            let decision = guard.inspect(&scoring, &[part(s)], None);
            for (&detector, &label) in &s.expect {
                let score = decision
                    .findings
                    .iter()
                    .filter(|f| f.detection.detector == detector)
                    .map(|f| f.detection.score)
                    .fold(0.0, f32::max);
                let outcome = Outcome {
                    score,
                    predicted: found[i].contains(&detector),
                    label,
                };
                outcomes.entry(detector).or_default().push((i, outcome));
            }
        }
    }
    Ok(Measured {
        outcomes,
        any,
        injection_latency,
        inspection_latency,
        detector_latency,
    })
}

/// The sample as the one part of an input.
fn part(s: &Sample) -> Part<'_> {
    Part {
        text: &s.text,
        source: s.role,
    }
}

/// Whether `profile` runs `detector` on anything (banned and topic need lists).
fn runs(profile: &Profile, detector: Detector) -> bool {
    match detector {
        Detector::Injection => profile.injection.action != Action::Off,
        Detector::Pii => profile.pii.action != Action::Off,
        Detector::Secrets => profile.secrets != Action::Off,
        Detector::Invisible => profile.invisible != Action::Off,
        Detector::Banned => {
            profile.banned.action != Action::Off
                && !(profile.banned.substrings.is_empty() && profile.banned.patterns.is_empty())
        }
        Detector::Topic => profile.topics.action != Action::Off && !profile.topics.lists.is_empty(),
    }
}

/// The groups a sample is counted in: all, its data set, its data set and category, and its
/// role when the data has rows of more than one role.
fn groups(samples: &[Sample]) -> BTreeMap<String, Vec<usize>> {
    let several_roles = samples.iter().any(|s| s.role != Source::User);
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        groups.entry("all".into()).or_default().push(i);
        groups
            .entry(format!("source={}", s.source))
            .or_default()
            .push(i);
        if !s.category.is_empty() {
            groups
                .entry(format!("source={} category={}", s.source, s.category))
                .or_default()
                .push(i);
        }
        if several_roles {
            groups
                .entry(format!("role={}", role_name(s.role)))
                .or_default()
                .push(i);
        }
    }
    groups
}

/// Per group: each detector with ground truth in it, then all detectors together.
fn rows(samples: &[Sample], measured: &Measured) -> Vec<Row> {
    let mut rows = Vec::new();
    for (group, members) in groups(samples) {
        for (detector, outcomes) in &measured.outcomes {
            let picked: Vec<Outcome> = outcomes
                .iter()
                .filter(|(i, _)| members.binary_search(i).is_ok())
                .map(|&(_, o)| o)
                .collect();
            if !picked.is_empty() {
                rows.push(Row {
                    detector: detector.as_str(),
                    group: group.clone(),
                    metrics: Metrics::from_outcomes(&picked),
                });
            }
        }
        let any: Vec<Outcome> = members.iter().map(|&i| measured.any[i]).collect();
        rows.push(Row {
            detector: "all-detectors",
            group,
            metrics: Metrics::from_outcomes(&any),
        });
    }
    rows
}

fn print(
    args: &EvalArgs,
    profile_name: &str,
    profile: &Profile,
    rows: &[Row],
    measured: &Measured,
) -> anyhow::Result<()> {
    let (threshold, indirect) = (
        profile.injection.threshold,
        profile.injection.indirect_threshold,
    );
    let mut out = std::io::stdout().lock();
    match args.format {
        crate::Format::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|Row { detector, group, metrics: m }| {
                    serde_json::json!({"detector": detector, "group": group, "n": m.n, "accuracy": m.accuracy(), "balanced_accuracy": m.balanced_accuracy(),
                        "precision": m.precision(), "recall": m.recall(), "f1": m.f1(), "fpr": m.fpr(), "roc_auc": m.roc_auc})
                })
                .collect();
            let percentiles =
                |l: &Latency| serde_json::json!({"p50": l[0], "p90": l[1], "p99": l[2]});
            let detectors: serde_json::Map<String, serde_json::Value> = measured
                .detector_latency
                .iter()
                .map(|(d, l)| (d.as_str().to_owned(), percentiles(l)))
                .collect();
            // As written in the profile (0.7, not the f32's 0.699999988…).
            let decimal = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
            let doc = serde_json::json!({"profile": profile_name, "threshold": decimal(threshold), "indirect_threshold": decimal(indirect), "rows": rows,
                "injection_latency_us": percentiles(&measured.injection_latency),
                "inspection_latency_us": percentiles(&measured.inspection_latency),
                "detector_latency_us": detectors});
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        crate::Format::Table => {
            writeln!(
                out,
                "profile {profile_name} (injection threshold {threshold:.2}, {indirect:.2} for role=tool)"
            )?;
            writeln!(
                out,
                "{:<14} {:<52} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                "detector", "group", "n", "acc", "bal_acc", "prec", "recall", "f1", "fpr", "auc"
            )?;
            for Row {
                detector,
                group,
                metrics: m,
            } in rows
            {
                let auc = m
                    .roc_auc
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.4}"));
                writeln!(
                    out,
                    "{detector:<14} {group:<52} {:>6} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {auc:>7}",
                    m.n,
                    m.accuracy(),
                    m.balanced_accuracy(),
                    m.precision(),
                    m.recall(),
                    m.f1(),
                    m.fpr()
                )?;
            }
            writeln!(out, "latency per text, p50 / p90 / p99:")?;
            let line = |out: &mut dyn Write, what: &str, l: &Latency| {
                writeln!(
                    out,
                    "  {what:<52} {:>9.1} {:>9.1} {:>9.1} µs",
                    l[0], l[1], l[2]
                )
            };
            line(
                &mut out,
                "injection verdict (normalise + decode + score)",
                &measured.injection_latency,
            )?;
            line(
                &mut out,
                "whole inspection (every detector of the profile)",
                &measured.inspection_latency,
            )?;
            for (detector, l) in &measured.detector_latency {
                line(
                    &mut out,
                    &format!("{} alone (with normalise + decode)", detector.as_str()),
                    l,
                )?;
            }
        }
    }
    Ok(())
}
