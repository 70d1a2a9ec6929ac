#!/bin/bash
# Session 19 raw-result script: perf profile of the ledger writer thread alone (-t TID, 10 s) under
# ledger_ab.sh's load. BIN=DIR with release aigis and aigis-mock-upstream; CG="--call-graph dwarf,16384" for dwarf stacks.
set -u
BIN=${BIN:-/tmp/base}; OUT=${OUT:-/tmp/wp}
ROOT=/work/main; source $ROOT/bench/lib.sh
W=$(mktemp -d)
passthrough_config 18610 18611 18601 > $W/off.toml
cp $W/off.toml $W/file.toml
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' $W $W >> $W/file.toml
$BIN/aigis audit init --key $W/ledger.key --origin bench.aigis/ledger >/dev/null 2>&1
chrt -r 50 taskset -c 1 $BIN/aigis-mock-upstream --listen 127.0.0.1:18601 >/dev/null 2>&1 &
mock=$!
sleep 0.5
chrt -r 50 taskset -c 1 $BIN/aigis gateway --config $W/file.toml --log-format json >/dev/null 2>$W/gw.log &
gw=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18611/healthz >/dev/null && break; sleep 0.1; done
chrt -r 50 taskset -c 0 wrk -t1 -c64 -d14s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions > $OUT/wrk.txt &
wrkp=$!
sleep 2
tid=$(grep -l aigis-ledger /proc/$gw/task/*/comm | head -1 | xargs dirname | xargs basename)
perf record -e cpu-clock -F 4000 ${CG:--g} -o $OUT/perf.writer.data -t $tid -- sleep 10 >/dev/null 2>&1
wait $wrkp
kill $gw; wait $gw 2>/dev/null; kill $mock; rm -rf $W
