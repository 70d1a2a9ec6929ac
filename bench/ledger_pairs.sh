#!/usr/bin/env bash
# Gateway throughput with the audit ledger on against off, in alternating short bursts (issue 7).
#   bash bench/ledger_pairs.sh [PAIRS] [OUT.txt] [BINDIR]     # defaults: 40, no file, release build
# The two-gateway case of bench/ledger_variants.py (see its --help): a gateway without a ledger
# and one recording to a `file:` store run at once on core 1 with the mock upstream; wrk (core 0)
# loads one, then the other, BURST seconds each (default 2), PAIRS times, in ABBA order. Prints
# each pair, the median ratio with its quartiles, the geometric mean with a bootstrap 95%
# interval, and the CPU-µs per request of the request threads, the writer and the mock.
# BINDIR holds a release `aigis` and `aigis-mock-upstream` (default: $CARGO_TARGET_DIR/release,
# built if missing). Stop other work on the machine while it runs. Never run in CI.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pairs=${1:-40}
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "PAIRS must be a positive integer" >&2; exit 2; }
args=(--rounds "$pairs" --burst "${BURST:-2}")
[[ -n ${2:-} ]] && args+=(--out "$2")
[[ -n ${3:-} ]] && args+=("on=$3")
exec python3 "$ROOT/bench/ledger_variants.py" "${args[@]}"
