#!/usr/bin/python3
"""make bench-slow: the latency of normal clients with and without slow clients attached
(issue 19, "Load"; docs/reliability.md records a run).

One todo-host (services/api + services/websocket, WORKERS=2, the default timeouts and
limits, ACCESS_LOG off) on a throwaway PostgreSQL (scripts/pg). The normal load is open
loop: requests are scheduled at a fixed rate (--rate, 80% GET /api/tasks?limit=20 and 20%
POST /api/tasks, one user with 50 tasks) and served by a pool of keep-alive connections;
a request's latency runs from its scheduled time, so a stalled server is charged its
queueing too (no coordinated omission). Each run measures --seconds; runs alternate
baseline (no slow client) and "slow" (--slow clients attached, started beforehand by a
separate process, `--role slow`, so that they do not share this one's interpreter), --runs
times each. The slow clients, a quarter each, reconnecting whenever the server cuts them:

  header   sends a request line, then one header byte a second (HEADER_TIMEOUT_MS: 408)
  body     a POST with Content-Length 10000, then one body byte a second (BODY_TIMEOUT_MS)
  reader   pipelines GET /healthz with a 4 KiB receive buffer and never reads
           (MAX_PENDING_OUTPUT_BYTES stops reading it; SEND_TIMEOUT_MS and
           MIN_SEND_RATE_BYTES_PER_SECOND close it)
  ws       a /ws connection of the normal user (it gets every task event of the POSTs)
           that never reads (4 KiB receive buffer; WS_SEND_QUEUE_BYTES: 1008)

Prints per run p50/p99/max, errors and the load average, then the medians and the ratio
slow/baseline; writes the table to bench/results/slow-clients.md. Standard library only.
--kinds header,ws runs a part of the mix; SLOW_DEBUG=1 prints each run's slowest requests
with their time in the run (what found the readers' cost, docs/reliability.md).

    scripts/slow-clients [BUILD_DIR] [--rate 100] [--seconds 20] [--runs 3] [--slow 500]
"""
import argparse
import asyncio
import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import free_port  # noqa: E402  (scripts/chaos.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("header", "body", "reader", "ws")
MIX = list(KINDS)  # the kinds the slow clients cycle through (--kinds)


def log(*a):
    print("slow-clients:", *a, flush=True)


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ------------------------------------------------------------------ the slow clients

def tcp_state(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


ESTABLISHED = 1


async def slow_client(kind, port, token, stats, stop):
    """One slow client of `kind`, reconnecting whenever the server cuts it off. Raw
    non-blocking sockets: nothing is read past what the kind reads (asyncio's streams
    would keep reading into their buffer); the server's close is seen in the socket's
    TCP state."""
    loop = asyncio.get_running_loop()
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n"
    while not stop.is_set():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            await loop.sock_connect(s, ("127.0.0.1", port))
            stats["opened"][kind] += 1
            tick, drip, pending, blocked = 1.0, b"", b"", False
            if kind == "header":
                await loop.sock_sendall(s, b"GET /api/tasks HTTP/1.1\r\nHost: x\r\n")
                drip = b"X"
            elif kind == "body":
                await loop.sock_sendall(s, b"POST /api/tasks HTTP/1.1\r\nHost: x\r\n" + auth +
                                        b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{")
                drip = b" "
            elif kind == "reader":
                tick, drip = 0.2, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 100
            elif kind == "ws":
                key = base64.b64encode(os.urandom(16)).decode()
                await loop.sock_sendall(s, ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: todo.v1, "
                                            "bearer.%s\r\n\r\n" % (key, token)).encode())
                head = b""
                while b"\r\n\r\n" not in head:  # byte by byte: nothing past the head is taken
                    b = await loop.sock_recv(s, 1)
                    if not b:
                        raise OSError("closed during the handshake")
                    head += b
                if not head.startswith(b"HTTP/1.1 101"):
                    raise OSError("refused: %r" % head[:40])
                stats["upgraded"] += 1
                # one message, so that live events flow (held until the first one); then
                # never read again
                await loop.sock_sendall(s, bytes([0x81, 0x80 + 15, 0, 0, 0, 0]) + b'{"type":"ping"}')
            while not stop.is_set():
                await asyncio.sleep(tick)
                if tcp_state(s) != ESTABLISHED:
                    break
                if kind == "reader":
                    pending = pending or drip
                    try:
                        while True:  # as fast as the server takes them
                            pending = pending[s.send(pending):] or drip
                    except BlockingIOError:
                        # the server stopped reading it (its answers fill every buffer):
                        # wait for its close
                        if not blocked:
                            blocked = True
                            stats["blocked"] += 1
                elif drip:
                    s.send(drip)
            if not stop.is_set():
                stats["cut"][kind] += 1
        except OSError as e:
            if not stop.is_set():
                stats["cut"][kind] += 1
                why = stats["why"].setdefault(kind, {})
                why[str(e)[:60]] = why.get(str(e)[:60], 0) + 1
        finally:
            s.close()
        await asyncio.sleep(0.05)


def run_slow(args):
    stats = {"opened": {k: 0 for k in KINDS}, "cut": {k: 0 for k in KINDS}, "upgraded": 0, "blocked": 0,
             "why": {}}

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        tasks = []
        for i in range(args.slow):
            kind = MIX[i % len(MIX)]
            tasks.append(asyncio.create_task(slow_client(kind, args.port, args.token, stats, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        # attached: every WebSocket client upgraded and every reader's buffers full (the
        # answers it asked for fill the kernel's buffers and MAX_PENDING_OUTPUT_BYTES first:
        # that burst is not what is measured; it comes again when a cut one reconnects)
        n_ws = sum(1 for i in range(args.slow) if MIX[i % len(MIX)] == "ws")
        n_readers = sum(1 for i in range(args.slow) if MIX[i % len(MIX)] == "reader")
        deadline = time.time() + 120
        while time.time() < deadline and (stats["upgraded"] < n_ws or stats["blocked"] < n_readers):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        with open(args.ready, "w") as f:
            f.write("ready\n")
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with open(args.ready, "w") as f:
            json.dump(stats, f)

    asyncio.run(main())


# ------------------------------------------------------------------ the normal load

class Load:
    """Open-loop paced requests over a pool of keep-alive connections."""

    def __init__(self, port, token, rate, threads=16):
        self.port, self.token, self.rate = port, token, rate
        self.jobs = queue.Queue()
        self.samples = []   # (kind, seconds from schedule to answer, status)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def work(self):
        conn = None
        while True:
            due, kind = self.jobs.get()
            if kind is None:
                return
            status = -1
            try:
                if conn is None:
                    conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
                headers = {"authorization": "Bearer " + self.token}
                if kind == "get":
                    conn.request("GET", "/api/tasks?limit=20", headers=headers)
                else:
                    headers["content-type"] = "application/json"
                    conn.request("POST", "/api/tasks", body=json.dumps(
                        {"title": "paced %d" % int(due * 1000), "description": "d" * 1000}), headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, ValueError) as e:
                status = -1
                log("request failed:", e)
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.samples.append((kind, time.time() - due, status, due))

    def run(self, seconds):
        self.samples = []
        interval = 1.0 / self.rate
        start = time.time() + 0.05
        n = int(seconds * self.rate)
        for i in range(n):
            due = start + i * interval
            now = time.time()
            if due > now:
                time.sleep(due - now)
            self.jobs.put((due, "post" if i % 5 == 4 else "get"))
        end = time.time() + 30
        while time.time() < end:
            with self.lock:
                if len(self.samples) >= n:
                    break
            time.sleep(0.01)
        with self.lock:
            return list(self.samples)


def server_connections(port):
    """Established TCP connections whose local port is the server's (/proc/net/tcp*)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "01":
                        n += 1
        except OSError:
            pass
    return n


def metric(port, name):
    """A metric summed over its samples (the ws/ counters are the group's totals, the
    gauges one sample per worker); a few scrapes, keeping each sample's largest value."""
    per_worker = {}
    for _ in range(12):
        c = HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                key, value = line.rsplit(" ", 1)
                per_worker[key] = max(per_worker.get(key, 0.0), float(value))
    return sum(per_worker.values())


def summarize(samples):
    lat = [s[1] * 1000 for s in samples if 200 <= s[2] < 300]
    errors = sum(1 for s in samples if not 200 <= s[2] < 300)
    out = {"n": len(samples), "errors": errors, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
           "max": max(lat) if lat else float("nan")}
    for kind in ("get", "post"):
        k = [s[1] * 1000 for s in samples if s[0] == kind and 200 <= s[2] < 300]
        out[kind + "_p50"], out[kind + "_p99"] = pct(k, 0.5), pct(k, 0.99)
    if os.environ.get("SLOW_DEBUG"):
        t0 = min(s[3] for s in samples)
        worst = sorted(samples, key=lambda s: -s[1])[:15]
        log("slowest:", ", ".join("%s@%.2fs=%.0fms" % (s[0], s[3] - t0, s[1] * 1000) for s in worst))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.path.join(ROOT, "build/todo-host"))
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--kinds", default=",".join(KINDS), help="the slow clients' mix (header,body,reader,ws)")
    ap.add_argument("--role", default="driver")
    ap.add_argument("--port", type=int)
    ap.add_argument("--token")
    ap.add_argument("--ready")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/slow-clients.md"))
    args = ap.parse_args()
    MIX[:] = [k for k in args.kinds.split(",") if k]
    if not MIX or any(k not in KINDS for k in MIX):
        ap.error("--kinds: a comma-separated list of " + ",".join(KINDS))
    if args.role == "slow":
        return run_slow(args)

    work = tempfile.mkdtemp(prefix="todo-slow-")
    pgdir = tempfile.mkdtemp(prefix="todo-slow-pg-")  # scripts/pg gives it to the postgres user
    env = dict(os.environ, PG_THROWAWAY="1")
    url = subprocess.run([os.path.join(ROOT, "scripts/pg"), "start", pgdir], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, PORT=str(port), WORKERS=args.workers, ACCESS_LOG="off",
               LOG_LEVEL="warn", AUTH_DEV_SECRET="slow-" + os.urandom(8).hex(), BUS="postgres")
    env.pop("PG_THROWAWAY", None)
    host = None
    try:
        subprocess.run([args.host, "migrate", "services/api", "services/websocket"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        logf = open(os.path.join(work, "host.log"), "w")
        host = subprocess.Popen([args.host, "run", "services/api", "services/websocket"], env=env, cwd=ROOT,
                                stdout=logf, stderr=logf)
        token = subprocess.run([args.host, "token", "--sub", "slow-bench-user"], env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
        for _ in range(200):
            try:
                c = HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        load = Load(port, token, args.rate)
        for i in range(50):
            c = HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/api/tasks", body=json.dumps({"title": "seed %d" % i}),
                      headers={"authorization": "Bearer " + token, "content-type": "application/json"})
            assert c.getresponse().status == 201
            c.close()
        log("host on port %d (WORKERS=%s), %.0f requests/s for %.0f s per run, %d runs each, %d slow clients"
            % (port, args.workers, args.rate, args.seconds, args.runs, args.slow))
        load.run(3)  # warm-up
        rows = []
        for r in range(args.runs):
            for phase in ("baseline", "slow"):
                slow = None
                ready = os.path.join(work, "ready-%d" % r)
                if phase == "slow":
                    slow = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", "slow",
                                             "--port", str(port), "--token", token, "--ready", ready,
                                             "--slow", str(args.slow), "--kinds", args.kinds], cwd=ROOT)
                    for _ in range(600):
                        if os.path.exists(ready):
                            break
                        time.sleep(0.1)
                overflows0 = metric(port, "todo_host_ws_queue_overflows_total")
                load0 = os.getloadavg()[0]
                samples = load.run(args.seconds)
                row = summarize(samples)
                row.update(phase=phase, run=r + 1, load=(load0 + os.getloadavg()[0]) / 2,
                           conns=server_connections(port), ws_1008=metric(port, "todo_host_ws_queue_overflows_total") - overflows0)
                if slow is not None:
                    slow.send_signal(signal.SIGTERM)
                    slow.wait(60)
                    try:
                        with open(ready) as f:
                            row["slow_stats"] = json.load(f)
                    except (OSError, ValueError):
                        row["slow_stats"] = None
                rows.append(row)
                log("GET p50/p99 %.2f/%.2f ms, POST %.2f/%.2f ms" % (row["get_p50"], row["get_p99"], row["post_p50"],
                                                               row["post_p99"]))
                log("run %d %-8s n=%d errors=%d p50=%.2f ms p99=%.2f ms max=%.1f ms load=%.2f ws 1008s=%d "
                    "server connections at the end %d%s"
                    % (row["run"], phase, row["n"], row["errors"], row["p50"], row["p99"], row["max"], row["load"],
                       row["ws_1008"], row["conns"], "" if slow is None else " slow clients: %s" %
                       json.dumps(row.get("slow_stats"))))
                time.sleep(2)
        report(rows, args)
    finally:
        if host is not None:
            host.send_signal(signal.SIGTERM)
            try:
                host.wait(30)
            except subprocess.TimeoutExpired:
                host.kill()
        subprocess.run([os.path.join(ROOT, "scripts/pg"), "stop", pgdir], cwd=ROOT, capture_output=True)


def report(rows, args):
    def med(phase, key):
        return pct([r[key] for r in rows if r["phase"] == phase], 0.5)

    lines = ["| run | phase | requests | errors | p50 ms | p99 ms | max ms | load | server connections | "
             "slow connections made (header/body/reader/ws) | cut by the server | WebSocket 1008s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        st = r.get("slow_stats") or {}

        def per_kind(d):
            return "/".join(str(d[k]) for k in KINDS) if d else "-"
        lines.append("| %d | %s | %d | %d | %.2f | %.2f | %.1f | %.2f | %d | %s | %s | %d |" % (
            r["run"], r["phase"], r["n"], r["errors"], r["p50"], r["p99"], r["max"], r["load"], r["conns"],
            per_kind(st.get("opened")), per_kind(st.get("cut")), r["ws_1008"]))
    b50, b99 = med("baseline", "p50"), med("baseline", "p99")
    s50, s99 = med("slow", "p50"), med("slow", "p99")
    summary = ("median of runs: baseline p50 %.2f ms p99 %.2f ms; with %d slow clients p50 %.2f ms p99 %.2f ms; "
               "ratio p50 %.2f, p99 %.2f" % (b50, b99, args.slow, s50, s99, s50 / b50, s99 / b99))
    text = "\n".join(lines) + "\n\n" + summary + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("# make bench-slow (%s)\n\n%.0f requests/s, %.0f s per run\n\n" % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.rate, args.seconds) + text)


if __name__ == "__main__":
    main()
