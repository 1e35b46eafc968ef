#!/usr/bin/env python3
"""Validate WebSocket messages against the schemas in this directory.

Usage: python3 spec/contracts/websocket/validate.py MESSAGES.json
MESSAGES.json is a list of message objects (either direction); each must match the
schema named by its `type` (<type>.schema.json). Prints one line per problem and exits 1
if there was any. Needs python3-jsonschema.
"""
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    # The task is the events' task (one definition): its $defs are copied in and the
    # reference made local, so no cross-file resolver is needed (jsonschema 4.10 and later).
    task_defs = load(os.path.join(HERE, "..", "events", "task-event.schema.json"))["$defs"]
    ref = "../events/task-event.schema.json#/$defs/task"
    problems = 0
    for i, msg in enumerate(load(sys.argv[1])):
        kind = msg.get("type") if isinstance(msg, dict) else None
        path = os.path.join(HERE, "%s.schema.json" % kind)
        if not isinstance(kind, str) or not os.path.exists(path):
            print("message %d: unknown type %r" % (i, kind))
            problems += 1
            continue
        schema = json.loads(json.dumps(load(path)).replace(ref, "#/$defs/task"))
        schema["$defs"] = task_defs
        validator = jsonschema.Draft202012Validator(schema)
        for err in validator.iter_errors(msg):
            print("message %d (%s): %s at %s" % (i, kind, err.message, list(err.absolute_path)))
            problems += 1
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
