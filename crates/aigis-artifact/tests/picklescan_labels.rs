//! Every sample of picklescan's test corpus (`../shared/data/model-scan/picklescan/tests/`,
//! read in place) gives the exit code its `labels.tsv` expects: 0 clean, 1 findings at or above
//! high, 2 not fully scanned. Skips with a notice when the shared data is absent, unless
//! `AIGIS_REQUIRE_SHARED=1`.

use std::path::{Path, PathBuf};

use aigis_report::{Report, Severity};

fn shared_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/model-scan/picklescan");
    if dir.join("labels.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("AIGIS_REQUIRE_SHARED").as_deref() != Ok("1"),
        "AIGIS_REQUIRE_SHARED=1 but {} is missing",
        dir.display()
    );
    eprintln!(
        "notice: {} not found; skipping the picklescan label test",
        dir.display()
    );
    None
}

fn exit_code(path: &Path) -> (i32, Report) {
    let outcome = aigis_artifact::scan::scan_file(path);
    let mut report = Report::new("aigis scan", "test");
    for f in outcome.findings {
        report.add(f);
    }
    for n in outcome.not_scanned {
        report.add_not_scanned(n);
    }
    (report.exit_code(Severity::High), report)
}

#[test]
fn every_label_is_met() {
    let Some(dir) = shared_dir() else { return };
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).expect("labels.tsv");
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in labels.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(path), Some(expected)) = (cols.first(), cols.get(2)) else {
            continue;
        };
        let expected: i32 = expected.parse().expect("exit code column");
        let (got, report) = exit_code(&dir.join(path));
        checked += 1;
        if got != expected {
            let mut out = Vec::new();
            report
                .render(aigis_report::Format::Table, &mut out)
                .expect("render");
            failures.push(format!(
                "{path}: expected exit {expected}, got {got} ({})\n{}",
                cols.get(3).unwrap_or(&""),
                String::from_utf8_lossy(&out)
            ));
        }
    }
    println!(
        "{checked} labelled samples checked, {} failed",
        failures.len()
    );
    assert!(checked > 100, "only {checked} labels read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Benign samples are not only below the exit threshold: they carry no finding at all.
#[test]
fn benign_samples_have_no_findings() {
    let Some(dir) = shared_dir() else { return };
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).expect("labels.tsv");
    for line in labels.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.get(1) != Some(&"benign") {
            continue;
        }
        let path = cols.first().expect("path");
        let (_, report) = exit_code(&dir.join(path));
        let found: Vec<String> = report
            .findings()
            .iter()
            .map(|f| format!("{} {}", f.rule_id(), f.message()))
            .collect();
        assert!(found.is_empty(), "{path}: {found:?}");
    }
}
