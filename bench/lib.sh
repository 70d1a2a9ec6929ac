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
