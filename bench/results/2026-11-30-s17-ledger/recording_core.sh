#!/bin/bash
# Session 17's two looks at what recording does to the shared core (raw-result script).
#   BIN=DIR OUT=DIR recording_core.sh perf    # perf profile of the gateway, ledger off vs file
#   BIN=DIR recording_core.sh split           # req/s: off / file / file with the writer on core 0
# BIN holds a release `aigis` and `aigis-mock-upstream`; mock and gateway on core 1, wrk on 0.
set -u
what=${1:?perf or split}
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
load() { chrt -r 50 taskset -c 0 wrk -t1 -c64 -d"$1" -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions; }
start() { # CONFIG: starts the gateway, sets gw
  rm -rf $W/ledger
  chrt -r 50 taskset -c 1 $BIN/aigis gateway --config $W/$1.toml --log-format json >/dev/null 2>$W/gw.log &
  gw=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18611/healthz >/dev/null && break; sleep 0.1; done
}
if [[ $what == perf ]]; then
  for mode in off file; do
    start $mode
    load 14s > $OUT/wrk.$mode.txt &
    wrkp=$!
    sleep 2
    perf record -e cpu-clock -F 4000 -g -o $OUT/perf.$mode.data -p $gw -- sleep 10 >/dev/null 2>&1
    wait $wrkp
    kill $gw; wait $gw 2>/dev/null
  done
else
  for r in 1 2 3 4; do
    for mode in off file split; do
      cfg=$mode; [[ $mode == split ]] && cfg=file
      start $cfg
      if [[ $mode == split ]]; then
        for t in /proc/$gw/task/*; do grep -q aigis-ledger $t/comm && taskset -p -c 0 $(basename $t) >/dev/null; done
      fi
      load 2s >/dev/null
      echo "$mode round $r: $(load 10s | grep '^BENCH' | grep -o 'rps=[0-9.]*')"
      kill $gw; wait $gw 2>/dev/null
    done
  done
fi
kill $mock
