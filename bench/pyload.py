#!/usr/bin/env python3
"""Fallback load generator for bench/gateway.sh when `wrk` is not installed (smoke mode).

Standard library only. N keep-alive connections (one thread each) POST the same small chat
completion as bench/wrk_post.lua for a fixed time, then print the same "BENCH k=v ..." line.
Far slower than wrk (the GIL caps it): numbers from it only show that requests succeed.
"""

import argparse
import http.client
import threading
import time
import urllib.parse

BODY = (
    b'{"model":"mock-1","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"temperature":0}'
)


def worker(url, deadline, pause, lat, errs, lock):
    u = urllib.parse.urlsplit(url)
    conn = None
    mine, bad_status, bad_sock = [], 0, 0
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            t0 = time.perf_counter()
            conn.request("POST", u.path, BODY, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            mine.append((time.perf_counter() - t0) * 1e6)
            if not 200 <= resp.status < 400:
                bad_status += 1
            if pause:
                time.sleep(pause)
        except (OSError, http.client.HTTPException):
            bad_sock += 1
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
    if conn is not None:
        conn.close()
    with lock:
        lat.extend(mine)
        errs[0] += bad_sock
        errs[1] += bad_status


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--pause-ms", type=float, default=0.0, help="wait after each response")
    a = ap.parse_args()
    lat, errs, lock = [], [0, 0], threading.Lock()
    start = time.monotonic()
    deadline = start + a.duration
    ts = [
        threading.Thread(target=worker, args=(a.url, deadline, a.pause_ms / 1000.0, lat, errs, lock))
        for _ in range(a.conns)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - start
    lat.sort()
    n = len(lat)
    print(f"pyload: {a.conns} connections, {secs:.2f}s, {n} responses")
    print(
        f"BENCH requests={n} duration_s={secs:.3f} rps={n / secs:.1f} p50_us={pct(lat, 50):.1f} "
        f"p90_us={pct(lat, 90):.1f} p99_us={pct(lat, 99):.1f} max_us={(lat[-1] if lat else 0):.1f} "
        f"socket_errors={errs[0]} status_errors={errs[1]} timeouts=0"
    )


if __name__ == "__main__":
    main()
