#!/usr/bin/env bash
# bench/gateway.sh: aigis against a direct call, nginx and LiteLLM, on this machine only.
#
#   bash bench/gateway.sh            # all four cases, about 2.5 minutes (plus builds/installs)
#   bash bench/gateway.sh --smoke    # direct + aigis only, short runs, < 60 s, installs nothing
#
# Cases: (a) direct to the mock upstream, (b) through aigis (passthrough: guard off), (b') with an
# API key and Cedar, (b'') with the balanced guard profile, (c) through nginx proxy_pass with
# upstream keepalive, (d) through the LiteLLM proxy. The load generator (wrk, one thread) is pinned
# to core 0; the system under test AND the mock upstream are pinned to core 1, in every case. So a
# proxy shares its core with the mock exactly as the direct case's mock has it alone: the numbers
# of all four cases come from the same two cores the same way, and the proxy's own cost shows as
# the difference from (a). Each case: a warm-up, a throughput run at $CONNS connections, and a
# low-load run (4 connections pausing 2 ms between requests, ~1,800 req/s). The "added p99 latency
# at moderate load" headline comes from paired low-load rounds alternating direct and aigis (the
# median of the per-round p99 differences), so both sides see the same background noise.
# CPU-us per request is the proxy's utime+stime (/proc/PID/stat, all its processes) during the
# throughput run divided by the requests wrk completed in it.
#
# Results: bench/results/<date>-<commit>/ (smoke: bench/work/smoke-<date>-<commit>/), with the
# raw wrk output per run, machine facts and summary.md. Only 127.0.0.1 ports 18001-18030 are used.
# Exit status: non-zero when the set-up fails or aigis fails any request (not when a target is
# missed: this is a measurement, not a gate).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<'EOF'
Options:
  --smoke          direct + aigis only, short runs, no peers, no installs
  --skip-nginx     leave out case (c)
  --skip-litellm   leave out case (d)
  --out DIR        write results to DIR instead of the default folder
EOF
}

SMOKE=0 SKIP_NGINX=0 SKIP_LITELLM=0 OUT=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --skip-nginx) SKIP_NGINX=1 ;;
    --skip-litellm) SKIP_LITELLM=1 ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
AIGIS=${AIGIS_BIN:-$TARGET/release/aigis}
MOCK=${MOCK_BIN:-$TARGET/release/aigis-mock-upstream}
LITELLM_VERSION=1.106.12
VENV=$WORK/litellm-venv

P_MOCK=18001 P_AIGIS=18010 P_ADMIN=18011 P_NGINX=18020 P_LITELLM=18030
CONNS=16 IDLE_CONNS=1000
# Low load: LOW_CONNS connections, each pausing LOW_PAUSE_MS after every response: about
# LOW_CONNS * 1000 / (LOW_PAUSE_MS + latency) req/s (~1,800 req/s here, a tenth of what the
# proxies sustain), so the core is mostly idle and the latency is the per-request cost.
LOW_CONNS=4 LOW_PAUSE_MS=2
if ((SMOKE)); then
  WARM=1 DUR=3 LOW_DUR=3 PAIR_ROUNDS=3 PAIR_DUR=2
  SKIP_NGINX=1 SKIP_LITELLM=1
else
  WARM=2 DUR=10 LOW_DUR=10 PAIR_ROUNDS=5 PAIR_DUR=4
fi
T0=$(date +%s)

log() { printf '[bench %3ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- pinning, limits, tools
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  LOAD_PIN=(taskset -c 0) SUT_PIN=(taskset -c 1) PINNING="load generator on core 0; mock + proxy on core 1"
else
  LOAD_PIN=() SUT_PIN=() PINNING="none (fewer than 2 cores or no taskset)"
fi
# Room for 1,000 idle connections (the gateway inherits this limit).
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)

apt_install() { # cmd package: install a Debian package if cmd is missing (never in CI)
  command -v "$1" >/dev/null && return 0
  if [[ -n ${CI:-} ]]; then log "$1 missing; not installing in CI"; return 1; fi
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then log "$1 missing and cannot apt-get"; return 1; fi
  log "installing $2 (apt-get)"
  # RUNLEVEL=1: keep the package's postinst from starting a system-wide service.
  { timeout 300 apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
      timeout 600 apt-get install -y -qq "$2"; } >"$WORK/apt-$2.log" 2>&1 || {
    log "apt-get install $2 failed (see bench/work/apt-$2.log)"; return 1; }
  command -v "$1" >/dev/null
}

mkdir -p "$WORK"
# Measure what the tree builds: cargo is a no-op when the release binaries are up to date (it
# waits for the build lock if another build runs). AIGIS_BIN + MOCK_BIN, or BENCH_NO_BUILD=1, skip it.
if [[ -z ${AIGIS_BIN:-}${MOCK_BIN:-} && -z ${BENCH_NO_BUILD:-} ]] && command -v cargo >/dev/null; then
  log "cargo build --release -p aigis-cli -p aigis-mock-upstream"
  if (cd "$ROOT" && cargo build --release --locked -q -p aigis-cli -p aigis-mock-upstream) >&2; then
    BUILD_NOTE="built by cargo for this tree"
  else
    [[ -x $AIGIS && -x $MOCK ]] || die "release build failed"
    BUILD_NOTE="release build FAILED; measured the existing binaries, which may not match this tree"
    log "WARNING: $BUILD_NOTE"
  fi
  T0=$(date +%s) # the time budget is for the measurement, not the build
else
  BUILD_NOTE="not rebuilt (AIGIS_BIN/MOCK_BIN or BENCH_NO_BUILD set)"
fi
[[ -x $AIGIS && -x $MOCK ]] || die "missing $AIGIS or $MOCK (cargo build --release -p aigis-cli -p aigis-mock-upstream)"

if [[ ${BENCH_LOADGEN:-} == pyload ]]; then # force the fallback (to test it)
  LOADGEN=pyload
elif command -v wrk >/dev/null; then
  LOADGEN=wrk
elif ((SMOKE)); then
  LOADGEN=pyload
  log "wrk not installed: smoke mode falls back to bench/pyload.py (Python, much slower than wrk)"
else
  apt_install wrk wrk || die "wrk is needed for the full benchmark (apt-get install wrk)"
  LOADGEN=wrk
fi

NGINX_NOTE="" LITELLM_NOTE=""
if ((!SKIP_NGINX)); then
  if ! { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; } && ! apt_install nginx nginx; then
    NGINX_NOTE="not run: nginx could not be installed" SKIP_NGINX=1
  fi
  PATH=$PATH:/usr/sbin
fi
if ((!SKIP_LITELLM)); then
  have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true)
  if [[ $have != "$LITELLM_VERSION" ]]; then
    if [[ -n ${CI:-} ]]; then
      LITELLM_NOTE="not run: not installing LiteLLM in CI" SKIP_LITELLM=1
    else
      log "installing litellm[proxy]==$LITELLM_VERSION into bench/work/litellm-venv (a few minutes)"
      if ! { python3 -m venv "$VENV" &&
        timeout 900 "$VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"; } \
        >"$WORK/litellm-install.log" 2>&1; then
        LITELLM_NOTE="not run: pip install failed: $(grep -m1 -iE 'error' "$WORK/litellm-install.log" || tail -1 "$WORK/litellm-install.log")"
        SKIP_LITELLM=1
      fi
    fi
  fi
fi

# ---------------------------------------------------------------- output folders
DATE=$(date +%F)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
if [[ -z $OUT ]]; then
  if ((SMOKE)); then OUT=$WORK/smoke-$DATE-$COMMIT; else OUT=$BENCH/results/$DATE-$COMMIT; fi
fi
[[ $OUT == "$BENCH/results/"* || $OUT == "$WORK/"* ]] && rm -rf "$OUT" # a re-run replaces its own folder
mkdir -p "$OUT"
RUN=$(mktemp -d "$WORK/run.XXXXXX")

# ---------------------------------------------------------------- processes we start, and cleanup
STARTED=()
descendants() { # a pid and all its descendants
  local c
  echo "$1"
  for c in $(pgrep -P "$1" 2>/dev/null || true); do descendants "$c"; done
}
alive() { # running (a zombie is not)
  local st
  st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}
stop_tree() { # TERM a process we started and its descendants, KILL after 5 s, reap it
  local pids i p left keep=()
  for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
  mapfile -t pids < <(descendants "$1")
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in $(seq 1 50); do
    left=0
    for p in "${pids[@]}"; do alive "$p" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  ((left)) && kill -KILL "${pids[@]}" 2>/dev/null
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_tree "${STARTED[i]}"; done
  if [[ -d ${RUN:-} ]]; then
    mkdir -p "$OUT/logs"
    for f in "$RUN"/*.log "$RUN"/*.out "$RUN"/*.err "$RUN"/nginx/error.log; do
      [[ -f $f ]] && tail -n 40 "$f" >"$OUT/logs/$(basename "$f")"
    done
    rm -rf "$RUN"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $P_MOCK $P_AIGIS $P_ADMIN $P_NGINX $P_LITELLM; do
  port_in_use "$p" && die "127.0.0.1:$p is already in use; stop whatever holds it (not ours)"
done

wait_until() { # pid what seconds cmd...: poll cmd until it succeeds, the process dies, or time is up
  local pid=$1 what=$2 secs=$3 i
  shift 3
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { log "$what exited during start-up"; return 1; }
    sleep 0.2
  done
  log "$what not ready after ${secs}s"
  return 1
}
http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }

BODY='{"model":"mock-1","messages":[{"role":"user","content":"ping"}],"max_tokens":16}'
check_chat() { # url: one chat completion answered by the mock
  local auth=()
  [[ -n ${BENCH_AUTH:-} ]] && auth=(-H "Authorization: Bearer $BENCH_AUTH")
  curl -sS --max-time 15 -H 'Content-Type: application/json' "${auth[@]}" -d "$BODY" "$1" | tee /dev/stderr |
    grep -q 'mock reply to: ping'
}

# ---------------------------------------------------------------- measurement helpers
cpu_ticks() { # utime+stime of the given pids, in clock ticks
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
rss_kb() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
BUSY_RE='^(rustc|cc1|cc1plus|ld|ld.lld|rust-lld|clippy-driver|rustdoc|cargo)$'
busy() { # compiler and linker processes sharing the machine (noise)
  ps -eo comm= | grep -cE "$BUSY_RE" || true
}
start_noise_sampler() { # file: the number of compile jobs, twice a second, until stopped
  (while :; do busy; sleep 0.5; done) >"$1" 2>/dev/null &
  NOISE_PID=$!
  STARTED+=("$NOISE_PID")
}
stop_noise_sampler() { # file: prints the most compile jobs seen at once
  stop_tree "$NOISE_PID"
  sort -n "$1" | tail -1
}
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; } # time the hypervisor gave to others
load() { # outfile conns seconds url [pause-ms]
  local out=$1 c=$2 d=$3 url=$4 pause=${5:-0}
  if [[ $LOADGEN == wrk ]]; then
    BENCH_PAUSE_MS=$pause timeout $((d + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$c" -d"${d}s" --timeout 5s --latency \
      -s "$BENCH/wrk_post.lua" "$url" >"$out" 2>&1
  else
    timeout $((d + 30)) "${LOAD_PIN[@]}" python3 "$BENCH/pyload.py" --url "$url" --conns "$c" \
      --duration "$d" --pause-ms "$pause" >"$out" 2>&1
  fi
}
field() { # file key: a value from the BENCH line
  sed -n 's/^BENCH //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
errors_in() { # socket errors + non-2xx/3xx + timeouts; a run without a BENCH line counts as 1
  local s t o
  s=$(field "$1" socket_errors) t=$(field "$1" status_errors) o=$(field "$1" timeouts)
  [[ -z $s ]] && { echo 1; return; }
  echo $((s + ${t:-0} + ${o:-0}))
}

run_case() { # name url root-pid-or-"-": writes $OUT/<name>.env
  local name=$1 url=$2 root=$3 pids=() c0 c1 m0 m1 rss hi lo req
  log "case $name: $url"
  if ! check_chat "$url" >"$OUT/$name.check.txt" 2>&1; then
    log "case $name: the check request failed (see $OUT/$name.check.txt)"
    echo "status=check-failed" >"$OUT/$name.env"
    return 1
  fi
  load "$OUT/$name.warmup.txt" "$CONNS" "$WARM" "$url" || true
  [[ $root != - ]] && mapfile -t pids < <(descendants "$root")
  hi=$OUT/$name.c$CONNS.txt lo=$OUT/$name.lowload.txt
  local steal0
  start_noise_sampler "$OUT/$name.noise"
  steal0=$(steal_ticks)
  c0=$(cpu_ticks "${pids[@]}") m0=$(cpu_ticks "$MOCK_PID")
  load "$hi" "$CONNS" "$DUR" "$url" || log "case $name: load generator failed (see $hi)"
  c1=$(cpu_ticks "${pids[@]}") m1=$(cpu_ticks "$MOCK_PID")
  rss=$(rss_kb "${pids[@]}")
  load "$lo" "$LOW_CONNS" "$LOW_DUR" "$url" "$LOW_PAUSE_MS" || log "case $name: load generator failed (see $lo)"
  req=$(field "$hi" requests)
  req=${req:-0}
  {
    echo "status=ok"
    echo "rps=$(field "$hi" rps)"
    echo "p50_us=$(field "$hi" p50_us)"
    echo "p99_us=$(field "$hi" p99_us)"
    echo "low_rps=$(field "$lo" rps)"
    echo "low_p50_us=$(field "$lo" p50_us)"
    echo "low_p99_us=$(field "$lo" p99_us)"
    echo "requests=$req"
    echo "low_requests=$(field "$lo" requests)"
    echo "errors=$(($(errors_in "$hi") + $(errors_in "$lo")))"
    echo "procs=${#pids[@]}"
    echo "cpu_ticks=$((c1 - c0))"
    echo "mock_cpu_ticks=$((m1 - m0))"
    awk -v t=$((c1 - c0)) -v m=$((m1 - m0)) -v r="$req" -v hz="$CLK_TCK" 'BEGIN {
      if (r > 0) { printf "cpu_us_per_req=%.1f\nmock_cpu_us_per_req=%.1f\n", t * 1e6 / hz / r, m * 1e6 / hz / r }
      else { print "cpu_us_per_req=\nmock_cpu_us_per_req=" } }'
    echo "rss_kb=$rss"
    echo "max_compile_jobs=$(stop_noise_sampler "$OUT/$name.noise")"
    echo "steal_ms=$((($(steal_ticks) - steal0) * 1000 / CLK_TCK))"
  } >"$OUT/$name.env"
  log "case $name: $(field "$hi" rps) req/s at $CONNS conns; low load $(field "$lo" rps) req/s, p99 $(field "$lo" p99_us) us"
}

# ---------------------------------------------------------------- machine facts
{
  echo "date: $(date -Is)"
  echo "command: bash bench/gateway.sh $( ((SMOKE)) && echo --smoke)"
  echo "git: $COMMIT ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) uncommitted paths)"
  echo "nproc: $(nproc)"
  echo "uname: $(uname -a)"
  echo "pinning: $PINNING"
  echo "load generator: $LOADGEN $([[ $LOADGEN == wrk ]] && wrk -v 2>&1 | head -1)"
  echo "runs: warm-up ${WARM}s; throughput ${DUR}s at $CONNS connections; low load ${LOW_DUR}s at $LOW_CONNS connections, each pausing ${LOW_PAUSE_MS} ms between requests"
  echo "aigis: $("$AIGIS" --version 2>&1 | head -1); binary $AIGIS, modified $(date -r "$AIGIS" -Is); $BUILD_NOTE"
  echo "mock: $MOCK, modified $(date -r "$MOCK" -Is)"
  ((SKIP_NGINX)) || echo "nginx: $(nginx -v 2>&1)"
  ((SKIP_LITELLM)) || echo "litellm: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))') (python $("$VENV/bin/python" -V 2>&1 | cut -d' ' -f2))"
  echo "clock ticks: $CLK_TCK"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "compile jobs at start (rustc/cc/ld/cargo...): $(busy)"
  echo "--- lscpu | head -20"
  lscpu | head -20
} >"$OUT/machine.txt"

# ---------------------------------------------------------------- (a) mock, direct
"${SUT_PIN[@]}" "$MOCK" --listen "127.0.0.1:$P_MOCK" >"$RUN/mock.out" 2>"$RUN/mock.err" &
MOCK_PID=$!
STARTED+=("$MOCK_PID")
wait_until "$MOCK_PID" "mock upstream" 10 grep -q 'listening on' "$RUN/mock.out" || die "mock upstream did not start"
run_case direct "http://127.0.0.1:$P_MOCK/v1/chat/completions" - || die "the mock upstream does not answer"

# ---------------------------------------------------------------- (b) aigis
cat >"$RUN/aigis.toml" <<EOF
[server]
listen = "127.0.0.1:$P_AIGIS"
admin_listen = "127.0.0.1:$P_ADMIN"

[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:$P_MOCK/v1"

[[routes]]
name = "bench"
models = ["mock*", "gpt-*"]
upstream = "mock"

# Passthrough: the guard is measured separately in case (b'').
[guard]
profile = "off"
EOF
# Access log (one JSON line per request) goes to a file, as it would in production.
"${SUT_PIN[@]}" "$AIGIS" gateway --config "$RUN/aigis.toml" --log-format json >"$RUN/aigis.out" 2>"$RUN/aigis.log" &
AIGIS_PID=$!
STARTED+=("$AIGIS_PID")
wait_until "$AIGIS_PID" aigis 15 http_ok "http://127.0.0.1:$P_ADMIN/healthz" || die "aigis did not start (see $OUT/logs/aigis.log)"
AIGIS_OK=1
run_case aigis "http://127.0.0.1:$P_AIGIS/v1/chat/completions" "$AIGIS_PID" || AIGIS_OK=0

log "aigis: RSS with $IDLE_CONNS idle connections"
"${LOAD_PIN[@]}" python3 "$BENCH/idle_conns.py" --port "$P_AIGIS" --count "$IDLE_CONNS" --pid "$AIGIS_PID" >"$OUT/idle-conns.txt" 2>&1 ||
  log "idle connection test failed (see $OUT/idle-conns.txt)"
cat "$OUT/idle-conns.txt" >&2
# Added latency, paired: low-load rounds alternating direct / aigis, so both see the same
# background noise; the headline is the median over rounds of (aigis p99 - direct p99).
PAIRED_DIFFS=()
if ((AIGIS_OK)); then
  log "added latency: $PAIR_ROUNDS paired low-load rounds of ${PAIR_DUR}s (direct, then aigis)"
  start_noise_sampler "$OUT/paired.noise"
  for r in $(seq 1 "$PAIR_ROUNDS"); do
    load "$OUT/paired-$r-direct.txt" "$LOW_CONNS" "$PAIR_DUR" "http://127.0.0.1:$P_MOCK/v1/chat/completions" "$LOW_PAUSE_MS" || true
    load "$OUT/paired-$r-aigis.txt" "$LOW_CONNS" "$PAIR_DUR" "http://127.0.0.1:$P_AIGIS/v1/chat/completions" "$LOW_PAUSE_MS" || true
    d=$(field "$OUT/paired-$r-direct.txt" p99_us) a=$(field "$OUT/paired-$r-aigis.txt" p99_us)
    ae=$(errors_in "$OUT/paired-$r-aigis.txt")
    ((ae == 0)) || { AIGIS_OK=0; log "aigis had $ae failed requests in paired round $r"; }
    [[ -n $d && -n $a ]] && PAIRED_DIFFS+=("$(awk -v a="$a" -v d="$d" 'BEGIN { printf "%.3f", (a - d) / 1000 }')")
    echo "round $r: direct p50 $(field "$OUT/paired-$r-direct.txt" p50_us) us p99 $d us; aigis p50 $(field "$OUT/paired-$r-aigis.txt" p50_us) us p99 $a us" >>"$OUT/paired.txt"
  done
  echo "max_compile_jobs=$(stop_noise_sampler "$OUT/paired.noise")" >>"$OUT/paired.txt"
fi
kill -0 "$AIGIS_PID" 2>/dev/null || { AIGIS_OK=0; log "aigis died"; }
stop_tree "$AIGIS_PID"

# ---------------------------------------------------------------- (b') aigis with zero trust
# The same gateway with an API key checked on every request (cache_ttl 5 s, as by default)
# and the built-in Cedar policy set: the cost of identify + authorize.
if ((!SMOKE)); then
  sed -e '/^\[\[upstreams\]\]/,$!d' "$RUN/aigis.toml" >"$RUN/upstreams.toml"
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\nadmin_listen = "127.0.0.1:%s"\n\n' "$P_AIGIS" "$P_ADMIN"
    printf '[identity.api_keys]\nstore = "sqlite:keys.db"\n\n[policy]\npolicies = ["builtin:quickstart"]\n\n'
    cat "$RUN/upstreams.toml"
  } >"$RUN/aigis-auth.toml"
  BENCH_AUTH=$("$AIGIS" keys create --config "$RUN/aigis-auth.toml" --name bench --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  export BENCH_AUTH
  "${SUT_PIN[@]}" "$AIGIS" gateway --config "$RUN/aigis-auth.toml" --log-format json >"$RUN/aigis-auth.out" 2>"$RUN/aigis-auth.log" &
  AUTH_PID=$!
  STARTED+=("$AUTH_PID")
  wait_until "$AUTH_PID" "aigis (auth)" 15 http_ok "http://127.0.0.1:$P_ADMIN/healthz" || die "aigis (auth) did not start"
  run_case aigis_auth "http://127.0.0.1:$P_AIGIS/v1/chat/completions" "$AUTH_PID" || AIGIS_OK=0
  unset BENCH_AUTH
  stop_tree "$AUTH_PID"

  # (b'') the passthrough config with the `balanced` guard profile: the cost of inspect.
  sed -e 's/^profile = "off"/profile = "balanced"/' "$RUN/aigis.toml" >"$RUN/aigis-guard.toml"
  "${SUT_PIN[@]}" "$AIGIS" gateway --config "$RUN/aigis-guard.toml" --log-format json >"$RUN/aigis-guard.out" 2>"$RUN/aigis-guard.log" &
  GUARD_PID=$!
  STARTED+=("$GUARD_PID")
  wait_until "$GUARD_PID" "aigis (guard)" 15 http_ok "http://127.0.0.1:$P_ADMIN/healthz" || die "aigis (guard) did not start"
  run_case aigis_guard "http://127.0.0.1:$P_AIGIS/v1/chat/completions" "$GUARD_PID" || AIGIS_OK=0
  stop_tree "$GUARD_PID"

  # (b3) limits that never refuse (a request rate and a token quota per principal), first
  # counted in the process, then (b4) in the machine's Redis under a prefix of this run's
  # own: the cost of admit + settle, and what the Redis round trip adds.
  LIMITS='[[limits]]\nname = "rpm"\nscope = "principal"\nrequests = "1G/min"\n\n[[limits]]\nname = "tpm"\nscope = "principal"\ntokens = "1G/min"\n'
  for mode in limits fleet; do
    { cat "$RUN/aigis.toml"; printf '\n%b' "$LIMITS"
      [[ $mode == fleet ]] && printf '\n[cluster]\nredis = "redis://127.0.0.1:6379"\nkey_prefix = "aigis_bench_%s"\n' "$$"
    } >"$RUN/aigis-$mode.toml"
    "${SUT_PIN[@]}" "$AIGIS" gateway --config "$RUN/aigis-$mode.toml" --log-format json >"$RUN/aigis-$mode.out" 2>"$RUN/aigis-$mode.log" &
    LIM_PID=$!
    STARTED+=("$LIM_PID")
    wait_until "$LIM_PID" "aigis ($mode)" 15 http_ok "http://127.0.0.1:$P_ADMIN/healthz" || die "aigis ($mode) did not start"
    run_case "aigis_$mode" "http://127.0.0.1:$P_AIGIS/v1/chat/completions" "$LIM_PID" || AIGIS_OK=0
    stop_tree "$LIM_PID"
  done
  redis-cli --scan --pattern "aigis_bench_$$:*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------- (c) nginx
if ((!SKIP_NGINX)); then
  mkdir -p "$RUN/nginx/tmp"
  cat >"$RUN/nginx/nginx.conf" <<EOF
# Private instance for the benchmark: its own prefix, pid and logs.
$( ((EUID == 0)) && echo "user root;")
worker_processes 1;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log $RUN/nginx/access.log;   # like aigis: one line per request to a file
    client_body_temp_path $RUN/nginx/tmp/body;
    proxy_temp_path $RUN/nginx/tmp/proxy;
    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
    scgi_temp_path $RUN/nginx/tmp/scgi;
    keepalive_requests 1000000;
    upstream mock {
        server 127.0.0.1:$P_MOCK;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
  "${SUT_PIN[@]}" nginx -p "$RUN/nginx/" -e "$RUN/nginx/error.log" -c "$RUN/nginx/nginx.conf" \
    -g 'daemon off;' >"$RUN/nginx.out" 2>&1 &
  NGINX_PID=$!
  STARTED+=("$NGINX_PID")
  if wait_until "$NGINX_PID" nginx 10 http_ok "http://127.0.0.1:$P_NGINX/v1/models"; then
    run_case nginx "http://127.0.0.1:$P_NGINX/v1/chat/completions" "$NGINX_PID" || NGINX_NOTE="check request failed"
  else
    NGINX_NOTE="not run: nginx did not start"
  fi
  stop_tree "$NGINX_PID"
fi

# ---------------------------------------------------------------- (d) LiteLLM
if ((!SKIP_LITELLM)); then
  mkdir -p "$RUN/litellm"
  cat >"$RUN/litellm/config.yaml" <<EOF
model_list:
  - model_name: mock-1
    litellm_params:
      model: openai/mock-1
      api_base: http://127.0.0.1:$P_MOCK/v1
      api_key: sk-bench-placeholder
litellm_settings:
  telemetry: false
  set_verbose: false
  turn_off_message_logging: true
  success_callback: []
  failure_callback: []
  callbacks: []
  drop_params: true
  request_timeout: 30
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
EOF
  # No database, no master key (so no auth work: lighter than with one), logs at ERROR (no access
  # log), no telemetry, the bundled model cost map (no fetch at start-up), one uvicorn worker.
  (cd "$RUN/litellm" && exec env -u DATABASE_URL -u LITELLM_MASTER_KEY \
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR LITELLM_TELEMETRY=False \
    LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true DISABLE_ADMIN_UI=True \
    "${SUT_PIN[@]}" "$VENV/bin/litellm" --config config.yaml --host 127.0.0.1 --port "$P_LITELLM" \
    --num_workers 1 --telemetry False) >"$RUN/litellm.log" 2>&1 &
  LITELLM_PID=$!
  STARTED+=("$LITELLM_PID")
  log "waiting for LiteLLM to start (slow imports; up to 180 s)"
  if wait_until "$LITELLM_PID" LiteLLM 180 http_ok "http://127.0.0.1:$P_LITELLM/health/liveliness"; then
    run_case litellm "http://127.0.0.1:$P_LITELLM/v1/chat/completions" "$LITELLM_PID" ||
      LITELLM_NOTE="check request failed (see litellm.check.txt)"
  else
    LITELLM_NOTE="not run: LiteLLM did not start (see logs/litellm.log)"
  fi
  stop_tree "$LITELLM_PID"
fi

# ---------------------------------------------------------------- summary
get() { # case key
  [[ -f $OUT/$1.env ]] && sed -n "s/^$2=//p" "$OUT/$1.env" | head -1 || true
}
ms() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }' || echo "–"; }
num() { [[ -n $1 ]] && awk -v v="$1" "BEGIN { printf \"$2\", v }" || echo "–"; }
verdict() { [[ -n $1 ]] && awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {
  ok = (op == "le" ? v <= g : op == "lt" ? v < g : v >= g); print (ok ? "met" : "**not met**") }' || echo "not measured"; }

ADDED_LOW="" ADDED_HI="" RPS_RATIO="" CPU_RATIO="" IDLE_MB=""
if [[ $(get aigis status) == ok && $(get direct status) == ok ]]; then
  ((${#PAIRED_DIFFS[@]})) && ADDED_LOW=$(printf '%s\n' "${PAIRED_DIFFS[@]}" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  ADDED_HI=$(awk -v a="$(get aigis p99_us)" -v d="$(get direct p99_us)" 'BEGIN { printf "%.3f", (a - d) / 1000 }')
fi
[[ $(get aigis status) == ok && $(get nginx status) == ok ]] &&
  RPS_RATIO=$(awk -v a="$(get aigis rps)" -v n="$(get nginx rps)" 'BEGIN { printf "%.2f", a / n }')
[[ $(get aigis status) == ok && $(get litellm status) == ok && -n $(get aigis cpu_us_per_req) ]] &&
  CPU_RATIO=$(awk -v l="$(get litellm cpu_us_per_req)" -v a="$(get aigis cpu_us_per_req)" 'BEGIN { if (a > 0) printf "%.1f", l / a }')
IDLE_KB=$(sed -n 's/.*partial_kb=\([0-9]*\).*/\1/p' "$OUT/idle-conns.txt" 2>/dev/null || true)
SILENT_KB=$(sed -n 's/.*silent_kb=\([0-9]*\).*/\1/p' "$OUT/idle-conns.txt" 2>/dev/null || true)
[[ -n $IDLE_KB && -n $SILENT_KB ]] && ((SILENT_KB > IDLE_KB)) && IDLE_KB=$SILENT_KB
[[ -n $IDLE_KB ]] && IDLE_MB=$(awk -v k="$IDLE_KB" 'BEGIN { printf "%.1f", k / 1024 }')

{
  echo "### aigis gateway benchmark, $DATE, commit $COMMIT$( ((SMOKE)) && echo ' (smoke)')"
  echo
  echo "$(nproc) cores, $PINNING; $LOADGEN; per case ${DUR}s at $CONNS connections, then ${LOW_DUR}s of low load ($LOW_CONNS connections, each pausing $LOW_PAUSE_MS ms between requests); a small non-streaming chat completion to a mock upstream."
  echo
  echo "| case | req/s @$CONNS conns | p50 ms | p99 ms | low load req/s | low load p50 ms | low load p99 ms | proxy CPU-µs/req | mock CPU-µs/req | proxy RSS MB | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in direct aigis aigis_auth aigis_guard aigis_limits aigis_fleet nginx litellm; do
    case $c in
      direct) label="(a) direct to mock" ;; aigis) label="(b) aigis" ;;
      aigis_auth) label="(b') aigis, API key + Cedar" ;;
      aigis_guard) label="(b'') aigis, guard (balanced)" ;;
      aigis_limits) label="(b3) aigis, limits in process" ;;
      aigis_fleet) label="(b4) aigis, limits in Redis" ;;
      nginx) label="(c) nginx proxy_pass" ;; litellm) label="(d) LiteLLM proxy" ;;
    esac
    st=$(get $c status)
    if [[ $st == ok ]]; then
      cpu="–" rss="–"
      [[ $c != direct ]] && cpu=$(num "$(get $c cpu_us_per_req)" %.1f) &&
        rss=$(awk -v k="$(get $c rss_kb)" 'BEGIN { printf "%.1f", k / 1024 }')
      echo "| $label | $(num "$(get $c rps)" %.0f) | $(ms "$(get $c p50_us)") | $(ms "$(get $c p99_us)") | $(num "$(get $c low_rps)" %.0f) | $(ms "$(get $c low_p50_us)") | $(ms "$(get $c low_p99_us)") | $cpu | $(num "$(get $c mock_cpu_us_per_req)" %.1f) | $rss | $(get $c errors) |"
    else
      note=""
      [[ $c == nginx ]] && note=$NGINX_NOTE
      [[ $c == litellm ]] && note=$LITELLM_NOTE
      [[ -n $st ]] && note=${note:-$st}
      ((SMOKE)) && [[ $c != direct && $c != aigis ]] && continue
      echo "| $label | ${note:-not run} | | | | | | | | | |"
    fi
  done
  echo
  echo "| target | measured | goal | result |"
  echo "|---|---:|---:|---|"
  if [[ $LOADGEN == wrk ]]; then lat_verdict=$(verdict "$ADDED_LOW" 1 le); else lat_verdict="not judged (Python load generator jitter)"; fi
  echo "| added p99 over direct, low load (median of ${#PAIRED_DIFFS[@]} paired rounds: ${PAIRED_DIFFS[*]:-–} ms) | ${ADDED_LOW:-–} ms | ≤ 1 ms | $lat_verdict |"
  echo "| (for reference) added p99 over direct @$CONNS conns | ${ADDED_HI:-–} ms | – | – |"
  ((SMOKE)) || echo "| aigis req/s ÷ nginx req/s @$CONNS conns | ${RPS_RATIO:-–}× | ≥ 0.8× | $(verdict "$RPS_RATIO" 0.8 ge) |"
  ((SMOKE)) || echo "| (for reference) identify + authorize cost: aigis_auth − aigis CPU-µs/req | $(awk -v a="$(get aigis_auth cpu_us_per_req)" -v b="$(get aigis cpu_us_per_req)" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b; else print "–" }') µs | – | – |"
  ((SMOKE)) || echo "| (for reference) guard inspect cost: aigis_guard − aigis CPU-µs/req | $(awk -v a="$(get aigis_guard cpu_us_per_req)" -v b="$(get aigis cpu_us_per_req)" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b; else print "–" }') µs | – | – |"
  ((SMOKE)) || echo "| LiteLLM CPU-µs/req ÷ aigis CPU-µs/req | ${CPU_RATIO:-–}× | ≥ 50× | $(verdict "$CPU_RATIO" 50 ge) |"
  echo "| aigis RSS with $IDLE_CONNS idle connections | ${IDLE_MB:-–} MB | < 50 MB | $(verdict "$IDLE_MB" 50 lt) |"
  echo
  echo "Idle connections: $(sed -n 's/^IDLE //p' "$OUT/idle-conns.txt" 2>/dev/null)"
  if grep -qE '^max_compile_jobs=[1-9]' "$OUT"/*.env 2>/dev/null || grep -q '^max_compile_jobs=[1-9]' "$OUT/paired.txt" 2>/dev/null; then
    echo "**Warning: other compile jobs shared the machine during some runs; those numbers are noisy.**"
    echo
  fi
  echo "Noise: most compile jobs (rustc, cc, ld, cargo...) seen at once, and CPU time stolen by the hypervisor, during each case's runs: $(for c in direct aigis nginx litellm; do b=$(get $c max_compile_jobs); [[ -n $b ]] && printf '%s %s jobs, %s ms stolen; ' "$c" "$b" "$(get $c steal_ms)"; done)paired rounds $(sed -n 's/^max_compile_jobs=//p' "$OUT/paired.txt" 2>/dev/null) jobs."
} >"$OUT/summary.md"

echo
cat "$OUT/summary.md"
echo
log "raw results in ${OUT#"$ROOT"/}"

# ---------------------------------------------------------------- exit status
((AIGIS_OK)) || die "aigis failed its check request or died"
[[ $(get aigis requests) -gt 0 ]] || die "aigis completed no requests"
[[ $(get aigis errors) -eq 0 ]] || die "aigis had $(get aigis errors) failed requests"
exit 0
