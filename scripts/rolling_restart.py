#!/usr/bin/python3
"""A rolling restart under load (issue 19): start a new todo-host on the same port, drain
the old one with SIGTERM, and prove that nothing was lost (docs/operations.md, "Rolling
restart").

One PostgreSQL (scripts/pg, throwaway), services/api + services/websocket in one todo-host
process group (WORKERS=2, BUS=postgres) on one port. Meanwhile:
  - paced keep-alive REST clients (two users, two clients each) read and change tasks they
    own with conditional PATCHes (If-Match: the version they last saw). Such a write is
    safe to retry: if a first attempt was applied, the retry answers 412 and a GET shows
    the client's title; so a request sent without an answer is retried once on a new
    connection, and counted lost only if that retry cannot settle it. A connection the
    server closed before the request was written is simply reconnected (nothing was sent);
  - one WebSocket client per user keeps the events it receives, and after every close
    reconnects and sends `resume` with its last event id (spec/contracts/websocket.md).
Each round starts instance N+1 on the port (SO_REUSEPORT: both listen), waits until it
listens, then SIGTERMs instance N, which stops accepting, answers what is in flight and
closes its WebSockets with 1001. Checks, printed with counts:
  - every request got a non-5xx answer (directly, or by its one safe retry);
  - no acknowledged write is lost: every task's title and version in the database are the
    last ones its client saw acknowledged;
  - each WebSocket client, after its reconnects and resumes, holds exactly the user's event
    ids of the database's log (ws_events) since it connected, in order, no duplicate;
  - the WebSocket clients saw close code 1001 from the draining instance;
  - every old instance exited 0 on its own (drained), within DRAIN_TIMEOUT_MS.
Last line "rolling restart: N passed, N failed"; exit status 1 on any failure.
    scripts/rolling-restart [BUILD_DIR] [--rounds N] [--seconds-per-round S]
"""
import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import free_port  # noqa: E402  (scripts/chaos.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLES = ["services/api", "services/websocket"]
WORKERS = 2
PACE = 0.02          # seconds between two requests of one REST client
TASKS_PER_CLIENT = 3


def log(*a):
    print("rolling restart:", *a, flush=True)


# ---------------------------------------------------------------- processes

class Instance:
    """One todo-host process group (master + WORKERS workers) on the shared port."""

    def __init__(self, n, host_bin, env, workdir):
        self.n = n
        self.logpath = os.path.join(workdir, "instance-%d.log" % n)
        self.logf = open(self.logpath, "a")
        self.proc = subprocess.Popen([host_bin, "run"] + BUNDLES, env=env, cwd=ROOT,
                                     stdout=self.logf, stderr=self.logf, start_new_session=True)

    def log_text(self):
        with open(self.logpath) as f:
            return f.read()

    def wait_listening(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log_text().count('listening on') >= WORKERS:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False


# ---------------------------------------------------------------- HTTP/1.1 keep-alive client

class NotSent(Exception):
    """The connection was gone before the request was written: nothing reached the server."""


class NoAnswer(Exception):
    """The request was written but no response came (the connection closed or reset)."""


class Conn:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None
        self.server_closes = 0  # answers that came with Connection: close (a draining server)

    async def close(self):
        if self.writer:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, token, body=None, headers=None):
        if self.writer is not None:
            await asyncio.sleep(0)  # let a FIN that already arrived be seen
            if self.reader.at_eof() or self.writer.is_closing():
                await self.close()
                raise NotSent()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else b""
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n" % (method, path, token)
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += "Content-Length: %d\r\n\r\n" % len(data)
        try:
            self.writer.write(head.encode() + data)
            await self.writer.drain()
            status_line = await asyncio.wait_for(self.reader.readline(), 10)
        except (ConnectionError, asyncio.TimeoutError, OSError):
            await self.close()
            raise NoAnswer()
        if not status_line:
            await self.close()
            raise NoAnswer()
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        raw = await self.reader.readexactly(n) if n else b""
        if hdrs.get("connection", "").lower() == "close":
            self.server_closes += 1
            await self.close()
        doc = json.loads(raw) if raw and "json" in hdrs.get("content-type", "") else raw
        return status, doc, hdrs


class Stats:
    def __init__(self):
        self.answered = 0
        self.by_status = {}
        self.not_sent = 0          # reconnected before sending (nothing lost)
        self.unanswered = 0        # sent, no answer: retried
        self.settled_by_retry = 0  # of those, the retry settled it
        self.lost = []             # neither answered nor settled
        self.server_errors = []    # 5xx answers
        self.reconnects = 0

    def answer(self, status, what):
        self.answered += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status >= 500:
            self.server_errors.append((status, what))


class RestClient:
    """Owns a few tasks of one user; reads and changes them with conditional PATCHes."""

    def __init__(self, name, port, token, stats):
        self.name, self.port, self.token, self.stats = name, port, token, stats
        self.conn = Conn(port)
        self.tasks = {}  # id -> {"version":, "title":} as last acknowledged
        self.n = 0

    async def send(self, method, path, body=None, headers=None):
        """One request, reconnecting when the connection was gone before it was sent."""
        for _ in range(5):
            try:
                return await self.conn.request(method, path, self.token, body, headers)
            except NotSent:
                self.stats.not_sent += 1
                self.stats.reconnects += 1
            except ConnectionError:
                # the connect itself failed: nothing was sent
                self.stats.not_sent += 1
                await asyncio.sleep(0.05)
        raise NoAnswer()

    async def create(self):
        for i in range(TASKS_PER_CLIENT):
            status, doc, _ = await self.send("POST", "/api/tasks", {"title": "%s-t%d" % (self.name, i)})
            assert status == 201, (status, doc)
            self.tasks[doc["id"]] = {"version": doc["version"], "title": doc["title"]}

    async def change(self, tid):
        t = self.tasks[tid]
        self.n += 1
        title = "%s-%d" % (self.name, self.n)
        hdr = {"If-Match": '"%d"' % t["version"]}
        what = "PATCH %s" % tid
        try:
            status, doc, _ = await self.send("PATCH", "/api/tasks/" + tid, {"title": title}, hdr)
        except NoAnswer:
            self.stats.unanswered += 1
            # safe retry: the same conditional write; 412 means the first one was applied
            try:
                status, doc, _ = await self.send("PATCH", "/api/tasks/" + tid, {"title": title}, hdr)
            except NoAnswer:
                self.stats.lost.append(what)
                return
            if status == 412:
                s2, cur, _ = await self.send("GET", "/api/tasks/" + tid)
                if s2 == 200 and cur["title"] == title and cur["version"] == t["version"] + 1:
                    self.stats.settled_by_retry += 1
                    self.stats.answer(200, what)
                    self.tasks[tid] = {"version": cur["version"], "title": title}
                    return
            else:
                self.stats.settled_by_retry += 1
        self.stats.answer(status, what)
        if status == 200:
            self.tasks[tid] = {"version": doc["version"], "title": doc["title"]}

    async def read(self, tid):
        what = "GET %s" % tid
        try:
            status, _, _ = await self.send("GET", "/api/tasks/" + tid)
        except NoAnswer:
            self.stats.unanswered += 1
            try:
                status, _, _ = await self.send("GET", "/api/tasks/" + tid)  # a read: safe
                self.stats.settled_by_retry += 1
            except NoAnswer:
                self.stats.lost.append(what)
                return
        self.stats.answer(status, what)

    async def run(self, stop):
        ids = list(self.tasks)
        k = 0
        while not stop.is_set():
            tid = ids[k % len(ids)]
            if k % 2 == 0:
                await self.change(tid)
            else:
                await self.read(tid)
            k += 1
            await asyncio.sleep(PACE)
        await self.conn.close()


class WsClient:
    """Keeps the event ids of one user; reconnects and resumes after every close."""

    def __init__(self, user, port, token):
        self.user, self.port, self.token = user, port, token
        self.first = None      # hello.event_id of the first connection
        self.last = None
        self.ids = []
        self.duplicates = 0
        self.connects = 0
        self.close_codes = {}
        self.ready = asyncio.Event()

    async def run(self, stop):
        url = "ws://127.0.0.1:%d/ws" % self.port
        while not stop.is_set():
            try:
                async with websockets.connect(url, subprotocols=["todo.v1", "bearer." + self.token],
                                              open_timeout=5, ping_interval=None, max_size=None) as ws:
                    self.connects += 1
                    hello = json.loads(await ws.recv())
                    if self.last is None:
                        self.first = self.last = hello["event_id"]
                        await ws.send(json.dumps({"type": "ping"}))
                    else:
                        await ws.send(json.dumps({"type": "resume", "after": self.last}))
                    self.ready.set()
                    try:
                        async for raw in ws:
                            m = json.loads(raw)
                            if m["type"] == "resync":
                                raise RuntimeError("resync: the resume point was not found")
                            eid = m.get("event_id")
                            if m["type"] in ("resumed", "hello", "pong") or eid is None:
                                continue
                            if eid <= self.last:
                                self.duplicates += 1
                                continue
                            self.ids.append(eid)
                            self.last = eid
                    except websockets.ConnectionClosed:
                        pass
                    code = ws.close_code
                    self.close_codes[code] = self.close_codes.get(code, 0) + 1
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
                pass
            if not stop.is_set():
                await asyncio.sleep(0.1)


# ---------------------------------------------------------------- the run

def sql(url, q):
    out = subprocess.run(["psql", url, "-XAtq", "-F", "\t", "-c", q], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("psql: " + out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


async def main_async(args, env, url, port, workdir):
    results = []

    def check(name, ok, detail):
        results.append(ok)
        log("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    instances = [Instance(0, args.host, env, workdir)]
    if not instances[0].wait_listening():
        print(instances[0].log_text(), file=sys.stderr)
        raise SystemExit("rolling restart: the first instance did not start")

    def token(sub):
        return subprocess.run([args.host, "token", "--sub", sub], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    stats = Stats()
    users = ["rr-a-%d" % os.getpid(), "rr-b-%d" % os.getpid()]
    tokens = {u: token(u) for u in users}
    clients = [RestClient("%s-c%d" % (u, i), port, tokens[u], stats) for u in users for i in range(2)]
    for c in clients:
        await c.create()
    ws_clients = [WsClient(u, port, tokens[u]) for u in users]
    stop_ws, stop_rest = asyncio.Event(), asyncio.Event()
    ws_tasks = [asyncio.create_task(w.run(stop_ws)) for w in ws_clients]
    for w in ws_clients:
        await asyncio.wait_for(w.ready.wait(), 10)
    rest_tasks = [asyncio.create_task(c.run(stop_rest)) for c in clients]

    exits = []
    for r in range(1, args.rounds + 1):
        await asyncio.sleep(args.seconds_per_round / 2)
        new = Instance(r, args.host, env, workdir)
        ok = await asyncio.get_running_loop().run_in_executor(None, new.wait_listening)
        if not ok:
            print(new.log_text(), file=sys.stderr)
            raise SystemExit("rolling restart: instance %d did not start (is SO_REUSEPORT on?)" % r)
        old = instances[-1]
        instances.append(new)
        t0 = time.time()
        if args.signal == "KILL":  # every process of the group: no drain at all
            os.killpg(old.proc.pid, signal.SIGKILL)
        else:  # to the master, as a supervisor does; it forwards to its workers
            old.proc.send_signal(signal.SIGTERM)
        log("round %d: instance %d listens; SIGTERM to instance %d" % (r, r, old.n))
        while old.proc.poll() is None and time.time() - t0 < 30:
            await asyncio.sleep(0.05)
        code = old.proc.poll()
        exits.append((old.n, code, time.time() - t0))
        log("round %d: instance %d exited %s after %.2f s" % (r, old.n, code, time.time() - t0))
        await asyncio.sleep(args.seconds_per_round / 2)

    stop_rest.set()
    await asyncio.gather(*rest_tasks)
    # the WebSocket clients catch up with the database's log
    deadline = time.time() + 15
    newest = {}
    while time.time() < deadline:
        newest = {u: int((sql(url, "SELECT coalesce(max(event_id), 0) FROM ws_events WHERE user_id = '%s'" % u)
                          or [["0"]])[0][0]) for u in users}
        if all(w.last == newest[w.user] for w in ws_clients):
            break
        await asyncio.sleep(0.2)
    stop_ws.set()
    for t in ws_tasks:
        t.cancel()
    await asyncio.gather(*ws_tasks, return_exceptions=True)

    # ---- checks
    check("every request answered, none 5xx",
          not stats.lost and not stats.server_errors,
          "%d answered %s; %d connections closed by a draining instance after an answer; "
          "%d reconnects before sending; %d sent without an answer, %d settled by a safe "
          "retry; lost %d; 5xx %d %s" % (stats.answered, dict(sorted(stats.by_status.items())),
                                         sum(c.conn.server_closes for c in clients), stats.not_sent,
                                         stats.unanswered, stats.settled_by_retry, len(stats.lost),
                                         len(stats.server_errors), stats.server_errors[:3]))
    acked = {tid: t for c in clients for tid, t in c.tasks.items()}
    rows = sql(url, "SELECT id, version, title FROM tasks WHERE user_id IN ('%s')" % "','".join(users))
    db = {r[0]: (int(r[1]), r[2]) for r in rows}
    bad = [tid for tid, t in acked.items() if db.get(tid) != (t["version"], t["title"])]
    writes = sum(t["version"] - 1 for t in acked.values())
    check("no acknowledged write lost", not bad and len(db) == len(acked),
          "%d tasks, %d acknowledged changes; database differs on %d: %s" %
          (len(acked), writes, len(bad), [(b, acked[b], db.get(b)) for b in bad[:3]]))
    for w in ws_clients:
        want = [int(r[0]) for r in sql(url, "SELECT event_id FROM ws_events WHERE user_id = '%s' AND event_id > %d "
                                        "ORDER BY event_id" % (w.user, w.first))]
        check("WebSocket %s holds every event" % w.user, w.ids == want and w.duplicates == 0 and len(want) > 0,
              "%d events received over %d connections (close codes %s), %d in the database's log, %d duplicates%s" %
              (len(w.ids), w.connects, w.close_codes, len(want), w.duplicates,
               "" if w.ids == want else "; missing %s" % sorted(set(want) - set(w.ids))[:5]))
    going_away = sum(w.close_codes.get(1001, 0) for w in ws_clients)
    check("WebSockets closed with 1001 by the draining instance", going_away >= len(ws_clients) * args.rounds,
          "%d closes with 1001 over %d rounds" % (going_away, args.rounds))
    drain_s = int(env.get("DRAIN_TIMEOUT_MS", "20000")) / 1000
    check("every old instance drained and exited 0", all(code == 0 and took < drain_s for _, code, took in exits),
          ", ".join("instance %d: exit %s after %.2f s" % e for e in exits))

    for inst in instances:
        if inst.proc.poll() is None:
            inst.proc.send_signal(signal.SIGTERM)
    for inst in instances:
        try:
            inst.proc.wait(20)
        except subprocess.TimeoutExpired:
            inst.proc.kill()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds-per-round", type=float, default=6)
    # --signal KILL: stop the old instance without a drain, to watch the checks fail
    ap.add_argument("--signal", default="TERM", choices=["TERM", "KILL"])
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="todo-rolling-")
    os.chmod(workdir, 0o755)  # scripts/pg runs PostgreSQL as its own user
    pgdir = os.path.join(workdir, "pg")
    env = dict(os.environ)
    for k in ("DATABASE_URL", "TEST_DATABASE_URL", "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_PER_ADDRESS_PER_SECOND"):
        env.pop(k, None)
    url = subprocess.run([os.path.join(ROOT, "scripts/pg"), "start", pgdir], env=dict(env, PG_THROWAWAY="1"),
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    env.update({"DATABASE_URL": url, "BUS": "postgres", "WORKERS": str(WORKERS), "PORT": str(port),
                "LOG_LEVEL": "info", "ACCESS_LOG": "off", "AUTH_DEV_SECRET": "rolling-" + os.urandom(12).hex()})
    try:
        subprocess.run([args.host, "migrate"] + BUNDLES, env=env, cwd=ROOT, check=True, capture_output=True)
        results = asyncio.run(main_async(args, env, url, port, workdir))
    finally:
        subprocess.run([os.path.join(ROOT, "scripts/pg"), "stop", pgdir], cwd=ROOT, capture_output=True)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    log("logs in %s" % workdir)
    print("rolling restart: %d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
