#!/usr/bin/env bash
# bench/ledger.sh: the audit ledger's durable append rate, append-to-ack latency, PostgreSQL
# with two writers, and full verification; proof generation/verification via divan.
#
#   bash bench/ledger.sh            # 200k SQLite appends, 40k PostgreSQL appends, verify 1 M, divan
#   bash bench/ledger.sh --smoke    # 20k SQLite appends, verify 50k, no PostgreSQL, no divan: < 60 s (CI)
#
# SQLite runs in WAL mode with synchronous=FULL: an append is acknowledged only after the
# transaction holding its batch is on disk. The driver (crates/aigis-ledger/examples/
# ledger_bench.rs) runs N concurrent appenders on one tokio worker; the writer thread batches
# whatever is queued into one transaction. Pinned with taskset to core 1 where available.
# PostgreSQL: a private database aigis_test_bench_<pid> on 127.0.0.1:5432, dropped after.
# Verification builds N entries, signs a checkpoint, then times `audit::verify` (one core)
# and extrapolates to 10 M entries (the extrapolation is linear; say so when quoting it).
#
# Results: bench/results/<date>-ledger/ (raw output, machine.txt).
set -euo pipefail

SMOKE=0
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/examples/ledger_bench
OUT=$ROOT/bench/results/$(date -u +%Y-%m-%d)-ledger
mkdir -p "$OUT"
PIN=()
command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]] && PIN=(taskset -c 1)

(cd "$ROOT" && cargo build --release --locked -p aigis-ledger --example ledger_bench >&2)
{ uname -a; nproc; grep -m1 'model name' /proc/cpuinfo || true; df -h "$TARGET" | tail -1; } > "$OUT/machine.txt"

if ((SMOKE)); then
  "${PIN[@]}" "$BIN" sqlite 20000 256 | tee "$OUT/smoke.txt"
  "${PIN[@]}" "$BIN" verify 50000 | tee -a "$OUT/smoke.txt"
  exit 0
fi

{
  "${PIN[@]}" "$BIN" sqlite 200000 256
  "${PIN[@]}" "$BIN" sqlite 200000 1024
  "$BIN" sqlite 200000 4096
  "${PIN[@]}" "$BIN" verify 1000000
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
