# Page faults and CPU ticks per thread of the gateway, ledger off then file, under wrk (session 18).
# BIN=DIR bash faults.sh; DIR holds a release aigis and aigis-mock-upstream.
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); source $ROOT/bench/lib.sh
BIN=${BIN:?BIN=folder with release aigis and aigis-mock-upstream}; W=$(mktemp -d)
passthrough_config 18610 18611 18601 > $W/off.toml
cp $W/off.toml $W/file.toml
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' $W $W >> $W/file.toml
$BIN/aigis audit init --key $W/ledger.key --origin bench.aigis/ledger >/dev/null 2>&1
taskset -c 1 $BIN/aigis-mock-upstream --listen 127.0.0.1:18601 >/dev/null 2>&1 &
mock=$!; sleep 0.5
for mode in off file; do
taskset -c 1 $BIN/aigis gateway --config $W/$mode.toml --log-format json >/dev/null 2>$W/gw.log &
gw=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18611/healthz >/dev/null && break; sleep 0.1; done
taskset -c 0 wrk -t1 -c64 -d3s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions >/dev/null
f0=$(awk '{print $10}' /proc/$gw/stat); m0=$(awk '{print $10}' /proc/$mock/stat)
n=$(taskset -c 0 wrk -t1 -c64 -d6s -s $ROOT/bench/wrk_post.lua http://127.0.0.1:18610/v1/chat/completions | grep -o 'requests=[0-9]*' | cut -d= -f2)
f1=$(awk "{print \$10}" /proc/$gw/stat); m1=$(awk "{print \$10}" /proc/$mock/stat); for t in /proc/$gw/task/*; do echo "  $(cat $t/comm) flt=$(awk "{print \$10}" $t/stat) cpu=$(awk "{print \$14+\$15}" $t/stat)"; done
echo "$mode requests=$n gw_minflt=$((f1-f0)) per_req=$(echo "scale=4; ($f1-$f0)/$n" | bc) mock_minflt=$((m1-m0))"
kill $gw; wait $gw 2>/dev/null
done
kill $mock; rm -rf $W
