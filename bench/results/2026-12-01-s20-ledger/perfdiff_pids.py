#!/usr/bin/env python3
"""perfdiff_pids.py PERF.DATA OFF_PID ON_PID OFF_REQUESTS ON_REQUESTS: self CPU-µs per request by
symbol of the two gateways' main threads (perf's pid key is the thread id), on minus off."""
import collections, re, subprocess, sys
data, off, on, n_off, n_on = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
N = {off: n_off, on: n_on}
rows, tot = collections.defaultdict(dict), collections.Counter()
out = subprocess.run(["perf", "report", "-i", data, "--sort", "pid,sym", "--stdio", "-F", "sample,pid,sym"],
                     capture_output=True, text=True).stdout
for line in out.splitlines():
    m = re.match(r"\s*(\d+)\s+(\d+):(\S+)\s+\[(.)\]\s+(.*)", line)
    if m and int(m.group(2)) in N:
        pid, sym = int(m.group(2)), m.group(5).strip()
        rows[sym][pid] = rows[sym].get(pid, 0) + int(m.group(1))
        tot[pid] += int(m.group(1))
us = lambda n, pid: n / 2000 * 1e6 / N[pid]  # perf record -F 2000
print("main thread, CPU-µs/req: off %.2f on %.2f" % (us(tot[off], off), us(tot[on], on)))
diffs = sorted(((us(v.get(on, 0), on) - us(v.get(off, 0), off), s, us(v.get(off, 0), off), us(v.get(on, 0), on))
                for s, v in rows.items()), reverse=True)
for d in diffs[:30] + diffs[-8:]:
    print("%+.3f  off %.3f on %.3f  %s" % (d[0], d[2], d[3], d[1][:110]))
