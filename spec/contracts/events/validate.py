#!/usr/bin/env python3
"""Validate bus events against the schemas in this directory.

Usage: python3 spec/contracts/events/validate.py EVENTS.json
EVENTS.json is a list of {"topic": ..., "event": <CloudEvent>}. Every event must match
cloudevent.schema.json; its data must match the schema of its type (task.* ->
task-event.schema.json, with type == "task." + data.event_type and subject ==
data.task_id; reminder.due -> reminder.schema.json); topics must be the product's.
Prints one line per problem and exits 1 if there was any. Needs python3-jsonschema.
"""
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
TOPICS = {"task-events": "task.", "task-updates": "task.", "reminders": "reminder."}


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def main():
    envelope = jsonschema.Draft202012Validator(load("cloudevent.schema.json"))
    data_schemas = {"task.": jsonschema.Draft202012Validator(load("task-event.schema.json")),
                    "reminder.": jsonschema.Draft202012Validator(load("reminder.schema.json"))}
    with open(sys.argv[1]) as f:
        items = json.load(f)
    problems = []
    for i, item in enumerate(items):
        ev, topic = item.get("event"), item.get("topic")
        where = "event %d (%s %s)" % (i, topic, ev.get("type") if isinstance(ev, dict) else "?")
        if topic not in TOPICS:
            problems.append("%s: unknown topic" % where)
            continue
        for e in envelope.iter_errors(ev):
            problems.append("%s: envelope: %s at %s" % (where, e.message, list(e.absolute_path)))
        prefix = TOPICS[topic]
        if not isinstance(ev, dict) or not str(ev.get("type", "")).startswith(prefix):
            problems.append("%s: type does not belong on this topic" % where)
            continue
        data = ev.get("data")
        for e in data_schemas[prefix].iter_errors(data):
            problems.append("%s: data: %s at %s" % (where, e.message, list(e.absolute_path)))
        if prefix == "task." and isinstance(data, dict):
            if ev["type"] != "task." + str(data.get("event_type")):
                problems.append("%s: type does not match data.event_type" % where)
            if ev.get("subject") != data.get("task_id"):
                problems.append("%s: subject is not data.task_id" % where)
            td = data.get("task_data") or {}
            if td.get("version") != data.get("version") or td.get("id") != data.get("task_id"):
                problems.append("%s: task_data does not match task_id/version" % where)
    for p in problems:
        print(p)
    print("%d events checked, %d problems" % (len(items), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
