# bench/lib.sh: pieces shared by the bench scripts (sourced, not run).

# passthrough_config LISTEN_PORT ADMIN_PORT MOCK_PORT: the smallest gateway config the
# benchmarks measure against: one route to the mock upstream, guard off. Scripts append the
# section they compare ([ledger], [[limits]], [cluster], ...).
passthrough_config() {
  cat <<EOF2
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"

[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:$3/v1"

[[routes]]
name = "bench"
models = ["mock*"]
upstream = "mock"

[guard]
profile = "off"
EOF2
}

# sequential_requests ADMIN_PORT PORT N: waits for the gateway's /healthz on ADMIN_PORT, then
# sends N sequential keep-alive chat completions to PORT (the callgrind scripts' client).
sequential_requests() {
  python3 - "$1" "$2" "$3" <<'PY'
import http.client, sys, time
admin, port, n = map(int, sys.argv[1:4])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5); c.request("GET", "/healthz")
        if c.getresponse().status == 200: break
    except OSError: pass
    time.sleep(0.1)
body = b'{"model":"mock-1","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"temperature":0}'
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
}

# start_release_mock MOCK_PORT: what the *_callgrind.sh scripts share. Sets `aigis` and `mock`
# (the release binaries, built first unless BENCH_NO_BUILD is set) and `work` (a temporary
# folder), and starts the mock upstream on MOCK_PORT, stopped when the script exits.
start_release_mock() {
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  aigis=$target/release/aigis mock=$target/release/aigis-mock-upstream
  if [[ -z ${BENCH_NO_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked -p aigis-cli -p aigis-mock-upstream >&2)
  fi
  work=$(mktemp -d)
  "$mock" --listen "127.0.0.1:$1" >"$work/mock.out" 2>&1 &
  mock_pid=$!
  trap 'kill $mock_pid 2>/dev/null || true' EXIT
}
