#!/usr/bin/python3
"""openapi_check.py -- checks HTTP exchanges against docs/openapi.json (OpenAPI 3.1).

  openapi_check.py responses DOC RECDIR   every exchange tools/record_curl.sh recorded in
                                          RECDIR: its status is documented for its operation
                                          (or is the documented 404/405 for an undocumented
                                          path/method), and its body validates against that
                                          response's schema (Debian's python3-jsonschema,
                                          Draft 2020-12, the dialect of OpenAPI 3.1)
  openapi_check.py operations DOC         prints "METHOD PATH" for every operation

Prints one line per problem and a last line "checked N responses (M without a body)";
exits 1 when there was a problem.
"""
import glob
import json
import os
import sys
from urllib.parse import urlsplit

import jsonschema
from jsonschema import Draft202012Validator, RefResolver

METHODS = ("get", "head", "post", "put", "delete", "patch", "options")


def deref(doc, obj):
    """Follows a local $ref (#/a/b) to what it names."""
    while isinstance(obj, dict) and "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def check_doc(doc):
    """The document's schemas are valid Draft 2020-12 schemas and every $ref resolves."""
    problems = []

    def walk(o, where):
        if isinstance(o, dict):
            if "$ref" in o:
                try:
                    deref(doc, o)
                except (KeyError, TypeError):
                    problems.append(f"{where}: $ref {o['$ref']} does not resolve")
            if "schema" in o and isinstance(o["schema"], dict):
                try:
                    Draft202012Validator.check_schema(o["schema"])
                except jsonschema.SchemaError as e:
                    problems.append(f"{where}/schema: {e.message}")
            for k, v in o.items():
                walk(v, f"{where}/{k}")
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, f"{where}/{i}")

    walk(doc, "#")
    for name, s in doc.get("components", {}).get("schemas", {}).items():
        try:
            Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            problems.append(f"#/components/schemas/{name}: {e.message}")
    return problems


def check_one(doc, resolver, method, path, status, ctype, body):
    """Returns a problem string, or None when the exchange fits the document."""
    item = doc["paths"].get(path)
    if item is None:
        resp = doc["components"]["responses"]["NotFound"]
        if status != "404":
            return f"{method} {path}: undocumented path answered {status}, not 404"
    elif method.lower() not in item:
        # a token-protected path checks the token before the method: its 401/403/404
        secured = [op for m, op in item.items() if m in METHODS and op.get("security")]
        if secured and status in ("401", "403", "404") and status in secured[0]["responses"]:
            resp = deref(doc, secured[0]["responses"][status])
        elif status != "405":
            return f"{method} {path}: undocumented method answered {status}, not 405"
        else:
            resp = doc["components"]["responses"]["MethodNotAllowed"]
    else:
        op = item[method.lower()]
        if status not in op["responses"]:
            return (f"{method} {path}: status {status} is not documented "
                    f"(documented: {', '.join(op['responses'])})")
        resp = deref(doc, op["responses"][status])
    if body is None or method == "HEAD":
        return None
    content = resp.get("content")
    if not content:
        return f"{method} {path} {status}: a body where the document has none" if body else None
    mt = (ctype or "").split(";")[0].strip().lower()
    if mt not in content:
        return f"{method} {path} {status}: Content-Type {ctype!r} not in {list(content)}"
    schema = content[mt].get("schema", {})
    if mt == "application/json":
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return f"{method} {path} {status}: body is not JSON: {e}"
    else:
        try:
            value = body.decode("utf-8")
        except UnicodeDecodeError as e:
            return f"{method} {path} {status}: body is not UTF-8 text: {e}"
    errors = sorted(Draft202012Validator(schema, resolver=resolver).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        return (f"{method} {path} {status}: {e.message} at "
                f"/{'/'.join(map(str, e.absolute_path))} (body {body[:200]!r})")
    return None


def responses(doc, recdir):
    resolver = RefResolver(base_uri="", referrer=doc)
    problems = check_doc(doc)
    n = nobody = 0
    for req in sorted(glob.glob(os.path.join(recdir, "*.req"))):
        stem = req[:-4]
        method, url = open(req).read().split()[:2]
        if not os.path.exists(stem + ".hdr"):
            continue  # no response (a timeout the test expected)
        lines = open(stem + ".hdr", "rb").read().decode("latin-1").splitlines()
        status_lines = [l for l in lines if l.startswith("HTTP/")]
        if not status_lines:
            continue
        status = status_lines[-1].split()[1]
        ctype = None
        for l in lines:
            if l.lower().startswith("content-type:"):
                ctype = l.split(":", 1)[1].strip()
        body = open(stem + ".body", "rb").read() if os.path.exists(stem + ".body") else None
        nobody += body is None
        n += 1
        p = check_one(doc, resolver, method, urlsplit(url).path, status, ctype, body)
        if p:
            problems.append(p)
    for p in problems:
        print(p)
    print(f"checked {n} responses ({nobody} without a body)")
    return 1 if problems or n == 0 else 0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("responses", "operations"):
        sys.exit(__doc__)
    doc = json.load(open(sys.argv[2]))
    if sys.argv[1] == "operations":
        for path, item in doc["paths"].items():
            for m in item:
                if m in METHODS:
                    print(m.upper(), path)
        return 0
    return responses(doc, sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
