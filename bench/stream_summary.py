#!/usr/bin/env python3
"""Writes summary.md for bench/stream.sh from the raw files in its results folder."""

import json
import os
import sys

out, smoke, litellm_note, chunks, delay, tput_chunks, secret_chunks = sys.argv[1:8]


def bench(path):
    try:
        for line in open(path):
            if line.startswith("BENCH "):
                return dict(kv.split("=", 1) for kv in line.split()[1:])
    except OSError:
        pass
    return {}


def env(path):
    try:
        return dict(line.strip().split("=", 1) for line in open(path) if "=" in line)
    except OSError:
        return {}


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None


def ms(us):
    return "-" if us is None else f"{us / 1000:.2f}"


CASES = [
    ("direct", "(a) direct to the mock"),
    ("aigis_off", "(b) aigis, guard off (passthrough)"),
    ("aigis_balanced", "(c) aigis, balanced (all output detectors)"),
    ("aigis_piiredact", "(d) aigis, balanced + output pii = redact"),
    ("litellm", "(e) LiteLLM, no guardrail"),
    ("litellm_filter", "(f) LiteLLM + litellm_content_filter (post_call)"),
]
present = [(k, label) for k, label in CASES if os.path.exists(f"{out}/{k}.ttft-space-first.txt")]

print(f"# Streaming inspection benchmark{' (smoke)' if smoke == '1' else ''}\n")
print("```")
print(open(f"{out}/machine.txt").read().split("--- lscpu")[0].strip())
print("```\n")
print(f"## 1. Time to first token ({chunks} chunks, {delay} ms apart)\n")
print("Timed by the client from writing the request. *first delta*: the first SSE event with a "
      "non-empty `choices[0].delta.content`; *first visible*: the first whose content has a "
      "non-space character (the guard may release a lone leading space first). "
      "*space-first*: every chunk ends in a space (`that `); *lead-space*: LLM-style tokens "
      "(` that`), so each chunk's last word is unfinished until the next chunk begins. "
      "Added = minus the same shape through case (b) ((e) for (f); (a) for (b) and (e)). "
      "`not ok` = requests whose reassembled content was not exactly the text sent.\n")
print("| case | shape | first delta p50 / p99 ms | first visible p50 / p99 ms | added visible p50 / p99 ms | requests | not ok |")
print("|---|---|---:|---:|---:|---:|---:|")
for k, label in present:
    for shape in ("space-first", "lead-space"):
        b = bench(f"{out}/{k}.ttft-{shape}.txt")
        base = {"litellm_filter": "litellm", "aigis_off": "direct", "litellm": "direct"}.get(k, "aigis_off")
        r = bench(f"{out}/{base}.ttft-{shape}.txt") if k != "direct" else {}
        p50, p99 = num(b, "ttft_p50_us"), num(b, "ttft_p99_us")
        v50, v99 = num(b, "vis_p50_us"), num(b, "vis_p99_us")
        add = "-"
        if r and v50 is not None and num(r, "vis_p50_us") is not None:
            add = f"{ms(v50 - num(r, 'vis_p50_us'))} / {ms(v99 - num(r, 'vis_p99_us'))}"
        print(f"| {label} | {shape} | {ms(p50)} / {ms(p99)} | {ms(v50)} / {ms(v99)} | {add} | "
              f"{b.get('requests', '-')} | {b.get('errors', '-')} |")
print()

print(f"## 2. Throughput ({tput_chunks} chunks per stream, no delay)\n")
print("Events = SSE `data:` lines delivered to the client. CPU-us/event = the proxy's "
      "utime+stime during the run / events; events/s per core = its inverse. `check` = of 3 "
      "whole streams, how many did NOT arrive with exactly the text sent.\n")
print("| case | events/s delivered | CPU-us/event | events/s per core | streams | errors | check |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k, label in present:
    b, e, c = bench(f"{out}/{k}.tput.txt"), env(f"{out}/{k}.tput.env"), bench(f"{out}/{k}.tput-check.txt")
    print(f"| {label} | {b.get('events_per_s', '-')} | {e.get('cpu_us_per_event') or '-'} | "
          f"{e.get('events_per_core_s') or '-'} | {b.get('streams', '-')} | {b.get('errors', '-')} | "
          f"{c.get('errors', '-')} |")

print(f"\n## 3. A secret split across {secret_chunks} chunks of 3 characters\n")
print("| case | verdict | what the client received |")
print("|---|---|---|")
for k, label in present:
    try:
        raw = open(f"{out}/{k}.secret.json").read()
        j = json.loads(raw.strip().splitlines()[-1])
        got = json.dumps(j.get("content"))
    except (OSError, ValueError, IndexError):
        got = "(no answer, see the .secret.json file)"
    try:
        verdict = open(f"{out}/{k}.secret.verdict").read().strip()
    except OSError:
        verdict = "-"
    print(f"| {label} | {verdict} | `{got}` |")
if litellm_note:
    print(f"\nLiteLLM: {litellm_note}")
