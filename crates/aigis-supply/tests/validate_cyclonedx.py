"""Validates a CycloneDX 1.6 JSON document (path in argv[1]) against the official schema that
cyclonedx-python-lib ships (cyclonedx/schema/_res/bom-1.6.SNAPSHOT.schema.json, with its
SPDX and JSF sub-schemas), in strict mode. Exit 0 valid, 1 invalid (errors printed)."""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
if error is not None:
    data = getattr(error, "data", None)
    where = "/".join(str(p) for p in getattr(data, "absolute_path", []))
    print(f"invalid at /{where}: {getattr(data, 'message', error)}")
    sys.exit(1)
print("valid CycloneDX 1.6")
