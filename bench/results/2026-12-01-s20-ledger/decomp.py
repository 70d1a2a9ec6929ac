#!/usr/bin/env python3
"""decomp.py BINDIR PAIRS: off and on gateways side by side on core 1 with one mock; alternate
2 s wrk bursts (ABBA); per burst, CPU ticks of each gateway's request threads, its ledger thread
and the mock; prints per-request CPU-us by part and the throughput ratio."""
import os, subprocess, sys, tempfile, time, re, statistics as st
bindir, pairs = sys.argv[1], int(sys.argv[2])
burst = int(os.environ.get("BURST", "2"))
extra = os.environ.get("ON_EXTRA", "")
ROOT = "/work/main"
w = tempfile.mkdtemp()
def cfg(lp, ap, mp, ledger):
    s = f'''[server]
listen = "127.0.0.1:{lp}"
admin_listen = "127.0.0.1:{ap}"
[[upstreams]]
name = "mock"
kind = "openai"
base_url = "http://127.0.0.1:{mp}/v1"
[[routes]]
name = "bench"
models = ["mock*"]
upstream = "mock"
[guard]
profile = "off"
'''
    if ledger:
        s += f'\n[ledger]\nstore = "file:{w}/ledger"\nsigning_key = "file:{w}/ledger.key"\n{extra}\n'
    return s
open(f"{w}/off.toml", "w").write(cfg(18930, 18931, 18921, False))
open(f"{w}/on.toml", "w").write(cfg(18940, 18941, 18921, True))
subprocess.run([f"{bindir}/aigis", "audit", "init", "--key", f"{w}/ledger.key", "--origin", "bench.aigis/ledger"], capture_output=True)
rt = ["chrt", "-r", "50", "taskset", "-c", "1"]
procs = [subprocess.Popen(rt + [f"{bindir}/aigis-mock-upstream", "--listen", "127.0.0.1:18921"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
gws = {}
for mode in ("off", "on"):
    p = subprocess.Popen(rt + [f"{bindir}/aigis", "gateway", "--config", f"{w}/{mode}.toml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p); gws[mode] = p.pid
mock = procs[0].pid
time.sleep(2)
def ticks(pid):
    """(request-thread ticks, ledger-thread ticks) of pid"""
    req = led = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        v = int(f[11]) + int(f[12])
        if comm.startswith("aigis-ledger"): led += v
        else: req += v
    return req, led
def load(mode):
    port = 18930 if mode == "off" else 18940
    before = (ticks(gws[mode]), ticks(mock)[0])
    out = subprocess.run(["chrt", "-r", "50", "taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{burst}s", "-s", f"{ROOT}/bench/wrk_post.lua",
                          f"http://127.0.0.1:{port}/v1/chat/completions"], capture_output=True, text=True).stdout
    after = (ticks(gws[mode]), ticks(mock)[0])
    n = int(re.search(r"requests=(\d+)", out).group(1)); rps = float(re.search(r"rps=([\d.]+)", out).group(1))
    hz = os.sysconf("SC_CLK_TCK")
    us = lambda a, b: (b - a) / hz * 1e6 / n
    return rps, us(before[0][0], after[0][0]), us(before[0][1], after[0][1]), us(before[1], after[1])
load("off"); load("on")
perf = None
if os.environ.get("PERF"):
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-o", os.environ["PERF"], "-p", f"{gws['off']},{gws['on']},{mock}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
rows = []
for i in range(pairs):
    order = ("off", "on") if i % 2 == 0 else ("on", "off")
    r = {}
    for m in order:
        r[m] = load(m); time.sleep(0.2)
    rows.append(r)
    print(f"pair {i+1}: off {r['off'][0]:.0f} on {r['on'][0]:.0f} ratio {r['on'][0]/r['off'][0]:.3f}  "
          f"cpu-us/req off gw {r['off'][1]:.1f} mock {r['off'][3]:.1f} | on gw {r['on'][1]:.1f} writer {r['on'][2]:.1f} mock {r['on'][3]:.1f}", flush=True)
if perf:
    perf.send_signal(2); perf.wait()
print("total requests: off", round(sum(r["off"][0] for r in rows) * burst), "on", round(sum(r["on"][0] for r in rows) * burst), "pids", gws, "mock", mock)
for p in procs: p.terminate()
med = lambda k, j: st.median(r[k][j] for r in rows)
ratios = sorted(r["on"][0] / r["off"][0] for r in rows)
print(f"median ratio {st.median(ratios):.3f} (q1 {ratios[len(ratios)//4]:.3f} q3 {ratios[3*len(ratios)//4]:.3f})")
print(f"median cpu-us/req: off gw {med('off',1):.2f} mock {med('off',3):.2f}; on gw {med('on',1):.2f} writer {med('on',2):.2f} mock {med('on',3):.2f}")
tot_off = [r["off"][1] + r["off"][3] for r in rows]; tot_on = [r["on"][1] + r["on"][2] + r["on"][3] for r in rows]
print(f"cpu ratio (off total / on total), median of pairs: {st.median(a/b for a,b in zip(tot_off, tot_on)):.3f}")
import math, random
logs = [math.log(x) for x in ratios]
gm = math.exp(sum(logs) / len(logs))
random.seed(1)
boots = sorted(math.exp(sum(random.choice(logs) for _ in logs) / len(logs)) for _ in range(4000))
print(f"geometric mean {gm:.3f}, bootstrap 95% {boots[100]:.3f}-{boots[3899]:.3f}, pairs {len(ratios)}")
