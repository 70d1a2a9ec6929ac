"""Limits end to end: real gateway processes, the real Redis, the official OpenAI SDK.

- Two gateway processes share one limit of 50 per hour in Redis; 240 concurrent requests spread
  over both admit exactly 50 (for a request limit and for a token limit).
- A stream that would cross a token limit ends with an error the SDK raises, not a cut stream.
- A private redis-server (never the shared one) is stopped mid-test: a fail-closed limit
  refuses, a fail-open one lets requests through, and both recover when Redis returns.
- Prompt token counts equal Python tiktoken's on a committed set of prompts.
"""

import concurrent.futures
import glob
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import AIGIS_BIN, _wait_for, fetch, launch_gateway

HERE = pathlib.Path(__file__).resolve().parent
SHARED_REDIS = "redis://127.0.0.1:6379"


def post(url, body, timeout=30):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def config_text(mock_upstream, limits, cluster=""):
    return f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://{mock_upstream}/v1"

[[routes]]
name = "mock"
models = ["mock*"]
upstream = "mock"
guard = "off"
tokenizer = "o200k_base"
max_tokens = 20

[[routes]]
name = "open"
models = ["open*"]
upstream = "mock"
guard = "off"

{cluster}
{limits}
"""


def start(tmp_path, name, text):
    config = tmp_path / f"{name}.toml"
    config.write_text(text)
    return launch_gateway(config, tmp_path / f"{name}.log")


def stop(*gateways):
    for g in gateways:
        g["proc"].terminate()
        g["proc"].wait(timeout=30)


def prompt_tokens(body):
    out = subprocess.run([AIGIS_BIN, "limits", "tokens", "--model", "mock", "--tokenizer", "o200k_base",
                          "--format", "json"], input=json.dumps(body), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["counts"][0]


@pytest.mark.parametrize("kind", ["requests", "tokens"])
def test_two_gateways_share_one_limit_exactly(mock_upstream, tmp_path, kind):
    prefix = "aigis_test_" + secrets.token_hex(6)
    # The upstream answers after 2 s, so every admission happens before any settlement.
    body = {"model": "mock-latency-2000", "messages": [{"role": "user", "content": "hi"}]}
    if kind == "requests":
        limit = 'requests = "50/hour"'
    else:
        body["max_tokens"] = 10 - prompt_tokens(body)
        assert body["max_tokens"] > 0
        limit = 'tokens = "500/hour"'  # 10 tokens reserved per request
    text = config_text(mock_upstream, f'[[limits]]\nname = "shared"\nscope = "principal"\n{limit}\n',
                       f'[cluster]\nredis = "{SHARED_REDIS}"\nkey_prefix = "{prefix}"\n')
    a, b = start(tmp_path, "a", text), start(tmp_path, "b", text)
    try:
        urls = [a["url"], b["url"]] * 120
        with concurrent.futures.ThreadPoolExecutor(max_workers=240) as pool:
            results = list(pool.map(lambda u: post(u, body), urls))
        statuses = [s for s, _, _ in results]
        assert statuses.count(200) == 50, statuses
        assert statuses.count(429) == 190, statuses
        refused = next(r for r in results if r[0] == 429)
        assert json.loads(refused[2])["error"]["code"] == "rate_limit_exceeded"
        assert int(refused[1]["retry-after"]) >= 1
        assert "`shared`" in json.loads(refused[2])["error"]["message"]
    finally:
        stop(a, b)
        subprocess.run(f"redis-cli --scan --pattern '{prefix}:*' | xargs -r redis-cli del", shell=True,
                       capture_output=True)


def test_a_stream_crossing_a_token_limit_ends_with_an_error_the_sdk_raises(mock_upstream, tmp_path):
    text = config_text(mock_upstream, '[[limits]]\nname = "out"\nscope = "principal"\n'
                                      'completion_tokens = "100/hour"\n')
    g = start(tmp_path, "stream", text)
    try:
        client = openai.OpenAI(base_url=g["url"] + "/v1", api_key="unused", max_retries=0)
        words = " ".join(f"word{i}" for i in range(400))
        stream = client.chat.completions.create(model="mock-chunks-40", stream=True,
                                                messages=[{"role": "user", "content": words}])
        received = []
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                received.extend(c.delta.content or "" for c in chunk.choices)
        assert "`out`" in str(err.value)
        assert 0 < len("".join(received)) < len(words), "some text arrived, then the stream ended"
        metrics = fetch(g["admin"] + "/metrics")
        assert 'aigis_limit_events_total{limit="out",outcome="cut_off"} 1' in metrics
    finally:
        stop(g)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_redis(port):
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    _wait_for(up, "the private redis-server")
    return proc


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_losing_redis_follows_each_limits_declared_mode_and_recovers(mock_upstream, tmp_path):
    port = free_port()
    redis = private_redis(port)
    limits = """
[[limits]]
name = "strict"
scope = "principal"
requests = "1000/min"
routes = ["mock"]
on_store_error = "fail-closed"

[[limits]]
name = "lenient"
scope = "principal"
requests = "1000/min"
routes = ["open"]
on_store_error = "fail-open"
"""
    text = config_text(mock_upstream, limits, f'[cluster]\nredis = "redis://127.0.0.1:{port}"\n')
    g = start(tmp_path, "fault", text)
    closed = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    opened = {"model": "open", "messages": [{"role": "user", "content": "hi"}]}
    try:
        assert post(g["url"], closed)[0] == 200
        assert post(g["url"], opened)[0] == 200
        redis.terminate()
        redis.wait(timeout=10)
        status, _, raw = post(g["url"], closed)
        assert status == 503 and json.loads(raw)["error"]["code"] == "limits_unavailable"
        assert post(g["url"], opened)[0] == 200
        metrics = fetch(g["admin"] + "/metrics")
        assert 'limit="lenient",outcome="store_error_open"' in metrics
        assert 'limit="strict",outcome="store_error_closed"' in metrics
        redis = private_redis(port)
        _wait_for(lambda: post(g["url"], closed)[0] == 200, "the fail-closed limit to recover", timeout=20)
        assert post(g["url"], opened)[0] == 200
    finally:
        stop(g)
        redis.terminate()
        redis.wait(timeout=10)


def tiktoken_cache():
    """Python tiktoken downloads its encodings, which this machine cannot; the BPE files are the
    same ones tiktoken-rs ships, so put those where tiktoken looks (named by the URL's SHA-1)."""
    cargo_home = pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo"))
    assets = sorted(glob.glob(str(cargo_home / "registry/src/*/tiktoken-rs-0.*/assets")))
    if not assets:
        pytest.skip("tiktoken-rs sources not found in the cargo registry")
    cache = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "aigis-tiktoken-cache"
    cache.mkdir(exist_ok=True)
    for name in ["o200k_base", "cl100k_base"]:
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        shutil.copy(pathlib.Path(assets[-1]) / f"{name}.tiktoken", cache / hashlib.sha1(url.encode()).hexdigest())
    return cache


def test_prompt_token_counts_equal_tiktoken():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache())
    import tiktoken

    prompts = [json.loads(line) for line in (HERE / "token_prompts.jsonl").read_text().splitlines() if line]
    assert len(prompts) >= 20
    for encoding, model in [("o200k_base", "gpt-4o"), ("cl100k_base", "gpt-4")]:
        enc = tiktoken.get_encoding(encoding)
        out = subprocess.run([AIGIS_BIN, "limits", "tokens", "--model", model, "--format", "json"],
                             input="\n".join(json.dumps(p) for p in prompts), capture_output=True, text=True,
                             check=True)
        ours = json.loads(out.stdout)
        assert ours["encoding"] == encoding
        expected = [len(enc.encode_ordinary(p)) for p in prompts]
        assert ours["counts"] == expected, encoding
        # A chat request: OpenAI's recipe (3 per message, role and content, 3 to prime the reply).
        chat = {"messages": [{"role": "system", "content": prompts[0]}, {"role": "user", "content": prompts[1]}]}
        out = subprocess.run([AIGIS_BIN, "limits", "tokens", "--model", model, "--format", "json"],
                             input=json.dumps(chat), capture_output=True, text=True, check=True)
        recipe = sum(3 + len(enc.encode_ordinary(m["role"])) + len(enc.encode_ordinary(m["content"]))
                     for m in chat["messages"]) + 3
        assert json.loads(out.stdout)["counts"] == [recipe]
