#!/usr/bin/env bash
# bench/stream.sh: streaming response inspection (issue 6): added time-to-first-token and SSE
# throughput of the aigis output guard, against a direct call and LiteLLM's content-filter
# guardrail, on this machine only.
#
#   bash bench/stream.sh            # all cases incl. LiteLLM, a few minutes (plus builds/installs)
#   bash bench/stream.sh --smoke    # direct + aigis only, short runs, < 60 s, installs nothing
#
# Upstream: aigis-mock-upstream. Its answer is set per request (`mock_script.say`) and cut into
# N chunks of equal length (`mock-chunks-N` in the model name), `mock-delay-MS` apart. Chunks
# look like LLM tokens: 4-letter lowercase words, 5 characters each, so every chunk is a whole
# token. Two shapes of the same words:
#   space-first  "that " "with " ...   every chunk ends in a space (nothing unfinished)
#   lead-space   " that" " with" ...   the usual LLM tokenisation: every chunk ends mid-word
#                                      as far as the guard can know (the next chunk may continue
#                                      the word), so the guard holds it until the next chunk.
# "First token" = the first SSE event whose choices[0].delta.content is non-empty (the role
# event with content "" does not count), timed by the client from writing the request.
#
# Cases: (a) direct to the mock; (b) aigis, route guard "off" (passthrough); (c) aigis, the
# balanced profile (output: pii flag, secrets redact, links strip-unlisted, canary on, leak
# block, tools flag; the request side is inspected too); (d) aigis, a profile extending balanced
# with output pii = "redact" (the strictest hold: the last words are held for names/addresses);
# (e) LiteLLM proxy without a guardrail; (f) LiteLLM with its built-in litellm_content_filter
# guardrail (offline regex/keyword filter) asked for per request.
#
# 1. TTFT: $TTFT_REQ requests per case and shape, $TTFT_CONC connections, 8 chunks 25 ms apart.
# 2. Throughput: streams of 2,000 chunks with no delay on $TPUT_CONC connections for
#    $TPUT_DUR s; events/s delivered to the client, and the proxy's CPU-us per event
#    (utime+stime from /proc over the run / events delivered) -> events/s per core.
# 3. Action on a secret split across chunks: one stream whose answer carries a GitHub-style
#    token cut into 3-character chunks; what the client received.
# Pinning: the client and the mock on core 0, the proxy under test alone on core 1 (so the
# throughput and CPU figures are the proxy's).
#
# Results: bench/results/<date>-<commit>-stream/ (smoke: bench/work/smoke-stream-<date>-<commit>/)
# with every raw client output, machine facts and summary.md. Ports 127.0.0.1:18001/18010/
# 18011/18030 (those of bench/gateway.sh: do not run both at once).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<'EOF'
Options:
  --smoke          direct + aigis only, short runs, no peers, no installs
  --skip-litellm   leave out cases (e) and (f)
  --out DIR        write results to DIR instead of the default folder
EOF
}

SMOKE=0 SKIP_LITELLM=0 OUT=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
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
VENV=${LITELLM_VENV:-$TARGET/litellm-venv}
CLIENT=$BENCH/stream_client.py

P_MOCK=18001 P_AIGIS=18010 P_ADMIN=18011 P_LITELLM=18030
CHUNKS=8 DELAY_MS=25 TPUT_CHUNKS=2000
if ((SMOKE)); then
  TTFT_REQ=60 TTFT_CONC=4 TPUT_DUR=3 TPUT_CONC=2 SKIP_LITELLM=1
else
  TTFT_REQ=310 TTFT_CONC=6 TPUT_DUR=6 TPUT_CONC=2
fi
T0=$(date +%s)
log() { printf '[stream %3ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  LOAD_PIN=(taskset -c 0) SUT_PIN=(taskset -c 1) PINNING="client + mock on core 0; proxy under test on core 1"
else
  LOAD_PIN=() SUT_PIN=() PINNING="none (fewer than 2 cores or no taskset)"
fi
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$WORK"

if [[ -z ${AIGIS_BIN:-}${MOCK_BIN:-} && -z ${BENCH_NO_BUILD:-} ]] && command -v cargo >/dev/null; then
  log "cargo build --release -p aigis-cli -p aigis-mock-upstream"
  if (cd "$ROOT" && cargo build --release --locked -q -p aigis-cli -p aigis-mock-upstream) >&2; then
    BUILD_NOTE="built by cargo for this tree"
  else
    [[ -x $AIGIS && -x $MOCK ]] || die "release build failed"
    BUILD_NOTE="release build FAILED; measured the existing binaries"
  fi
  T0=$(date +%s)
else
  BUILD_NOTE="not rebuilt (AIGIS_BIN/MOCK_BIN or BENCH_NO_BUILD set)"
fi
[[ -x $AIGIS && -x $MOCK ]] || die "missing $AIGIS or $MOCK"

LITELLM_NOTE=""
if ((!SKIP_LITELLM)); then
  have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true)
  if [[ $have != "$LITELLM_VERSION" ]]; then
    if [[ -n ${CI:-} ]]; then
      LITELLM_NOTE="not run: not installing LiteLLM in CI" SKIP_LITELLM=1
    else
      log "installing litellm[proxy]==$LITELLM_VERSION into $VENV (a few minutes)"
      if ! { python3 -m venv "$VENV" && timeout 900 "$VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"; } \
        >"$WORK/litellm-stream-install.log" 2>&1; then
        LITELLM_NOTE="not run: pip install failed (see bench/work/litellm-stream-install.log)" SKIP_LITELLM=1
      fi
    fi
  fi
fi

DATE=$(date +%F)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
if [[ -z $OUT ]]; then
  if ((SMOKE)); then OUT=$WORK/smoke-stream-$DATE-$COMMIT; else OUT=$BENCH/results/$DATE-$COMMIT-stream; fi
fi
[[ $OUT == "$BENCH/results/"* || $OUT == "$WORK/"* ]] && rm -rf "$OUT"
mkdir -p "$OUT"
RUN=$(mktemp -d "$WORK/run.XXXXXX")

# ---------------------------------------------------------------- processes we start, and cleanup
STARTED=()
descendants() { local c; echo "$1"; for c in $(pgrep -P "$1" 2>/dev/null || true); do descendants "$c"; done; }
alive() { local st; st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1; [[ -n $st && $st != Z ]]; }
stop_tree() {
  local pids i p left=0 keep=()
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
  local rc=$? i f
  set +e
  trap - EXIT INT TERM
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_tree "${STARTED[i]}"; done
  if [[ -d ${RUN:-} ]]; then
    mkdir -p "$OUT/logs"
    for f in "$RUN"/*.log "$RUN"/*.out "$RUN"/*.err "$RUN"/*.toml "$RUN"/*.yaml; do
      [[ -f $f ]] && tail -n 60 "$f" >"$OUT/logs/$(basename "$f")"
    done
    rm -rf "$RUN"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $P_MOCK $P_AIGIS $P_ADMIN $P_LITELLM; do
  port_in_use "$p" && die "127.0.0.1:$p is already in use (bench/gateway.sh running?)"
done
wait_until() {
  local pid=$1 what=$2 secs=$3 i
  shift 3
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { log "$what exited during start-up"; return 1; }
    sleep 0.2
  done
  log "$what not ready after ${secs}s"; return 1
}
http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }
cpu_ticks() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
field() { sed -n 's/^BENCH //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
client() { "${LOAD_PIN[@]}" python3 "$CLIENT" "$@"; }

# ---------------------------------------------------------------- texts
WORDS="sure that with have this from they will been when more some what time into only also very your just like over such make than them well were"
gen() { # shape count: count tokens of 4-letter words, space-first or lead-space
  python3 -c '
import sys
w = sys.argv[3].split(); n = int(sys.argv[2])
t = [w[i % len(w)] for i in range(n)]
print("".join((x + " ") if sys.argv[1] == "space-first" else (" " + x) for x in t), end="")' "$1" "$2" "$WORDS"
}
TEXT_SPACE=$(gen space-first $CHUNKS) TEXT_LEAD=$(gen lead-space $CHUNKS) TEXT_TPUT=$(gen lead-space $TPUT_CHUNKS)
# A GitHub token with a valid checksum (base62 CRC32 of the 30 random characters, as GitHub
# issues them): aigis checks it, so a random 36-character tail would rightly not count.
SECRET=$(python3 -c '
import random, zlib
a = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
r = random.Random(6); body = "".join(r.choice(a) for _ in range(30))
n = zlib.crc32(body.encode()); d = ""
for _ in range(6): d = a[n % 62] + d; n //= 62
print("ghp_" + body + d)')
SECRET_TEXT=" The deploy token is $SECRET and it expires soon. "
# 3 characters per chunk: the token is split across ~14 chunks.
SECRET_CHUNKS=$(((${#SECRET_TEXT} + 2) / 3))

{
  echo "date: $(date -Is)"
  echo "command: bash bench/stream.sh $( ((SMOKE)) && echo --smoke)"
  echo "git: $COMMIT ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) uncommitted paths)"
  echo "nproc: $(nproc)"
  echo "uname: $(uname -a)"
  echo "pinning: $PINNING"
  echo "aigis: $("$AIGIS" --version 2>&1 | head -1); $BUILD_NOTE"
  echo "ttft: $TTFT_REQ requests per case/shape (first 10 are warm-up), $TTFT_CONC connections, $CHUNKS chunks ${DELAY_MS} ms apart"
  echo "throughput: ${TPUT_DUR}s per case, $TPUT_CONC connections, $TPUT_CHUNKS chunks per stream, no delay"
  echo "python: $(python3 -V 2>&1)"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "--- lscpu | head -20"
  lscpu | head -20
} >"$OUT/machine.txt"

# ---------------------------------------------------------------- the runs of one case
ttft_case() { # name url model-prefix [extra-json]: both shapes
  local name=$1 url=$2 pre=$3 extra=${4:-} shape text args=()
  [[ -n $extra ]] && args=(--extra "$extra")
  for shape in space-first lead-space; do
    [[ $shape == space-first ]] && text=$TEXT_SPACE || text=$TEXT_LEAD
    client ttft --url "$url" --model "${pre}mock-chunks-$CHUNKS-delay-$DELAY_MS" --say "$text" --expect "$text" \
      --requests "$TTFT_REQ" --conc "$TTFT_CONC" --raw "$OUT/$name.ttft-$shape.jsonl" "${args[@]}" \
      >"$OUT/$name.ttft-$shape.txt" 2>&1 || log "$name ttft $shape: client failed (see $name.ttft-$shape.txt)"
    log "$name ttft $shape: p50 $(field "$OUT/$name.ttft-$shape.txt" ttft_p50_us) us, p99 $(field "$OUT/$name.ttft-$shape.txt" ttft_p99_us) us, errors $(field "$OUT/$name.ttft-$shape.txt" errors)"
  done
}
tput_case() { # name url model-prefix root-pid-or-"-" [extra-json]
  local name=$1 url=$2 pre=$3 root=$4 extra=${5:-} pids=() c0 c1 ev args=()
  [[ -n $extra ]] && args=(--extra "$extra")
  # Correctness first: 3 whole streams must arrive byte-identical (the text carries nothing to act on).
  client ttft --url "$url" --model "${pre}mock-chunks-$TPUT_CHUNKS" --say "$TEXT_TPUT" --expect "$TEXT_TPUT" \
    --requests 3 --warmup 0 --conc 1 "${args[@]}" >"$OUT/$name.tput-check.txt" 2>&1 || true
  [[ $root != - ]] && mapfile -t pids < <(descendants "$root")
  c0=$(cpu_ticks "${pids[@]}")
  client tput --url "$url" --model "${pre}mock-chunks-$TPUT_CHUNKS" --say "$TEXT_TPUT" --duration "$TPUT_DUR" \
    --conc "$TPUT_CONC" --expect-events $((TPUT_CHUNKS + 1)) "${args[@]}" >"$OUT/$name.tput.txt" 2>&1 ||
    log "$name tput: client failed"
  c1=$(cpu_ticks "${pids[@]}")
  ev=$(field "$OUT/$name.tput.txt" events)
  {
    echo "cpu_ticks=$((c1 - c0))"
    awk -v t=$((c1 - c0)) -v e="${ev:-0}" -v hz="$CLK_TCK" -v root="$root" 'BEGIN {
      if (e > 0 && root != "-" && t > 0) printf "cpu_us_per_event=%.3f\nevents_per_core_s=%.0f\n", t * 1e6 / hz / e, e * hz / t
      else print "cpu_us_per_event=\nevents_per_core_s=" }'
  } >"$OUT/$name.tput.env"
  log "$name tput: $(field "$OUT/$name.tput.txt" events_per_s) events/s delivered; $(sed -n 's/cpu_us_per_event=//p' "$OUT/$name.tput.env") CPU-us/event; check errors $(field "$OUT/$name.tput-check.txt" errors)"
}
secret_case() { # name url model-prefix [extra-json] [prompt]
  local name=$1 url=$2 pre=$3 extra=${4:-} prompt=${5:-tell me something} args=()
  [[ -n $extra ]] && args=(--extra "$extra")
  client once --url "$url" --model "${pre}mock-chunks-$SECRET_CHUNKS" --say "$SECRET_TEXT" --prompt "$prompt" \
    "${args[@]}" >"$OUT/$name.secret.json" 2>&1 || true
  if ! grep -q 'deploy token' "$OUT/$name.secret.json"; then
    echo "error (the answer is not the scripted one)" >"$OUT/$name.secret.verdict"
  elif grep -q "$SECRET" "$OUT/$name.secret.json"; then
    echo "leaked" >"$OUT/$name.secret.verdict"
  elif grep -q '"status": 200' "$OUT/$name.secret.json"; then
    echo "acted" >"$OUT/$name.secret.verdict"
  else
    echo "error" >"$OUT/$name.secret.verdict"
  fi
  log "$name secret split across $SECRET_CHUNKS chunks: $(cat "$OUT/$name.secret.verdict")"
}

# ---------------------------------------------------------------- (a) direct
"${LOAD_PIN[@]}" "$MOCK" --listen "127.0.0.1:$P_MOCK" >"$RUN/mock.out" 2>"$RUN/mock.err" &
MOCK_PID=$!
STARTED+=("$MOCK_PID")
wait_until "$MOCK_PID" "mock upstream" 10 grep -q 'listening on' "$RUN/mock.out" || die "mock upstream did not start"
DIRECT=http://127.0.0.1:$P_MOCK/v1/chat/completions
ttft_case direct "$DIRECT" ""
tput_case direct "$DIRECT" "" -
secret_case direct "$DIRECT" ""

# ---------------------------------------------------------------- (b)-(d) aigis
cat >"$RUN/aigis.toml" <<EOF
[server]
listen = "127.0.0.1:$P_AIGIS"
admin_listen = "127.0.0.1:$P_ADMIN"

[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:$P_MOCK/v1"

[[routes]]
name = "off"
models = ["off-*"]
upstream = "mock"
guard = "off"

[[routes]]
name = "balanced"
models = ["bal-*"]
upstream = "mock"
guard = "balanced"

[[routes]]
name = "piiredact"
models = ["pii-*"]
upstream = "mock"
guard = "piiredact"

[guard]
profile = "balanced"

[guard.profiles.piiredact]
extends = "balanced"
output = { pii = "redact" }
EOF
"${SUT_PIN[@]}" "$AIGIS" gateway --config "$RUN/aigis.toml" --log-format json >"$RUN/aigis.out" 2>"$RUN/aigis.log" &
AIGIS_PID=$!
STARTED+=("$AIGIS_PID")
wait_until "$AIGIS_PID" aigis 15 http_ok "http://127.0.0.1:$P_ADMIN/healthz" || die "aigis did not start (see $OUT/logs/aigis.log)"
GW=http://127.0.0.1:$P_AIGIS/v1/chat/completions
for c in off:off- balanced:bal- piiredact:pii-; do
  ttft_case "aigis_${c%%:*}" "$GW" "${c#*:}"
done
for c in off:off- balanced:bal- piiredact:pii-; do
  tput_case "aigis_${c%%:*}" "$GW" "${c#*:}" "$AIGIS_PID"
done
for c in off:off- balanced:bal- piiredact:pii-; do
  secret_case "aigis_${c%%:*}" "$GW" "${c#*:}"
done
stop_tree "$AIGIS_PID"

# ---------------------------------------------------------------- (e), (f) LiteLLM
if ((!SKIP_LITELLM)); then
  mkdir -p "$RUN/litellm"
  {
    echo "model_list:"
    for m in "mock-chunks-$CHUNKS-delay-$DELAY_MS" "mock-chunks-$TPUT_CHUNKS" "mock-chunks-$SECRET_CHUNKS"; do
      printf '  - model_name: %s\n    litellm_params:\n      model: openai/%s\n      api_base: http://127.0.0.1:%s/v1\n      api_key: sk-bench-placeholder\n' "$m" "$m" "$P_MOCK"
    done
    cat <<EOF
guardrails:
  - guardrail_name: content-filter
    litellm_params:
      guardrail: litellm_content_filter
      mode: post_call
      default_on: false
      patterns:
        - pattern_type: prebuilt
          pattern_name: github_token
          action: MASK
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
  } >"$RUN/litellm/config.yaml"
  cp "$RUN/litellm/config.yaml" "$RUN/litellm-config.yaml"
  (cd "$RUN/litellm" && exec env -u DATABASE_URL -u LITELLM_MASTER_KEY \
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR LITELLM_TELEMETRY=False \
    LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true DISABLE_ADMIN_UI=True \
    "${SUT_PIN[@]}" "$VENV/bin/litellm" --config config.yaml --host 127.0.0.1 --port "$P_LITELLM" \
    --num_workers 1 --telemetry False) >"$RUN/litellm.log" 2>&1 &
  LITELLM_PID=$!
  STARTED+=("$LITELLM_PID")
  log "waiting for LiteLLM to start (slow imports; up to 180 s)"
  if wait_until "$LITELLM_PID" LiteLLM 180 http_ok "http://127.0.0.1:$P_LITELLM/health/liveliness"; then
    LL=http://127.0.0.1:$P_LITELLM/v1/chat/completions
    GR='{"guardrails": ["content-filter"]}'
    ttft_case litellm "$LL" ""
    ttft_case litellm_filter "$LL" "" "$GR"
    tput_case litellm "$LL" "" "$LITELLM_PID"
    tput_case litellm_filter "$LL" "" "$LITELLM_PID" "$GR"
    # The prompt carries the same text: if LiteLLM does not forward mock_script, the mock
    # echoes the prompt ("mock reply to: ..."), so the answer still carries the split token.
    secret_case litellm "$LL" "" "" "$SECRET_TEXT"
    secret_case litellm_filter "$LL" "" "$GR" "$SECRET_TEXT"
  else
    LITELLM_NOTE="not run: LiteLLM did not start (see logs/litellm.log)"
  fi
fi

# ---------------------------------------------------------------- summary
python3 "$BENCH/stream_summary.py" "$OUT" "$SMOKE" "${LITELLM_NOTE}" "$CHUNKS" "$DELAY_MS" "$TPUT_CHUNKS" \
  "$SECRET_CHUNKS" >"$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
