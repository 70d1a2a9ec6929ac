#!/bin/bash
# sc.sh MODE: syscall counts per request (strace -f -c on the gateway) under a 3 s wrk burst
set -u
mode=$1; BIN=${BIN:-/work/s20/base}
source /work/main/bench/lib.sh
W=$(mktemp -d)
passthrough_config 18610 18611 18601 > $W/gw.toml
if [[ $mode != off ]]; then
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' $W $W >> $W/gw.toml
$BIN/aigis audit init --key $W/ledger.key --origin bench.aigis/ledger >/dev/null 2>&1
fi
taskset -c 1 $BIN/aigis-mock-upstream --listen 127.0.0.1:18601 >/dev/null 2>&1 &
mock=$!
taskset -c 1 $BIN/aigis gateway --config $W/gw.toml --log-format json >/dev/null 2>$W/gw.log &
gw=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18611/healthz >/dev/null && break; sleep 0.1; done
strace -f -c -o $W/sc.txt -p $gw &
st=$!
sleep 0.5
n=$(taskset -c 0 wrk -t1 -c64 -d3s -s /work/main/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions | grep BENCH | grep -o 'requests=[0-9]*' | cut -d= -f2)
sleep 0.3
kill -INT $st; wait $st 2>/dev/null
kill $gw; wait $gw 2>/dev/null; kill $mock
echo "$mode: $n requests"
awk -v n=$n 'NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ {printf "%-16s %8.3f per request\n", $NF, $4/n}' $W/sc.txt | sort -k2 -nr | head -12
rm -rf $W
