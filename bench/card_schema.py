#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Validate the agent's two agent cards against the A2A specification.

    card_schema.py SPEC_DIR V03_TAG V1_TAG CARD_V03.json CARD_V1.json

SPEC_DIR is a git checkout of a2aproject/A2A (kept out of this repository);
the definitions are read from its tags with `git show`:

- the v0.3 card against the JSON Schema of V03_TAG
  (specification/json/a2a.json, draft-07; its AgentCard definition), with
  python3-jsonschema;
- the v1.0 card against the AgentCard message of V1_TAG's
  specification/a2a.proto (v1.0 publishes no JSON Schema in its tree: its
  a2a.json is a build artifact made from the proto).  The proto is compiled
  with protoc (Debian protobuf-compiler) after its google.api annotations
  are taken out (they say how to route HTTP and which fields are REQUIRED;
  they do not change a message's shape), and the card is parsed with
  protobuf's JSON mapping, which refuses unknown fields, wrong types and a
  second member of a oneof (each security scheme must be exactly one).
  The fields the proto marks REQUIRED are then checked to be present, in
  every message the card holds.

Prints one line per card and exits 0 when both are valid, 1 otherwise.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def git_show(spec_dir, tag, path):
    return subprocess.run(["git", "-C", spec_dir, "show", "%s:%s" % (tag, path)],
                          check=True, capture_output=True, text=True).stdout


def check_v03(schema_text, card):
    import jsonschema
    schema = json.loads(schema_text)
    defs = schema.get("definitions") or schema.get("$defs")
    if not defs or "AgentCard" not in defs:
        return ["the v0.3 schema has no AgentCard definition"]
    root = {"$schema": "http://json-schema.org/draft-07/schema#",
            "$ref": "#/definitions/AgentCard", "definitions": defs}
    v = jsonschema.Draft7Validator(root)
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(card)",
                        e.message) for e in sorted(v.iter_errors(card), key=str)]


def strip_proto(text):
    """The proto without the service, the google.api imports and options;
    and {message: [REQUIRED field names]}."""
    required = {}
    out, depth, msgs, skip = [], 0, [], 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith('import "google/api/'):
            continue
        if skip:
            skip += line.count("{") - line.count("}")
            continue
        if s.startswith("service ") and s.endswith("{"):
            skip = 1
            continue
        m = re.match(r"(message|enum)\s+(\w+)\s*\{", s)
        if m:
            msgs.append((m.group(2), depth))
        if "(google.api.field_behavior) = REQUIRED" in line and msgs:
            f = re.match(r"(?:optional\s+|repeated\s+)?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=", s)
            if f:
                required.setdefault(msgs[-1][0], []).append(f.group(1))
        line = re.sub(r"\s*\[\(google\.api\.field_behavior\)[^\]]*\]", "", line)
        depth += line.count("{") - line.count("}")
        while msgs and depth <= msgs[-1][1]:
            msgs.pop()
        out.append(line)
    return "\n".join(out) + "\n", required


def missing_required(desc, data, required, where):
    """Paths of REQUIRED fields absent from data (a JSON object of
    message desc), recursively."""
    errs = []
    if not isinstance(data, dict):
        return errs
    for name in required.get(desc.name, []):
        fd = desc.fields_by_name[name]
        if fd.json_name not in data and fd.name not in data:
            errs.append("%s.%s: required by the proto, absent" % (where, fd.json_name))
    for fd in desc.fields:
        val = data.get(fd.json_name, data.get(fd.name))
        if val is None or fd.message_type is None:
            continue
        sub = "%s.%s" % (where, fd.json_name)
        mt = fd.message_type
        if mt.GetOptions().map_entry:
            vfd = mt.fields_by_name["value"]
            if vfd.message_type is not None and isinstance(val, dict):
                for k, v in val.items():
                    errs += missing_required(vfd.message_type, v, required,
                                             "%s[%s]" % (sub, k))
        elif isinstance(val, list):
            for i, v in enumerate(val):
                errs += missing_required(mt, v, required, "%s[%d]" % (sub, i))
        else:
            errs += missing_required(mt, val, required, sub)
    return errs


def check_v1(proto_text, card):
    from google.protobuf import json_format
    text, required = strip_proto(proto_text)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "a2a.proto"), "w") as f:
            f.write(text)
        inc = ["-I", d]
        if os.path.isdir("/usr/include/google/protobuf"):
            inc += ["-I", "/usr/include"]
        subprocess.run(["protoc"] + inc + ["--python_out=" + d, "a2a.proto"],
                       check=True, cwd=d)
        sys.path.insert(0, d)
        import a2a_pb2  # noqa: E402  (made just now)
        sys.path.pop(0)
    msg = a2a_pb2.AgentCard()
    try:
        json_format.Parse(json.dumps(card), msg, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        return [str(e)]
    return missing_required(msg.DESCRIPTOR, card, required, "card")


def main(argv):
    if len(argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    spec_dir, v03_tag, v1_tag, f03, f1 = argv[1:]
    with open(f03) as f:
        card03 = json.load(f)
    with open(f1) as f:
        card1 = json.load(f)
    bad = 0
    errs = check_v03(git_show(spec_dir, v03_tag, "specification/json/a2a.json"),
                     card03)
    print("v0.3 card against %s specification/json/a2a.json (AgentCard): %s"
          % (v03_tag, "valid" if not errs else "INVALID"))
    for e in errs:
        print("  " + e)
    bad += bool(errs)
    errs = check_v1(git_show(spec_dir, v1_tag, "specification/a2a.proto"), card1)
    print("v1.0 card against %s specification/a2a.proto (AgentCard): %s"
          % (v1_tag, "valid" if not errs else "INVALID"))
    for e in errs:
        print("  " + e)
    bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
