//! `aigis audit …`: the tamper-evident ledger: create its key, read it, verify it, prove one
//! request with a receipt anyone can check offline, export to a SIEM, prune content.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aigis_ledger::audit::{self, VerifyReport};
use aigis_ledger::checkpoint::Checkpoint;
use aigis_ledger::note::Note;
use aigis_ledger::store::{self, LogReader, StoreUrl};
use aigis_ledger::{Event, LedgerKeys, LedgerVerifiers, export, time};
use anyhow::{Context, bail};

use crate::Format;

mod content;

use content::content;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create the ledger key (Ed25519 checkpoint key, ML-DSA-65 cosigning key, content-digest
    /// key) and print the public verifier keys auditors need.
    ///
    /// The key file is written with mode 0600 and never overwritten; the verifier keys are
    /// also written to KEY.pub. Point `[ledger] signing_key` at the key file.
    ///
    /// Exit codes: 0 created; 2 could not (the key file exists, an unwritable folder).
    ///
    /// Example: aigis audit init --key /etc/aigis/ledger.key --origin aigis.example.com/ledger
    Init {
        /// Where to write the key file.
        #[arg(long)]
        key: PathBuf,
        /// The log's name, a schema-less URL you control (first line of every checkpoint).
        #[arg(long, default_value = "aigis.local/ledger")]
        origin: String,
        /// Only print the verifier keys of an existing key file.
        #[arg(long)]
        print: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show the latest entries. Exits 2 when an entry could not be read (named on stderr).
    ///
    /// Example: aigis audit tail --config aigis.toml -n 5 --format json
    Tail {
        #[command(flatten)]
        target: Target,
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Output format (json: one canonical event per line).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Verify the whole log: recompute the Merkle tree from every entry, check every
    /// checkpoint's signatures and that each signed root matches the entries (successive
    /// checkpoints are then consistent), and name the first bad entry.
    ///
    /// Detects edited, deleted, reordered and truncated rows. A truncation that also removed
    /// the later checkpoints is caught with --anchor: a checkpoint saved elsewhere earlier.
    ///
    /// Exit codes: 0 the log verifies, 1 a problem was found, 2 could not read the log.
    Verify {
        #[command(flatten)]
        target: Target,
        /// A checkpoint kept outside the store (repeatable): the log must still contain it.
        #[arg(long)]
        anchor: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Write a receipt for one request: the event, its inclusion proof and the signed
    /// checkpoint. `aigis audit verify-receipt` checks it with only the public keys.
    ///
    /// Exit codes: 0 written; 2 could not (no such request, no checkpoint covers it yet, an
    /// unreadable log).
    ///
    /// Example: aigis audit prove --config aigis.toml --request-id 5f0c… -o receipt.json
    Prove {
        #[command(flatten)]
        target: Target,
        /// The request id (the `x-request-id` the gateway returned).
        #[arg(long)]
        request_id: String,
        /// The entry to prove when several events have this request id (a client may send
        /// its own `x-request-id`); without it, such an id is an error that lists them.
        #[arg(long)]
        index: Option<u64>,
        /// Write the receipt here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify a receipt offline with the public verifier keys only.
    ///
    /// Exit codes: 0 valid, 1 invalid (forged, altered or another log's), 2 could not read.
    ///
    /// Example: aigis audit verify-receipt receipt.json --vkeys ledger.key.pub
    VerifyReceipt {
        /// The receipt file (`-` for stdin).
        receipt: PathBuf,
        /// File with the verifier keys (`aigis audit init` prints them and writes KEY.pub).
        #[arg(long, conflicts_with = "vkey")]
        vkeys: Option<PathBuf>,
        /// A verifier key given inline (repeat for the cosigning key).
        #[arg(long)]
        vkey: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Export events for a SIEM: JSON lines, OCSF 1.3 (API Activity 6003, Authentication
    /// 3002, Account Change 3001, Detection Finding 2004) or CEF.
    ///
    /// Exit codes: 0 everything exported, 2 an entry could not be read (each is named on
    /// stderr and skipped; the rest is exported) or the store could not be opened.
    ///
    /// Example: aigis audit export --config aigis.toml --format ocsf --since 24h
    Export {
        #[command(flatten)]
        target: Target,
        /// Export format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events at or after this time: a date, a UTC time or an age (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Write the log as static C2SP tlog-tiles files (checkpoint, hash tiles, entry bundles)
    /// that any tlog client can fetch and check, e.g. behind a plain web server.
    ///
    /// Exit codes: 0 written; 2 could not (an unreadable log, an unwritable folder).
    ///
    /// Example: aigis audit tiles --config aigis.toml --out /srv/ledger
    Tiles {
        #[command(flatten)]
        target: Target,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Decrypt the captured content of one request (routes with `content = "encrypted"`):
    /// the request as the gateway received it and the response as the client got it, with
    /// the age identity of the caller's tenant. With the ledger key (--config or --key), each
    /// part is also checked against the keyed digest in the log.
    ///
    /// Exit codes: 0 decrypted (and, when checked, matching), 1 a part does not match its
    /// logged digest, 2 not found or not decryptable (wrong identity, pruned, shredded).
    ///
    /// Example: aigis audit content --config aigis.toml --request-id 5f0c… -i team-a.key
    Content {
        #[command(flatten)]
        target: Target,
        /// The request id (the `x-request-id` the gateway returned).
        #[arg(long)]
        request_id: String,
        /// An age identity file of the tenant (AGE-SECRET-KEY-1… / AGE-SECRET-KEY-PQ-1…
        /// lines); repeatable.
        #[arg(short, long = "identity", value_name = "FILE", required = true)]
        identities: Vec<PathBuf>,
        /// The passphrase of encrypted identity files, from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        identity_passphrase_file: Option<PathBuf>,
        /// Write only this part, byte for byte (to --output or stdout).
        #[arg(long, value_enum)]
        part: Option<ContentPart>,
        /// Where --part is written.
        #[arg(short, long, requires = "part")]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove stored content (encrypted prompts and responses) older than --before. Entries,
    /// hashes and checkpoints are never removed, so the log keeps verifying.
    ///
    /// Exit codes: 0 done (also when nothing was old enough); 2 could not remove.
    ///
    /// Example: aigis audit prune --config aigis.toml --before 90d
    Prune {
        #[command(flatten)]
        target: Target,
        /// Remove content older than this: a date, a UTC time or an age (e.g. 90d).
        #[arg(long)]
        before: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// One part of a captured call.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContentPart {
    /// The request body as received.
    Request,
    /// The response body as sent.
    Response,
}

/// Export formats.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// One canonical event per line.
    Jsonl,
    /// One OCSF object per line.
    Ocsf,
    /// One CEF line per event.
    Cef,
}

/// Which ledger: from a config file's `[ledger]` section or named directly.
#[derive(clap::Args)]
pub struct Target {
    /// The gateway config; its `[ledger]` section names the store and key.
    #[arg(short, long, env = "AIGIS_CONFIG")]
    config: Option<PathBuf>,
    /// The store (`file:DIR`, `sqlite:PATH` or `postgres://…`), instead of --config.
    #[arg(long)]
    store: Option<String>,
    /// The ledger key file (its public half verifies), instead of --config.
    #[arg(long)]
    key: Option<PathBuf>,
    /// File with the public verifier keys; enough for `verify`.
    #[arg(long)]
    vkeys: Option<PathBuf>,
    /// The captured-content folder (`[ledger.capture] dir`), instead of --config.
    #[arg(long)]
    content_dir: Option<PathBuf>,
}

struct Resolved {
    store: StoreUrl,
    key: Option<PathBuf>,
    content_dir: Option<PathBuf>,
}

impl Target {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        if let Some(s) = &self.store {
            return Ok(Resolved {
                store: StoreUrl::parse(s)?,
                key: self.key.clone(),
                content_dir: self.content_dir.clone(),
            });
        }
        let Some(path) = &self.config else {
            bail!(
                "name the ledger: --config aigis.toml (its [ledger] section) or --store file:DIR"
            );
        };
        let loaded = crate::load_config(Some(path), false)?;
        let ledger = loaded
            .config
            .ledger
            .with_context(|| format!("{} has no [ledger] section", path.display()))?;
        let store = match ledger.store {
            aigis_gateway::config::LedgerStore::File(p) => StoreUrl::File(p),
            aigis_gateway::config::LedgerStore::Sqlite(p) => StoreUrl::Sqlite(p),
            aigis_gateway::config::LedgerStore::Postgres(u) => StoreUrl::Postgres(u),
        };
        Ok(Resolved {
            store,
            key: self.key.clone().or(Some(ledger.signing_key)),
            content_dir: self
                .content_dir
                .clone()
                .or_else(|| ledger.capture.map(|c| c.dir().to_path_buf())),
        })
    }

    fn open(&self) -> anyhow::Result<(Box<dyn LogReader>, Resolved)> {
        let r = self.resolve()?;
        Ok((store::open_reader(&r.store)?, r))
    }

    fn verifiers(&self, resolved: &Resolved) -> anyhow::Result<LedgerVerifiers> {
        if let Some(v) = &self.vkeys {
            return read_vkeys(v);
        }
        let key = resolved
            .key
            .as_deref()
            .context("verifying needs the public keys: --vkeys FILE (or --key / --config)")?;
        Ok(LedgerKeys::load(key)?.verifiers())
    }
}

fn read_vkeys(path: &Path) -> anyhow::Result<LedgerVerifiers> {
    let max = usize::try_from(aigis_ledger::keys::MAX_KEY_FILE).unwrap_or(usize::MAX);
    let text = crate::crypt_io::read_text(path, max, "verifier keys file")?;
    LedgerVerifiers::parse(&text).with_context(|| path.display().to_string())
}

/// Reads at most `max` bytes from `reader` (`name` in messages): untrusted input past its
/// limit is refused, not read whole into memory first.
fn read_capped(reader: impl std::io::Read, max: u64, name: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", name.display()))?;
    if bytes.len() as u64 > max {
        bail!("{} is larger than {max} bytes", name.display());
    }
    Ok(bytes)
}

fn read_file(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    read_capped(file, max, path)
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Init {
            key,
            origin,
            print,
            format,
        } => init(&key, &origin, print, format),
        Command::Tail {
            target,
            lines,
            format,
        } => tail(&target, lines, format),
        Command::Verify {
            target,
            anchor,
            format,
        } => verify(&target, &anchor, format),
        Command::Prove {
            target,
            request_id,
            index,
            output,
        } => prove(&target, &request_id, index, output.as_deref()),
        Command::VerifyReceipt {
            receipt,
            vkeys,
            vkey,
            format,
        } => verify_receipt(&receipt, vkeys.as_deref(), &vkey, format),
        Command::Export {
            target,
            format,
            since,
            output,
        } => export_cmd(&target, format, since.as_deref(), output.as_deref()),
        Command::Content {
            target,
            request_id,
            identities,
            identity_passphrase_file,
            part,
            output,
            format,
        } => {
            let mut ids = Vec::new();
            for f in &identities {
                ids.extend(crate::crypt_io::load_identities(
                    f,
                    identity_passphrase_file.as_deref(),
                    aigis_crypto::age::DEFAULT_MAX_LOG_N,
                )?);
            }
            content(&target, &request_id, &ids, part, output.as_deref(), format)
        }
        Command::Prune {
            target,
            before,
            format,
        } => prune(&target, &before, format),
        Command::Tiles {
            target,
            out,
            format,
        } => tiles(&target, &out, format),
    }
}

fn init(key: &Path, origin: &str, print: bool, format: Format) -> anyhow::Result<ExitCode> {
    let keys = if print {
        LedgerKeys::load(key)?
    } else {
        LedgerKeys::create_files(key, origin).with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                key.display()
            )
        })?
    };
    let v = keys.verifiers();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "origin": v.origin,
                "key_file": key,
                "verifier_keys": v.to_text().lines().collect::<Vec<_>>(),
            }))?
        ),
        Format::Table => {
            if !print {
                eprintln!(
                    "created {} (secret, mode 0600) and {}.pub\nGive auditors the verifier keys below (Ed25519 checkpoint key, then the ML-DSA-65 cosigning key):\n",
                    key.display(),
                    key.display()
                );
            }
            print!("{}", v.to_text());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tail(target: &Target, lines: u64, format: Format) -> anyhow::Result<ExitCode> {
    let (mut reader, _) = target.open()?;
    let mut all: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    let cap = usize::try_from(lines).unwrap_or(usize::MAX);
    let mut unreadable = Unreadable::default();
    reader.scan(0, &mut |row| {
        match Event::from_json(&row.event) {
            Ok(e) => {
                if all.len() == cap {
                    all.pop_front();
                }
                all.push_back(e);
            }
            Err(e) => unreadable.note(row.idx, &e),
        }
        Ok(true)
    })?;
    let mut out = std::io::stdout().lock();
    for e in &all {
        match format {
            Format::Json => writeln!(out, "{}", String::from_utf8_lossy(&e.canonical()))?,
            Format::Table => writeln!(
                out,
                "{:>8}  {}  {:<8} {:<18} {:<24} {:>3}  {}",
                e.index,
                time::rfc3339(e.time_ms),
                match e.kind {
                    aigis_ledger::EventKind::AiCall => "ai_call",
                    aigis_ledger::EventKind::Admin => "admin",
                },
                e.action,
                e.principal.as_deref().unwrap_or("-"),
                e.status,
                e.request_id
            )?,
        }
    }
    Ok(unreadable.exit_code())
}

/// Entries a listing skipped because they do not parse (edited, or written by a newer
/// aigis): each is named on stderr, and the command exits 2, so that a feed with holes is
/// never taken for a whole one.
#[derive(Default)]
struct Unreadable(u64);

impl Unreadable {
    fn note(&mut self, index: u64, error: &dyn std::fmt::Display) {
        self.0 += 1;
        eprintln!("aigis audit: entry {index} is unreadable and was skipped: {error}");
    }

    fn exit_code(&self) -> ExitCode {
        if self.0 == 0 {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "aigis audit: {} unreadable entries skipped; run `aigis audit verify`",
            self.0
        );
        ExitCode::from(2)
    }
}

/// A checkpoint kept outside the store. A signed note must verify under the log's key (and
/// its cosigner's, when known); bare checkpoint text is the auditor's own word, taken as given
/// with a notice. Either way it must be this log's (its origin).
fn read_anchor(path: &Path, keys: &LedgerVerifiers) -> anyhow::Result<Checkpoint> {
    let text = crate::crypt_io::read_text(path, aigis_ledger::note::MAX_NOTE_LEN, "checkpoint")?;
    let checkpoint = if Note::parse(&text).is_ok() {
        let cosigners: Vec<_> = keys.cosigner.iter().cloned().collect();
        Checkpoint::verify(&text, &keys.log, &cosigners, Some(&keys.origin))
            .map(|(cp, _)| cp)
            .map_err(|e| anyhow::anyhow!("{}: the anchor does not verify: {e}", path.display()))?
    } else {
        let cp = Checkpoint::from_text(&text)
            .with_context(|| format!("{} is not a checkpoint", path.display()))?;
        eprintln!(
            "notice: {} is an unsigned checkpoint; it is trusted as given",
            path.display()
        );
        cp
    };
    if checkpoint.origin != keys.origin {
        bail!(
            "{}: the anchor is a checkpoint of {:?}, not of this log ({:?})",
            path.display(),
            checkpoint.origin,
            keys.origin
        );
    }
    Ok(checkpoint)
}

fn verify(target: &Target, anchors: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let (mut reader, resolved) = target.open()?;
    let keys = target.verifiers(&resolved)?;
    let anchors = anchors
        .iter()
        .map(|p| read_anchor(p, &keys))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bar = crate::progress::spinner("{spinner} {pos} entries verified {per_sec}");
    let report =
        audit::verify_with_progress(reader.as_mut(), &keys, &anchors, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let report = report?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&verify_json(&report))?),
        Format::Table => print_verify(&report),
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "origin": r.origin,
        "entries": r.entries,
        "checkpoints": r.checkpoints,
        "checkpointed_size": r.checkpointed_size,
        "unsigned_tail": r.unsigned_tail,
        "root": r.root,
        "first_bad_entry": r.first_bad_entry(),
        "problems": r.problems,
    })
}

fn print_verify(r: &VerifyReport) {
    println!(
        "ledger {}: {} entries, {} signed checkpoints (latest covers {}), root {}",
        r.origin, r.entries, r.checkpoints, r.checkpointed_size, r.root
    );
    if r.ok() {
        println!("OK: every entry, checkpoint signature and signed root verifies");
        if r.unsigned_tail > 0 {
            println!(
                "note: the last {} entries are not yet covered by a checkpoint",
                r.unsigned_tail
            );
        }
        return;
    }
    for p in &r.problems {
        println!("FAIL [{}] {}", p.kind, p.message);
    }
    if let Some(i) = r.first_bad_entry() {
        // A root mismatch alone says which checkpoint interval holds the change, not which
        // entry: its index is where that interval starts.
        let only_interval = r
            .problems
            .iter()
            .filter(|p| p.index == Some(i))
            .all(|p| p.kind == "checkpoint_mismatch");
        if only_interval {
            println!("first bad entry: {i} or later (in the interval named above)");
        } else {
            println!("first bad entry: {i}");
        }
    }
}

fn prove(
    target: &Target,
    request_id: &str,
    index: Option<u64>,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (mut reader, _) = target.open()?;
    let receipt = audit::prove(reader.as_mut(), request_id, index)?;
    let json = serde_json::to_string_pretty(&receipt)? + "\n";
    match output {
        Some(p) => std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_receipt(
    path: &Path,
    vkeys: Option<&Path>,
    inline: &[String],
    format: Format,
) -> anyhow::Result<ExitCode> {
    let keys = match vkeys {
        Some(p) => read_vkeys(p)?,
        None if !inline.is_empty() => LedgerVerifiers::parse(&inline.join("\n"))?,
        None => bail!("give the verifier keys: --vkeys FILE or --vkey KEY"),
    };
    let max = audit::MAX_RECEIPT_LEN as u64;
    let bytes = if path == Path::new("-") {
        read_capped(std::io::stdin().lock(), max, Path::new("stdin"))?
    } else {
        read_file(path, max)?
    };
    let result = audit::verify_receipt(&bytes, &keys);
    match (format, &result) {
        (Format::Json, Ok(v)) => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"valid": true, "receipt": v}))?
        ),
        (Format::Json, Err(e)) => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"valid": false, "error": e.to_string()})
            )?
        ),
        (Format::Table, Ok(v)) => println!(
            "VALID: request {} is entry {} of {} (tree size {}), signed by {}",
            v.request_id,
            v.index,
            v.origin,
            v.tree_size,
            v.signed_by.join(", ")
        ),
        (Format::Table, Err(e)) => println!("INVALID: {}: {e}", path.display()),
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn export_cmd(
    target: &Target,
    format: ExportFormat,
    since: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let since = since
        .map(|s| time::parse_time(s, aigis_ledger::now_ms()))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .unwrap_or(0);
    let (mut reader, _) = target.open()?;
    let origin = reader.origin()?.unwrap_or_else(|| "aigis".into());
    let format = match format {
        ExportFormat::Jsonl => export::Format::Jsonl,
        ExportFormat::Ocsf => export::Format::Ocsf,
        ExportFormat::Cef => export::Format::Cef,
    };
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut io_error = None;
    let mut unreadable = Unreadable::default();
    reader.scan(0, &mut |row| {
        let e = match Event::from_json(&row.event) {
            Ok(e) => e,
            Err(e) => {
                unreadable.note(row.idx, &e);
                return Ok(true);
            }
        };
        if e.time_ms >= since {
            for line in export::lines(&e, &origin, format) {
                if let Err(err) = writeln!(out, "{line}") {
                    io_error = Some(err);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })?;
    if let Some(e) = io_error {
        return Err(e.into());
    }
    out.flush()?;
    Ok(unreadable.exit_code())
}

fn prune(target: &Target, before: &str, format: Format) -> anyhow::Result<ExitCode> {
    let before = time::parse_time(before, aigis_ledger::now_ms()).map_err(anyhow::Error::msg)?;
    let (_, resolved) = target.open()?;
    let removed = match &resolved.content_dir {
        Some(dir) => aigis_ledger::content::prune(dir, before)?,
        None => 0,
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"removed_content": removed, "before": time::rfc3339(before)})
        ),
        Format::Table => println!(
            "removed {removed} content records older than {}; entries and hashes are kept",
            time::rfc3339(before)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn tiles(target: &Target, out: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let (mut reader, _) = target.open()?;
    let summary = aigis_ledger::tiles::export(reader.as_mut(), out)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Table => println!(
            "wrote the checkpoint (size {}), {} hash tiles and {} entry bundles under {}",
            summary.size,
            summary.tiles,
            summary.bundles,
            out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn untrusted_inputs_are_read_only_up_to_their_limit() {
        // An endless stdin: read whole, it would never end.
        let err = read_capped(std::io::repeat(b' '), 256 * 1024, Path::new("stdin")).unwrap_err();
        assert_eq!(err.to_string(), "stdin is larger than 262144 bytes");
        let exact = read_capped(&[b' '; 100][..], 100, Path::new("stdin")).unwrap();
        assert_eq!(exact.len(), 100);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'#'; 128 * 1024 + 1]).unwrap();
        let keys = aigis_ledger::LedgerKeys::generate("test/log")
            .unwrap()
            .verifiers();
        for err in [
            read_vkeys(&path).unwrap_err(),
            read_anchor(&path, &keys).unwrap_err(),
        ] {
            assert!(format!("{err:#}").contains("is larger than"), "{err:#}");
        }
    }

    /// An anchor is this log's checkpoint: a signed one must verify, an unsigned one is taken
    /// as given, another log's is refused.
    #[test]
    fn anchors_are_checked_against_the_log_keys() {
        let keys = aigis_ledger::LedgerKeys::generate("test/log").unwrap();
        let cp = Checkpoint {
            origin: "test/log".into(),
            size: 5,
            root: [7; 32],
        };
        let note = cp
            .sign(&[keys.log(), keys.cosigner()], 1_800_000_000)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchor");
        let vkeys = keys.verifiers();
        std::fs::write(&path, &note).unwrap();
        assert_eq!(read_anchor(&path, &vkeys).unwrap(), cp);
        // One signature byte changed.
        let (text, sigs) = note.split_once("\n\n").unwrap();
        let forged = format!("{text}\n\n{}", sigs.replacen('A', "B", 1));
        std::fs::write(&path, &forged).unwrap();
        let err = read_anchor(&path, &vkeys).unwrap_err();
        assert!(format!("{err:#}").contains("does not verify"), "{err:#}");
        // Unsigned text of this log is taken; of another log, refused.
        std::fs::write(&path, cp.text()).unwrap();
        assert_eq!(read_anchor(&path, &vkeys).unwrap(), cp);
        let other = Checkpoint {
            origin: "other/log".into(),
            ..cp
        };
        std::fs::write(&path, other.text()).unwrap();
        let err = read_anchor(&path, &vkeys).unwrap_err();
        assert!(format!("{err:#}").contains("not of this log"), "{err:#}");
    }
}
