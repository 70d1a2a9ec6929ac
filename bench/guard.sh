#!/usr/bin/env bash
# bench/guard.sh: aigis's guard engine against LLM Guard and Presidio, same inputs, same run.
#
#   bash bench/guard.sh                # aigis + both peers, 5 rounds (~3-4 minutes plus build/install)
#   bash bench/guard.sh --skip-peers   # aigis only
#
# Inputs (bench/guard_inputs.py, fixed seed, into bench/work/guard-inputs/): 300 prompts of about
# 1 KB of mixed English prose, e-mails and code, a quarter with PII, some with fake credentials,
# injection phrases or zero-width characters; three documents of about 100 KB of the same.
# aigis: crates/aigis-guard/examples/guard_bench (release), full input inspection with the
# `balanced` profile (injection, PII, secrets, hidden characters). Peers (bench/guard_peers.py,
# venv bench/work/guard-venv from bench/requirements-guard.txt): LLM Guard's regex-based input
# scanners Secrets + BanSubstrings + InvisibleText (no torch/transformers), and the Presidio
# analyzer with its pattern recognisers over a blank spaCy pipeline (no model).
# Every tool: round 0 over the prompts warms up and is not counted, then N rounds over the
# prompts (per-prompt p50/p99) and N rounds over the documents (MB/s), each process pinned to
# core 1 (taskset) when there are 2+ cores. The peers do less than aigis (a subset of the checks
# each), so the ratios flatter them if anything. Never run in CI: this is a measurement, not a gate.
#
# Results: bench/results/guard-<date>-<commit>/: raw JSON per tool (aigis.json, llm-guard.json,
# presidio.json), stderr logs, machine.txt and summary.md (printed at the end).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<'EOF'
Options:
  --rounds N     measured rounds over the prompts and over the documents (default 5)
  --skip-peers   aigis only: no venv, no Python peers
  --out DIR      write results to DIR instead of the default folder
  -h, --help     this text
Environment: GUARD_BENCH_BIN=path (or BENCH_NO_BUILD=1) skips the cargo build.
EOF
}

ROUNDS=5 SKIP_PEERS=0 OUT=""
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --skip-peers) SKIP_PEERS=1 ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${GUARD_BENCH_BIN:-$TARGET/release/examples/guard_bench}
VENV=$WORK/guard-venv
REQS=$BENCH/requirements-guard.txt
INPUTS=$WORK/guard-inputs
PEERS=(llm-guard presidio)
T0=$(date +%s)

log() { printf '[guard %3ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  PIN=(taskset -c 1) PINNING="every tool on core 1"
else
  PIN=() PINNING="none (fewer than 2 cores or no taskset)"
fi
BUSY_RE='^(rustc|cc1|cc1plus|ld|ld.lld|rust-lld|clippy-driver|rustdoc|cargo)$'
busy() { ps -eo comm= | grep -cE "$BUSY_RE" || true; } # compile jobs sharing the machine (noise)

mkdir -p "$WORK"
# ---------------------------------------------------------------- build
if [[ -z ${GUARD_BENCH_BIN:-} && -z ${BENCH_NO_BUILD:-} ]] && command -v cargo >/dev/null; then
  log "cargo build --release -p aigis-guard --example guard_bench"
  if (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q -p aigis-guard --example guard_bench) >&2; then
    BUILD_NOTE="built by cargo for this tree"
  else
    [[ -x $BIN ]] || die "release build failed"
    BUILD_NOTE="release build FAILED; measured the existing binary, which may not match this tree"
    log "WARNING: $BUILD_NOTE"
  fi
else
  BUILD_NOTE="not rebuilt (GUARD_BENCH_BIN or BENCH_NO_BUILD set)"
fi
[[ -x $BIN ]] || die "missing $BIN (cargo build --release -p aigis-guard --example guard_bench)"

# ---------------------------------------------------------------- peers' venv
PEER_NOTE=""
if ((!SKIP_PEERS)); then
  # The venv is (re)installed when it is missing or was installed from another requirements file.
  if ! cmp -s "$REQS" "$VENV/requirements-guard.txt"; then
    if [[ -n ${CI:-} ]]; then
      PEER_NOTE="not run: not installing the peers in CI" SKIP_PEERS=1
    else
      log "installing the peers into bench/work/guard-venv (pip --no-deps -r bench/requirements-guard.txt, ~1 minute)"
      rm -rf "$VENV"
      if { python3 -m venv "$VENV" &&
        timeout 900 "$VENV/bin/pip" install -q --no-deps -r "$REQS"; } >"$WORK/guard-install.log" 2>&1; then
        cp "$REQS" "$VENV/requirements-guard.txt"
      else
        PEER_NOTE="not run: pip install failed: $(grep -m1 -iE 'error' "$WORK/guard-install.log" || tail -1 "$WORK/guard-install.log")"
        SKIP_PEERS=1
      fi
    fi
  fi
  [[ -n $PEER_NOTE ]] && log "peers $PEER_NOTE"
fi

# ---------------------------------------------------------------- inputs, output folder
python3 "$BENCH/guard_inputs.py" "$INPUTS" >&2
FILES=("$INPUTS/prompts.jsonl" "$INPUTS"/doc-100k-{1,2,3}.txt)

DATE=$(date +%F)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
[[ -z $OUT ]] && OUT=$BENCH/results/guard-$DATE-$COMMIT
[[ $OUT == "$BENCH/results/"* || $OUT == "$WORK/"* ]] && rm -rf "$OUT" # a re-run replaces its own folder
mkdir -p "$OUT"

{
  echo "date: $(date -Is)"
  echo "command: bash bench/guard.sh --rounds $ROUNDS$( ((SKIP_PEERS)) && echo ' --skip-peers')"
  echo "git: $COMMIT ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) uncommitted paths)"
  echo "nproc: $(nproc)"
  echo "uname: $(uname -a)"
  echo "pinning: $PINNING"
  echo "rounds: 1 warm-up + $ROUNDS measured over the prompts, $ROUNDS over the documents"
  echo "inputs: $(wc -l <"$INPUTS/prompts.jsonl") prompts ($(wc -c <"$INPUTS/prompts.jsonl") bytes of JSONL); docs $(wc -c "$INPUTS"/doc-100k-*.txt | awk '$2 != "total" { printf "%s ", $1 }')bytes"
  echo "aigis: $BIN, modified $(date -r "$BIN" -Is); $BUILD_NOTE"
  if ((!SKIP_PEERS)); then
    echo "python: $("$VENV/bin/python" -V 2>&1)"
    echo "peers: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("llm-guard", "bc-detect-secrets", "presidio-analyzer", "spacy")))')"
  fi
  [[ -n $PEER_NOTE ]] && echo "peers: $PEER_NOTE"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "compile jobs at start (rustc/cc/ld/cargo...): $(busy)"
  echo "--- lscpu | head -20"
  lscpu | head -20
} >"$OUT/machine.txt"

# ---------------------------------------------------------------- runs
log "aigis: guard_bench, $ROUNDS rounds"
env -u SIGT -u GUARD_BENCH_STAGES "${PIN[@]}" "$BIN" "${FILES[@]}" --rounds "$ROUNDS" >"$OUT/aigis.json" 2>"$OUT/aigis.err" ||
  die "guard_bench failed (see $OUT/aigis.err)"
log "aigis: $(cat "$OUT/aigis.json")"
RAN=(aigis)
if ((!SKIP_PEERS)); then
  for peer in "${PEERS[@]}"; do
    log "$peer: $ROUNDS rounds (tens of seconds)"
    if "${PIN[@]}" "$VENV/bin/python" "$BENCH/guard_peers.py" "${FILES[@]}" --rounds "$ROUNDS" --peer "$peer" \
      >"$OUT/$peer.json" 2>"$OUT/$peer.err"; then
      log "$peer: $(cat "$OUT/$peer.json")"
      RAN+=("$peer")
    else
      log "$peer failed (see $OUT/$peer.err)"
    fi
  done
fi
echo "compile jobs at end: $(busy)" >>"$OUT/machine.txt"

# ---------------------------------------------------------------- summary
python3 - "$OUT" "$ROUNDS" "${RAN[@]}" >"$OUT/summary.md" <<'EOF'
import json, sys
out, rounds, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {t: json.load(open(f"{out}/{t}.json")) for t in tools}
a = res["aigis"]
what = {
    "aigis": "full input inspection, `balanced` profile: injection, PII, secrets, hidden characters",
    "llm-guard": "Secrets + BanSubstrings (9 injection phrases) + InvisibleText scanners",
    "presidio": "AnalyzerEngine, default pattern recognisers, blank spaCy pipeline (PII only)",
}
def times(x):
    return f"aigis {x:,.1f}× faster" if x >= 1 else f"aigis {1 / x:,.1f}× slower"
machine = open(f"{out}/machine.txt").read().splitlines()
print("# Guard engine: aigis vs LLM Guard vs Presidio\n")
for line in machine:
    if line.startswith(("date:", "git:", "pinning:", "rounds:", "inputs:", "peers:", "python:", "loadavg", "compile jobs")):
        print(f"- {line}")
print()
print("| tool | p50 µs / prompt | p99 µs / prompt | MB/s on 100 KB docs | startup ms | p50 vs aigis | MB/s vs aigis |")
print("|---|---:|---:|---:|---:|---|---|")
for t in tools:
    r = res[t]
    if t == "aigis":
        p50r = mbr = "—"
    else:
        p50r = times(r["prompt_p50_us"] / a["prompt_p50_us"])
        mbr = times(a["doc_mb_per_s"] / r["doc_mb_per_s"])
    print(f"| {t} | {r['prompt_p50_us']:,.1f} | {r['prompt_p99_us']:,.1f} | {r['doc_mb_per_s']:,.3f} "
          f"| {r['startup_ms']:,.1f} | {p50r} | {mbr} |")
conv = a.get("conversation")
if conv:
    print(f"\naigis's findings cache (not in the figures above: every round starts empty): a "
          f"{conv['turns']}-turn chat with a 4 KB system prompt, resent whole each turn (last request "
          f"{conv['last_request_bytes']:,} bytes), {conv['cached_us_per_request']:,.1f} µs per request "
          f"with the cache against {conv['uncached_us_per_request']:,.1f} without "
          f"({conv['speedup']:,.1f}×); a 100 KB document seen before {a['doc_cached_us']:,.1f} µs.")
print()
for t in tools:
    print(f"- **{t}**: {what[t]}; {res[t].get('prompt_findings', '?')} findings/flags per round over "
          f"{res[t].get('prompts', '?')} prompts (each tool counts differently: a sanity check, not a score).")
print("\nSame inputs (bench/guard_inputs.py, fixed seed), same process pinning, round 0 warm-up not "
      f"counted, {rounds} measured rounds. Peer startup includes their Python imports; aigis's is "
      "Guard::new + policy in an already running process. The peers each run a subset of what aigis "
      "checks. Raw numbers: the *.json files next to this one.")
EOF
cat "$OUT/summary.md"
log "results in ${OUT#"$ROOT"/}"
