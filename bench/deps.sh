#!/usr/bin/env bash
# aigis deps: database import of synthesised OSV records, index size against the compressed
# input, and a scan of a generated monorepo against the imported PyPA + RustSec data.
#
#   bash bench/deps.sh            # 100k records, 400 lockfiles (release binary; builds it)
#   bash bench/deps.sh --smoke    # 5k records, 40 lockfiles, the debug binary (CI, < 60 s)
#   AIGIS_BIN=path/to/aigis bash bench/deps.sh   # full run with a given binary (no build)
#
# Raw output goes to bench/results/<date>-deps/ (full runs only). The pip-audit comparisons are
# separate scripts because they need pip-audit in a scratch venv: bench/deps_pip_audit.py
# (agreement) and bench/deps_pip_audit_speed.py (speed; see docs/BENCHMARKS.md for the command).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aigis-target}"
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
if [ "$smoke" = 1 ]; then
  records=5000 lockfiles=40
  bin="$CARGO_TARGET_DIR/debug/aigis"
  [ -x "$bin" ] || cargo build --quiet -p aigis-cli
else
  records=100000 lockfiles=400
  if [ -n "${AIGIS_BIN:-}" ]; then
    bin="$AIGIS_BIN"
  else
    cargo build --quiet --release -p aigis-cli
    bin="$CARGO_TARGET_DIR/release/aigis"
  fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pin=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin="taskset -c 1"; fi

echo "== generating $records OSV records and a tree of $lockfiles lockfiles"
python3 bench/gen_deps.py records "$records" "$work/records.zip"
zip_bytes=$(stat -c %s "$work/records.zip")

echo "== import $records synthesised records (one zip, $zip_bytes bytes)"
start=$(date +%s.%N)
$pin "$bin" deps db import "$work/records.zip" --db "$work/synth-db" 2>&1 | head -4
end=$(date +%s.%N)
import_s=$(echo "$end - $start" | bc)
db_bytes=$(du -sb "$work/synth-db" | cut -f1)
ratio=$(echo "scale=3; $db_bytes / $zip_bytes" | bc)
echo "import: ${import_s} s; index ${db_bytes} bytes = ${ratio} x the compressed input"

shared=../shared/data/osv
if [ -d "$shared/pypa/vulns" ] && [ -d "$shared/rustsec/crates" ]; then
  "$bin" deps db import "$shared/pypa/vulns" "$shared/rustsec/crates" --db "$work/real-db" 2>/dev/null
  # Package names with advisories, so the tree has real hits.
  for f in "$work"/real-db/*.idx.gz; do
    eco=PyPI; case "$f" in *crates-io*) eco=crates.io;; *npm*) eco=npm;; *go.idx*) eco=Go;; esac
    zcat "$f" | cut -f1 | sort -u | sed "s/^/$eco\t/"
  done > "$work/names.tsv"
  db="$work/real-db"
else
  echo "notice: ../shared/data/osv absent; the tree is scanned against the synthesised database"
  : > "$work/names.tsv"
  db="$work/synth-db"
fi
python3 bench/gen_deps.py tree "$lockfiles" "$work/tree" "$work/names.tsv"

echo "== scan the tree ($lockfiles lockfiles)"
best=""
for run in 1 2 3; do
  start=$(date +%s.%N)
  $pin "$bin" deps "$work/tree" --db "$db" --format json --fail-on critical \
    > "$work/scan.json" 2> "$work/scan.err" || true
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  [ "$smoke" = 1 ] && break
done
grep '^scanned' "$work/scan.err"
findings=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary'])" "$work/scan.json")
echo "scan: best ${best} s; summary ${findings}"

if [ "$smoke" = 0 ]; then
  out="bench/results/$(date -u +%Y-%m-%d)-deps"
  mkdir -p "$out"
  {
    echo "command: bash bench/deps.sh"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), pinned: ${pin:-no}"
    echo "binary: $("$bin" --version) at $bin ${AIGIS_BIN_NOTE:-}"
    echo "import_records: $records"
    echo "import_seconds: $import_s"
    echo "zip_bytes: $zip_bytes"
    echo "index_bytes: $db_bytes"
    echo "index_to_zip_ratio: $ratio"
    echo "tree_lockfiles: $lockfiles"
    echo "tree_scan: $(grep '^scanned' "$work/scan.err")"
    echo "tree_scan_best_of_3_seconds: $best"
    echo "tree_findings: $findings"
  } | tee "$out/deps.txt"
fi
