//! `aigis digest PATH`: the canonical manifest of a file tree.

use std::path::PathBuf;
use std::process::ExitCode;

use aigis_crypto::digest::{DigestAlgo, SymlinkPolicy, TreeHasher};
use anyhow::Context;

use crate::Format;

#[derive(clap::Args)]
pub struct Args {
    /// A directory (hashed recursively) or a single file.
    path: PathBuf,
    /// Digest algorithm: sha256 (what OpenSSF model signing uses) or blake3 (faster).
    #[arg(long, value_enum, default_value = "sha256")]
    algo: Algo,
    /// json prints the canonical manifest; table prints `digest  size  path` lines.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write the canonical JSON manifest to FILE (whatever --format says for stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Record symlinks inside the tree (path and target, not followed) instead of failing.
    #[arg(long)]
    record_symlinks: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Algo {
    Sha256,
    Blake3,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let algo = match args.algo {
        Algo::Sha256 => DigestAlgo::Sha256,
        Algo::Blake3 => DigestAlgo::Blake3,
    };
    let mut hasher = TreeHasher::new(algo);
    if let Some(n) = args.threads {
        hasher = hasher.with_threads(n);
    }
    if args.record_symlinks {
        hasher = hasher.with_symlinks(SymlinkPolicy::Record);
    }
    let plan = hasher.plan(&args.path)?;
    let bar = crate::progress::bar(
        plan.total_size(),
        "{spinner} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_bar}",
    );
    let manifest = hasher.hash_plan(plan, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    let json = manifest.to_json();
    if let Some(out) = &args.output {
        std::fs::write(out, format!("{json}\n"))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    match args.format {
        Format::Json => {
            if args.output.is_none() {
                println!("{json}");
            }
        }
        Format::Table => {
            for f in &manifest.files {
                println!("{}  {:>12}  {}", f.digest, f.size, f.path);
            }
            for s in &manifest.symlinks {
                println!(
                    "{:<64}  {:>12}  {} -> {}",
                    "(symlink, not followed)", "", s.path, s.target
                );
            }
            println!(
                "{} files, {} bytes, {}",
                manifest.files.len(),
                manifest.total_size(),
                manifest.algorithm.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
