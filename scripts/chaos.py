#!/usr/bin/python3
"""make chaos: the whole local stack under load while it is being broken, then the checks.

Starts a durable PostgreSQL cluster of its own (scripts/pg; not the throwaway settings: an
immediate stop must not lose a commit that was acknowledged), migrates every bundle of
services/ and runs each bundle as its own todo-host process (WORKERS=1, BUS=postgres), so
that one can be killed; a supervisor restarts a killed process half a second later, as a
process manager would. Then, for --seconds:
  - REST writers (several users) create, rename, complete, delete tasks and complete
    recurring ones, recording every acknowledged (2xx) write;
  - WebSocket clients (python3-websockets) keep every user's task state from its events,
    reconnecting and resuming after every disconnect (spec/contracts/websocket.md);
  - at seeded random moments: SIGKILL of each bundle's process in turn, an immediate stop
    and restart of PostgreSQL (during which the API must answer 503 `unavailable` quickly
    and the WebSocket connections must stay up), and a WebSocket client cut mid-stream.
Afterwards it waits for the consumers to catch up and checks (see CHECKS below), prints a
summary with counts and a last line "chaos: N passed, N failed"; exit status 1 on any
violation. --smoke: a short run (about a minute) for scripts/test, so this harness cannot rot.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB_DOWN_SECONDS = 3


def log(*a):
    print("chaos:", *a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------- the stack

class Stack:
    """PostgreSQL and one todo-host process per bundle, each restartable."""

    def __init__(self, host, workdir):
        self.host = host
        self.workdir = workdir
        self.pgdir = os.path.join(workdir, "pg")
        self.procs = {}     # bundle -> Popen
        self.ports = {}     # bundle -> port
        self.stopping = False
        self.killed = {}    # bundle -> time of the SIGKILL, until restarted
        self.lock = threading.Lock()
        self.env = dict(os.environ)
        self.env.update({
            "BUS": "postgres", "WORKERS": "1", "LOG_LEVEL": "warn",
            "AUTH_DEV_SECRET": "chaos-" + os.urandom(12).hex(),
            "PG_POOL_TIMEOUT_MS": "1000",
        })
        self.bundles = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                              if os.path.isfile(os.path.join(ROOT, "services", d, "service.lua")))

    def pg(self, cmd, mode=None):
        env = dict(self.env)
        env.pop("PG_THROWAWAY", None)
        if mode:
            env["PG_STOP_MODE"] = mode
        out = subprocess.run([os.path.join(ROOT, "scripts/pg"), cmd, self.pgdir], env=env, cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("scripts/pg %s: %s" % (cmd, out.stderr))
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    def start(self):
        self.url = self.pg("start")
        self.env["DATABASE_URL"] = self.url
        subprocess.run([self.host, "migrate"] + ["services/" + b for b in self.bundles], env=self.env,
                       cwd=ROOT, check=True, capture_output=True)
        for b in self.bundles:
            self.ports[b] = free_port()
            self.spawn(b)
        for b in self.bundles:
            wait_until(lambda b=b: http_status("GET", self.ports[b], "/healthz") == 200, 20,
                       "bundle %s did not come up" % b)
        threading.Thread(target=self.supervise, daemon=True).start()

    def spawn(self, b):
        env = dict(self.env, PORT=str(self.ports[b]))
        logf = open(os.path.join(self.workdir, b + ".log"), "a")
        self.procs[b] = subprocess.Popen([self.host, "run", "services/" + b], env=env, cwd=ROOT,
                                         stdout=logf, stderr=logf)

    def killable(self):
        """What the faults SIGKILL, one each (scripts/chaos_dapr.py adds the sidecars)."""
        return self.bundles

    def kill(self, b):
        with self.lock:
            self.killed[b] = time.time()
            os.kill(self.procs[b].pid, signal.SIGKILL)

    def supervise(self):
        while not self.stopping:
            time.sleep(0.1)
            with self.lock:
                for b, p in self.procs.items():
                    if p.poll() is not None and not self.stopping and time.time() - self.killed.get(b, 0) > 0.5:
                        self.killed.pop(b, None)
                        self.spawn(b)

    def token(self, sub):
        return subprocess.run([self.host, "token", "--sub", sub], env=self.env, capture_output=True,
                              text=True, check=True).stdout.strip()

    def sql(self, q):
        out = subprocess.run(["psql", self.url, "-XAtq", "-F", "\t", "-c", q], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("psql: " + out.stderr)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def stop(self):
        self.stopping = True
        with self.lock:
            pass
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.pg("stop")


def wait_until(f, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if f():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(what)


def http(method, port, path, token=None, body=None, timeout=5):
    """(status, decoded body); raises OSError when there was no answer."""
    c = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = "Bearer " + token
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        data = r.read()
        try:
            data = json.loads(data) if data else None
        except ValueError:
            pass
        return r.status, data
    finally:
        c.close()


def http_status(method, port, path, token=None):
    try:
        return http(method, port, path, token, timeout=2)[0]
    except OSError:
        return None


# ---------------------------------------------------------------- REST writers

class Writer(threading.Thread):
    """One user's writer: random changes of its own tasks, each acknowledged one recorded."""

    def __init__(self, stack, user, token, rng, stop, deadline):
        super().__init__(daemon=True)
        self.stack, self.user, self.token, self.rng, self.stop = stack, user, token, rng, stop
        self.deadline = deadline     # reminders are set to fire before it
        self.reminders = {}          # task id -> remind_at, of tasks left alone afterwards
        self.acked = {}        # task id -> {"version", "title", "deleted"}
        self.unanswered = {}   # task id -> [(kind, status, time sent)]: writes after its last acknowledged one
        #                        that got no 2xx nor 4xx (no answer, a cut, a 503): committed or not,
        #                        nobody can tell (the checks accept either outcome, see verdict)
        self.live = []         # ids this writer may still change (no unanswered write on them)
        self.recurring = []    # ids of pending recurring occurrences created here
        self.ops = {"acked": 0, "failed": 0}
        self.pause = 0.02      # seconds between two writes (scripts/soak paces its own)
        self.sent_at = None    # when the last request was sent

    def call(self, method, path, body=None):
        self.sent_at = round(time.time(), 3)
        try:
            return http(method, self.stack.ports["api"], path, self.token, body)
        except OSError:
            return None, None

    def record(self, task, deleted=False):
        self.acked[task["id"]] = {"version": task["version"], "title": task["title"], "deleted": deleted}
        self.ops["acked"] += 1

    def fail(self, tid=None, kind=None, status=None):
        self.ops["failed"] += 1
        if tid is not None and (status is None or status >= 500):
            self.unanswered.setdefault(tid, []).append((kind, status, self.sent_at))
        if tid in self.live:
            self.live.remove(tid)   # its state is unknown now: leave it alone
        time.sleep(0.05)

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            r = self.rng.random()
            if r < 0.4 or len(self.live) < 3:
                s, b = self.call("POST", "/api/tasks", {"title": "%s-%d" % (self.user, n)})
                if s == 201:
                    self.record(b)
                    self.live.append(b["id"])
                else:
                    self.fail()
            elif r < 0.5:
                s, b = self.call("POST", "/api/tasks", {"title": "%s-r%d" % (self.user, n),
                                                        "due_at": "2030-01-01T09:00:00Z",
                                                        "recurrence": {"rule": "FREQ=DAILY"}})
                if s == 201:
                    self.record(b)
                    self.recurring.append(b["id"])
                else:
                    self.fail()
            elif r < 0.56 and "notification" in self.stack.bundles and self.deadline - time.time() > 4:
                at = time.time() + 1 + self.rng.random() * (self.deadline - time.time() - 3)
                iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + ".%03dZ" % int(at % 1 * 1000)
                s, b = self.call("POST", "/api/tasks", {"title": "%s-m%d" % (self.user, n),
                                                        "reminders": [{"at": iso}]})
                if s == 201:
                    self.record(b)
                    self.reminders[b["id"]] = iso
                else:
                    self.fail()
            elif r < 0.6 and self.recurring:
                tid = self.recurring.pop(0)
                s, b = self.call("POST", "/api/tasks/%s/complete" % tid)
                if s == 200:
                    self.record(b["task"] if "task" in b else b)
                else:
                    self.fail(tid, "complete", s)
            else:
                tid = self.rng.choice(self.live)
                if r < 0.8:
                    kind = "update"
                    s, b = self.call("PATCH", "/api/tasks/" + tid, {"title": "%s-%d-renamed" % (self.user, n)})
                    ok = s == 200
                elif r < 0.9:
                    kind = "complete"
                    s, b = self.call("POST", "/api/tasks/%s/complete" % tid)
                    ok = s == 200
                    if ok and "task" in b:
                        b = b["task"]
                else:
                    kind = "delete"
                    s, b = self.call("DELETE", "/api/tasks/" + tid)
                    ok = s in (200, 204)
                    if ok:
                        prev = self.acked[tid]
                        self.acked[tid] = {"version": prev["version"], "title": prev["title"], "deleted": True}
                        self.ops["acked"] += 1
                        self.live.remove(tid)
                        continue
                if ok:
                    self.record(b)
                else:
                    self.fail(tid, kind, s)
            time.sleep(self.pause)


# ---------------------------------------------------------------- WebSocket clients

class WsClient:
    """One device of a user: the user's tasks as the events say, resumed after every cut."""

    def __init__(self, stack, user, token, name):
        self.stack, self.user, self.token, self.name = stack, user, token, name
        self.state = {}          # task id -> version (live tasks)
        self.deleted = set()
        self.last = None         # last applied event_id
        self.ws = None
        self.connects = 0
        self.events = 0
        self.duplicates = 0
        self.gaps = 0
        self.resyncs = 0
        self.gap_log = []        # (when, last applied, id received, connection number)
        self.closed_at = []      # times the connection dropped (not cut by us)
        self.cutting = False

    def load_rest(self):
        state, cursor = {}, None
        while True:
            path = "/api/tasks?limit=200" + ("&cursor=" + cursor if cursor else "")
            s, b = http("GET", self.stack.ports["api"], path, self.token)
            if s != 200:
                raise OSError("list: %s" % s)
            for t in b["items"]:
                state[t["id"]] = t["version"]
            cursor = b.get("next_cursor")
            if not cursor:
                return state

    def apply(self, m):
        eid = m.get("event_id")
        if self.last is not None and eid is not None:
            if eid <= self.last:
                self.duplicates += 1
                return
            if eid != self.last + 1:
                self.gaps += 1
                self.gap_log.append((round(time.time(), 2), self.last, eid, self.connects))
        self.events += 1
        self.last = eid
        t = m.get("task")
        if not t:
            return
        if m["type"] == "task.deleted":
            self.deleted.add(t["id"])
            self.state.pop(t["id"], None)
        elif t["id"] not in self.deleted and m["version"] > self.state.get(t["id"], 0):
            self.state[t["id"]] = m["version"]

    async def run(self, stop):
        url = "ws://127.0.0.1:%d/ws" % self.stack.ports["websocket"]
        while not stop.is_set():
            try:
                async with websockets.connect(url, subprotocols=["todo.v1", "bearer." + self.token],
                                              open_timeout=5, ping_interval=None, max_size=None) as ws:
                    self.ws = ws
                    self.connects += 1
                    hello = json.loads(await ws.recv())
                    if self.last is None:
                        await ws.send(json.dumps({"type": "ping"}))
                        self.state = await asyncio.get_running_loop().run_in_executor(None, self.load_rest)
                        self.last = hello["event_id"]
                    else:
                        await ws.send(json.dumps({"type": "resume", "after": self.last}))
                    async for raw in ws:
                        m = json.loads(raw)
                        if m["type"] == "resync":
                            self.resyncs += 1
                            self.state = await asyncio.get_running_loop().run_in_executor(None, self.load_rest)
                            self.last = m["event_id"]
                        elif m["type"].startswith("task.") or m["type"] in ("reminder.due", "notification"):
                            self.apply(m)
            except Exception:
                pass
            self.ws = None
            if self.cutting:
                self.cutting = False
            elif not stop.is_set():
                self.closed_at.append(time.time())
            await asyncio.sleep(0.2)

    def cut(self, loop):
        """Drop the TCP connection mid-stream (no close frame)."""
        ws = self.ws
        if ws is not None:
            self.cutting = True
            loop.call_soon_threadsafe(ws.transport.abort)
            return True
        return False


# ---------------------------------------------------------------- faults

def pg_outage(stack, token, ws_clients, report):
    """Immediate stop of PostgreSQL: 503s, the WebSocket stays up; then the recovery time."""
    drops_before = sum(len(c.closed_at) for c in ws_clients)
    stack.pg("stop", mode="immediate")
    down_at = time.time()
    time.sleep(0.3)
    t0 = time.time()
    try:
        s, b = http("GET", stack.ports["api"], "/api/tasks", token, timeout=10)
    except OSError as e:
        s, b = None, str(e)
    report["down_status"] = s
    report["down_code"] = (b or {}).get("error", {}).get("code") if isinstance(b, dict) else b
    report["down_answer_seconds"] = round(time.time() - t0, 3)
    time.sleep(max(0, DB_DOWN_SECONDS - (time.time() - down_at)))
    report["ws_drops_while_down"] = sum(len(c.closed_at) for c in ws_clients) - drops_before
    stack.pg("start")
    back = time.time()
    rec = None
    while time.time() - back < 30:
        try:
            if http("GET", stack.ports["api"], "/api/tasks?limit=1", token, timeout=2)[0] == 200:
                rec = time.time() - back
                break
        except OSError:
            pass
        time.sleep(0.02)
    report["recovery_seconds"] = round(rec, 3) if rec is not None else None
    # and the events: a task created now reaches the user's WebSocket client
    client = ws_clients[0]
    tid = None
    while tid is None and time.time() - back < 30:
        try:
            s, b = http("POST", stack.ports["api"], "/api/tasks", token, {"title": "after the outage"}, timeout=2)
            if s == 201:
                tid = b["id"]
        except OSError:
            time.sleep(0.02)
    ev = None
    while tid and time.time() - back < 30:
        if tid in client.state:
            ev = time.time() - back
            break
        time.sleep(0.01)
    report["event_recovery_seconds"] = round(ev, 3) if ev is not None else None


# ---------------------------------------------------------------- checks

def verdict(a, unanswered, got, deleted_version):
    """One task's last acknowledged write against the database: "ok", "lost", or
    "unanswered delete committed".

    a: what was acknowledged ({"version", "title", "deleted"}); unanswered: the writes on the
    task after it that got no 2xx nor 4xx, [(kind, status, time sent)]; got: the row, (version, title)
    or None; deleted_version: the version in the task's task.deleted event in the outbox, or
    None. A write whose answer was lost (SIGKILL of the api between COMMIT and the answer,
    PostgreSQL stopped after it flushed the COMMIT but before the answer left: the host sees
    a lost connection and answers 503) may have committed: a later version, or for a delete
    a task that is gone. Gone is accepted only then, and only with the task.deleted event
    the same transaction wrote, at the acknowledged version or later; anything else gone or
    older is a lost acknowledged write.
    """
    if a["deleted"]:
        return "ok" if got is None else "lost"
    if got is None:
        if (any(u[0] == "delete" for u in unanswered) and deleted_version is not None
                and deleted_version >= a["version"]):
            return "unanswered delete committed"
        return "lost"
    if got[0] < a["version"] or (got[0] == a["version"] and got[1] != a["title"]):
        return "lost"
    return "ok"


def check_all(stack, writers, clients, report, outage=True):
    results = []

    def check(name, ok, detail):
        results.append((name, ok, detail))
        print("  %-4s %-58s %s" % ("ok" if ok else "FAIL", name, detail), flush=True)

    # acknowledged writes: every one is in the database (or superseded by a later version)
    lost = 0
    acked = 0
    committed_unanswered = 0
    for w in writers:
        ids = list(w.acked)
        if not ids:
            continue
        rows = {r[0]: (int(r[1]), r[2]) for r in stack.sql(
            "SELECT id, version, title FROM tasks WHERE user_id = '%s'" % w.user)}
        # task id -> (version, when its transaction began) of its task.deleted event
        deleted = {r[0]: (int(r[1]), float(r[2])) for r in stack.sql(
            """SELECT event->>'subject', max((event->'data'->>'version')::integer),
                      round(extract(epoch FROM max(created_at))::numeric, 3) FROM bus_outbox
               WHERE topic = 'task-events' AND key = '%s' AND event->>'type' = 'task.deleted'
               GROUP BY 1""" % w.user)}
        for tid, a in w.acked.items():
            acked += 1
            got = rows.get(tid)
            v = verdict(a, w.unanswered.get(tid, []), got, deleted.get(tid, (None,))[0])
            if v == "lost":
                lost += 1
                print("  lost: task %s acknowledged %r, database has %r; then unanswered: %r; "
                      "task.deleted event at version %r" % (tid, a, got, w.unanswered.get(tid, []),
                                                            deleted.get(tid)), flush=True)
            elif v == "unanswered delete committed":
                committed_unanswered += 1
                print("  note: task %s: its delete got no 2xx (%r: kind, status, time sent) but committed "
                      "(task.deleted at version %d, its transaction began at %.3f)"
                      % (tid, w.unanswered[tid], deleted[tid][0], deleted[tid][1]), flush=True)
    ops = sum(w.ops["acked"] for w in writers)
    unanswered = sum(len(k) for w in writers for k in w.unanswered.values())
    check("acknowledged writes lost = 0", lost == 0,
          "%d lost of %d writes (%d tasks); %d writes on them unanswered, %d of them deletes that committed"
          % (lost, ops, acked, unanswered, committed_unanswered))

    # every task event processed exactly once by each consumer group
    outbox = int(stack.sql("SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'")[0][0])
    miss_hist = int(stack.sql("""SELECT count(*) FROM bus_outbox o WHERE topic = 'task-events'
        AND NOT EXISTS (SELECT 1 FROM task_history h WHERE h.event_id = o.id)""")[0][0])
    extra_hist = int(stack.sql("""SELECT count(*) FROM task_history h WHERE NOT EXISTS
        (SELECT 1 FROM bus_outbox o WHERE o.id = h.event_id)""")[0][0])
    check("history: each task event once", miss_hist == 0 and extra_hist == 0,
          "%d events, %d missing, %d extra" % (outbox, miss_hist, extra_hist))
    miss_rt = int(stack.sql("""SELECT count(*) FROM bus_outbox o WHERE topic = 'task-events'
        AND NOT EXISTS (SELECT 1 FROM bus_inbox i WHERE i.grp = 'recurring-task' AND i.event_id = o.id)""")[0][0])
    check("recurring-task: each task event once", miss_rt == 0,
          "%d events, %d not in bus_inbox" % (outbox, miss_rt))
    dead = int(stack.sql("SELECT count(*) FROM bus_dead_letters")[0][0])
    check("no dead letters", dead == 0, "%d parked" % dead)

    # recurring: each completed occurrence has exactly one successor
    rows = stack.sql("""SELECT t.id, (SELECT count(*) FROM tasks n WHERE n.spawned_from = t.id),
        (SELECT count(*) FROM task_series_spawns s WHERE s.source_id = t.id)
        FROM tasks t WHERE t.series_id IS NOT NULL AND t.completed""")
    bad = [r for r in rows if r[1] != "1" or r[2] != "1"]
    check("each completed occurrence has one successor", not bad,
          "%d completed occurrences, %d without exactly one" % (len(rows), len(bad)))

    # reminders: each one due during the run produced exactly one notification
    if "notification" in stack.bundles:
        due, bad = 0, 0
        for w in writers:
            counts = {r[0]: int(r[1]) for r in stack.sql(
                "SELECT task_id, count(*) FROM notifications WHERE user_id = '%s' GROUP BY task_id" % w.user)}
            for tid in w.reminders:
                due += 1
                bad += counts.get(tid, 0) != 1
        check("each reminder due fired exactly one notification", bad == 0,
              "%d reminders due, %d without exactly one notification" % (due, bad))

    # WebSocket clients: no gap, no duplicate, the database's state
    for c in clients:
        db = {r[0]: int(r[1]) for r in stack.sql("SELECT id, version FROM tasks WHERE user_id = '%s'" % c.user)}
        newest = stack.sql("SELECT last_id FROM ws_log_users WHERE user_id = '%s'" % c.user)
        newest = int(newest[0][0]) if newest else 0
        diff = len(set(db.items()) ^ set(c.state.items()))
        check("ws %s: same tasks as the database" % c.name,
              diff == 0 and c.gaps == 0 and c.duplicates == 0 and c.last == newest,
              "%d tasks, %d differ; %d events, %d gaps, %d dups, last %s/%d, %d connects, %d resyncs"
              % (len(db), diff, c.events, c.gaps, c.duplicates, c.last, newest, c.connects, c.resyncs))
        for g in c.gap_log:
            print("         gap at %.2f: after %d came %d (connection %d)" % g)

    if not outage:   # scripts/soak: no faults, so no outage to check
        return results
    # the outage
    check("db down: API answers 503 unavailable within 3 s",
          report.get("down_status") == 503 and report.get("down_code") == "unavailable"
          and report.get("down_answer_seconds", 99) <= 3,
          "%s %s in %s s" % (report.get("down_status"), report.get("down_code"), report.get("down_answer_seconds")))
    check("db down: WebSocket connections stay up", report.get("ws_drops_while_down") == 0,
          "%s dropped" % report.get("ws_drops_while_down"))
    rec = report.get("recovery_seconds")
    check("db back: API serves again within 1 s", rec is not None and rec <= 1.0, "%s s" % rec)
    ev = report.get("event_recovery_seconds")
    check("db back: a new task reaches WebSocket clients within 1 s", ev is not None and ev <= 1.0, "%s s" % ev)
    return results


def caught_up(stack, clients):
    lag = stack.sql("""SELECT count(*) FROM bus_cursors c JOIN bus_partitions p USING (topic, part)
        WHERE NOT c.broadcast AND c.seq < p.last_seq""")
    if lag[0][0] != "0":
        return False
    if hasattr(stack, "lag") and any(stack.lag()):   # BUS=dapr: the deliveries, too
        return False
    if "notification" in stack.bundles and stack.sql("""SELECT count(*) FROM reminder_schedule
            WHERE state = 'scheduled' AND remind_at < now()""")[0][0] != "0":
        return False
    for c in clients:
        newest = stack.sql("SELECT last_id FROM ws_log_users WHERE user_id = '%s'" % c.user)
        if c.last != (int(newest[0][0]) if newest else 0):
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.path.join(ROOT, "build/todo-host"))
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="a short run (about a minute)")
    ap.add_argument("--dapr", action="store_true",
                    help="the make up-dapr topology: BUS=dapr, a daprd beside each bundle, Redis Streams")
    args = ap.parse_args()
    if args.smoke:
        args.seconds = min(args.seconds, 35)
        args.users = 2
    rng = random.Random(args.seed)
    log("seed %d, %d s, %d users%s" % (args.seed, args.seconds, args.users, ", daprd sidecars" if args.dapr else ""))

    workdir = tempfile.mkdtemp(prefix="todo-chaos.")
    os.chmod(workdir, 0o755)  # the postgres user enters it (scripts/pg, as root)
    if args.dapr:
        from chaos_dapr import DaprStack
        stack = DaprStack(os.path.abspath(args.host), workdir)
    else:
        stack = Stack(os.path.abspath(args.host), workdir)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    log("stack up: %s (logs in %s)" % (", ".join("%s:%d" % kv for kv in stack.ports.items()), workdir))
    stop = threading.Event()
    users = ["chaos-u%d-%d" % (i, args.seed) for i in range(args.users)]
    tokens = {u: stack.token(u) for u in users}
    deadline = time.time() + args.seconds
    writers = [Writer(stack, u, tokens[u], random.Random(rng.random()), stop, deadline) for u in users]
    clients = [WsClient(stack, u, tokens[u], "%s/%d" % (u, k)) for u in users for k in range(2)]
    loop = asyncio.new_event_loop()
    ws_stop = asyncio.Event() if sys.version_info >= (3, 10) else None

    async def ws_main():
        nonlocal ws_stop
        ws_stop = asyncio.Event()
        await asyncio.gather(*(c.run(ws_stop) for c in clients))

    ws_thread = threading.Thread(target=lambda: loop.run_until_complete(ws_main()), daemon=True)
    ws_thread.start()
    for w in writers:
        w.start()

    # the faults: each bundle killed in turn, PostgreSQL restarted, a client cut; seeded times
    faults = [("kill", b) for b in stack.killable()] + [("pg", None), ("cut", None)]
    rng.shuffle(faults)
    span = args.seconds * 0.7
    times = sorted(args.seconds * 0.1 + rng.random() * span for _ in faults)
    # faults stay apart (1.5 s at least after the previous one ended) so each one's
    # effect can be told; the outage takes a few seconds
    report = {}
    t_start = time.time()
    last_end = 0
    for (kind, what), at in zip(faults, times):
        time.sleep(max(0, t_start + at - time.time(), last_end + 1.5 - time.time()))
        if kind == "kill":
            log("%5.1f s  SIGKILL %s (pid %d) at %.3f" % (time.time() - t_start, what, stack.procs[what].pid,
                                                        time.time()))
            stack.kill(what)
        elif kind == "pg":
            log("%5.1f s  PostgreSQL: immediate stop for %d s at %.3f" % (time.time() - t_start, DB_DOWN_SECONDS,
                                                                         time.time()))
            pg_outage(stack, tokens[users[0]], clients, report)
            log("        back: API serving after %s s, events reach WebSocket clients after %s s"
                % (report.get("recovery_seconds"), report.get("event_recovery_seconds")))
        else:
            c = rng.choice(clients)
            log("%5.1f s  cut WebSocket client %s mid-stream: %s" % (time.time() - t_start, c.name, c.cut(loop)))
        last_end = time.time()
    time.sleep(max(0, t_start + args.seconds - time.time()))
    stop.set()
    for w in writers:
        w.join(10)
    log("load stopped; waiting for the consumers and clients to catch up")
    try:
        wait_until(lambda: caught_up(stack, clients), 60, "not caught up after 60 s")
    except RuntimeError as e:
        log(str(e))
    print("chaos summary (seed %d, %.0f s, %s, machine shared with other work):" % (
        args.seed, args.seconds, "BUS=dapr with daprd sidecars" if args.dapr else "BUS=postgres"))
    print("  writes acknowledged %d, failed/unanswered %d; ws events %d, connects %d" % (
        sum(w.ops["acked"] for w in writers), sum(w.ops["failed"] for w in writers),
        sum(c.events for c in clients), sum(c.connects for c in clients)))
    try:
        results = check_all(stack, writers, clients, report)
    finally:
        loop.call_soon_threadsafe(ws_stop.set)
        stack.stop()
    failed = sum(1 for r in results if not r[1])
    print("chaos: %d passed, %d failed" % (len(results) - failed, failed))
    if failed == 0:
        subprocess.run(["rm", "-rf", workdir])
    else:
        log("logs kept in " + workdir)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
