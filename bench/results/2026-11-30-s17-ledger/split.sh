#!/bin/bash
# ledger off / file / file with the writer thread moved to core 0 (wrk's core): req/s.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); source "$ROOT/bench/lib.sh"
BIN=${BIN:?BIN=folder holding release aigis and aigis-mock-upstream}
W=$(mktemp -d)
passthrough_config 18710 18711 18701 > $W/off.toml
cp $W/off.toml $W/file.toml
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' $W $W >> $W/file.toml
$BIN/aigis audit init --key $W/ledger.key --origin bench.aigis/ledger >/dev/null 2>&1
chrt -r 50 taskset -c 1 $BIN/aigis-mock-upstream --listen 127.0.0.1:18701 >/dev/null 2>&1 &
mock=$!
sleep 0.5
for r in 1 2 3 4; do
for mode in off file split; do
  cfg=$mode; [[ $mode == split ]] && cfg=file
  rm -rf $W/ledger
  chrt -r 50 taskset -c 1 $BIN/aigis gateway --config $W/$cfg.toml --log-format json >/dev/null 2>$W/gw.log &
  gw=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18711/healthz >/dev/null && break; sleep 0.1; done
  if [[ $mode == split ]]; then
    for t in /proc/$gw/task/*; do grep -q aigis-ledger $t/comm && taskset -p -c 0 $(basename $t) >/dev/null; done
  fi
  chrt -r 50 taskset -c 0 wrk -t1 -c64 -d2s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18710/v1/chat/completions >/dev/null
  echo "$mode round $r: $(chrt -r 50 taskset -c 0 wrk -t1 -c64 -d10s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18710/v1/chat/completions | grep '^BENCH' | grep -o 'rps=[0-9.]*')"
  kill $gw; wait $gw 2>/dev/null
done
done
kill $mock
