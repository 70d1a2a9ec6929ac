//! `aigis deps` end to end: database import and status, exit codes, formats, ignores, stale
//! warnings, and (with `AIGIS_PYTHON`) an installed environment read exactly as pip lists it.

#![allow(
    clippy::expect_used,
    reason = "test helpers fail the test on broken fixtures"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../aigis-supply/tests/fixtures")
}

fn aigis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .expect("aigis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(db: &Path) {
    let advisories = fixtures().join("deps-edge/advisories");
    let (code, out, err) = aigis(&[
        "deps",
        "db",
        "import",
        advisories.to_str().expect("utf-8"),
        "--db",
        db.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    // One record in the folder is broken on purpose: imported with exit 2 and a line number.
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken-record.json:3"), "{err}");
    assert!(err.contains("PyPI: 5 advisories"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("import JSON");
    assert_eq!(summary["issues"], 1, "{summary}");
}

#[test]
fn import_status_scan_exit_codes_and_formats() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deps-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("osv");
    let db_arg = db.to_str().expect("utf-8");
    import(&db);
    let (code, out, _) = aigis(&["deps", "db", "status", "--db", db_arg]);
    assert_eq!(code, 0);
    assert!(out.contains("PyPI"), "{out}");
    let (code, out, _) = aigis(&["deps", "db", "status", "--db", db_arg, "--format", "json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    assert_eq!(status["withdrawn"], 1);

    let ai = fixtures().join("deps-edge/ai/requirements.txt");
    let ai = ai.to_str().expect("utf-8");
    let (code, out, err) = aigis(&["deps", ai, "--db", db_arg]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("AIG-DEPS-002"), "{out}");
    assert!(out.contains("upgrade torch to 2.6.0"), "{out}");
    assert!(
        err.contains("warning: the advisory database is stale"),
        "test advisories are from 2025: {err}"
    );
    // Only typosquats (low) and nothing else at --fail-on critical is still 1 (torch is
    // critical); at a threshold above everything found the scan is clean.
    let (code, out, _) = aigis(&["deps", ai, "--db", db_arg, "--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let torch = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["properties"]["package"] == "torch")
        .expect("torch finding");
    assert_eq!(torch["properties"]["fix_all_version"], "2.6.0");
    assert_eq!(
        torch["properties"]["advisories"],
        "AIGIS-TEST-0001,CVE-2025-32434"
    );
    let (code, out, _) = aigis(&["deps", ai, "--db", db_arg, "--format", "sarif"]);
    assert_eq!(code, 1);
    let sarif: serde_json::Value = serde_json::from_str(&out).expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
    let (code, out, _) = aigis(&["deps", ai, "--db", db_arg, "--format", "cyclonedx-vex"]);
    assert_eq!(code, 1);
    let vex: serde_json::Value = serde_json::from_str(&out).expect("VEX");
    assert_eq!(vex["vulnerabilities"].as_array().map(Vec::len), Some(4));

    // Ignores: every vulnerability ignored leaves the low typosquats: exit 0 at medium.
    let mut args = vec!["deps", ai, "--db", db_arg, "--until", "2999-01-01"];
    for id in [
        "CVE-2025-32434",
        "AIGIS-TEST-0002",
        "CVE-2025-1550",
        "CVE-2024-34359",
    ] {
        args.extend(["--ignore", id]);
    }
    let (code, out, err) = aigis(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("AIG-DEPS-004"),
        "typosquats still listed: {out}"
    );
    // An expired ignore applies no more, and says so.
    let (code, _, err) = aigis(&[
        "deps",
        ai,
        "--db",
        db_arg,
        "--ignore",
        "CVE-2025-32434@2020-01-01",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("expired on 2020-01-01"), "{err}");
    let (code, _, err) = aigis(&[
        "deps", ai, "--db", db_arg, "--until", "tomorrow", "--ignore", "X",
    ]);
    assert_eq!(code, 2, "{err}");

    // Not fully scanned: a broken lockfile is exit 2 when nothing else fails.
    let broken = fixtures().join("deps-edge/broken/truncated/Cargo.lock");
    let (code, out, _) = aigis(&["deps", broken.to_str().expect("utf-8"), "--db", db_arg]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 7"), "{out}");
    // No database: exit 2 with the command that fixes it.
    let missing = dir.join("none");
    let (code, _, err) = aigis(&["deps", ai, "--db", missing.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(err.contains("aigis deps db import"), "{err}");
}

/// The project's test venv, read through its `*.dist-info` folders, gives exactly what
/// `pip list` says is installed.
#[test]
fn installed_environment_matches_pip_list() {
    let Some(python) = std::env::var_os("AIGIS_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!("skipping: AIGIS_PYTHON is not set");
        return;
    };
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "list",
            "--format",
            "json",
            "--disable-pip-version-check",
        ])
        .output()
        .expect("pip list");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("pip JSON");
    let mut expected: Vec<(String, String)> = listed
        .iter()
        .map(|p| {
            (
                normalize(p["name"].as_str().unwrap_or_default()),
                p["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    expected.sort();
    let out = Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .expect("site-packages");
    let site = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deps-cli-venv");
    let _ = std::fs::remove_dir_all(&dir);
    import(&dir.join("osv"));
    let (_, out, err) = aigis(&[
        "deps",
        &site,
        "--db",
        dir.join("osv").to_str().expect("utf-8"),
        "--format",
        "json",
        "--fail-on",
        "critical",
    ]);
    let count = err
        .lines()
        .find_map(|l| l.strip_prefix("scanned "))
        .expect("summary line");
    assert!(
        count.contains(&format!("{} packages", expected.len())),
        "aigis read `{count}`, pip lists {} packages: {expected:?}\n{out}",
        expected.len()
    );
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// `--python-version` and `--platform` choose what environment markers select; a bad value is
/// a usage error (exit 2).
#[test]
fn target_environment_options() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deps-cli-markers");
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("osv");
    import(&db);
    let db = db.to_str().expect("utf-8");
    let req = dir.join("requirements.txt");
    std::fs::write(&req, "torch==1.12.0 ; sys_platform == 'win32'\n").expect("write");
    let req = req.to_str().expect("utf-8");

    let (code, out, _) = aigis(&["deps", req, "--db", db, "--format", "json"]);
    assert_eq!(code, 0, "excluded on the default target (linux): {out}");
    assert!(
        out.contains("AIG-DEPS-006") && out.contains("CPython 3.12.0 on linux"),
        "{out}"
    );
    let (code, out, _) = aigis(&["deps", req, "--db", db, "--platform", "windows"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("torch"), "{out}");

    let (code, _, err) = aigis(&["deps", req, "--db", db, "--python-version", "three"]);
    assert_eq!(code, 2);
    assert!(err.contains("--python-version"), "{err}");
    let (code, _, err) = aigis(&["deps", req, "--db", db, "--platform", "solaris"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown platform `solaris`"), "{err}");
}

#[test]
fn online_mode_fails_with_exit_2_when_the_service_is_unreachable() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deps-cli-online");
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("no-db");
    let db = db.to_str().expect("utf-8");
    let project = fixtures().join("deps-online/project");
    let project = project.to_str().expect("utf-8");
    // A port nothing listens on: a listener's, closed again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let (code, out, err) = aigis(&[
        "deps",
        project,
        "--db",
        db,
        "--online",
        "--osv-url",
        &url,
        "--osv-timeout",
        "5",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no local advisory database"), "{err}");
    assert!(
        err.contains(&format!(
            "OSV service {url}/v1/querybatch: cannot reach the service"
        )),
        "{err}"
    );
    assert!(out.is_empty(), "no report on failure: {out}");

    // The online options need --online; a bad URL is refused before any scan.
    let (code, _, err) = aigis(&["deps", project, "--db", db, "--osv-url", &url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--online"), "{err}");
    let (code, _, err) = aigis(&["deps", project, "--online", "--osv-url", "api.osv.dev"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("must start with https://"), "{err}");
}
