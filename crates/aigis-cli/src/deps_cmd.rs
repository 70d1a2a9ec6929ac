//! `aigis deps`: scan lockfiles and environments against an offline OSV database, and manage
//! that database (`aigis deps db import|status`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aigis_report::Severity;
use aigis_supply::deps::{self, Database, Ignore, ScanOptions, db, time};
use anyhow::{Context as _, bail};
use clap::ValueEnum;

/// Find known vulnerabilities in your dependencies, offline.
///
/// Reads lockfiles, requirement files, SBOMs and installed Python environments, and matches
/// every pinned package against a local OSV advisory database with each ecosystem's own
/// version rules (PEP 440 for PyPI, SemVer for crates.io and npm, Go module versions).
/// Directories are searched (not entering .git, .venv and other hidden folders, node_modules,
/// target, site-packages, venv, __pycache__); a folder named explicitly is always searched.
///
/// Inputs: Cargo.lock; requirements*.txt and pip freeze output (-r/-c includes, hashes,
/// extras; PEP 508 markers evaluated for --python-version/--platform); poetry.lock, uv.lock, Pipfile.lock, pdm.lock; *.dist-info/METADATA of an
/// installed environment (name the venv or site-packages folder); package-lock.json (v1-v3),
/// npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock (classic and berry); go.mod (go.sum where
/// there is no go.mod); environment.yml (its pip: section); CycloneDX JSON SBOMs (*.cdx.json,
/// bom.json, sbom.json, or any .json named explicitly).
///
/// Each vulnerability is one finding (aliases such as CVE, GHSA, PYSEC and RUSTSEC ids merged)
/// with its severity (CVSS v2/v3/v4 scored; no severity counts as high) and the smallest
/// version that fixes every known advisory of the package. Unpinned requirements and names one
/// typo away from popular AI packages are low findings. Advisories with only GIT commit ranges
/// cannot be evaluated offline and are listed as info.
///
/// First import a database (once, and again to refresh it):
///
///   aigis deps db import PyPI.zip crates.io.zip    (OSV exports, or folders of OSV records)
///   aigis deps db status
///
/// Exit codes: 0 nothing at or above --fail-on and every input fully read; 1 a finding at or
/// above --fail-on; 2 an input could not be (fully) read, no database, or --online could not
/// get an answer. A stale database is a warning only.
///
/// Examples:
///
///   aigis deps                                   (the current folder, recursively)
///
///   aigis deps Cargo.lock requirements.txt --fail-on high
///
///   aigis deps . --format sarif > deps.sarif
///
///   aigis deps --ignore GHSA-xxxx-yyyy-zzzz --until 2026-12-31
///
///   aigis deps --online                          (also ask api.osv.dev; needs network)
#[derive(clap::Args)]
#[command(verbatim_doc_comment, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DbCommand>,
    #[command(flatten)]
    scan: ScanArgs,
}

#[derive(clap::Args)]
struct ScanArgs {
    /// Files or folders to scan (default: the current folder).
    paths: Vec<PathBuf>,
    /// The advisory database folder [default: $XDG_CACHE_HOME/aigis/osv or ~/.cache/aigis/osv].
    #[arg(long, env = "AIGIS_OSV_DB", global = true)]
    db: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Exit 1 when a finding is at or above this severity: critical, high, medium, low, info.
    #[arg(long, default_value = "medium")]
    fail_on: Severity,
    /// Leave out a vulnerability by any of its ids (CVE-…, GHSA-…, PYSEC-…, RUSTSEC-…).
    /// Repeatable; `ID@YYYY-MM-DD` gives this id its own expiry date.
    #[arg(long, value_name = "ID")]
    ignore: Vec<String>,
    /// The --ignore ids stop applying on this day (YYYY-MM-DD, UTC); a warning then names them.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Warn when the database's newest advisory is older than this (e.g. 7d, 30d, 12h).
    #[arg(long, default_value = "30d")]
    max_db_age: String,
    /// Do not report names that look like popular AI packages.
    #[arg(long)]
    no_typosquat: bool,
    /// The Python version environment markers (`; python_version < "3.9"`) are evaluated for:
    /// MAJOR.MINOR or MAJOR.MINOR.MICRO. Requirements whose marker is false there are listed
    /// as excluded (info), not matched.
    #[arg(long, value_name = "X.Y", default_value = deps::markers::DEFAULT_PYTHON)]
    python_version: String,
    /// The operating system markers (`sys_platform`, `platform_system`, `os_name`) are
    /// evaluated for: linux (x86_64), macos (arm64) or windows (AMD64).
    #[arg(long, value_name = "OS", default_value = "linux")]
    platform: String,
    /// Also ask the OSV API which advisories affect the packages found, and match those
    /// records like the local ones (results merged, one finding per vulnerability). Sends each
    /// distinct name and version (POST /v1/querybatch, 1000 per request), then fetches each
    /// advisory named (GET /v1/vulns/ID, once per run). Needs network access; a service that
    /// cannot be reached is an error (exit 2), never a clean result. Works without a local
    /// database (then only the service's answers are used).
    #[arg(long)]
    online: bool,
    /// The OSV API for --online (a mirror, or a local test server) [default: https://api.osv.dev].
    #[arg(long, value_name = "URL", requires = "online")]
    osv_url: Option<String>,
    /// Seconds allowed for each --online request, answer included.
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "online")]
    osv_timeout: u64,
}

#[derive(clap::Subcommand)]
enum DbCommand {
    /// Manage the advisory database.
    #[command(subcommand)]
    Db(DbAction),
}

#[derive(clap::Subcommand)]
enum DbAction {
    /// Build the database from OSV records: OSV zip exports (e.g. PyPI.zip, crates.io.zip),
    /// folders of OSV JSON or YAML records (e.g. a checkout of the PyPA or RustSec advisory
    /// database), or single record files. Replaces the database; give every source at once.
    ///
    /// Exit codes: 0 every record imported; 2 the database could not be built, or it was built
    /// without some records that could not be read (each is named, with its file and line).
    ///
    /// Example: aigis deps db import PyPI.zip crates.io.zip ./advisory-db
    Import {
        /// Zip archives, folders or record files.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// Output format of the summary (JSON: the database's metadata, as `db status`).
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
    /// Show the database's age, sources and counts per ecosystem.
    ///
    /// Example: aigis deps db status --format json
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
}

/// Report formats.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Human-readable table.
    Table,
    /// JSON (aigis report document; each finding's `properties` hold package, version, ids,
    /// fixed versions).
    Json,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
    /// CycloneDX 1.6 VEX document (components and vulnerabilities).
    CyclonedxVex,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusFormat {
    /// Human-readable.
    Table,
    /// JSON: the database's metadata.
    Json,
}

fn db_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => db::default_dir()
            .context("neither XDG_CACHE_HOME nor HOME is set; give the database folder with --db"),
    }
}

/// Runs `aigis deps`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = db_dir(args.scan.db.as_deref())?;
    match &args.command {
        Some(DbCommand::Db(DbAction::Import { sources, format })) => import(sources, &dir, *format),
        Some(DbCommand::Db(DbAction::Status { format })) => status(&dir, *format),
        None => scan(&args.scan, &dir),
    }
}

fn import(sources: &[PathBuf], dir: &Path, format: StatusFormat) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let spinner = crate::progress::spinner("{spinner} importing advisories {elapsed}");
    let meta = db::import(sources, dir);
    spinner.finish_and_clear();
    let meta = meta?;
    if let StatusFormat::Json = format {
        println!("{}", serde_json::to_string_pretty(&meta)?);
    }
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "imported {} records into {} in {:.1} s ({} withdrawn, {} other ecosystems, {} unreadable)",
        meta.records_read,
        dir.display(),
        started.elapsed().as_secs_f64(),
        meta.withdrawn,
        meta.other_ecosystems,
        meta.issues
    )?;
    for (eco, counts) in &meta.ecosystems {
        writeln!(
            err,
            "  {eco}: {} advisories, {} packages",
            counts.advisories, counts.packages
        )?;
    }
    for issue in &meta.issue_samples {
        writeln!(
            err,
            "  not imported: {}:{}: {}",
            issue.file, issue.line, issue.message
        )?;
    }
    Ok(ExitCode::from(if meta.issues > 0 { 2 } else { 0 }))
}

fn status(dir: &Path, format: StatusFormat) -> anyhow::Result<ExitCode> {
    let database = Database::open(dir)?;
    let meta = database.meta();
    let now = db::now_secs();
    let mut out = std::io::stdout().lock();
    if let StatusFormat::Json = format {
        let mut value = serde_json::to_value(meta)?;
        value["size_bytes"] = database.size_on_disk().into();
        value["data_age_days"] = meta.data_age_secs(now).map(|s| s / 86_400).into();
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "database:   {}", dir.display())?;
    writeln!(
        out,
        "imported:   {} ({} days ago)",
        time::format_date(meta.imported_at),
        now.saturating_sub(meta.imported_at) / 86_400
    )?;
    match meta.data_age_secs(now) {
        Some(age) => writeln!(
            out,
            "newest:     {} ({} days old)",
            meta.newest_modified,
            age / 86_400
        )?,
        None => writeln!(out, "newest:     unknown")?,
    }
    writeln!(out, "size:       {} bytes", database.size_on_disk())?;
    writeln!(out, "sources:    {}", meta.sources.join(", "))?;
    writeln!(
        out,
        "records:    {} read, {} withdrawn (ignored), {} other ecosystems, {} unreadable",
        meta.records_read, meta.withdrawn, meta.other_ecosystems, meta.issues
    )?;
    writeln!(
        out,
        "{:<12} {:>10} {:>10}",
        "ecosystem", "advisories", "packages"
    )?;
    for (eco, counts) in &meta.ecosystems {
        writeln!(
            out,
            "{:<12} {:>10} {:>10}",
            eco.as_str(),
            counts.advisories,
            counts.packages
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ignores(args: &ScanArgs) -> anyhow::Result<Vec<Ignore>> {
    let until = match &args.until {
        Some(date) => Some(
            time::parse_date(date)
                .with_context(|| format!("--until `{date}` is not a date (YYYY-MM-DD)"))?,
        ),
        None => None,
    };
    args.ignore
        .iter()
        .map(|raw| {
            let (id, own) = match raw.split_once('@') {
                Some((id, date)) => {
                    let d = time::parse_date(date).with_context(|| {
                        format!("--ignore `{raw}`: `{date}` is not a date (YYYY-MM-DD)")
                    })?;
                    (id, Some(d))
                }
                None => (raw.as_str(), until),
            };
            if id.trim().is_empty() {
                bail!("--ignore needs an advisory id");
            }
            Ok(Ignore {
                id: id.trim().to_owned(),
                until: own,
            })
        })
        .collect()
}

fn online(args: &ScanArgs) -> anyhow::Result<Option<deps::online::Online>> {
    if !args.online {
        return Ok(None);
    }
    if args.osv_timeout == 0 {
        bail!("--osv-timeout must be at least 1 second");
    }
    let mut online =
        deps::online::Online::new(args.osv_url.as_deref().unwrap_or(deps::online::DEFAULT_URL))?;
    online.timeout = std::time::Duration::from_secs(args.osv_timeout);
    Ok(Some(online))
}

fn scan(args: &ScanArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let options = ScanOptions {
        ignores: ignores(args)?,
        now: db::now_secs(),
        typosquats: !args.no_typosquat,
        environment: deps::markers::Environment::new(
            &args.python_version,
            args.platform.parse().map_err(anyhow::Error::msg)?,
        )
        .map_err(|e| anyhow::anyhow!("--python-version: {e}"))?,
        online: online(args)?,
    };
    let max_age = time::parse_duration(&args.max_db_age).with_context(|| {
        format!(
            "--max-db-age `{}` is not a duration (e.g. 30d, 12h)",
            args.max_db_age
        )
    })?;
    let database = match Database::open(dir) {
        Err(db::DbError::Missing(_)) if options.online.is_some() => {
            eprintln!(
                "notice: no local advisory database at {}; using the OSV service's answers only",
                dir.display()
            );
            Database::online_only(dir)
        }
        opened => opened?,
    };
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let result = deps::scan(&paths, &database, &options)?;
    let mut err = std::io::stderr().lock();
    if let Some(age) = database.meta().data_age_secs(options.now)
        && age > max_age
    {
        writeln!(
            err,
            "warning: the advisory database is stale: its newest record ({}) is {} days old \
             (--max-db-age {}); refresh it with `aigis deps db import`",
            database.meta().newest_modified,
            age / 86_400,
            args.max_db_age
        )?;
    }
    for expired in &result.expired_ignores {
        writeln!(
            err,
            "warning: --ignore {} expired on {}; it is reported again",
            expired.id,
            expired.until.map(time::format_date).unwrap_or_default()
        )?;
    }
    for (ids, file, package) in &result.ignored {
        writeln!(err, "ignored: {} in {package} ({file})", ids.join(", "))?;
    }
    if let Some(online) = &result.online {
        writeln!(
            err,
            "online: asked {} about {} package versions in {} requests; {} advisories fetched \
             ({} withdrawn, ignored)",
            online.url, online.queried, online.requests, online.records, online.withdrawn
        )?;
    }
    writeln!(
        err,
        "scanned {} inputs: {} packages ({} distinct)",
        result.inputs.len(),
        result.package_occurrences,
        result.distinct_packages
    )?;
    let report = deps::report::to_report(&result, env!("CARGO_PKG_VERSION"));
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Table => report.render(aigis_report::Format::Table, &mut out)?,
        Format::Json => report.render(aigis_report::Format::Json, &mut out)?,
        Format::Sarif => report.render(aigis_report::Format::Sarif, &mut out)?,
        Format::CyclonedxVex => deps::vex::write(&result, env!("CARGO_PKG_VERSION"), &mut out)?,
    }
    Ok(ExitCode::from(
        u8::try_from(report.exit_code(args.fail_on)).unwrap_or(2),
    ))
}
