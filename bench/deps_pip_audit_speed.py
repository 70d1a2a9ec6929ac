#!/usr/bin/env python3
"""Speed of pip-audit against `aigis deps` on the same monorepo of requirements files.

pip-audit 2.10.1 cannot reach its vulnerability services here, so its OSV service is pointed
(`--osv-url`) at a stand-in for OSV's `POST /v1/query` on loopback: a separate process that
answers from the shared PyPA snapshot with the matcher of bench/deps_pip_audit.py
(`packaging.version`, the OSV schema's evaluation). Three timings of pip-audit, all in one
Python process that has already imported pip-audit (interpreter start-up and imports are not
counted, which favours pip-audit), one `audit()` call per file as a monorepo CI loop runs it
(pip-audit refuses several `-r` files that pin one package at different versions):

  loopback   pip-audit end to end, HTTP keep-alive to the stand-in on 127.0.0.1. The real
             service is across the internet, so this is a lower bound for the real wall time.
  minus_svc  loopback minus the time the stand-in spent answering (measured inside the
             stand-in, from request read to response written): pip-audit's own work plus its
             HTTP client and the loopback round trips.
  replay     the same audit with `requests.Session.post` answered in-process from the bodies
             the stand-in returned in the loopback pass: no service, no HTTP; what is left is
             pip-audit's own work (requirement parsing, name canonicalisation, response
             parsing, withdrawn filtering, fix versions, JSON report). Matching is then done by
             nobody, so this is a lower bound for any pip-audit setup ("resolution" only).
  replay + stand-in   pip-audit's own work plus the stand-in's matching, without any HTTP:
             "resolution + matching" with the transport taken out.

`aigis deps` (the given binary, usually a release build) scans the same files in one process
against a database imported from the same PyPA snapshot plus RustSec: parsing, resolution and
matching. Best of 3 runs. Everything runs on the CPU set the script is started with (the
benchmark pins it with `taskset -c 1`).

Usage (in a venv with pip-audit==2.10.1 and pyyaml==6.0.3; never the project's test venv):
  deps_pip_audit_speed.py AIGIS_BIN OSV_DIR FILES OUT_DIR
    OSV_DIR holds pypa/vulns and rustsec/crates (../shared/data/osv); FILES requirements files
    to generate (a tree of FILES project folders, 10-60 pins each, fixed seed).
  deps_pip_audit_speed.py serve PYPA_DIR PORT_FILE   (the stand-in; started by the above)
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deps_pip_audit import affected, load, parse  # noqa: E402


def serve(pypa, port_file):
    db = load(Path(pypa))
    # YAML dates become datetime objects; the API sends strings.
    db = {name: [json.loads(json.dumps(r, default=str)) for r in records]
          for name, records in db.items()}
    stats = {"requests": 0, "seconds": 0.0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as with api.osv.dev
        # Headers and body in one segment, no Nagle: otherwise each answer waits ~40 ms for
        # the client's delayed ACK, a cost of this stand-in and not of pip-audit.
        disable_nagle_algorithm = True

        def log_message(self, *_):
            pass

        def reply(self, body):
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self.wfile.write(head + body)
            self.wfile.flush()

        def do_GET(self):  # noqa: N802 - http.server's naming
            self.reply(json.dumps(stats).encode())

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            start = time.perf_counter()
            if self.path == "/reset":
                stats.update(requests=0, seconds=0.0)
                self.reply(b"{}")
                return
            query = json.loads(raw)
            name, version = query["package"]["name"], query["version"]
            vulns = [r for r in db.get(name, []) if affected(r, name, version)]
            self.reply(json.dumps({"vulns": vulns} if vulns else {}).encode())
            with lock:
                stats["requests"] += 1
                stats["seconds"] += time.perf_counter() - start

    # A thread per connection: each pip-audit run opens its own keep-alive connection while
    # the previous run's may still be open.
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def tree(db, count, out_dir, seed=20261129):
    """`count` project folders with a requirements.txt of 10-60 pins each: PyPA package names,
    versions drawn from the bounds and listed versions of their advisories (so most pins are
    near a range edge: some affected, some not)."""
    versions = {}
    for name, records in db.items():
        seen = set()
        for record in records:
            for entry in record.get("affected") or []:
                for r in entry.get("ranges") or []:
                    for event in r.get("events") or []:
                        for value in event.values():
                            if str(value) != "0" and parse(value) is not None:
                                seen.add(str(value))
                for v in entry.get("versions") or []:
                    if parse(v) is not None:
                        seen.add(str(v))
        if seen:
            versions[name] = sorted(seen)
    names = sorted(versions)
    rng = random.Random(seed)
    files = []
    for k in range(count):
        picked = rng.sample(names, rng.randint(10, 60))
        lines = [f"{n}=={rng.choice(versions[n])}\n" for n in sorted(picked)]
        path = Path(out_dir) / f"project-{k:03d}" / "requirements.txt"
        path.parent.mkdir(parents=True)
        path.write_text("".join(lines))
        files.append(str(path))
    return files


def run_pip_audit(files, url, cache_dir, reports):
    from pip_audit._cli import audit

    per_file = []
    for i, f in enumerate(files):
        out = os.path.join(reports, f"{i:03d}.json")
        sys.argv = ["pip-audit", "-r", f, "--no-deps", "--disable-pip", "-s", "osv",
                    "--osv-url", url, "--cache-dir", cache_dir, "-f", "json", "-o", out,
                    "--progress-spinner", "off"]
        start = time.perf_counter()
        try:
            audit()
        except SystemExit:
            pass
        per_file.append(time.perf_counter() - start)
    rows = 0
    for i in range(len(files)):
        report = json.load(open(os.path.join(reports, f"{i:03d}.json")))
        rows += sum(len(d.get("vulns", [])) for d in report["dependencies"])
    return sum(per_file), rows


def stand_in(pypa, work):
    port_file = os.path.join(work, "port")
    proc = subprocess.Popen([sys.executable, __file__, "serve", str(pypa), port_file])
    deadline = time.time() + 300
    while not os.path.exists(port_file) or not Path(port_file).read_text():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit("the OSV stand-in did not start")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{Path(port_file).read_text()}"


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
        return
    import requests

    aigis, osv, count, out_dir = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    load_start = os.getloadavg()
    pypa, rustsec = osv / "pypa" / "vulns", osv / "rustsec" / "crates"
    work = tempfile.mkdtemp()
    files = tree(load(pypa), count, os.path.join(work, "tree"))
    pins = sum(len(Path(f).read_text().splitlines()) for f in files)
    distinct = len({line for f in files for line in Path(f).read_text().splitlines()})
    dbdir = os.path.join(work, "db")
    subprocess.run([aigis, "deps", "db", "import", str(pypa), str(rustsec), "--db", dbdir],
                   check=True, capture_output=True)

    proc, base = stand_in(pypa, work)
    try:
        session = requests.Session()
        # Warm-up: one file end to end, so imports and first connections are not timed.
        run_pip_audit(files[:1], base + "/v1/query", os.path.join(work, "cache"),
                      tempfile.mkdtemp())
        session.post(base + "/reset", data="{}")
        answers = {}
        original = requests.Session.post

        def recording(self, url, data=None, **kw):
            response = original(self, url, data=data, **kw)
            answers[data] = response.content
            return response

        requests.Session.post = recording
        loopback, pa_rows = run_pip_audit(files, base + "/v1/query",
                                          os.path.join(work, "cache"), tempfile.mkdtemp())
        requests.Session.post = original
        svc = session.get(base + "/").json()
    finally:
        proc.terminate()
        proc.wait()

    class Answer:
        def __init__(self, body):
            self.content = body

        def raise_for_status(self):
            pass

        def json(self):
            return json.loads(self.content)

    requests.Session.post = lambda self, url, data=None, **_: Answer(answers[data])
    replay, replay_rows = run_pip_audit(files, "http://replay.invalid/v1/query",
                                        os.path.join(work, "cache"), tempfile.mkdtemp())
    requests.Session.post = original

    runs = []
    for _ in range(3):
        start = time.perf_counter()
        res = subprocess.run([aigis, "deps", *files, "--db", dbdir, "--format", "json",
                              "--no-typosquat", "--fail-on", "critical"],
                             capture_output=True, text=True)
        runs.append(time.perf_counter() - start)
    report = json.loads(res.stdout)
    ai_findings = sum(1 for f in report["findings"]
                      if f["rule_id"] in ("AIG-DEPS-001", "AIG-DEPS-002"))
    ai_ids = sum(len(f["properties"]["advisories"].split(",")) for f in report["findings"]
                 if f["rule_id"] in ("AIG-DEPS-001", "AIG-DEPS-002"))
    best = min(runs)
    own_plus_matching = replay + svc["seconds"]
    result = {
        "command": " ".join(["bench/deps_pip_audit_speed.py", aigis, str(osv), str(count), out_dir]),
        "cpus": sorted(os.sched_getaffinity(0)),
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "files": len(files), "pins": pins, "distinct_pins": distinct,
        "stand_in_requests": svc["requests"], "stand_in_seconds": round(svc["seconds"], 3),
        "pip_audit_loopback_seconds": round(loopback, 3),
        "pip_audit_minus_stand_in_seconds": round(loopback - svc["seconds"], 3),
        "pip_audit_replay_seconds": round(replay, 3),
        "pip_audit_rows": pa_rows, "pip_audit_replay_rows": replay_rows,
        "aigis_seconds_runs": [round(r, 3) for r in runs], "aigis_best_seconds": round(best, 3),
        "aigis_stderr_summary": [line for line in res.stderr.splitlines()
                                 if line.startswith("scanned")],
        "aigis_findings": ai_findings, "aigis_advisory_ids": ai_ids,
        "ratio_loopback": round(loopback / best, 1),
        "ratio_minus_stand_in": round((loopback - svc["seconds"]) / best, 1),
        "ratio_replay": round(replay / best, 1),
        "pip_audit_replay_plus_stand_in_seconds": round(own_plus_matching, 3),
        "ratio_replay_plus_stand_in": round(own_plus_matching / best, 1),
    }
    os.makedirs(out_dir, exist_ok=True)
    Path(out_dir, "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
