#!/bin/bash
# Session 19 raw-result script: strace of the ledger writer thread (write, fdatasync, mmap...) for 4 s
# under ledger_ab.sh's load, to see batch sizes and sync latencies. BIN=DIR as in writer_perf.sh.
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
chrt -r 50 taskset -c 0 wrk -t1 -c64 -d8s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions > $OUT/wrk.txt &
wrkp=$!
sleep 2
tid=$(grep -l aigis-ledger /proc/$gw/task/*/comm | head -1 | xargs dirname | xargs basename)
timeout 4 strace -tt -T -e trace=write,fdatasync,mmap,munmap,madvise,fadvise64 -p $tid -o $OUT/strace.txt
wait $wrkp
kill $gw; wait $gw 2>/dev/null; kill $mock; rm -rf $W
