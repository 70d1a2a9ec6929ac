#!/usr/bin/env bash
# bench/fleet.sh: what fleet-wide limits (Redis) add over limits in the process, with TWO
# gateways sharing one limit, each under its own load, on this machine only.
#
#   bash bench/fleet.sh                 # 5 paired rounds at moderate load + 1 busy round, ~2 min
#   bash bench/fleet.sh --rounds 3 --dur 3
#   bash bench/fleet.sh --redis-core 0  # Redis beside the load generators, off the gateways' core
#
# Set-up: a private redis-server (its own free port, no persistence, never the machine's shared
# one; on core 1 unless --redis-core says otherwise), the mock upstream and two `aigis gateway`
# processes share core 1; two wrk load generators (one per gateway, one thread each) share core
# 0. Both gateways carry the same two limits that never refuse (1G requests/min and 1G
# tokens/min per principal), so every request runs admit + settle. Mode `local` counts them in
# each process; mode `fleet` adds `[cluster] redis = ...`, so both gateways count against the
# same Redis keys (one Lua script call per admission; settlements are grouped, at most one per
# request). Rounds alternate local and fleet so both see the same background noise; the
# headline is the median over rounds of (fleet p99 - local p99), per gateway.
# Moderate load: each wrk has $CONNS connections pausing $PAUSE_MS ms after each response.
# A last round per mode runs $BUSY_CONNS connections per gateway without pause (saturation).
#
# Results: bench/results/<date>-fleet/ (raw wrk output per run and summary.txt). Ports
# 127.0.0.1:18040-18049. Exit status non-zero when the set-up fails or a request fails.
set -euo pipefail

ROUNDS=5 DUR=5 CONNS=4 PAUSE_MS=2 BUSY_CONNS=16 REDIS_CORE=1 OUT=""
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=${2:?}; shift ;;
    --dur) DUR=${2:?}; shift ;;
    --conns) CONNS=${2:?}; shift ;;
    --redis-core) REDIS_CORE=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
AIGIS=${AIGIS_BIN:-$TARGET/release/aigis}
MOCK=${MOCK_BIN:-$TARGET/release/aigis-mock-upstream}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y-%m-%d)-fleet}
RUN=$(mktemp -d)
mkdir -p "$OUT"
P_MOCK=18040 P_REDIS=18041 P_A=18042 P_A_ADMIN=18043 P_B=18044 P_B_ADMIN=18045

if [[ -z ${BENCH_NO_BUILD:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked -q -p aigis-cli -p aigis-mock-upstream) >&2
fi
for tool in wrk redis-server redis-cli taskset curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (Debian packages wrk, redis-server, util-linux, curl)" >&2; exit 1; }
done
(($(nproc) >= 2)) || { echo "needs 2 cores (load on core 0, gateways on core 1)" >&2; exit 1; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

wait_http() { # url: up to 10 s
  for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2
  return 1
}

taskset -c "$REDIS_CORE" redis-server --port "$P_REDIS" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$RUN" --logfile "$RUN/redis.log" &
PIDS+=($!)
taskset -c 1 "$MOCK" --listen "127.0.0.1:$P_MOCK" >"$RUN/mock.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$P_REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
wait_http "http://127.0.0.1:$P_MOCK/v1/models"

config() { # mode listen admin
  passthrough_config "$2" "$3" "$P_MOCK"
  cat <<EOF

[[limits]]
name = "rpm"
scope = "principal"
requests = "1G/min"

[[limits]]
name = "tpm"
scope = "principal"
tokens = "1G/min"
EOF
  [[ $1 == fleet ]] && printf '\n[cluster]\nredis = "redis://127.0.0.1:%s"\nkey_prefix = "bench"\n' "$P_REDIS"
  return 0
}

field() { sed -n 's/^BENCH //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# One run: both gateways in `mode`, both loaded at once for DUR seconds; writes
# $OUT/<tag>-<mode>-{a,b}.txt.
run() { # tag mode conns pause-ms
  local tag=$1 mode=$2 conns=$3 pause=$4 a b wa wb
  config "$mode" $P_A $P_A_ADMIN >"$RUN/a.toml"
  config "$mode" $P_B $P_B_ADMIN >"$RUN/b.toml"
  taskset -c 1 "$AIGIS" gateway --config "$RUN/a.toml" --log-format json >/dev/null 2>"$RUN/a.log" &
  a=$!
  taskset -c 1 "$AIGIS" gateway --config "$RUN/b.toml" --log-format json >/dev/null 2>"$RUN/b.log" &
  b=$!
  wait_http "http://127.0.0.1:$P_A_ADMIN/healthz"
  wait_http "http://127.0.0.1:$P_B_ADMIN/healthz"
  for port in $P_A $P_B; do # warm-up: connections, script cache
    BENCH_PAUSE_MS=0 taskset -c 0 wrk -t1 -c"$conns" -d1s -s "$ROOT/bench/wrk_post.lua" \
      "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1 || true
  done
  BENCH_PAUSE_MS=$pause taskset -c 0 wrk -t1 -c"$conns" -d"${DUR}s" --timeout 5s --latency \
    -s "$ROOT/bench/wrk_post.lua" "http://127.0.0.1:$P_A/v1/chat/completions" >"$OUT/$tag-$mode-a.txt" 2>&1 &
  wa=$!
  BENCH_PAUSE_MS=$pause taskset -c 0 wrk -t1 -c"$conns" -d"${DUR}s" --timeout 5s --latency \
    -s "$ROOT/bench/wrk_post.lua" "http://127.0.0.1:$P_B/v1/chat/completions" >"$OUT/$tag-$mode-b.txt" 2>&1 &
  wb=$!
  wait "$wa" "$wb"
  kill "$a" "$b"
  wait "$a" "$b" 2>/dev/null || true
  for g in a b; do
    local f=$OUT/$tag-$mode-$g.txt errors
    errors=$(($(field "$f" socket_errors) + $(field "$f" status_errors) + $(field "$f" timeouts)))
    ((errors == 0)) || { echo "$f: $errors failed requests" >&2; exit 1; }
  done
}

for r in $(seq 1 "$ROUNDS"); do
  for mode in local fleet; do
    echo "round $r: $mode ($CONNS conns per gateway, ${PAUSE_MS} ms pause)" >&2
    run "round$r" "$mode" "$CONNS" "$PAUSE_MS"
  done
done
for mode in local fleet; do
  echo "busy: $mode ($BUSY_CONNS conns per gateway, no pause)" >&2
  run busy "$mode" "$BUSY_CONNS" 0
done
# Evidence that the fleet runs went through Redis: the script calls it served.
redis-cli -p "$P_REDIS" info commandstats >"$OUT/redis-commandstats.txt"

python3 - "$OUT" "$ROUNDS" "$REDIS_CORE" <<'EOT' | tee "$OUT/summary.txt"
import statistics, sys
from pathlib import Path
out, rounds = Path(sys.argv[1]), int(sys.argv[2])
def bench(path):
    line = next(l for l in path.read_text().splitlines() if l.startswith("BENCH "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
print(f"two gateways, {rounds} paired rounds (moderate load), then one busy round per mode")
for g in "ab":
    diffs50, diffs99 = [], []
    for r in range(1, rounds + 1):
        loc, fl = bench(out / f"round{r}-local-{g}.txt"), bench(out / f"round{r}-fleet-{g}.txt")
        diffs50.append((fl["p50_us"] - loc["p50_us"]) / 1000)
        diffs99.append((fl["p99_us"] - loc["p99_us"]) / 1000)
        print(f"gateway {g} round {r}: local p50 {loc['p50_us']/1000:.3f} p99 {loc['p99_us']/1000:.3f} ms "
              f"({loc['rps']:.0f} req/s); fleet p50 {fl['p50_us']/1000:.3f} p99 {fl['p99_us']/1000:.3f} ms ({fl['rps']:.0f} req/s)")
    print(f"gateway {g}: fleet minus local, median over rounds: p50 {statistics.median(diffs50):+.3f} ms, "
          f"p99 {statistics.median(diffs99):+.3f} ms (target p99 <= +0.5 ms)")
for g in "ab":
    loc, fl = bench(out / f"busy-local-{g}.txt"), bench(out / f"busy-fleet-{g}.txt")
    print(f"busy gateway {g}: local {loc['rps']:.0f} req/s p50 {loc['p50_us']/1000:.3f} p99 {loc['p99_us']/1000:.3f} ms; "
          f"fleet {fl['rps']:.0f} req/s p50 {fl['p50_us']/1000:.3f} p99 {fl['p99_us']/1000:.3f} ms")
EOT
