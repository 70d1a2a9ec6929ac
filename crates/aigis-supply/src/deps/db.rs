//! The local advisory database: import OSV records into a compact index, report its status, and
//! load the advisories for the packages a scan found.
//!
//! # On disk
//!
//! A directory (default `$XDG_CACHE_HOME/aigis/osv`, else `$HOME/.cache/aigis/osv`) with
//! `meta.json` (format version, import time, sources, counts) and one gzip file per ecosystem,
//! `<ecosystem>.idx.gz`. Each line of an index file is `normalised-name TAB advisory-json`,
//! sorted by name; an advisory affecting several packages appears once per package with only
//! that package's `affected` entries. A scan streams the files of the ecosystems it needs and
//! parses only the lines of packages it has, so memory follows the project, not the database.
//!
//! An import writes into a fresh sibling directory and renames it into place, so a failed or
//! interrupted import leaves the previous database intact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ecosystem::Ecosystem;
use super::osv::{self, Advisory, Parsed, Syntax};
use super::time;
use super::zipread;

/// Version of the on-disk index; a different version asks for a re-import.
pub const DB_FORMAT_VERSION: u32 = 1;
/// Most advisories one import accepts.
pub const MAX_RECORDS: usize = 2_000_000;
/// Deepest directory nesting walked when importing a directory.
pub const MAX_IMPORT_DEPTH: usize = 16;
/// Import problems kept in `meta.json` (the count is always exact).
pub const MAX_KEPT_ISSUES: usize = 100;
/// Records parsed per parallel batch when reading an archive.
const ZIP_BATCH: usize = 4096;

/// Errors of the database commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// An input or database file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// No database at the path.
    #[error(
        "no advisory database at {0}; import one first: aigis deps db import DIR|ZIP \
         (e.g. an OSV export such as PyPI.zip, or a directory of OSV records)"
    )]
    Missing(PathBuf),
    /// The database was written by a different version of aigis.
    #[error(
        "{path}: database format {found} is not supported (this build reads {DB_FORMAT_VERSION}); \
         import it again with `aigis deps db import`"
    )]
    Format {
        /// The meta file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// `meta.json` or an index line is corrupt.
    #[error("{path}: corrupt database ({message}); import it again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Too many records.
    #[error("more than {MAX_RECORDS} advisories; import fewer ecosystems at once")]
    TooMany,
    /// An import found no record at all.
    #[error("no OSV records found in {0}; expected *.json or *.yaml OSV files or a zip of them")]
    Empty(String),
    /// The online mode failed (the scan is not reported as clean).
    #[error(transparent)]
    Online(#[from] super::online::OnlineError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Counts for one ecosystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcosystemCounts {
    /// Advisories with at least one entry for the ecosystem.
    pub advisories: usize,
    /// Distinct packages named.
    pub packages: usize,
}

/// A record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIssue {
    /// The file (or `archive.zip!member`).
    pub file: String,
    /// 1-based line, when known.
    pub line: u64,
    /// What was wrong.
    pub message: String,
}

/// `meta.json`: what `db status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// [`DB_FORMAT_VERSION`].
    pub format_version: u32,
    /// When the import ran (seconds since the Unix epoch).
    pub imported_at: u64,
    /// The newest `modified` time among the records (RFC 3339): how fresh the data is.
    pub newest_modified: String,
    /// The inputs imported.
    pub sources: Vec<String>,
    /// Counts per ecosystem.
    pub ecosystems: BTreeMap<Ecosystem, EcosystemCounts>,
    /// Records read in total (including withdrawn and other ecosystems).
    pub records_read: usize,
    /// Withdrawn records ignored.
    pub withdrawn: usize,
    /// Records with no entry of a supported ecosystem.
    pub other_ecosystems: usize,
    /// Records that could not be parsed (count).
    pub issues: usize,
    /// The first [`MAX_KEPT_ISSUES`] problems.
    #[serde(default)]
    pub issue_samples: Vec<ImportIssue>,
}

impl Meta {
    /// Age of the newest record in seconds at `now`, if its time parses.
    pub fn data_age_secs(&self, now: u64) -> Option<u64> {
        time::parse_rfc3339(&self.newest_modified).map(|t| now.saturating_sub(t))
    }
}

/// The default database directory: `$XDG_CACHE_HOME/aigis/osv`, else `$HOME/.cache/aigis/osv`.
pub fn default_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".cache")))
        .map(|c| c.join("aigis").join("osv"))
}

/// Seconds since the Unix epoch now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Collected {
    advisories: Vec<Advisory>,
    records_read: usize,
    withdrawn: usize,
    other: usize,
    issues: Vec<ImportIssue>,
    issue_count: usize,
}

impl Collected {
    fn new() -> Self {
        Self {
            advisories: Vec::new(),
            records_read: 0,
            withdrawn: 0,
            other: 0,
            issues: Vec::new(),
            issue_count: 0,
        }
    }

    fn add(
        &mut self,
        file: String,
        outcome: Result<Parsed, osv::RecordError>,
    ) -> Result<(), DbError> {
        self.records_read += 1;
        match outcome {
            Ok(Parsed::Withdrawn(_)) => self.withdrawn += 1,
            Ok(Parsed::Advisory(a)) if a.affected.is_empty() => self.other += 1,
            Ok(Parsed::Advisory(a)) => {
                if self.advisories.len() >= MAX_RECORDS {
                    return Err(DbError::TooMany);
                }
                self.advisories.push(a);
            }
            Err(e) => self.issue(file, e.line, e.message),
        }
        Ok(())
    }

    fn issue(&mut self, file: String, line: u64, message: String) {
        self.issue_count += 1;
        if self.issues.len() < MAX_KEPT_ISSUES {
            self.issues.push(ImportIssue {
                file,
                line,
                message,
            });
        }
    }
}

/// Imports every OSV record under `sources` (directories, zip archives or single record files)
/// into a new database at `db_dir`, replacing the one there.
pub fn import(sources: &[PathBuf], db_dir: &Path) -> Result<Meta, DbError> {
    let mut collected = Collected::new();
    for source in sources {
        let meta = fs::metadata(source).map_err(io_err(source))?;
        if meta.is_dir() {
            import_dir(source, &mut collected)?;
        } else if is_zip(source) {
            import_zip(source, &mut collected)?;
        } else {
            let name = source.display().to_string();
            let syntax = Syntax::for_name(&name).unwrap_or(Syntax::Json);
            let bytes = read_bounded(source).map_err(io_err(source))?;
            collected.add(name, osv::parse_record(&bytes, syntax))?;
        }
    }
    if collected.records_read == 0 {
        let names: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
        return Err(DbError::Empty(names.join(", ")));
    }
    write_db(collected, sources, db_dir)
}

fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06")
}

fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let len = fs::metadata(path)?.len();
    if len > osv::MAX_RECORD_BYTES as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{len} bytes, larger than the {}-byte record limit",
                osv::MAX_RECORD_BYTES
            ),
        ));
    }
    fs::read(path)
}

fn import_dir(dir: &Path, collected: &mut Collected) -> Result<(), DbError> {
    let mut files = Vec::new();
    walk_records(dir, 0, &mut files, collected);
    files.sort();
    let parsed: Vec<(String, Result<Parsed, osv::RecordError>)> = files
        .par_iter()
        .map(|(path, syntax)| {
            let name = path.display().to_string();
            let outcome = read_bounded(path)
                .map_err(|e| osv::RecordError {
                    line: 1,
                    message: e.to_string(),
                })
                .and_then(|bytes| osv::parse_record(&bytes, *syntax));
            (name, outcome)
        })
        .collect();
    for (name, outcome) in parsed {
        collected.add(name, outcome)?;
    }
    Ok(())
}

fn walk_records(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, Syntax)>,
    collected: &mut Collected,
) {
    if depth > MAX_IMPORT_DEPTH {
        collected.issue(
            dir.display().to_string(),
            0,
            format!("deeper than {MAX_IMPORT_DEPTH} directories; not imported"),
        );
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            collected.issue(dir.display().to_string(), 0, e.to_string());
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            walk_records(&path, depth + 1, out, collected);
        } else if kind.is_file()
            && let Some(syntax) = Syntax::for_name(&name)
        {
            out.push((path, syntax));
        }
    }
}

fn import_zip(path: &Path, collected: &mut Collected) -> Result<(), DbError> {
    let mut archive = zipread::Archive::open(path).map_err(io_err(path))?;
    let wanted: Vec<(usize, Syntax)> = archive
        .members()
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Syntax::for_name(&m.name).map(|s| (i, s)))
        .collect();
    let prefix = path.display().to_string();
    for batch in wanted.chunks(ZIP_BATCH) {
        let mut raws = Vec::with_capacity(batch.len());
        for &(index, syntax) in batch {
            match archive.read_raw(index) {
                Ok(raw) => raws.push((raw, syntax)),
                Err(e) => collected.issue(prefix.clone(), 0, e.to_string()),
            }
        }
        let parsed: Vec<(String, Result<Parsed, osv::RecordError>)> = raws
            .par_iter()
            .map(|(raw, syntax)| {
                let name = format!("{prefix}!{}", raw.member.name);
                let outcome = raw
                    .inflate()
                    .map_err(|e| osv::RecordError {
                        line: 1,
                        message: e.to_string(),
                    })
                    .and_then(|bytes| osv::parse_record(&bytes, *syntax));
                (name, outcome)
            })
            .collect();
        for (name, outcome) in parsed {
            collected.add(name, outcome)?;
        }
    }
    Ok(())
}

fn write_db(collected: Collected, sources: &[PathBuf], db_dir: &Path) -> Result<Meta, DbError> {
    // The same id from two sources: the most recently modified record wins.
    let mut by_id: HashMap<String, Advisory> = HashMap::with_capacity(collected.advisories.len());
    for advisory in collected.advisories {
        match by_id.get(&advisory.id) {
            Some(old) if old.modified >= advisory.modified => {}
            _ => {
                by_id.insert(advisory.id.clone(), advisory);
            }
        }
    }
    let newest_modified = by_id
        .values()
        .map(|a| a.modified.as_str())
        .max()
        .unwrap_or_default()
        .to_owned();
    // One line per (ecosystem, package, advisory).
    let mut lines: BTreeMap<Ecosystem, Vec<(String, String)>> = BTreeMap::new();
    let mut counts: BTreeMap<Ecosystem, (HashSet<String>, usize)> = BTreeMap::new();
    for advisory in by_id.values() {
        let mut per_package: BTreeMap<(Ecosystem, String), Vec<&osv::Affected>> = BTreeMap::new();
        for entry in &advisory.affected {
            let key = (entry.ecosystem, entry.ecosystem.normalize_name(&entry.name));
            per_package.entry(key).or_default().push(entry);
        }
        let mut ecosystems_seen = HashSet::new();
        for ((eco, name), entries) in per_package {
            let slice = Advisory {
                affected: entries.into_iter().cloned().collect(),
                ..advisory.clone()
            };
            let json = serde_json::to_string(&slice).map_err(|e| DbError::Corrupt {
                path: db_dir.to_path_buf(),
                message: e.to_string(),
            })?;
            let count = counts.entry(eco).or_default();
            count.0.insert(name.clone());
            if ecosystems_seen.insert(eco) {
                count.1 += 1;
            }
            lines.entry(eco).or_default().push((name, json));
        }
    }
    let tmp = sibling(db_dir, ".importing");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    lines
        .par_iter_mut()
        .map(|(eco, lines)| {
            lines.sort();
            write_index(&tmp.join(index_name(*eco)), lines)
        })
        .collect::<Result<Vec<()>, DbError>>()?;
    let meta = Meta {
        format_version: DB_FORMAT_VERSION,
        imported_at: now_secs(),
        newest_modified,
        sources: sources.iter().map(|s| s.display().to_string()).collect(),
        ecosystems: counts
            .into_iter()
            .map(|(eco, (names, advisories))| {
                (
                    eco,
                    EcosystemCounts {
                        advisories,
                        packages: names.len(),
                    },
                )
            })
            .collect(),
        records_read: collected.records_read,
        withdrawn: collected.withdrawn,
        other_ecosystems: collected.other,
        issues: collected.issue_count,
        issue_samples: collected.issues,
    };
    let meta_path = tmp.join("meta.json");
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| DbError::Corrupt {
        path: meta_path.clone(),
        message: e.to_string(),
    })?;
    fs::write(&meta_path, json).map_err(io_err(&meta_path))?;
    let old = sibling(db_dir, ".old");
    let _ = fs::remove_dir_all(&old);
    if db_dir.exists() {
        fs::rename(db_dir, &old).map_err(io_err(db_dir))?;
    }
    fs::rename(&tmp, db_dir).map_err(io_err(db_dir))?;
    let _ = fs::remove_dir_all(&old);
    Ok(meta)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

fn index_name(eco: Ecosystem) -> String {
    format!("{}.idx.gz", eco.file_key())
}

fn write_index(path: &Path, lines: &[(String, String)]) -> Result<(), DbError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), Compression::new(6));
    for (name, json) in lines {
        writeln!(gz, "{name}\t{json}").map_err(io_err(path))?;
    }
    gz.finish()
        .and_then(|mut w| w.flush())
        .map_err(io_err(path))
}

/// An opened database.
#[derive(Debug, Clone)]
pub struct Database {
    dir: PathBuf,
    meta: Meta,
    /// No local data ([`Database::online_only`]).
    online_only: bool,
}

impl Database {
    /// Opens the database at `dir`.
    pub fn open(dir: &Path) -> Result<Self, DbError> {
        let meta_path = dir.join("meta.json");
        let text = match fs::read(&meta_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DbError::Missing(dir.to_path_buf()));
            }
            Err(e) => return Err(io_err(&meta_path)(e)),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| DbError::Corrupt {
                path: meta_path.clone(),
                message: e.to_string(),
            })?;
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if found != u64::from(DB_FORMAT_VERSION) {
            return Err(DbError::Format {
                path: meta_path,
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let meta = serde_json::from_value(value).map_err(|e| DbError::Corrupt {
            path: meta_path,
            message: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            online_only: false,
        })
    }

    /// No local advisories, for a scan that asks only the OSV API (`--online` without an
    /// imported database at `dir`). Its lookups return nothing and it reports no age.
    pub fn online_only(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            meta: Meta {
                format_version: DB_FORMAT_VERSION,
                imported_at: 0,
                newest_modified: String::new(),
                sources: Vec::new(),
                ecosystems: BTreeMap::new(),
                records_read: 0,
                withdrawn: 0,
                other_ecosystems: 0,
                issues: 0,
                issue_samples: Vec::new(),
            },
            online_only: true,
        }
    }

    /// Whether this is [`Database::online_only`].
    pub fn is_online_only(&self) -> bool {
        self.online_only
    }

    /// What `meta.json` says.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total size of the database files in bytes.
    pub fn size_on_disk(&self) -> u64 {
        fs::read_dir(&self.dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
    }

    /// The advisories of `eco` naming any of `names` (normalised), by normalised name.
    pub fn advisories_for(
        &self,
        eco: Ecosystem,
        names: &HashSet<String>,
    ) -> Result<HashMap<String, Vec<Advisory>>, DbError> {
        let mut out: HashMap<String, Vec<Advisory>> = HashMap::new();
        if self.online_only {
            return Ok(out);
        }
        let path = self.dir.join(index_name(eco));
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if names.is_empty() {
            return Ok(out);
        }
        let reader = BufReader::new(flate2::read::GzDecoder::new(BufReader::new(file)));
        for (number, line) in reader.lines().enumerate() {
            let line = line.map_err(io_err(&path))?;
            let Some((name, json)) = line.split_once('\t') else {
                return Err(DbError::Corrupt {
                    path,
                    message: format!("line {} has no name", number + 1),
                });
            };
            if !names.contains(name) {
                continue;
            }
            let advisory: Advisory = serde_json::from_str(json).map_err(|e| DbError::Corrupt {
                path: path.clone(),
                message: format!("line {}: {e}", number + 1),
            })?;
            out.entry(name.to_owned()).or_default().push(advisory);
        }
        Ok(out)
    }
}
