#!/usr/bin/python3
"""make soak: the whole local stack for a long time at a steady load, no faults; then the checks.

Reuses scripts/chaos.py's stack (every bundle its own todo-host process, BUS=postgres, a
durable PostgreSQL of its own), its recording REST writers and resuming WebSocket clients
and its checks (the outage checks left out: nothing is broken here). In order:
  1. the maximum: the writers write as fast as they can for --measure seconds; the rate of
     acknowledged writes is the maximum (or --rate sets the soak rate and skips this);
  2. the soak: --minutes (SOAK_MINUTES, default 30) at half that maximum, each writer paced,
     the WebSocket clients connected throughout. Once a minute it records the RSS of every
     todo-host process (and of PostgreSQL's processes together), the p50/p99 latency of the
     minute's writes, the rate reached and the load average of the machine;
  3. the rules, printed with their figures:
       RSS flat: per todo-host process, the median of the last 5 minutes is at most 10%
         above the median of minutes 5-10 (for runs under 15 minutes: the last third
         against the second third);
       p99 steady: the p99 of the last 5 minutes' writes (all of them together) is within
         20% of the first minute's p99;
       no process exited (the chaos supervisor would have restarted it);
     plus the chaos checks (acknowledged writes, events once per group, successors,
     reminders, WebSocket clients equal the database).
The table of minutes goes to stdout and, as JSON, to --json. Exit status 1 on a violation.
"""
import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402  (scripts/chaos.py: the stack, writers, clients and checks)


def log(*a):
    print("soak:", *a, flush=True)


class PacedWriter(chaos.Writer):
    """chaos's writer, paced to one write every `interval` seconds, every call timed."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pause = 0
        self.interval = 0
        self.next_at = 0
        self.samples = []      # (start time, seconds, status)

    def call(self, method, path, body=None):
        if self.interval:
            now = time.time()
            if self.next_at > now:
                time.sleep(self.next_at - now)
            self.next_at = max(self.next_at, now) + self.interval
        t0 = time.time()
        s, b = super().call(method, path, body)
        self.samples.append((t0, time.time() - t0, s))
        return s, b


def tree_pids(root):
    """root and every descendant (from /proc's parent ids)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def pg_pids(stack):
    try:
        with open(os.path.join(stack.pgdir, "data", "postmaster.pid")) as f:
            return tree_pids(int(f.readline()))
    except (OSError, ValueError):
        return []


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.path.join(chaos.ROOT, "build/todo-host"))
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    ap.add_argument("--rate", type=float, default=0, help="writes per second (default: half the measured max)")
    ap.add_argument("--measure", type=float, default=20, help="seconds to measure the maximum")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--json", default="", help="write the minutes and results here")
    ap.add_argument("--minute-seconds", type=float, default=60, help="a shorter 'minute' to try the harness")
    args = ap.parse_args()
    minute = args.minute_seconds
    rng = random.Random(args.seed)
    log("seed %d, %.0f minutes, %d users" % (args.seed, args.minutes, args.users))

    workdir = tempfile.mkdtemp(prefix="todo-soak.")
    os.chmod(workdir, 0o755)  # the postgres user enters it (scripts/pg, as root)
    stack = chaos.Stack(os.path.abspath(args.host), workdir)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    log("stack up: %s (logs in %s)" % (", ".join("%s:%d" % kv for kv in stack.ports.items()), workdir))
    pids = {b: p.pid for b, p in stack.procs.items()}
    stop = threading.Event()
    users = ["soak-u%d-%d" % (i, args.seed) for i in range(args.users)]
    tokens = {u: stack.token(u) for u in users}
    deadline = time.time() + args.measure + args.minutes * minute
    writers = [PacedWriter(stack, u, tokens[u], random.Random(rng.random()), stop, deadline) for u in users]
    clients = [chaos.WsClient(stack, u, tokens[u], "%s/%d" % (u, k)) for u in users for k in range(2)]
    loop = asyncio.new_event_loop()
    ws_stop = None

    async def ws_main():
        nonlocal ws_stop
        ws_stop = asyncio.Event()
        await asyncio.gather(*(c.run(ws_stop) for c in clients))

    threading.Thread(target=lambda: loop.run_until_complete(ws_main()), daemon=True).start()
    for w in writers:
        w.start()

    rate = args.rate
    if not rate:
        time.sleep(3)   # warm up
        a0, t0 = sum(w.ops["acked"] for w in writers), time.time()
        time.sleep(args.measure)
        maxrate = (sum(w.ops["acked"] for w in writers) - a0) / (time.time() - t0)
        rate = maxrate / 2
        log("maximum %.1f acknowledged writes/s (%d writers, no pause); soak at %.1f/s" % (maxrate, len(writers), rate))
    else:
        maxrate = None
    for w in writers:
        w.next_at = time.time()
        w.interval = len(writers) / rate

    rows = []
    t_start = time.time()
    n_minutes = max(1, int(round(args.minutes)))
    exited = []
    for m in range(1, n_minutes + 1):
        time.sleep(max(0, t_start + m * minute - time.time()))
        lo, hi = t_start + (m - 1) * minute, t_start + m * minute
        got = [s for w in writers for s in list(w.samples) if lo <= s[0] < hi]   # one snapshot
        lat = [s[1] for s in got]
        ok = sum(1 for s in got if s[2] and s[2] < 300)
        row = {"minute": m, "writes_per_s": round(ok / minute, 1),
               "p50_ms": round(pct(lat, 0.5) * 1000, 1) if lat else None,
               "p99_ms": round(pct(lat, 0.99) * 1000, 1) if lat else None,
               "errors": len(lat) - ok, "load": open("/proc/loadavg").read().split()[0],
               "rss_kb": {b: rss_kb(tree_pids(stack.procs[b].pid)) for b in stack.bundles},
               "pg_rss_kb": rss_kb(pg_pids(stack))}
        for b in stack.bundles:
            if stack.procs[b].pid != pids[b] or stack.procs[b].poll() is not None:
                exited.append((m, b))
                pids[b] = stack.procs[b].pid
        rows.append(row)
        log("minute %d: %.1f writes/s, p50 %s ms, p99 %s ms, %d errors, load %s, RSS %s, postgres %d MB" % (
            m, row["writes_per_s"], row["p50_ms"], row["p99_ms"], row["errors"], row["load"],
            " ".join("%s=%.1fMB" % (b, v / 1024) for b, v in row["rss_kb"].items()), row["pg_rss_kb"] // 1024))
    stop.set()
    for w in writers:
        w.join(10)
    log("load stopped; waiting for the consumers and clients to catch up")
    try:
        chaos.wait_until(lambda: chaos.caught_up(stack, clients), 60, "not caught up after 60 s")
    except RuntimeError as e:
        log(str(e))

    print("soak table (seed %d, machine shared with other builds):" % args.seed)
    print("| minute | writes/s | p50 ms | p99 ms | errors | load | " + " | ".join("%s MB" % b for b in stack.bundles)
          + " | postgres MB |")
    print("| " + " | ".join(["---"] * (7 + len(stack.bundles))) + " |")
    for r in rows:
        print("| %d | %s | %s | %s | %d | %s | %s | %.0f |" % (
            r["minute"], r["writes_per_s"], r["p50_ms"], r["p99_ms"], r["errors"], r["load"],
            " | ".join("%.1f" % (r["rss_kb"][b] / 1024) for b in stack.bundles), r["pg_rss_kb"] / 1024))

    results = []

    def check(name, ok, detail):
        results.append((name, ok, detail))
        print("  %-4s %-58s %s" % ("ok" if ok else "FAIL", name, detail), flush=True)

    print("soak summary: rate %.1f/s%s; writes acknowledged %d, failed/unanswered %d; ws events %d, connects %d" % (
        rate, " (max %.1f/s)" % maxrate if maxrate else " (set)", sum(w.ops["acked"] for w in writers),
        sum(w.ops["failed"] for w in writers), sum(c.events for c in clients), sum(c.connects for c in clients)))
    n = len(rows)
    if n >= 15:
        base, last, rule = rows[4:10], rows[-5:], "median of the last 5 minutes <= 1.10 x median of minutes 5-10"
    else:
        third = max(1, n // 3)
        base, last, rule = rows[third:2 * third], rows[-third:], "median of the last third <= 1.10 x the second third's"
    for b in stack.bundles:
        mb = statistics.median(r["rss_kb"][b] for r in base) / 1024
        ml = statistics.median(r["rss_kb"][b] for r in last) / 1024
        check("RSS flat: %s" % b, ml <= mb * 1.10, "%.1f MB then %.1f MB (%s)" % (mb, ml, rule))
    first = rows[0]["p99_ms"]
    tail_lo = t_start + (n - min(5, n)) * minute
    tail = [s[1] for w in writers for s in w.samples if tail_lo <= s[0] < t_start + n * minute]
    p99_last = round(pct(tail, 0.99) * 1000, 1) if tail else None
    check("p99 within 20% of the first minute's", first is not None and p99_last is not None
          and p99_last <= first * 1.2, "first minute %s ms, last %d minutes %s ms" % (first, min(5, n), p99_last))
    check("no process exited", not exited, ", ".join("%s in minute %d" % (b, m) for m, b in exited) or "none")
    try:
        results += chaos.check_all(stack, writers, clients, {}, outage=False)
    finally:
        loop.call_soon_threadsafe(ws_stop.set)
        stack.stop()
    failed = sum(1 for r in results if not r[1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "rate": rate, "max": maxrate, "minutes": rows,
                       "results": [{"check": r[0], "ok": r[1], "detail": r[2]} for r in results]}, f, indent=1)
    print("soak: %d passed, %d failed" % (len(results) - failed, failed))
    if failed == 0:
        subprocess.run(["rm", "-rf", workdir])
    else:
        log("logs kept in " + workdir)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
