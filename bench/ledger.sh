#!/usr/bin/env bash
# bench/ledger.sh: the audit ledger's durable append rate, append-to-ack latency, PostgreSQL
# with two writers, and full verification; proof generation/verification via divan.
#
#   bash bench/ledger.sh            # 200k appends into the file set and SQLite side by side,
#                                   # 40k PostgreSQL appends, verify 1 M, divan, gateway ratio
#   bash bench/ledger.sh --smoke    # 20k appends into each embedded store, verify 50k, no
#                                   # PostgreSQL, no divan: < 60 s (CI)
#   bash bench/ledger.sh --gateway  # only: gateway req/s with [ledger] off, on with file:, on with
#                                   # sqlite: (needs wrk and release aigis + aigis-mock-upstream;
#                                   # BENCH_NO_BUILD=1 skips the build; ROUNDS=N rounds, 5 by
#                                   # default; reports the median of the paired round ratios,
#                                   # and the gateway's CPU-µs per request (and its writer thread's), the
#                                   # mock's, and the gateway's page faults and context switches;
#                                   # COMMIT_INTERVAL=10ms sets [ledger] commit_interval,
#                                   # MODES="off file" leaves SQLite out; RT=1 runs mock, gateway
#                                   # and wrk at SCHED_RR priority 50, after a 2 s warm-up per
#                                   # round, so niced background work on a shared machine cannot
#                                   # take their time: steadier pairs, not comparable with RT=0)
#
# Both embedded stores acknowledge an append only once its batch is on disk: the file set
# (file:DIR) after one write + fdatasync per batch, SQLite (WAL, synchronous=FULL) after the
# transaction's commit. The driver (crates/aigis-ledger/examples/ledger_bench.rs) runs N
# concurrent appenders on one tokio worker; the writer thread batches whatever is queued.
# `ledger_bench embedded` runs the file set, then SQLite, back to back in one process, so both
# see the same machine. Pinned with taskset to core 1 where available.
# PostgreSQL: a private database aigis_test_bench_<pid> on 127.0.0.1:5432, dropped after.
# Verification builds N entries, signs a checkpoint, then times `audit::verify` (one core)
# and extrapolates to 10 M entries (the extrapolation is linear; say so when quoting it).
#
# Results: bench/results/<date>-ledger/ (raw output, machine.txt).
set -euo pipefail

SMOKE=0 GATEWAY=0
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --gateway) GATEWAY=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/examples/ledger_bench
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y-%m-%d)-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)-ledger}
mkdir -p "$OUT"
PIN=()
command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]] && PIN=(taskset -c 1)

# Gateway throughput with the ledger recording every request (file: and sqlite: stores) vs
# without, same run: mock and gateway pinned to core 1, wrk (1 thread, 64 connections, 10 s) to
# core 0, rounds alternating off/file/sqlite so all see the same background noise; the ratios
# of medians are reported.
gateway_compare() {
  local aigis=$TARGET/release/aigis mock=$TARGET/release/aigis-mock-upstream work rounds=${ROUNDS:-5}
  if [[ -z ${BENCH_NO_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked -p aigis-cli -p aigis-mock-upstream >&2)
  fi
  command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; return 1; }
  local rt=()
  [[ -n ${RT:-} ]] && rt=(chrt -r 50)
  work=$(mktemp -d)
  "${rt[@]}" "$mock" --listen 127.0.0.1:18101 >"$work/mock.out" 2>&1 &
  local mock_pid=$!
  taskset -cp 1 "$mock_pid" >/dev/null 2>&1 || true
  sleep 0.5
  passthrough_config 18110 18111 18101 >"$work/off.toml"
  cp "$work/off.toml" "$work/file.toml"
  cp "$work/off.toml" "$work/sqlite.toml"
  printf '\n[ledger]\nstore = "file:ledger"\nsigning_key = "file:ledger.key"\n' >>"$work/file.toml"
  printf '\n[ledger]\nstore = "sqlite:ledger.db"\nsigning_key = "file:ledger.key"\n' >>"$work/sqlite.toml"
  if [[ -n ${COMMIT_INTERVAL:-} ]]; then # e.g. COMMIT_INTERVAL=10ms: the gateway's default otherwise
    printf 'commit_interval = "%s"\n' "$COMMIT_INTERVAL" | tee -a "$work/file.toml" >>"$work/sqlite.toml"
  fi
  "$aigis" audit init --key "$work/ledger.key" --origin bench.aigis/ledger >/dev/null
  # CPU time (user + system, clock ticks) of a process and all its threads.
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  # The ledger writer thread's ticks, minor page faults and context switches of the gateway.
  writer_ticks() { cat "/proc/$1"/task/*/stat 2>/dev/null | awk '/\(aigis-ledger\)/ {s += $14 + $15} END {print s + 0}'; }
  faults() { awk '{print $10}' "/proc/$1/stat"; }
  switches() { cat "/proc/$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
  for r in $(seq 1 "$rounds"); do
    for mode in ${MODES:-off file sqlite}; do
      rm -rf "$work/ledger" "$work/ledger.db"*
      "${rt[@]}" taskset -c 1 "$aigis" gateway --config "$work/$mode.toml" --log-format json >/dev/null 2>"$work/$mode.log" &
      local gw=$!
      for _ in $(seq 50); do curl -sf http://127.0.0.1:18111/healthz >/dev/null && break; sleep 0.1; done
      if ((${#rt[@]})); then
        "${rt[@]}" taskset -c 0 wrk -t1 -c64 -d2s -s "$ROOT/bench/wrk_post.lua" http://127.0.0.1:18110/v1/chat/completions >/dev/null
      fi
      local t0 t1 w0 w1 m0 m1 f0 f1 c0 c1
      t0=$(ticks "$gw") w0=$(writer_ticks "$gw") m0=$(ticks "$mock_pid") f0=$(faults "$gw") c0=$(switches "$gw")
      "${rt[@]}" taskset -c 0 wrk -t1 -c64 -d10s --latency -s "$ROOT/bench/wrk_post.lua" http://127.0.0.1:18110/v1/chat/completions \
        | sed -n 's/^BENCH /'"$mode"' round '"$r"': /p' | tr -d '\n'
      t1=$(ticks "$gw") w1=$(writer_ticks "$gw") m1=$(ticks "$mock_pid") f1=$(faults "$gw") c1=$(switches "$gw")
      echo " gateway_ticks=$((t1 - t0)) writer_ticks=$((w1 - w0)) mock_ticks=$((m1 - m0)) faults=$((f1 - f0)) switches=$((c1 - c0)) hz=$(getconf CLK_TCK)"
      kill "$gw"; wait "$gw" 2>/dev/null || true
    done
  done | tee "$OUT/gateway.txt"
  kill "$mock_pid"; wait "$mock_pid" 2>/dev/null || true
  python3 - "$OUT/gateway.txt" <<'EOT' | tee -a "$OUT/gateway.txt"
import statistics, sys
rows = {"off": {}, "file": {}, "sqlite": {}}
for line in open(sys.argv[1]):
    if " round " not in line:
        continue
    mode, _, r = line.split()[:3]
    f = dict(kv.split("=") for kv in line.split(": ", 1)[1].split() if "=" in kv)
    reqs = float(f["requests"])
    us = 1e6 / int(f["hz"]) / reqs
    rows[mode][r] = (float(f["rps"]), int(f["gateway_ticks"]) * us, int(f.get("writer_ticks", 0)) * us,
                     int(f.get("mock_ticks", 0)) * us, int(f.get("faults", 0)) / reqs, int(f.get("switches", 0)) / reqs)
med = lambda mode, i: statistics.median(v[i] for v in rows[mode].values())
off, cpu_off = med("off", 0), med("off", 1)
for store in ("file", "sqlite"):
    if not rows[store]:
        continue
    paired = [rows[store][r][0] / rows["off"][r][0] for r in rows[store] if r in rows["off"]]
    on, cpu = med(store, 0), med(store, 1)
    print(f"gateway req/s median: ledger off {off:.0f}, ledger on ({store}:) {on:.0f}, ratio {on / off:.3f}; "
          f"median of paired round ratios {statistics.median(paired):.3f} (target >= 0.9); "
          f"gateway CPU-us/req {cpu_off:.1f} off, {cpu:.1f} on (writer thread {med(store, 2):.2f}); "
          f"mock CPU-us/req {med('off', 3):.1f} off, {med(store, 3):.1f} on; "
          f"gateway page faults/req {med('off', 4):.3f} off, {med(store, 4):.3f} on; "
          f"context switches/req {med('off', 5):.3f} off, {med(store, 5):.3f} on")
EOT
  rm -rf "$work"
}

if ((GATEWAY)); then
  gateway_compare
  exit 0
fi

(cd "$ROOT" && cargo build --release --locked -p aigis-ledger --example ledger_bench >&2)
{ uname -a; nproc; grep -m1 'model name' /proc/cpuinfo || true; df -h "$TARGET" | tail -1; } > "$OUT/machine.txt"

if ((SMOKE)); then
  "${PIN[@]}" "$BIN" embedded 20000 256 | tee "$OUT/smoke.txt"
  "${PIN[@]}" "$BIN" verify 50000 file | tee -a "$OUT/smoke.txt"
  exit 0
fi

{
  uptime
  "${PIN[@]}" "$BIN" embedded 200000 256
  "${PIN[@]}" "$BIN" embedded 200000 1024
  "$BIN" embedded 200000 4096
  "${PIN[@]}" "$BIN" verify 1000000 file
  "${PIN[@]}" "$BIN" verify 1000000 sqlite
} | tee "$OUT/ledger.txt"

if command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -c 'select 1' postgres >/dev/null 2>&1; then
  DB=aigis_test_bench_$$
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB" postgres >/dev/null
  trap 'psql -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres >/dev/null' EXIT
  "$BIN" postgres 40000 512 "postgres://postgres@127.0.0.1:5432/$DB" | tee -a "$OUT/ledger.txt"
else
  echo "PostgreSQL not reachable: skipped" | tee -a "$OUT/ledger.txt"
fi

(cd "$ROOT" && "${PIN[@]}" cargo bench --locked -p aigis-ledger --bench proofs) | tee "$OUT/proofs.txt"
command -v wrk >/dev/null && gateway_compare
