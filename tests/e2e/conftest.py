"""Fixtures for the end-to-end suite: the real `aigis` binary in front of the mock upstream.

The binaries come from AIGIS_BIN and AIGIS_MOCK_BIN (set by scripts/test). Every response the
tests see is recorded so the last test can search it, the gateway log and the metrics for the
upstream API key and the canary prompt.
"""

import json
import os
import pathlib
import secrets
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
AIGIS_BIN = os.environ.get("AIGIS_BIN", str(ROOT / "target/debug/aigis"))
MOCK_BIN = os.environ.get("AIGIS_MOCK_BIN", str(ROOT / "target/debug/aigis-mock-upstream"))

# Secrets the gateway must never reveal: the upstream key it injects, and prompt text.
UPSTREAM_KEY = "sk-e2e-upstream-" + secrets.token_hex(16)
# Plain text (not hex or base64: random encoded bytes sometimes looked like an obfuscated
# payload to the guard on the `mock` route, which made this suite flaky).
CANARY = f"canary number {secrets.randbelow(10**9)} for the leak check"
# A secret the scripted model says in its answers; the response guard must keep it from the
# client (and it must never reach a log either).
STREAM_SECRET = "sk-proj-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(48))

SEEN = []  # every response body and header block the tests received


def _wait_for(predicate, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def mock_upstream():
    proc = subprocess.Popen([MOCK_BIN, "--listen", "127.0.0.1:0", "--chunks", "5"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ")
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(mock_upstream, tmp_path_factory):
    work = tmp_path_factory.mktemp("gateway")
    config = work / "aigis.toml"
    config.write_text(f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
max_body = "64KiB"

[identity.api_keys]
store = "sqlite:keys.db"
cache_ttl = "0"

[policy]
policies = ["builtin:quickstart"]

[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://{mock_upstream}/v1"
api_key = "env:AIGIS_E2E_UPSTREAM_KEY"

[[upstreams]]
name = "echo"
kind = "echo"

[[upstreams]]
name = "mock-anthropic"
kind = "anthropic"
base_url = "http://{mock_upstream}"

[[routes]]
name = "mock"
models = ["mock", "mock-*", "text-embedding-mock"]
upstream = "mock"

# Blocks (rather than redacts) secrets and bad tool calls in responses.
[[routes]]
name = "guarded"
models = ["guarded-*"]
upstream = "mock"
guard = "no-leaks"

[[routes]]
name = "claude"
models = ["claude-*"]
upstream = "mock-anthropic"

[guard.profiles.no-leaks]
extends = "balanced"
output = {{ secrets = "block", tools = "block" }}

[[routes]]
name = "echo"
models = ["echo"]
upstream = "echo"
""")
    created = subprocess.run(
        [AIGIS_BIN, "keys", "create", "--config", str(config), "--name", "e2e", "--role", "reader", "--format", "json"],
        check=True, capture_output=True, text=True,
    )
    client_key = json.loads(created.stdout)["key"]
    running = launch_gateway(config, work / "gateway.log")
    yield dict(running, key=client_key, config=config)
    running["proc"].terminate()
    assert running["proc"].wait(timeout=30) == 0, "SIGTERM drains and exits cleanly"


def launch_gateway(config, log):
    """Starts `aigis gateway --config CONFIG` logging to LOG; returns its URLs and process."""
    env = dict(os.environ, AIGIS_E2E_UPSTREAM_KEY=UPSTREAM_KEY, AIGIS_LOG="debug")
    with open(log, "w") as log_file:
        proc = subprocess.Popen([AIGIS_BIN, "gateway", "--config", str(config)], stderr=log_file, env=env)

    def listening():
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited: {log.read_text()}")
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("message") == "aigis gateway listening":
                return json.loads(line)
        return None

    info = _wait_for(listening, "the gateway to listen")
    return {"url": f"http://{info['public_addr']}", "admin": f"http://{info['admin_addr']}", "log": log, "proc": proc}


@pytest.fixture()
def client(gateway):
    import openai

    # max_retries=0: errors must surface as they are, not be hidden by client retries.
    return openai.OpenAI(base_url=gateway["url"] + "/v1", api_key=gateway["key"], max_retries=0)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()
