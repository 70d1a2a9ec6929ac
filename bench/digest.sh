#!/usr/bin/env bash
# Whole-program digest throughput: `aigis digest` (SHA-256 and BLAKE3, 1 and 2 threads) against
# `sha256sum` and, if installed, `b3sum`, on the same generated tree (page cache warm), in one run.
# Prints a ratio table; raw output goes to bench/results/<date>-<commit>/digest/.
#
#   bash bench/digest.sh            # 8 x 128 MiB files
#   bash bench/digest.sh --smoke    # 4 x 8 MiB, no peers required
set -euo pipefail
cd "$(dirname "$0")/.."

files=8; size_mib=128; smoke=0
if [[ "${1:-}" == "--smoke" ]]; then files=4; size_mib=8; smoke=1; fi
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then cargo build --release -p aigis-cli >&2; fi
aigis="$target/release/aigis"

work="bench/work/digest-tree"
mkdir -p "$work"
for i in $(seq 0 $((files - 1))); do
  f="$work/shard-$i.bin"
  if [[ ! -f "$f" || $(stat -c %s "$f") -ne $((size_mib * 1048576)) ]]; then
    head -c $((size_mib * 1048576)) /dev/urandom > "$f"
  fi
done
total_mib=$((files * size_mib))
if [[ $smoke == 1 ]]; then out="bench/work/digest-results"; else out="bench/results/$(date -u +%Y%m%d)-$(git rev-parse --short HEAD)/digest"; fi
mkdir -p "$out"
{ nproc; uname -a; grep -m1 'model name' /proc/cpuinfo || true; } > "$out/machine.txt"

best() { # best wall seconds of 3 runs of "$@"
  local b=999999
  for _ in 1 2 3; do
    local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N)
    b=$(echo "$e - $s" | bc -l | awk -v b="$b" '{print ($1 < b) ? $1 : b}')
  done
  echo "$b"
}

cat "$work"/* > /dev/null   # warm the page cache
printf '| tool | threads | MiB/s | ratio to peer |\n|---|---|---|---|\n' | tee "$out/summary.md"
row() { # name threads seconds peer_seconds
  local mibs; mibs=$(echo "$total_mib / $3" | bc -l)
  local ratio="-"; [[ -n "$4" ]] && ratio=$(echo "$4 / $3" | bc -l | xargs printf '%.2fx')
  printf '| %s | %s | %.0f | %s |\n' "$1" "$2" "$mibs" "$ratio" | tee -a "$out/summary.md"
}
sha_peer=$(best sha256sum "$work"/*)
row "sha256sum" 1 "$sha_peer" ""
for t in 1 2; do row "aigis digest --algo sha256" "$t" "$(best "$aigis" digest --threads "$t" "$work")" "$sha_peer"; done
b3_peer=""
if command -v b3sum > /dev/null; then
  b3_peer=$(best b3sum --num-threads 1 "$work"/*)
  row "b3sum --num-threads 1" 1 "$b3_peer" ""
fi
for t in 1 2; do row "aigis digest --algo blake3" "$t" "$(best "$aigis" digest --algo blake3 --threads "$t" "$work")" "$b3_peer"; done
echo "raw results: $out" >&2
