#!/usr/bin/env bash
# Gateway throughput with the audit ledger on against off, in alternating short bursts (issue 7).
#   bash bench/ledger_pairs.sh [PAIRS] [OUT.txt] [BINDIR]     # defaults: 40, no file, release build
# Two gateways run at once, both on core 1 with the mock upstream: one without a ledger, one
# recording to a `file:` store. wrk (core 0) loads one, then the other, BURST seconds each
# (default 2; BURST=N to change), PAIRS times, in ABBA order. Each pair's ratio (on ÷ off)
# compares two bursts a few seconds apart, so the drift of a shared VM's speed, which moves
# `bench/ledger_ab.sh`'s 10 s rounds by ±30% within minutes, mostly cancels. Prints each pair,
# then the median ratio with its quartiles and the geometric mean with a bootstrap 95% interval.
# BINDIR holds a release `aigis` and `aigis-mock-upstream` (default: $CARGO_TARGET_DIR/release,
# built if missing). Mock, gateways and wrk run at SCHED_RR priority 50. Stop other work on the
# machine while it runs. Never run in CI: a measurement, not a gate.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
pairs=${1:-40} out=${2:-} burst=${BURST:-2}
bin=${3:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "PAIRS must be a positive integer" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [[ ! -x $bin/aigis || ! -x $bin/aigis-mock-upstream ]]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=${bin%/release} cargo build --release --locked -q -p aigis-cli -p aigis-mock-upstream)
fi
work=$(mktemp -d)
out=${out:-$work/pairs.txt}
rt=(chrt -r 50)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
passthrough_config 18530 18531 18521 >"$work/off.toml"
passthrough_config 18540 18541 18521 >"$work/on.toml"
printf '\n[ledger]\nstore = "file:%s/ledger"\nsigning_key = "file:%s/ledger.key"\n' "$work" "$work" >>"$work/on.toml"
"$bin/aigis" audit init --key "$work/ledger.key" --origin bench.aigis/ledger >/dev/null 2>&1
"${rt[@]}" taskset -c 1 "$bin/aigis-mock-upstream" --listen 127.0.0.1:18521 >/dev/null 2>&1 &
pids+=($!)
for mode in off on; do
  "${rt[@]}" taskset -c 1 "$bin/aigis" gateway --config "$work/$mode.toml" --log-format json \
    >/dev/null 2>"$work/$mode.log" &
  pids+=($!)
done
for admin in 18531 18541; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null && break; sleep 0.1; done
done
load() { # PORT SECONDS: requests per second
  "${rt[@]}" taskset -c 0 wrk -t1 -c64 -d"$2" -s "$ROOT/bench/wrk_post.lua" \
    "http://127.0.0.1:$1/v1/chat/completions" | grep '^BENCH ' | grep -o 'rps=[0-9.]*' | cut -d= -f2
}
load 18530 2 >/dev/null
load 18540 2 >/dev/null
{
  echo "# $(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD) bin=$bin pairs=$pairs burst=${burst}s"
  for i in $(seq 1 "$pairs"); do
    if ((i % 2)); then
      off=$(load 18530 "$burst"); sleep 0.2; on=$(load 18540 "$burst")
    else
      on=$(load 18540 "$burst"); sleep 0.2; off=$(load 18530 "$burst")
    fi
    sleep 0.2
    [[ -n $off && -n $on ]] || { echo "pair $i: wrk reported no rate (a gateway or the mock stopped?)" >&2; exit 1; }
    echo "pair $i: off=$off on=$on"
  done
} | tee "$out"
python3 - "$out" <<'EOT' | tee -a "$out"
import math, random, statistics, sys
rows = [dict(kv.split("=") for kv in line.split()[2:]) for line in open(sys.argv[1]) if line.startswith("pair ")]
off = [float(r["off"]) for r in rows]
ratios = [float(r["on"]) / float(r["off"]) for r in rows]
q1, q2, q3 = statistics.quantiles(ratios, n=4)
logs = [math.log(r) for r in ratios]
random.seed(1)
boots = sorted(math.exp(statistics.fmean(random.choices(logs, k=len(logs)))) for _ in range(2000))
print(f"ledger off: median {statistics.median(off):.0f} req/s (range {min(off):.0f}-{max(off):.0f})")
print(f"ratio on/off over {len(ratios)} pairs: median {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}); "
      f"geometric mean {math.exp(statistics.fmean(logs)):.3f} (95% {boots[50]:.3f}-{boots[1949]:.3f})")
EOT
