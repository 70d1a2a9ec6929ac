#!/usr/bin/env bash
# Instructions per request that the audit ledger adds to the gateway (issue 7), measured with
# callgrind (deterministic, unlike wall-clock figures on a shared machine). The gateway runs
# under valgrind pinned to one core; a Python keep-alive client sends N sequential
# chat-completion requests, once with N=LOW and once with N=HIGH; the difference divided by
# HIGH-LOW is the steady-state cost of one request (start-up and shutdown cancel out). Done
# for `ledger off` and for `store = "file:…"`. callgrind does not see kernel time, so the
# writer's syscalls per request are counted with `strace -c -f` as well.
#   bench/ledger_callgrind.sh            # needs valgrind, strace, python3
#   BENCH_NO_BUILD=1 LOW=200 HIGH=2200 bench/ledger_callgrind.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
LOW=${LOW:-200}
HIGH=${HIGH:-2200}
start_release_mock 18201
passthrough_config 18210 18211 18201 >"$work/off.toml"
cp "$work/off.toml" "$work/file.toml"
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' "$work" "$work" >>"$work/file.toml"
# The same without the once-a-second checkpoint: its ML-DSA signature costs a fixed amount per
# second, not per request, and under valgrind's slowdown it would be spread over few requests.
cp "$work/file.toml" "$work/file-nocp.toml"
printf 'checkpoint_every = "1h"\n' >>"$work/file-nocp.toml"
"$aigis" audit init --key "$work/ledger.key" --origin bench.aigis/ledger >/dev/null

run() { # MODE N TOOL...: the gateway under TOOL, N requests, then SIGINT
  local mode=$1 n=$2; shift 2
  rm -rf "$work/ledger"
  taskset -c 1 "$@" "$aigis" gateway --config "$work/$mode.toml" >/dev/null 2>"$work/$mode.$n.log" &
  local pid=$!
  sequential_requests 18211 18210 "$n"
  sleep 0.5
  kill -INT "$(pgrep -P $pid || echo $pid)" 2>/dev/null || kill -INT $pid
  wait $pid || true
}

for mode in off file-nocp file; do
  declare -A ir=()
  for n in $LOW $HIGH; do
    run "$mode" "$n" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$mode.$n" --trace-children=no
    ir[$n]=$(grep -m1 '^totals:\|^summary:' "$work/cg.$mode.$n" | awk '{print $2}')
  done
  echo "$mode: Ir($LOW)=${ir[$LOW]} Ir($HIGH)=${ir[$HIGH]} per request=$(( (ir[$HIGH] - ir[$LOW]) / (HIGH - LOW) ))"
  unset ir
done
for n in $LOW $HIGH; do
  for mode in off file-nocp; do
    run "$mode" "$n" strace -f -c -o "$work/strace.$mode.$n"
    echo "$mode strace N=$n: $(awk '/total/ {print $4}' "$work/strace.$mode.$n") syscalls"
  done
done
echo "callgrind files in $work (callgrind_annotate --inclusive=yes $work/cg.file.$HIGH)"
