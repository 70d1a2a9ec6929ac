#!/usr/bin/env python3
"""Synthesises inputs for bench/deps.sh (stdlib only, fixed seed, so runs are comparable).

  gen_deps.py records N OUT.zip    N OSV JSON records (PyPI, crates.io, npm) in a deflate zip,
                                   shaped like real ones: ids, aliases, a summary and details
                                   paragraph, references, ECOSYSTEM/SEMVER ranges with one to
                                   three intervals, and listed versions for the PyPI ones.
  gen_deps.py tree N DIR [DB_NAMES] a monorepo: N project folders, each with one lockfile
                                   (requirements.txt, poetry.lock, uv.lock, Cargo.lock,
                                   package-lock.json or yarn.lock) of 10-60 packages. Names are
                                   drawn from DB_NAMES (a file of `ecosystem<TAB>name` lines,
                                   e.g. the packages of the shared PyPA/RustSec data) so a share
                                   of them has advisories; versions are random.
"""
import json
import random
import sys
import zipfile
from pathlib import Path

WORDS = ("buffer overflow in parser allows remote attackers to cause a denial of service via "
         "crafted input when processing untrusted data which leads to arbitrary code execution "
         "memory corruption path traversal in archive extraction cross site scripting").split()


def version(rng, eco):
    v = f"{rng.randint(0, 5)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    return v


def record(rng, n):
    eco = rng.choice(["PyPI", "PyPI", "crates.io", "npm"])
    name = f"pkg-{rng.randint(0, 20000)}"
    intervals = []
    for _ in range(rng.randint(1, 3)):
        a, b = sorted([version(rng, eco), version(rng, eco)], key=lambda s: tuple(map(int, s.split("."))))
        intervals += [{"introduced": a}, {"fixed": b}]
    affected = {"package": {"ecosystem": eco, "name": name, "purl": f"pkg:x/{name}"},
                "ranges": [{"type": "SEMVER" if eco != "PyPI" else "ECOSYSTEM", "events": intervals}]}
    if eco == "PyPI":
        affected["versions"] = [version(rng, eco) for _ in range(rng.randint(5, 40))]
    prefix = {"PyPI": "PYSEC", "crates.io": "RUSTSEC", "npm": "GHSA"}[eco]
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120)))
    return {
        "id": f"{prefix}-2099-{n}",
        "modified": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00Z",
        "published": "2025-01-01T00:00:00Z",
        "aliases": [f"CVE-2099-{n}"],
        "summary": " ".join(rng.choice(WORDS) for _ in range(8)),
        "details": text,
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
        if rng.random() < 0.3 else [],
        "affected": [affected],
        "references": [{"type": "WEB", "url": f"https://example.invalid/advisory/{n}/{i}"}
                       for i in range(rng.randint(1, 5))],
    }


def records(count, out):
    rng = random.Random(20261129)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(count):
            z.writestr(f"rec-{n}.json", json.dumps(record(rng, n), indent=2))


LOCKS = ["requirements.txt", "poetry.lock", "uv.lock", "Cargo.lock", "package-lock.json", "yarn.lock"]


def lockfile(kind, pkgs):
    if kind == "requirements.txt":
        return "".join(f"{n}=={v}\n" for n, v in pkgs)
    if kind in ("poetry.lock", "uv.lock"):
        src = '\nsource = { registry = "https://pypi.org/simple" }' if kind == "uv.lock" else ""
        return "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"{src}\n\n' for n, v in pkgs)
    if kind == "Cargo.lock":
        return "version = 3\n\n" + "".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\n'
            f'source = "registry+https://github.com/rust-lang/crates.io-index"\n\n' for n, v in pkgs)
    if kind == "package-lock.json":
        packages = {"": {"name": "app"}}
        packages.update({f"node_modules/{n}": {"version": v} for n, v in pkgs})
        return json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}, indent=2)
    return "# yarn lockfile v1\n\n" + "".join(
        f'{n}@^{v}:\n  version "{v}"\n  resolved "https://example.invalid/{n}-{v}.tgz"\n\n'
        for n, v in pkgs)


def tree(count, out, names_file=None):
    rng = random.Random(7)
    names = {"PyPI": [], "crates.io": [], "npm": []}
    if names_file:
        for line in Path(names_file).read_text().splitlines():
            eco, _, name = line.partition("\t")
            names.setdefault(eco, []).append(name)
    for eco, fallback in (("PyPI", "py"), ("crates.io", "rs"), ("npm", "js")):
        names[eco] += [f"{fallback}-lib-{i}" for i in range(2000)]
    total = 0
    for i in range(count):
        kind = LOCKS[i % len(LOCKS)]
        eco = {"Cargo.lock": "crates.io", "package-lock.json": "npm", "yarn.lock": "npm"}.get(kind, "PyPI")
        pkgs = {rng.choice(names[eco]): f"{rng.randint(0, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 10)}"
                for _ in range(rng.randint(10, 60))}
        d = Path(out) / f"service-{i:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / kind).write_text(lockfile(kind, sorted(pkgs.items())))
        total += len(pkgs)
    print(f"{count} lockfiles, {total} packages", file=sys.stderr)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "records":
        records(int(sys.argv[2]), sys.argv[3])
    elif mode == "tree":
        tree(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
