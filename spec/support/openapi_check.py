#!/usr/bin/env python3
"""Check observed HTTP exchanges against an OpenAPI 3.1 document.

Usage: python3 spec/support/openapi_check.py OPENAPI.yaml OBSERVED.json [BUNDLE]

OBSERVED.json is a list of {"method", "path" (the concrete path, without query),
"status", "headers" (lower-case names), "raw" (the body text)} written by
spec/02-integration/api_contract_spec.lua. For each exchange this checks that:
  - the path and method are documented (the template is found by matching);
  - the status is documented for that operation;
  - the required response headers are present and match their schema;
  - a JSON body validates against the response schema.
It also reports documented operations that no exchange exercised, among those of BUNDLE
(an operation's `x-bundle`, "api" when absent; BUNDLE defaults to "api").
Validation uses jsonschema (Draft 2020-12, as OpenAPI 3.1) when installed, else a
small built-in validator covering the keywords the document uses. Needs PyYAML.
Prints one line per problem and exits 1 if there was any.

Usage: python3 spec/support/openapi_check.py --schema NAME OPENAPI.yaml BODIES.json
checks instead that each {"where", "raw", "content_type"} of BODIES.json is a JSON
body of that Content-Type valid against components/schemas/NAME (the server's
own errors, which answer on paths the document does not list).
"""
import json
import re
import sys

import yaml

try:
    import jsonschema
except ImportError:  # pragma: no cover - fallback below
    jsonschema = None


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        node = pointer(doc, node["$ref"])
    return node


def pointer(doc, ref):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def mini_validate(doc, schema, value, where, errors):
    """A small JSON Schema subset: enough for this document."""
    if "$ref" in schema:
        mini_validate(doc, pointer(doc, schema["$ref"]), value, where, errors)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            errors.append(f"{where}: {value!r:.60} is not of type {types}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r:.60} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 60):
            errors.append(f"{where}: length {len(value)} out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r:.60} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing {name}")
        props = schema.get("properties", {})
        for name, item in value.items():
            if name in props:
                mini_validate(doc, props[name], item, f"{where}.{name}", errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected property {name}")
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                mini_validate(doc, schema["items"], item, f"{where}[{i}]", errors)
        if len(value) > schema.get("maxItems", 1 << 60) or len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: {len(value)} items out of range")
    for sub in schema.get("allOf", []):
        mini_validate(doc, sub, value, where, errors)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            ok = 0
            for sub in schema[key]:
                e = []
                mini_validate(doc, sub, value, where, e)
                ok += not e
            if ok == 0 or (key == "oneOf" and ok > 1):
                errors.append(f"{where}: {key} matched {ok} schemas")


def validate(doc, schema, value, where):
    if jsonschema is not None:
        root = dict(schema)
        root["components"] = doc.get("components", {})
        cls = getattr(jsonschema, "Draft202012Validator", None) or jsonschema.Draft7Validator
        return [f"{where}{'.' + '.'.join(map(str, e.absolute_path)) if e.absolute_path else ''}: {e.message[:200]}"
                for e in cls(root).iter_errors(value)]
    errors = []
    mini_validate(doc, schema, value, where, errors)
    return errors


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def check_schema(name, doc_path, bodies_path):
    with open(doc_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(bodies_path, encoding="utf-8") as f:
        bodies = json.load(f)
    schema = {"$ref": f"#/components/schemas/{name}"}
    problems = []
    for ex in bodies:
        where = ex["where"]
        ctype = (ex.get("content_type") or "").split(";")[0].strip()
        if ctype != "application/json":
            problems.append(f"{where}: content-type {ctype!r}, not application/json")
        try:
            body = json.loads(ex.get("raw") or "")
        except ValueError:
            problems.append(f"{where}: body is not JSON: {(ex.get('raw') or '')[:80]!r}")
            continue
        problems += validate(doc, schema, body, f"{where}: body")
    for p in problems:
        print(p)
    print(f"schema check ({name}): {len(bodies)} bodies, {len(problems)} problems"
          f" (validator: {'jsonschema' if jsonschema else 'built-in'})")
    return 1 if problems else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--schema":
        return check_schema(argv[2], argv[3], argv[4])
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(argv[2], encoding="utf-8") as f:
        observed = json.load(f)
    if not str(doc.get("openapi", "")).startswith("3.1"):
        print("document: openapi is not 3.1")
        return 1
    try:
        from openapi_spec_validator import validate as validate_document
    except ImportError:
        validate_document = None
    problems = []
    if validate_document is not None:
        try:
            validate_document(doc)
        except Exception as e:  # noqa: BLE001 - report any failure of the document
            problems.append(f"document: {str(e).splitlines()[0][:300]}")
    bundle = argv[3] if len(argv) == 4 else "api"
    routes = [(template_regex(t), t, ops) for t, ops in doc["paths"].items()]
    # Literal templates first so /api/tasks/bulk is not taken for /api/tasks/{id}.
    routes.sort(key=lambda r: r[1].count("{"))
    seen = set()
    for ex in observed:
        method, path, status = ex["method"].lower(), ex["path"], str(ex["status"])
        where = f"{ex['method']} {path} -> {status}"
        match = next(((t, ops) for rx, t, ops in routes if rx.match(path) and method in ops), None)
        if not match:
            problems.append(f"{where}: route not documented")
            continue
        template, ops = match
        seen.add((method, template))
        op = ops[method]
        if status not in op["responses"]:
            problems.append(f"{where}: status not documented for {method.upper()} {template}")
            continue
        resp = resolve(doc, op["responses"][status])
        headers = {k.lower(): v for k, v in (ex.get("headers") or {}).items()}
        for name, h in (resp.get("headers") or {}).items():
            h = resolve(doc, h)
            value = headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    problems.append(f"{where}: missing header {name}")
                continue
            problems += validate(doc, h.get("schema", {}), value, f"{where}: header {name}")
        content = resp.get("content")
        raw = ex.get("raw") or ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            problems.append(f"{where}: body is not JSON: {raw[:80]!r}")
            continue
        if content:
            ctype = (headers.get("content-type") or "").split(";")[0].strip()
            if ctype not in content:
                problems.append(f"{where}: content-type {ctype!r} not documented")
                continue
            problems += validate(doc, content[ctype].get("schema", {}), body, f"{where}: body")
        elif raw:
            problems.append(f"{where}: a body where none is documented")
    for template, ops in doc["paths"].items():
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete") and (method, template) not in seen \
                    and ops[method].get("x-bundle", "api") == bundle:
                problems.append(f"{method.upper()} {template}: documented but never exercised")
    for p in problems:
        print(p)
    print(f"openapi check: {len(observed)} exchanges, {len(problems)} problems"
          f" (validator: {'jsonschema' if jsonschema else 'built-in'})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
