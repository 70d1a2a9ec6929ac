#!/bin/bash
# perf profile of the gateway under wrk, ledger off vs file; per thread-name and symbol.
set -u
OUT=${OUT:-.}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); source "$ROOT/bench/lib.sh"
BIN=${BIN:?BIN=folder holding release aigis and aigis-mock-upstream}
W=$(mktemp -d)
passthrough_config 18610 18611 18601 > $W/off.toml
cp $W/off.toml $W/file.toml
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' $W $W >> $W/file.toml
$BIN/aigis audit init --key $W/ledger.key --origin bench.aigis/ledger >/dev/null 2>&1
chrt -r 50 taskset -c 1 $BIN/aigis-mock-upstream --listen 127.0.0.1:18601 >/dev/null 2>&1 &
mock=$!
sleep 0.5
for mode in off file; do
  rm -rf $W/ledger
  chrt -r 50 taskset -c 1 $BIN/aigis gateway --config $W/$mode.toml --log-format json >/dev/null 2>$W/gw.log &
  gw=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18611/healthz >/dev/null && break; sleep 0.1; done
  chrt -r 50 taskset -c 0 wrk -t1 -c64 -d14s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions > $OUT/wrk.$mode.txt &
  wrkp=$!
  sleep 2
  perf record -e cpu-clock -F 4000 -g -o $OUT/perf.$mode.data -p $gw -- sleep 10 >/dev/null 2>&1
  wait $wrkp
  kill $gw; wait $gw 2>/dev/null
done
kill $mock
