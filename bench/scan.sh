#!/usr/bin/env bash
# bench/scan.sh: `aigis scan` against picklescan, modelscan and fickling on the same files, in
# the same run.
#
#   bash bench/scan.sh               # detection table + throughput on a 2 GiB checkpoint
#   bash bench/scan.sh --big-mib 4096
#   bash bench/scan.sh --smoke       # aigis only, small checkpoint, <= 60 s (CI may run this)
#
# Detection: every sample of ../shared/data/model-scan/picklescan/tests (labels.tsv, read in
# place, when present) and every sample of crates/aigis-artifact/tests/gen/make_samples.py
# (generated into bench/work/scan/samples). A tool "catches" a sample when its exit code says
# it found something (1 for aigis, picklescan and modelscan; non-zero without a crash for
# fickling --check-safety); exit 2 of aigis means "not fully scanned" (fail closed).
# Throughput and memory: one PyTorch-shaped zip checkpoint with --big-mib MiB of tensor data
# (make_samples.py --big-mib), page cache warmed first, each tool once under /usr/bin/time -v
# (wall seconds, max RSS). Peers come from bench/requirements-scan.txt in bench/work/scan-venv.
# Never run in CI except --smoke: this is a measurement, not a gate.
#
# Results: bench/results/scan-<date>-<commit>/ (detection.tsv, timing.tsv, summary.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0 BIG_MIB=2048 SKIP_PEERS=0 SKIP_DETECTION=0 OUT=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 SKIP_PEERS=1 BIG_MIB=64 ;;
    --big-mib) BIG_MIB=${2:?--big-mib needs a number}; shift ;;
    --skip-peers) SKIP_PEERS=1 ;;
    --skip-detection) SKIP_DETECTION=1 ;; # keep OUT/detection.tsv from an earlier run
    --out) OUT=${2:?--out needs a folder}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

WORK=$ROOT/bench/work/scan
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${OUT:-$ROOT/bench/results/scan-$(date -u +%Y%m%d)-$COMMIT}
mkdir -p "$WORK" "$OUT"
PY=${AIGIS_PYTHON:-python3}

# AIGIS_BIN=path skips the build; AIGIS_BIN=.../examples/scan_files (the library without the
# CLI: `cargo build --release -p aigis-artifact --example scan_files`) is called without `scan`.
AIGIS_ARGS=(scan --quiet)
[[ ${AIGIS_BIN:-} == */scan_files ]] && AIGIS_ARGS=()
if [[ -n "${AIGIS_BIN:-}" ]]; then
  AIGIS=$AIGIS_BIN
else
  (cd "$ROOT" && cargo build --release -q -p aigis-cli)
  AIGIS=${CARGO_TARGET_DIR:-$ROOT/target}/release/aigis
fi

VENV=$WORK/../scan-venv
if ((SKIP_PEERS == 0)) && [[ ! -x $VENV/bin/picklescan ]]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/bench/requirements-scan.txt"
fi

rm -rf "$WORK/samples"
"$PY" "$ROOT/crates/aigis-artifact/tests/gen/make_samples.py" "$WORK/samples"
BIG=$WORK/big-$BIG_MIB
[[ -f $BIG/big_torch.pt ]] || "$PY" "$ROOT/crates/aigis-artifact/tests/gen/make_samples.py" "$BIG" --big-mib "$BIG_MIB"

# --- detection -----------------------------------------------------------------------------
tools=(aigis)
((SKIP_PEERS == 0)) && tools+=(picklescan modelscan fickling)
run_tool() { # tool file -> exit code
  local rc=0
  case "$1" in
    aigis) timeout 120 "$AIGIS" "${AIGIS_ARGS[@]}" "$2" >/dev/null 2>&1 || rc=$? ;;
    picklescan) timeout 120 "$VENV/bin/picklescan" -p "$2" >/dev/null 2>&1 || rc=$? ;;
    modelscan) timeout 120 "$VENV/bin/modelscan" -p "$2" >/dev/null 2>&1 || rc=$? ;;
    fickling) timeout 120 "$VENV/bin/fickling" --check-safety "$2" >/dev/null 2>&1 || rc=$? ;;
  esac
  echo "$rc"
}
((SKIP_DETECTION)) || {
  printf 'set\tsample\texpected\t%s\n' "$(IFS=$'\t'; echo "${tools[*]}")"
  SHARED=$ROOT/../shared/data/model-scan/picklescan
  if [[ -f $SHARED/labels.tsv ]]; then
    grep -v '^#' "$SHARED/labels.tsv" | while IFS=$'\t' read -r path verdict code _; do
      row="picklescan-tests\t$path\t$code"
      for t in "${tools[@]}"; do row+="\t$(run_tool "$t" "$SHARED/$path")"; done
      printf "$row\n"
    done
  fi
  while IFS=$'\t' read -r name code failon _; do
    [[ $failon == high || $failon == info ]] || continue # medium/low-only techniques: aigis-specific
    row="generated\t$name\t$code"
    for t in "${tools[@]}"; do row+="\t$(run_tool "$t" "$WORK/samples/$name")"; done
    printf "$row\n"
  done <"$WORK/samples/manifest.tsv"
} >"$OUT/detection.tsv"

# --- throughput and memory -------------------------------------------------------------------
cat "$BIG/big_torch.pt" >/dev/null
SIZE=$(stat -c %s "$BIG/big_torch.pt")
# Each tool also scans a 60-byte pickle: its start-up cost, subtracted to give the scan cost.
printf 'tool\tseconds\tmax_rss_kib\texit\tstartup_seconds\n' >"$OUT/timing.tsv"
timed() { # label file -> "seconds rss exit"
  local t=$1 f=$2 rc=0 cmd
  case "$t" in
    aigis) cmd=("$AIGIS" "${AIGIS_ARGS[@]}" "$f") ;;
    picklescan) cmd=("$VENV/bin/picklescan" -p "$f") ;;
    modelscan) cmd=("$VENV/bin/modelscan" -p "$f") ;;
    fickling) cmd=("$VENV/bin/fickling" --check-safety "$f") ;;
  esac
  /usr/bin/time -v -o "$OUT/time-$t.txt" "${cmd[@]}" >"$OUT/out-$t.txt" 2>&1 || rc=$?
  awk -F': ' -v rc="$rc" '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
    /Maximum resident set size/ { r = $2 } END { print s "\t" r "\t" rc }' "$OUT/time-$t.txt"
}
for t in "${tools[@]}"; do
  startup=$(timed "$t" "$WORK/samples/benign_dict_p2.pkl" | cut -f1)
  printf '%s\t%s\t%s\n' "$t" "$(timed "$t" "$BIG/big_torch.pt")" "$startup" >>"$OUT/timing.tsv"
done

{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { print int($2/1024) " MiB" }' /proc/meminfo), commit $COMMIT"
  "$PY" - "$OUT" "$SIZE" <<'PYEOF'
import csv, sys
out, size = sys.argv[1], int(sys.argv[2])
rows = list(csv.reader(open(f"{out}/detection.tsv"), delimiter="\t"))
head, rows = rows[0], rows[1:]
tools = head[3:]
print("\n## Detection\n")
print("| set | samples | " + " | ".join(f"{t} caught / false alarms / other exits" for t in tools) + " |")
print("|---|---|" + "---|" * len(tools))
for s in sorted({r[0] for r in rows}):
    sub = [r for r in rows if r[0] == s]
    mal = [r for r in sub if r[2] != "0"]
    ben = [r for r in sub if r[2] == "0"]
    cells = []
    for i, t in enumerate(tools):
        col = 3 + i
        caught = sum(1 for r in mal if r[col] == "1" or (t == "aigis" and r[col] == r[2]))
        fp = sum(1 for r in ben if r[col] == "1")
        err = sum(1 for r in sub if r[col] not in ("0", "1"))
        cells.append(f"{caught}/{len(mal)} / {fp}/{len(ben)} / {err}")
    print(f"| {s} | {len(sub)} | " + " | ".join(cells) + " |")
exact = sum(1 for r in rows if r[3] == r[2])
print(f"\naigis exit code equals the label on {exact}/{len(rows)} samples.")
print("\nMissed by a peer (malicious samples whose exit was not 1):\n")
for i, t in enumerate(tools[1:], start=1):
    missed = [r[1] for r in rows if r[2] != "0" and r[3 + i] != "1"]
    print(f"- {t}: {len(missed)}: " + ", ".join(missed[:80]) + (" …" if len(missed) > 80 else ""))
print(f"\n## Throughput on a {size / 2**30:.2f} GiB PyTorch-shaped zip checkpoint\n")
timing = list(csv.reader(open(f"{out}/timing.tsv"), delimiter="\t"))[1:]
base = next((float(r[1]) for r in timing if r[0] == "aigis"), None)
base_startup = next((float(r[4]) for r in timing if r[0] == "aigis"), 0.0)
print("| tool | wall s | start-up s (60-byte pickle) | wall - start-up s | MiB/s (wall) | max RSS MiB | exit | aigis wall speed-up |")
print("|---|---|---|---|---|---|---|---|")
for t, secs, rss, rc, startup in timing:
    s = max(float(secs), 0.01)
    ratio = f"{s / max(base, 0.01):.0f}x" if base is not None and t != "aigis" else "-"
    print(f"| {t} | {float(secs):.2f} | {float(startup):.2f} | {max(float(secs) - float(startup), 0):.2f} | {size / 2**20 / s:.0f} | {int(rss) / 1024:.0f} | {rc} | {ratio} |")
print("\n(/usr/bin/time has 10 ms resolution: 0.00-0.01 s means under 10 ms; ratios use 10 ms as the floor.)")
PYEOF
} | tee "$OUT/summary.md"
