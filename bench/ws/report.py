#!/usr/bin/python3
"""bench/ws/report.py: joins the writer's and the clients' timestamps of `make bench-ws`.

  report.py fanout WRITES RECEIVED        -> per message: receive time - REST response time
  report.py broadcast WRITES RECEIVED N   -> per change: last receive (of N clients) - response
Times are measured from the 201 of the write and from the start of its POST (a message
may reach a client before the writer has read its 201). Prints one line of JSON.
"""
import json
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split()
            out.setdefault(parts[0], []).append([int(x) for x in parts[1:]])
    return out


def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    mode, writes, received = sys.argv[1], load(sys.argv[2]), load(sys.argv[3])
    lat, lat_sent, missing, short = [], [], 0, 0
    expect = int(sys.argv[4]) if mode == "broadcast" else 1
    for title, ((t_resp, t_sent),) in writes.items():
        got = [g[0] for g in received.get(title, [])]
        if len(got) < expect:
            short += 1
        if not got:
            missing += 1
            continue
        last = max(got) if mode == "broadcast" else min(got)
        lat.append((last - t_resp) / 1000.0)
        lat_sent.append((last - t_sent) / 1000.0)
    r2 = lambda v: None if v is None else round(v, 1)  # noqa: E731
    print(json.dumps({"mode": mode, "writes": len(writes), "missing": missing, "incomplete": short,
                      "from_201_p50_ms": r2(pct(lat, 50)), "from_201_p99_ms": r2(pct(lat, 99)),
                      "from_post_p50_ms": r2(pct(lat_sent, 50)), "from_post_p99_ms": r2(pct(lat_sent, 99)),
                      "from_post_max_ms": r2(max(lat_sent) if lat_sent else None)}))


if __name__ == "__main__":
    main()
