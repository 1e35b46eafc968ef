#!/usr/bin/env python3
"""Oracle for spec/01-unit/rrule_differential_spec.lua: expands RRULEs with
python-dateutil (Debian python3-dateutil) and converts the naive wall-clock
results to instants with zoneinfo, applying the engine's policy:

* gap (nonexistent wall time): the offset before the gap, i.e. moved forward
  by the gap; ambiguous: the first instant. This is zoneinfo's fold=0.
* an occurrence whose instant is not after the previous one is dropped
  (only possible inside a gap); COUNT counts wall-clock occurrences.
* UNTIL is applied here, not by dateutil (dateutil refuses a UTC UNTIL with a
  naive DTSTART): "...Z" stops at the first instant past it, a floating
  date-time at the first wall time past it, a date after that whole day.

Input: JSON lines {"id": 1, "rule": "FREQ=...", "dtstart": "2026-03-29T09:00:00",
"zone": "Europe/Berlin", "limit": 20}. Output: JSON lines {"id": 1, "epochs": [...]}
or {"id": 1, "error": "..."}.
"""
import datetime
import json
import re
import sys
from zoneinfo import ZoneInfo

from dateutil import rrule

EPOCH = datetime.datetime(1970, 1, 1)


def wall_epoch(dt):
    """Seconds since 1970 of a naive datetime read as UTC (wall seconds)."""
    return int((dt - EPOCH).total_seconds())


def expand(case):
    text = case["rule"]
    until_utc = until_wall = None
    parts = []
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name == "UNTIL":
            m = re.fullmatch(r"(\d{8})(?:T(\d{6})(Z?))?", value)
            day = datetime.datetime.strptime(m.group(1), "%Y%m%d")
            if m.group(2) is None:
                until_wall = wall_epoch(day) + 86399
            else:
                t = datetime.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
                if m.group(3):
                    until_utc = wall_epoch(t)
                else:
                    until_wall = wall_epoch(t)
        else:
            parts.append(part)
    dtstart = datetime.datetime.fromisoformat(case["dtstart"])
    zone = ZoneInfo(case["zone"])
    rule = rrule.rrulestr(";".join(parts), dtstart=dtstart)
    out = []
    last = None
    for dt in rule:
        if until_wall is not None and wall_epoch(dt) > until_wall:
            break
        t = int(dt.replace(tzinfo=zone).timestamp())
        if until_utc is not None and t > until_utc:
            break
        if last is None or t > last:
            out.append(t)
            last = t
            if len(out) >= case["limit"]:
                break
    return out


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        try:
            res = {"id": case["id"], "epochs": expand(case)}
        except Exception as e:  # dateutil rejects some empty rules by raising
            res = {"id": case["id"], "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
