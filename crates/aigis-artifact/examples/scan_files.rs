//! Scans the files given on the command line with the library alone (no CLI, no rendering) and
//! prints one line per file: `exit findings not_scanned path`. Used by `bench/scan.sh` when the
//! release CLI is not built (`cargo run --release -p aigis-artifact --example scan_files`).

use aigis_report::Severity;

fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let (files, skipped) = aigis_artifact::scan::collect_files(&paths);
    let outcomes = aigis_artifact::scan::scan_files(&files, 0, &|| {});
    let mut worst = 0;
    for (file, o) in files.iter().zip(&outcomes) {
        let high = o.findings.iter().any(|f| f.severity() >= Severity::High);
        let code = if high {
            1
        } else if o.not_scanned.is_empty() {
            0
        } else {
            2
        };
        if code == 1 || (code == 2 && worst == 0) {
            worst = code;
        }
        println!(
            "{code} {} {} {}",
            o.findings.len(),
            o.not_scanned.len(),
            file.display()
        );
    }
    if !skipped.is_empty() && worst == 0 {
        worst = 2;
    }
    std::process::exit(worst);
}
