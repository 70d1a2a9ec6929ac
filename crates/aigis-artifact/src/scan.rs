//! The scanner: walks files and directories, recognises each input by content, dispatches it
//! to its format parser (recursing into containers) and collects an [`Outcome`] per file.
//! Files are scanned in parallel; memory stays bounded whatever the file size because parsers
//! read through [`crate::reader`] and only the parts that can carry code.

use std::fs::File;
use std::path::{Path, PathBuf};

use aigis_report::{Finding, NotScanned, Severity};

use crate::detect::{Kind, detect};
use crate::formats::pickle::{self, Options};
use crate::reader::{Budget, MAX_DEPTH, SNIFF_BYTES, read_prefix};
use crate::{Input, Origin, Outcome, container, formats};

#[cfg(test)]
mod tests;

/// State shared down one top-level input's recursion: nesting depth and the decompression
/// budget (the zip-bomb bound).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Containers and nested pickles entered so far.
    pub depth: u32,
    /// Decompressed bytes left for this input.
    pub budget: Budget,
    /// Inside a TorchScript archive.
    pub torchscript: bool,
}

impl Ctx {
    /// The context one level deeper.
    #[must_use]
    pub fn deeper(&self) -> Ctx {
        Ctx {
            depth: self.depth + 1,
            budget: self.budget.clone(),
            torchscript: self.torchscript,
        }
    }
}

/// First bytes of a legacy (non-zip) `torch.save` file: protocol 2, then the magic number
/// 0x1950a86a20f9469cfc6c as a LONG1.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Recognises `input` by content and scans it with the matching parser. `name` is the file or
/// member name (a secondary hint only, for magic-less formats).
pub fn scan_input(ctx: &Ctx, input: &mut Input, name: &str, opts: Options) -> Outcome {
    let mut out = Outcome::default();
    if ctx.depth > MAX_DEPTH {
        out.not_scanned.push(
            input
                .origin
                .not_scanned(format!("nested deeper than {MAX_DEPTH} containers")),
        );
        return out;
    }
    let prefix = match read_prefix(input.source, SNIFF_BYTES) {
        Ok(p) => p,
        Err(e) => {
            out.not_scanned
                .push(input.origin.not_scanned(format!("cannot read: {e}")));
            return out;
        }
    };
    let kind = detect(&prefix, name);
    let (mut out, read_as_pickle) = scan_as(ctx, input, kind, &prefix, name, opts);
    // A loader that does not check the format (pickle.load, torch.load's fallback, joblib.load
    // of an unknown compressor) reads any input as a pickle: a polyglot is scanned both ways.
    if !read_as_pickle && !magic_stops_unpicklers(kind) {
        out.merge(scan_as_pickle_too(ctx, input, kind, opts));
    }
    // Python's zipfile (Keras, NumPy's `.npz`) finds an archive by its end record, wherever
    // the archive starts: other bytes with a zip after them are also read as that zip. (A
    // tar's zip member is scanned as a member.)
    if !matches!(kind, Kind::Zip | Kind::Tar) && container::zip::opens(input) {
        out.merge(container::zip::scan(ctx, input));
    }
    out
}

/// Formats whose magic bytes stop every unpickler before anything is imported (checked with
/// CPython's `pickle.loads`): a byte that is no opcode (gzip, xz, zstd, 7z, HDF5, armored
/// age), an opcode on an empty stack (npy's STACK_GLOBAL, age's APPEND), or a text persistent
/// id without a `persistent_load` (zip's `P`; torch.load takes `PK\x03\x04` as a zip).
fn magic_stops_unpicklers(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Zip
            | Kind::Gzip
            | Kind::Xz
            | Kind::Zstd
            | Kind::SevenZ
            | Kind::Npy
            | Kind::Hdf5
            | Kind::Age
    )
}

/// Scans `input` as `kind`; true when that reading was a pickle reading.
fn scan_as(
    ctx: &Ctx,
    input: &mut Input,
    kind: Kind,
    prefix: &[u8],
    name: &str,
    opts: Options,
) -> (Outcome, bool) {
    let out = match kind {
        Kind::Zip => container::zip::scan(ctx, input),
        Kind::Tar => container::tar::scan(ctx, input),
        Kind::Gzip | Kind::Zlib | Kind::Bzip2 | Kind::Xz | Kind::Lzma | Kind::Zstd => {
            let u = container::compress::scan(ctx, input, kind, name, opts);
            return (u.outcome, u.read_as_pickle);
        }
        Kind::SevenZ => container::sevenz::scan(ctx, input),
        // Never "clean": an encrypted model is scanned through its decrypting reader
        // (`aigis scan -i IDENTITY`), or reported as not scanned.
        Kind::Age => {
            let mut out = Outcome::default();
            out.not_scanned.push(input.origin.not_scanned(
                "age-encrypted: pass its identity (aigis scan -i KEY) to scan the plaintext",
            ));
            out
        }
        Kind::Npy => formats::numpy::scan_npy(ctx, input),
        Kind::Pickle => {
            let legacy = prefix.starts_with(TORCH_LEGACY_MAGIC);
            let opts = Options {
                trailing_ok: opts.trailing_ok || legacy,
                torchscript: opts.torchscript || ctx.torchscript,
                ..opts
            };
            return (pickle::scan_with(ctx, input, opts), true);
        }
        Kind::Safetensors => formats::safetensors::scan(input),
        Kind::Gguf => formats::gguf::scan(input),
        // Keras legacy `.h5`: its `model_config` attribute goes through the Keras check.
        Kind::Hdf5 => formats::hdf5::scan(input),
        Kind::Onnx => formats::onnx::scan(input),
        Kind::SavedModel => formats::savedmodel::scan(input),
        // JSON side files: a Keras model config (`.keras` archives hold one), then Hugging
        // Face configs and chat templates; anything else is still tried as a pickle.
        Kind::Unknown if formats::keras::sniff(prefix) => formats::keras::scan(input),
        Kind::Unknown if formats::hf::applies_to(name) || formats::hf::sniff(prefix) => {
            formats::hf::scan(input)
        }
        Kind::Unknown => {
            let opts = Options {
                torchscript: opts.torchscript || ctx.torchscript,
                ..opts
            };
            let out = pickle::scan_with(ctx, input, opts);
            if is_not_a_pickle(&out) {
                return (Outcome::default(), true);
            }
            return (out, true);
        }
    };
    (out, false)
}

/// Findings that name an imported callable the allowlist does not cover.
const IMPORT_RULES: [&str; 5] = [
    "AIG-PICKLE-DANGEROUS-GLOBAL",
    "AIG-PICKLE-UNKNOWN-GLOBAL",
    "AIG-PICKLE-UNKNOWN-CALL",
    "AIG-PICKLE-BUILD-GLOBAL",
    "AIG-PICKLE-NESTED",
];

/// Findings about calls and imports that cannot be resolved. Bytes that are not meant as a
/// pickle produce them by chance (a REDUCE byte after arbitrary data), so they count only in
/// a reading that reaches STOP or PROTO.
const UNRESOLVED_RULES: [&str; 4] = [
    "AIG-PICKLE-INDIRECT-CALL",
    "AIG-PICKLE-UNRESOLVED-GLOBAL",
    "AIG-PICKLE-EXT",
    "AIG-PICKLE-JOBLIB-LAYOUT",
];

/// Reads an input recognised as `kind` as a pickle too, and keeps that reading only when it
/// names a callable that is not allowlisted (or a limit stops it): an ordinary archive or
/// weights file, read as a pickle, stops within its first bytes and adds nothing.
fn scan_as_pickle_too(ctx: &Ctx, input: &mut Input, kind: Kind, opts: Options) -> Outcome {
    let opts = Options {
        torchscript: opts.torchscript || ctx.torchscript,
        ..opts
    };
    let (mut out, shape) = pickle::scan_shaped(ctx, input, opts);
    let names = |rules: &[&str]| out.findings.iter().any(|f| rules.contains(&f.rule_id()));
    let imports = names(&IMPORT_RULES);
    let unresolved = shape.is_pickle && names(&UNRESOLVED_RULES);
    if !(imports || unresolved || shape.limited) {
        return Outcome::default();
    }
    out.findings.push(
        Finding::new(
            "AIG-POLYGLOT",
            Severity::Medium,
            format!(
                "the bytes are both a {} and a pickle that names callables: a {} reader and pickle.load (or torch.load, joblib.load) see different content; the pickle's findings are listed beside this one",
                kind.name(),
                kind.name()
            ),
            input.origin.at(0),
        )
        .with_help("Do not load this file with pickle-based loaders; a genuine model file is one format only.")
        .with_tag("polyglot"),
    );
    out
}

/// True when a file without pickle magic turned out not to be a protocol 0/1 pickle either:
/// the parse met bytes that are no pickle opcode, and nothing in it names a callable (a
/// `requirements.txt` whose first letters happen to be opcodes). A text-protocol pickle that
/// imports anything is still reported, whatever its name.
fn is_not_a_pickle(out: &Outcome) -> bool {
    const NAMES_A_CALLABLE: [&str; 7] = [
        "AIG-PICKLE-DANGEROUS-GLOBAL",
        "AIG-PICKLE-UNKNOWN-GLOBAL",
        "AIG-PICKLE-UNRESOLVED-GLOBAL",
        "AIG-PICKLE-BUILD-GLOBAL",
        "AIG-PICKLE-UNKNOWN-CALL",
        "AIG-PICKLE-EXT",
        "AIG-PICKLE-PERSID",
    ];
    let garbage = out.findings.iter().any(|f| {
        f.rule_id() == "AIG-PICKLE-MALFORMED" && f.message().contains("is not a pickle opcode")
    });
    garbage
        && !out
            .findings
            .iter()
            .any(|f| NAMES_A_CALLABLE.contains(&f.rule_id()))
}

/// Scans one file on disk.
pub fn scan_file(path: &Path) -> Outcome {
    let display = path.display().to_string();
    let origin = Origin::file(display.clone());
    let mut out = Outcome::default();
    let file = File::open(path).and_then(|f| f.metadata().map(|m| (f, m.len())));
    let (mut file, len) = match file {
        Ok(x) => x,
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("cannot open: {e}")));
            return out;
        }
    };
    let mut input = Input {
        source: &mut file,
        len,
        origin,
    };
    scan_source(&mut input, &display)
}

/// Scans one top-level source (a file, or the plaintext of an encrypted one) by content.
pub fn scan_source(input: &mut Input, name: &str) -> Outcome {
    scan_input(&Ctx::default(), input, name, Options::default())
}

/// Every file to scan under `paths`: files as given, directories walked without following
/// symbolic links out of the tree. Inputs that cannot be walked are returned as not scanned.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<NotScanned>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let root = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                walk(path, &root, &mut files, &mut skipped);
            }
            Ok(_) => files.push(path.clone()),
            Err(e) => skipped.push(NotScanned::new(
                path.display().to_string(),
                format!("cannot read: {e}"),
            )),
        }
    }
    (files, skipped)
}

fn walk(dir: &Path, root: &Path, files: &mut Vec<PathBuf>, skipped: &mut Vec<NotScanned>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(NotScanned::new(
                dir.display().to_string(),
                format!("cannot list: {e}"),
            ));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, root, files, skipped);
        } else if ft.is_symlink() {
            match std::fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) => {
                    if target.is_file() {
                        // Reached through the tree anyway when it is a regular file inside it.
                        files.push(path);
                    }
                }
                Ok(target) => skipped.push(NotScanned::new(
                    path.display().to_string(),
                    format!(
                        "symbolic link to {} outside the scanned tree is not followed; scan the target directly",
                        target.display()
                    ),
                )),
                Err(e) => skipped.push(NotScanned::new(
                    path.display().to_string(),
                    format!("dangling symbolic link: {e}"),
                )),
            }
        } else if ft.is_file() {
            files.push(path);
        }
    }
}

/// Scans `files` on `jobs` threads (0 = one per core), calling `progress` after each file.
/// Outcomes come back in the order of `files`.
pub fn scan_files(files: &[PathBuf], jobs: usize, progress: &(dyn Fn() + Sync)) -> Vec<Outcome> {
    use rayon::prelude::*;
    let run = || {
        files
            .par_iter()
            .map(|f| {
                let o = scan_file(f);
                progress();
                o
            })
            .collect()
    };
    match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}

/// The most severe finding in an outcome (for callers that summarise).
pub fn max_severity(o: &Outcome) -> Option<Severity> {
    o.findings.iter().map(aigis_report::Finding::severity).max()
}

/// Scans bytes held in memory as if they were a file named `name` (fuzzing, tests, callers
/// that already hold the bytes).
pub fn scan_bytes(bytes: &[u8], name: &str) -> Outcome {
    let mut cur = std::io::Cursor::new(bytes);
    let mut input = Input {
        source: &mut cur,
        len: bytes.len() as u64,
        origin: Origin::file(name),
    };
    scan_input(&Ctx::default(), &mut input, name, Options::default())
}
