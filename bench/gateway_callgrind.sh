#!/usr/bin/env bash
# Instructions per passthrough request (issue 2), measured with callgrind (deterministic, unlike
# wall-clock figures on a shared machine). The gateway (`passthrough_config`: one route to the
# mock upstream, guard off, JSON access log on) runs under valgrind pinned to one core; a Python
# keep-alive client sends N sequential chat-completion requests, once with N=LOW and once with
# N=HIGH; (Ir(HIGH) - Ir(LOW)) / (HIGH - LOW) is the steady-state cost of one request (start-up
# and shutdown cancel out). Same method as bench/ledger_callgrind.sh's `off` mode.
#   bench/gateway_callgrind.sh            # needs valgrind, python3
#   BENCH_NO_BUILD=1 LOW=200 HIGH=1200 bench/gateway_callgrind.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
LOW=${LOW:-200}
HIGH=${HIGH:-1200}
start_release_mock 18301
passthrough_config 18310 18311 18301 >"$work/off.toml"

declare -A ir=()
for n in $LOW $HIGH; do
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" --trace-children=no \
    "$aigis" gateway --config "$work/off.toml" >/dev/null 2>"$work/gw.$n.log" &
  pid=$!
  sequential_requests 18311 18310 "$n"
  sleep 0.5
  kill -INT "$(pgrep -P $pid || echo $pid)" 2>/dev/null || kill -INT $pid
  wait $pid || true
  ir[$n]=$(grep -m1 '^totals:\|^summary:' "$work/cg.$n" | awk '{print $2}')
done
echo "passthrough: Ir($LOW)=${ir[$LOW]} Ir($HIGH)=${ir[$HIGH]} per request=$(( (ir[$HIGH] - ir[$LOW]) / (HIGH - LOW) ))"
echo "callgrind files in $work (callgrind_annotate --inclusive=yes $work/cg.$HIGH)"
