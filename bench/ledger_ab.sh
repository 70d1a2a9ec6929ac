#!/usr/bin/env bash
# Gateway throughput with the audit ledger on, for several builds or settings side by side
# (issue 7). Each round runs the ledger-off gateway, then every variant with `file:` recording,
# so all of them share the round's background noise; the summary gives each variant's ratio
# of medians to the ledger-off runs, the median of its paired round ratios, and the CPU-µs per
# request of the gateway (its writer thread apart) and of the mock, which share core 1.
#   bash bench/ledger_ab.sh ROUNDS OUT.txt LABEL=BINDIR[:SETTING] ...
# BINDIR holds a release `aigis` and `aigis-mock-upstream` (the first variant's serve the
# ledger-off runs and the mock). SETTING is either `env:NAME=VALUE` (the gateway's environment)
# or one line added to the variant's `[ledger]` table, e.g. `commit_interval = "2ms"`; a `store = …` line
# replaces the store: `store = "file:mem/ledger"` puts it in memory (`mem` links to /dev/shm).
#   cp -r $CARGO_TARGET_DIR/release/{aigis,aigis-mock-upstream} /tmp/base/   # then build B
#   bash bench/ledger_ab.sh 5 /tmp/ab.txt base=/tmp/base new=$CARGO_TARGET_DIR/release
# Mock, gateway and wrk run at SCHED_RR priority 50 (as `bench/ledger.sh --gateway` with
# RT=1), after a 2 s warm-up; 10 s per run. Stop other work on the machine while it runs
# (`kill -STOP -PGID`). On the VMs here one series of one build varies by about ±0.03, so
# compare builds only within one alternating series.
set -euo pipefail
if (($# < 3)) || [[ $1 == -h || $1 == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
rounds=$1 out=$2
shift 2
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
first=${1#*=}
first=${first%%:*}
work=$(mktemp -d)
passthrough_config 18510 18511 18501 >"$work/off.toml"
cp "$work/off.toml" "$work/file.toml"
printf '\n[ledger]\nstore = "file:ledger"\nsigning_key = "file:ledger.key"\n' >>"$work/file.toml"
"$first/aigis" audit init --key "$work/ledger.key" --origin bench.aigis/ledger >/dev/null
rt=(chrt -r 50)
"${rt[@]}" taskset -c 1 "$first/aigis-mock-upstream" --listen 127.0.0.1:18501 >/dev/null 2>&1 &
mock=$!
mem=$(mktemp -d /dev/shm/ledger_ab.XXXXXX)
ln -s "$mem" "$work/mem"
trap 'kill $mock 2>/dev/null; rm -rf "$work" "$mem"' EXIT
sleep 0.5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
writer_ticks() { cat "/proc/$1"/task/*/stat 2>/dev/null | awk '/\(aigis-ledger\)/ {s += $14 + $15} END {print s + 0}'; }
load() { "${rt[@]}" taskset -c 0 wrk -t1 -c64 -d"$1" -s "$ROOT/bench/wrk_post.lua" http://127.0.0.1:18510/v1/chat/completions; }
for r in $(seq 1 "$rounds"); do
  for spec in "off=$first" "$@"; do
    label=${spec%%=*} dir=${spec#*=} setting="" mode=file envs=()
    if [[ $dir == *:* ]]; then setting=${dir#*:} dir=${dir%%:*}; fi
    [[ $label == off ]] && mode=off
    if [[ $setting == env:* ]]; then
      envs=("${setting#env:}")
    elif [[ $setting == store\ =* ]]; then
      mode=variant
      sed "s|^store = .*|$setting|" "$work/file.toml" >"$work/variant.toml"
    elif [[ -n $setting ]]; then
      mode=variant
      cp "$work/file.toml" "$work/variant.toml"
      printf '%s\n' "$setting" >>"$work/variant.toml"
    fi
    rm -rf "$work/ledger" "$mem/ledger"
    env "${envs[@]}" "${rt[@]}" taskset -c 1 "$dir/aigis" gateway --config "$work/$mode.toml" \
      --log-format json >/dev/null 2>"$work/gateway.log" &
    gw=$!
    for _ in $(seq 50); do curl -sf http://127.0.0.1:18511/healthz >/dev/null && break; sleep 0.1; done
    load 2s >/dev/null
    t0=$(ticks $gw) w0=$(writer_ticks $gw) m0=$(ticks $mock)
    line=$(load 10s | grep '^BENCH ')
    t1=$(ticks $gw) w1=$(writer_ticks $gw) m1=$(ticks $mock)
    echo "$label round $r: ${line#BENCH } gw=$((t1 - t0)) writer=$((w1 - w0)) mock=$((m1 - m0)) hz=$(getconf CLK_TCK)" | tee -a "$out"
    kill $gw
    wait $gw 2>/dev/null || true
  done
done
python3 - "$out" <<'EOT' | tee -a "$out"
import collections, statistics, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    if " round " not in line:
        continue
    label, _, r = line.split()[:3]
    f = dict(kv.split("=") for kv in line.split(": ", 1)[1].split() if "=" in kv)
    us = 1e6 / int(f["hz"]) / float(f["requests"])
    rows[label][r] = (float(f["rps"]), int(f["gw"]) * us, int(f["writer"]) * us, int(f["mock"]) * us)
off = rows.pop("off")
med = lambda d, i: statistics.median(v[i] for v in d.values())
print(f"ledger off: {med(off, 0):.0f} req/s; CPU-us/req gateway {med(off, 1):.1f}, mock {med(off, 3):.1f}")
for label, d in rows.items():
    paired = statistics.median(d[r][0] / off[r][0] for r in d if r in off)
    print(f"{label}: {med(d, 0):.0f} req/s, ratio {med(d, 0) / med(off, 0):.3f}, paired {paired:.3f}; "
          f"CPU-us/req gateway {med(d, 1):.1f} (writer {med(d, 2):.2f}), mock {med(d, 3):.1f}")
EOT
