"""Checks a run.json against docs/run.schema.json with the standard library only (the subset of
JSON Schema that file uses: type, const, enum, required, properties, items).

Usage: python3 reference/check_run_json.py RUN_JSON [SCHEMA]     exit 0 valid, 1 not, 2 usage
"""
import json
import os
import sys

TYPES = {"object": dict, "array": list, "string": str, "null": type(None), "boolean": bool}


def is_type(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def check(v, s, where, errors):
    if "const" in s and v != s["const"]:
        errors.append("%s = %r: must be %r" % (where, v, s["const"]))
    if "enum" in s and v not in s["enum"]:
        errors.append("%s = %r: must be one of %r" % (where, v, s["enum"]))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(is_type(v, t) for t in types):
            errors.append("%s = %r: must be of type %s" % (where, v, " or ".join(types)))
            return
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errors.append("%s: missing key %r" % (where, k))
        for k, sub in s.get("properties", {}).items():
            if k in v:
                check(v[k], sub, where + "." + k, errors)
    if isinstance(v, list) and "items" in s:
        for i, item in enumerate(v):
            check(item, s["items"], "%s[%d]" % (where, i), errors)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    schema_path = argv[2] if len(argv) == 3 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "run.schema.json")
    try:
        with open(argv[1]) as f:
            doc = json.load(f)
        with open(schema_path) as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        print("check_run_json.py: %s" % e)
        return 1
    errors = []
    check(doc, schema, "run", errors)
    for e in errors:
        print("check_run_json.py: %s: %s" % (argv[1], e))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
