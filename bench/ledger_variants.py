#!/usr/bin/env python3
"""Gateway throughput with the audit ledger on against off, in short alternating bursts (issue 7).

    python3 bench/ledger_variants.py [--rounds N] [--burst S] [--setup bare|quickstart] [--out FILE] [VARIANT ...]

A VARIANT is NAME=BINDIR or NAME=BINDIR:TOML, a gateway recording to a `file:` store with the
release build in BINDIR (holding `aigis` and `aigis-mock-upstream`) and, optionally, TOML lines
added to its `[ledger]` section (`'commit_interval = "2ms"'`). With none, one variant `on`
with the build in $CARGO_TARGET_DIR/release (built if missing). A gateway without a ledger
(`off`, the first variant's build) is the reference.

`--setup` picks what else the gateways do: `bare` (the default) proxies with no identity, no
policy and the guard off, so recording weighs the most it can against the rest; `quickstart`
adds what the quick start turns on (an API key on every request, the `builtin:quickstart` Cedar
policies, the `balanced` guard profile), the same in every gateway.

All gateways run at once on core 1 with one mock upstream; `wrk` (core 0) loads one at a time
for S seconds (default 2), every gateway once per round, in an order that rotates from round to
round. Each variant's ratio in a round compares bursts a few seconds apart, so the drift of a
shared VM's speed, which moves 10 s runs by ±30% within minutes, mostly cancels. Per burst it
also reads the CPU time (/proc) of the gateway's request threads, its ledger writer thread and
the mock, so the cost of recording is split into its parts, in CPU-µs per request.

Prints each round, then per variant: the median ratio with quartiles, the geometric mean with a
bootstrap 95% interval, and the median CPU-µs per request by part. Everything runs at SCHED_RR
priority 50: stop other work on the machine first. A measurement, never a CI gate.
"""
import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RT = ["chrt", "-r", "50"]
MOCK_PORT = 18521


def gateway_config(port: int, admin: int, ledger: str | None, keys: Path | None) -> str:
    """A gateway in front of the mock; with `keys` (an API key store), the quick start's zero
    trust and guard, else none of them."""
    text = (
        f'[server]\nlisten = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin}"\n\n'
        f'[[upstreams]]\nname = "mock"\nkind = "openai"\nbase_url = "http://127.0.0.1:{MOCK_PORT}/v1"\n\n'
        '[[routes]]\nname = "bench"\nmodels = ["mock*"]\nupstream = "mock"\n\n'
    )
    if keys is None:
        text += '[guard]\nprofile = "off"\n'
    else:
        text += (
            f'[identity.api_keys]\nstore = "sqlite:{keys}"\n\n'
            '[policy]\npolicies = ["builtin:quickstart"]\n\n[guard]\nprofile = "balanced"\n'
        )
    return text if ledger is None else text + "\n[ledger]\n" + ledger + "\n"


def cpu_ticks(pid: int) -> tuple[int, int]:
    """CPU ticks (user + system) of the process's ledger writer thread and of its other threads."""
    writer = other = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # a thread that just ended
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        if comm.startswith("aigis-ledger"):
            writer += ticks
        else:
            other += ticks
    return writer, other


def wait_healthy(admin: int) -> None:
    for _ in range(100):
        ok = subprocess.run(
            ["curl", "-sf", f"http://127.0.0.1:{admin}/healthz"], capture_output=True
        ).returncode == 0
        if ok:
            return
        time.sleep(0.1)
    sys.exit(f"the gateway on admin port {admin} did not become healthy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--burst", type=int, default=2, help="seconds of load per gateway and round")
    ap.add_argument("--setup", choices=["bare", "quickstart"], default="bare",
                    help="what else every gateway does (see above)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--perf", type=Path, metavar="FILE",
                    help="also `perf record` every gateway and the mock through the measured rounds into FILE")
    ap.add_argument("variants", nargs="*", metavar="NAME=BINDIR[:TOML]")
    args = ap.parse_args()
    if args.rounds < 1 or args.burst < 1:
        ap.error("--rounds and --burst must be positive")
    if not args.variants:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
        if not (target / "aigis").exists() or not (target / "aigis-mock-upstream").exists():
            subprocess.run(
                ["cargo", "build", "--release", "--locked", "-q", "-p", "aigis-cli", "-p", "aigis-mock-upstream"],
                cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(target.parent)},
            )
        args.variants = [f"on={target}"]
    variants = []
    for spec in args.variants:
        name, sep, rest = spec.partition("=")
        bindir, _, toml = rest.partition(":")
        if not sep or not name or name == "off" or not Path(bindir, "aigis").exists():
            ap.error(f"{spec}: expected NAME=BINDIR[:TOML] with BINDIR/aigis present (NAME not 'off')")
        variants.append((name, Path(bindir), toml))
    if any(subprocess.run(["which", t], capture_output=True).returncode for t in ("wrk", "chrt", "taskset")):
        sys.exit("needs wrk (apt-get install wrk), chrt and taskset")

    out = open(args.out, "w") if args.out else None

    def say(line: str) -> None:
        print(line, flush=True)
        if out:
            print(line, file=out, flush=True)

    work = Path(tempfile.mkdtemp())
    procs = []
    try:
        first = variants[0][1]
        procs.append(subprocess.Popen(
            RT + ["taskset", "-c", "1", first / "aigis-mock-upstream", "--listen", f"127.0.0.1:{MOCK_PORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        mock = procs[0].pid
        keys = None
        if args.setup == "quickstart":
            keys = work / "keys.db"
            (work / "keys.toml").write_text(gateway_config(18529, 18528, None, keys))
            created = subprocess.run(
                [first / "aigis", "keys", "create", "--config", work / "keys.toml", "--name", "bench",
                 "--format", "json"],
                check=True, capture_output=True, text=True,
            )
            os.environ["BENCH_AUTH"] = json.loads(created.stdout)["key"]
        gateways = {}  # name -> (port, pid)
        for i, (name, bindir, toml) in enumerate([("off", first, None)] + variants):
            port, admin = 18530 + 10 * i, 18531 + 10 * i
            ledger = None
            if toml is not None:
                key = work / f"{name}.key"
                subprocess.run(
                    [bindir / "aigis", "audit", "init", "--key", key, "--origin", "bench.aigis/ledger"],
                    check=True, capture_output=True,
                )
                ledger = f'store = "file:{work}/{name}.ledger"\nsigning_key = "file:{key}"\n{toml}'
            (work / f"{name}.toml").write_text(gateway_config(port, admin, ledger, keys))
            log = open(work / f"{name}.log", "w")
            procs.append(subprocess.Popen(
                RT + ["taskset", "-c", "1", bindir / "aigis", "gateway", "--config", work / f"{name}.toml",
                      "--log-format", "json"],
                stdout=subprocess.DEVNULL, stderr=log,
            ))
            wait_healthy(admin)
            gateways[name] = (port, procs[-1].pid)
        hz = os.sysconf("SC_CLK_TCK")

        def burst(name: str) -> dict:
            port, pid = gateways[name]
            before = cpu_ticks(pid), cpu_ticks(mock)[1]
            report = subprocess.run(
                RT + ["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{args.burst}s", "-s",
                      ROOT / "bench/wrk_post.lua", f"http://127.0.0.1:{port}/v1/chat/completions"],
                capture_output=True, text=True,
            ).stdout
            after = cpu_ticks(pid), cpu_ticks(mock)[1]
            found = re.search(r"requests=(\d+) .*rps=([\d.]+).* status_errors=(\d+)", report)
            if not found or int(found.group(1)) == 0:
                sys.exit(f"{name}: wrk reported no requests (did a gateway or the mock stop? logs in {work})")
            if int(found.group(3)):
                sys.exit(f"{name}: {found.group(3)} responses were not 2xx (logs in {work})")
            n = int(found.group(1))
            us = lambda ticks: ticks / hz * 1e6 / n
            return {
                "rps": float(found.group(2)),
                "requests": us(after[0][1] - before[0][1]),
                "writer": us(after[0][0] - before[0][0]),
                "mock": us(after[1] - before[1]),
            }

        names = list(gateways)
        for name in names:  # warm-up
            burst(name)
        say(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} rounds={args.rounds} burst={args.burst}s setup={args.setup} "
            + " ".join(f"{n}={b}:{t}" for n, b, t in variants))
        perf = None
        if args.perf:
            pids = ",".join(str(pid) for pid in [mock] + [pid for _, pid in gateways.values()])
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-o", args.perf, "-p", pids],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        rounds = []
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]  # with two: ABBA
            got = {}
            for name in order:
                got[name] = burst(name)
                time.sleep(0.2)
            rounds.append(got)
            say(f"round {r + 1}: " + " ".join(
                f"{n}={got[n]['rps']:.0f}" + ("" if n == "off" else f"({got[n]['rps'] / got['off']['rps']:.3f})")
                for n in names))
        if perf:
            perf.send_signal(2)
            perf.wait()
            say("perf: pids " + " ".join(f"{n}={gateways[n][1]}" for n in names) + f" mock={mock}; requests "
                + " ".join(f"{n}={round(sum(g[n]['rps'] for g in rounds) * args.burst)}" for n in names))
        say(f"ledger off: median {statistics.median(g['off']['rps'] for g in rounds):.0f} req/s "
            f"(range {min(g['off']['rps'] for g in rounds):.0f}-{max(g['off']['rps'] for g in rounds):.0f})")
        random.seed(1)
        for name in names:
            med = lambda part: statistics.median(g[name][part] for g in rounds)
            if name == "off":
                say(f"off: CPU-µs/req: request threads {med('requests'):.2f}, mock {med('mock'):.2f}")
                continue
            cpu = f"CPU-µs/req: request threads {med('requests'):.2f}, writer {med('writer'):.2f}, mock {med('mock'):.2f}"
            ratios = [g[name]["rps"] / g["off"]["rps"] for g in rounds]
            logs = [math.log(x) for x in ratios]
            boots = sorted(math.exp(statistics.fmean(random.choices(logs, k=len(logs)))) for _ in range(2000))
            q1, q2, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            say(f"{name}: ratio to off over {len(ratios)} rounds: median {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}); "
                f"geometric mean {math.exp(statistics.fmean(logs)):.3f} (95% {boots[50]:.3f}-{boots[1949]:.3f}); {cpu}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
