#!/usr/bin/env bash
# bench/crypto.sh: `aigis encrypt/decrypt` against `rage` on the same file, same run.
#
#   bash bench/crypto.sh            # 1 GiB file, aigis with 1 and 2 threads, rage; ~2-4 minutes
#   bash bench/crypto.sh --smoke    # 64 MiB, aigis only, 1 run each: under 60 s, no peers (CI)
#
# The input is random bytes (incompressible, like model weights) in $CARGO_TARGET_DIR/bench-crypto.
# Both tools encrypt to the same X25519 recipient and decrypt with the same identity file,
# reading the file and writing to /dev/null (no disk write in the timing). hyperfine runs each
# case (1 warm-up + --runs N) and reports the mean; the script prints MiB/s and ratios (aigis
# 1 thread / rage, aigis 2 threads / rage). rage is single-threaded. Threads: `--threads N`
# (the same as RAYON_NUM_THREADS). Never run in CI except --smoke.
#
# Results: bench/results/crypto-<date>-<commit>/ (hyperfine JSON, machine.txt, summary.md).
set -euo pipefail

SMOKE=0 RUNS=3 SIZE_MIB=1024
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 RUNS=1 SIZE_MIB=64 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --size-mib) SIZE_MIB=${2:?--size-mib needs a number}; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
AIGIS=${AIGIS_BIN_RELEASE:-$TARGET/release/aigis}
RAGE=${AIGIS_RAGE:-$TARGET/tools/bin/rage}
WORK=$TARGET/bench-crypto
mkdir -p "$WORK"
T0=$(date +%s)
log() { printf '[crypto %3ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }

if [[ -z ${BENCH_NO_BUILD:-} && -z ${AIGIS_BIN_RELEASE:-} ]]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --locked -p aigis-cli >&2)
fi
PEER=1
if ((SMOKE)) || [[ ! -x $RAGE ]]; then
  PEER=0
  ((SMOKE)) || log "rage not found at $RAGE (install: scripts/test does it); aigis only"
fi

INPUT=$WORK/input-$SIZE_MIB.bin
if [[ ! -f $INPUT ]]; then
  log "creating $SIZE_MIB MiB of random input"
  head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$INPUT"
fi
KEY=$WORK/key.txt
[[ -f $KEY ]] || "$AIGIS" keygen -o "$KEY" 2>/dev/null
RECIPIENT=$("$AIGIS" keygen -y "$KEY")
SEALED=$WORK/sealed-$SIZE_MIB.age
"$AIGIS" encrypt -r "$RECIPIENT" -o "$SEALED" "$INPUT"

if ((SMOKE)); then
  OUT=$WORK/smoke
else
  COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  OUT=$ROOT/bench/results/crypto-$(date -u +%Y%m%d)-$COMMIT
fi
rm -rf "$OUT" && mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "uname: $(uname -a)"
  echo "nproc: $(nproc)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "aigis: $("$AIGIS" --version)"
  ((PEER)) && echo "rage: $("$RAGE" --version)"
  echo "input: $SIZE_MIB MiB random"
  lscpu | grep -E 'Model name|^CPU\(s\)|MHz' || true
} >"$OUT/machine.txt"

CASES=(
  "aigis-enc-1t" "$AIGIS encrypt --threads 1 -r $RECIPIENT $INPUT"
  "aigis-enc-2t" "$AIGIS encrypt --threads 2 -r $RECIPIENT $INPUT"
  "aigis-dec-1t" "$AIGIS decrypt --threads 1 -i $KEY $SEALED"
  "aigis-dec-2t" "$AIGIS decrypt --threads 2 -i $KEY $SEALED"
)
if ((PEER)); then
  CASES+=(
    "rage-enc" "$RAGE -e -r $RECIPIENT $INPUT"
    "rage-dec" "$RAGE -d -i $KEY $SEALED"
  )
fi

declare -A MEAN
for ((i = 0; i < ${#CASES[@]}; i += 2)); do
  name=${CASES[i]} cmd=${CASES[i + 1]}
  log "$name"
  hyperfine --style none --warmup 1 --runs "$RUNS" --output null \
    --export-json "$OUT/$name.json" "$cmd" >"$OUT/$name.txt" 2>&1
  MEAN[$name]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['mean'])" "$OUT/$name.json")
done

{
  echo "| case | mean s | MiB/s | vs rage |"
  echo "|---|---:|---:|---:|"
  for name in aigis-enc-1t aigis-enc-2t rage-enc aigis-dec-1t aigis-dec-2t rage-dec; do
    [[ -n ${MEAN[$name]:-} ]] || continue
    peer=rage-enc
    [[ $name == *dec* ]] && peer=rage-dec
    python3 - "$name" "${MEAN[$name]}" "$SIZE_MIB" "${MEAN[$peer]:-}" <<'PY'
import sys
name, mean, size, peer = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ratio = f"{float(peer) / mean:.2f}x" if peer else "-"
print(f"| {name} | {mean:.3f} | {size / mean:.0f} | {ratio} |")
PY
  done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
