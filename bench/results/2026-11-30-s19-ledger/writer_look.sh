#!/bin/bash
# Session 19 raw-result script: a look at the ledger writer thread alone under ledger_ab.sh's load
# (mock and gateway on core 1, wrk on core 0, ledger recording to a file: store).
#   BIN=DIR OUT=DIR writer_look.sh perf     # perf record -t TID for 10 s (CG="--call-graph dwarf,16384")
#   BIN=DIR OUT=DIR writer_look.sh strace   # its write/fdatasync/mmap calls for 4 s: batch sizes, sync latency
set -u
what=${1:?perf or strace}
BIN=${BIN:-/tmp/base}; OUT=${OUT:-.}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); source $ROOT/bench/lib.sh
W=$(mktemp -d)
passthrough_config 18610 18611 18601 > $W/file.toml
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
if [[ $what == perf ]]; then
  perf record -e cpu-clock -F 4000 ${CG:--g} -o $OUT/perf.writer.data -t $tid -- sleep 10 >/dev/null 2>&1
else
  timeout 4 strace -tt -T -e trace=write,fdatasync,mmap,munmap,madvise,fadvise64 -p $tid -o $OUT/strace-writer.txt
fi
wait $wrkp
kill $gw; wait $gw 2>/dev/null; kill $mock; rm -rf $W
