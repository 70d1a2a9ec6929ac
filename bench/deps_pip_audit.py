#!/usr/bin/env python3
"""Run pip-audit against a local stand-in for the OSV query API, fed from the shared PyPA
advisory snapshot, and compare its findings with `aigis deps` on the same requirements files.

pip-audit cannot reach its vulnerability services here (the machine has no network beyond
package registries; PyPI's JSON API is not served either, so `pip-audit -s pypi` skips every
package and exits 0). What pip-audit itself does after the service answers is kept as is:
requirement parsing (`-r`, `--no-deps`), name canonicalisation, withdrawn filtering, alias
grouping, fix versions. What the OSV *server* does (which records affect name@version) is
replaced by `affected()` below: the OSV schema's evaluation algorithm with `packaging.version`
(PyPA's reference PEP 440 implementation), independent of aigis's Rust code (pep440_rs).

Usage: bench/deps_pip_audit.py AIGIS_BIN OSV_PYPA_DIR (REQUIREMENTS... | --synth N)
(in a venv with pip-audit==2.10.1 and pyyaml==6.0.3; never the project's test venv).
`--synth N` writes N requirements files that pin, for every PyPA package, versions spread over
the range boundaries its advisories name, and compares on those.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


def load(pypa: Path):
    by_name = {}
    for path in pypa.rglob("*.yaml"):
        record = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # strings, as OSV means them
        for affected in record.get("affected") or []:
            pkg = affected.get("package") or {}
            if pkg.get("ecosystem") == "PyPI":
                by_name.setdefault(canonicalize_name(pkg["name"]), []).append(record)
    return by_name


def parse(v):
    try:
        return Version(str(v))
    except InvalidVersion:
        return None


def in_range(events, version):
    parsed = []
    for event in events:
        (kind, value), = event.items()
        if kind == "introduced" and str(value) == "0":
            parsed.append((None, 0, kind))
            continue
        pv = parse(value)
        if pv is not None and kind in ("introduced", "fixed", "last_affected"):
            parsed.append((pv, {"introduced": 0, "last_affected": 1, "fixed": 2}[kind], kind))
    parsed.sort(key=lambda e: (e[0] is not None, e[0] or Version("0"), e[1]))
    hit = False
    for at, _, kind in parsed:
        if kind == "introduced" and (at is None or at <= version):
            hit = True
        elif kind == "fixed" and at <= version:
            hit = False
        elif kind == "last_affected" and at < version:
            hit = False
    return hit


def affected(record, name, version):
    pv = parse(version)
    for entry in record.get("affected") or []:
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != "PyPI" or canonicalize_name(pkg.get("name", "")) != name:
            continue
        listed = [parse(v) for v in entry.get("versions") or []]
        if pv is not None and pv in listed:
            return True
        for r in entry.get("ranges") or []:
            if r.get("type") == "ECOSYSTEM" and pv is not None and in_range(r["events"], pv):
                return True
    return False


def synthesise(db, count, out_dir):
    """`count` requirements files pinning, per package, versions at and around every range
    boundary the advisories name (introduced, fixed, last_affected, listed versions)."""
    per_package = {}
    for name, records in db.items():
        seen = set()
        for record in records:
            for entry in record.get("affected") or []:
                for r in entry.get("ranges") or []:
                    if r.get("type") != "ECOSYSTEM":
                        continue
                    for event in r["events"]:
                        for value in event.values():
                            if parse(value) is not None and str(value) != "0":
                                seen.add(str(value))
                for v in (entry.get("versions") or [])[::7]:
                    if parse(v) is not None:
                        seen.add(str(v))
        per_package[name] = sorted(seen, key=parse)
    files = []
    for k in range(count):
        lines = [f"{name}=={versions[k * len(versions) // count]}"
                 for name, versions in sorted(per_package.items()) if versions]
        path = Path(out_dir) / f"requirements-synth-{k}.txt"
        path.write_text("\n".join(lines) + "\n")
        files.append(str(path))
    return files


def main():
    aigis, pypa, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    db = load(pypa)
    if files[:1] == ["--synth"]:
        files = synthesise(db, int(files[1]), tempfile.mkdtemp())

    class Answer:
        def __init__(self, body):
            self.body = body

        def raise_for_status(self):
            pass

        def json(self):
            return self.body

    def post(self, url, data=None, **_):
        query = json.loads(data)
        name, version = query["package"]["name"], query["version"]
        vulns = [r for r in db.get(name, []) if affected(r, name, version)]
        # YAML dates become datetime objects; the API sends strings.
        return Answer({"vulns": json.loads(json.dumps(vulns, default=str))} if vulns else {})

    requests.Session.post = post
    from pip_audit._cli import audit

    dbdir = tempfile.mkdtemp()
    subprocess.run([aigis, "deps", "db", "import", str(pypa), "--db", dbdir], check=True,
                   capture_output=True)
    rows = []
    for f in files:
        out = tempfile.mktemp(suffix=".json")
        sys.argv = ["pip-audit", "-r", f, "--no-deps", "--disable-pip", "-s", "osv",
                    "-f", "json", "-o", out, "--progress-spinner", "off"]
        try:
            audit()
        except SystemExit:
            pass
        pa = json.load(open(out))
        norm = lambda v: str(parse(v) or v)  # noqa: E731 - versions compared in normal form
        pa_ids = {(d["name"], norm(d["version"]), v["id"]): v for d in pa["dependencies"]
                  for v in d.get("vulns", [])}
        res = subprocess.run([aigis, "deps", f, "--db", dbdir, "--format", "json",
                              "--no-typosquat"], capture_output=True, text=True)
        report = json.loads(res.stdout)
        ai_ids = {}
        for finding in report["findings"]:
            p = finding.get("properties", {})
            if "advisories" not in p or finding["rule_id"] not in ("AIG-DEPS-001", "AIG-DEPS-002"):
                continue
            ids = p["advisories"].split(",")
            ai_ids[(canonicalize_name(p["package"]), norm(p["installed_version"]), ids[0])] = (ids, p)
        # pip-audit reports one row per record id; aigis merges records sharing aliases.
        pa_keys = set(pa_ids)
        ai_covered = set()
        for (name, version, first), (ids, _) in ai_ids.items():
            for i in ids:
                ai_covered.add((name, version, i))
        only_pa = sorted(k for k in pa_keys if k not in ai_covered)
        only_ai = sorted(k for k in ai_ids if not any((k[0], k[1], i) in pa_keys for i in ai_ids[k][0]))
        fix_diff = []
        for k, v in pa_ids.items():
            for key, (ids, p) in ai_ids.items():
                if key[:2] == k[:2] and k[2] in ids:
                    pa_fix = sorted((Version(x) for x in v.get("fix_versions", [])))
                    inst = Version(k[1])
                    pa_next = next((str(x) for x in pa_fix if x > inst), None)
                    ours = p.get("fixed_version")
                    if pa_next != (norm(ours) if ours else None):
                        fix_diff.append((k, pa_next, p.get("fixed_version")))
        rows.append({
            "file": f, "pip_audit_findings": len(pa_keys), "aigis_findings": len(ai_ids),
            "aigis_ids_covered": len(ai_covered), "only_pip_audit": only_pa,
            "only_aigis": only_ai, "fix_version_differences": fix_diff,
            "pip_audit_skipped": [d["name"] for d in pa["dependencies"] if "skip_reason" in d],
        })
    json.dump(rows, sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
