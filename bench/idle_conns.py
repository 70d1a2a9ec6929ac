#!/usr/bin/env python3
"""Hold many idle client connections open to a server and read the server's RSS.

Used by bench/gateway.sh for "aigis RSS at 1,000 idle connections". Standard library only.

Phase 1 opens --count TCP connections and sends nothing; phase 2 sends the first line and one
header of a POST on each (a client stalled mid-request, so the server has a parse buffer per
connection). After each phase it waits --settle seconds and reads VmRSS of --pid (and of every
pid in --extra-pids, summed) from /proc. It then counts how many connections the server still
holds open and prints one "IDLE k=v ..." line.
"""

import argparse
import resource
import socket
import sys
import time


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def still_open(socks):
    n = 0
    for s in socks:
        try:
            data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if data:  # the server answered (e.g. 408): it is about to close
                continue
        except BlockingIOError:
            n += 1  # nothing to read and not closed: still open
        except OSError:
            pass
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--pid", type=int, required=True, help="server process whose RSS to read")
    ap.add_argument("--settle", type=float, default=1.5)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit(f"idle_conns: need {want} open files, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    pids = [a.pid]
    base = rss_kb(pids)
    socks, failed = [], 0
    t0 = time.monotonic()
    for _ in range(a.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((a.host, a.port))
            s.settimeout(None)  # blocking again, so MSG_DONTWAIT peeks never wait
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    open_s = time.monotonic() - t0
    time.sleep(a.settle)
    silent = rss_kb(pids)
    silent_open = still_open(socks)

    partial = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for s in socks:
        try:
            s.sendall(partial)
        except OSError:
            pass
    time.sleep(a.settle)
    part = rss_kb(pids)
    part_open = still_open(socks)

    for s in socks:
        s.close()
    print(
        f"IDLE count={a.count} opened={len(socks)} connect_failed={failed} open_seconds={open_s:.2f} "
        f"baseline_kb={base} silent_kb={silent} silent_still_open={silent_open} "
        f"partial_kb={part} partial_still_open={part_open}"
    )


if __name__ == "__main__":
    main()
