"""make chaos DAPR=1 (scripts/chaos --dapr): the `make up-dapr` topology for scripts/chaos.py.

Each bundle of services/ runs as its own todo-host (BUS=dapr, WORKERS=1) beside its own
real daprd (scripts/install-daprd), over one redis-server with the components of
dapr/local/ (pub/sub on Redis Streams, the cron binding that wakes the reminder
scheduler, the state store, a local-file secret store): the same processes, flags and
components as scripts/up-dapr, started here so that each can be killed and restarted by
chaos's supervisor (up-dapr stops everything when one process exits). The faults add a
SIGKILL of each daprd sidecar to chaos's list; the checks are chaos's, with "caught up"
meaning the outbox relay has published everything and every consumer group has
recorded every task event (the dapr driver records each delivery in bus_inbox).
"""
import json
import os
import shutil
import subprocess
import time

import chaos

SIDE = "-daprd"


class DaprStack(chaos.Stack):
    def __init__(self, host, workdir):
        super().__init__(host, workdir)
        self.env["BUS"] = "dapr"
        self.env["DAPR_API_TOKEN"] = os.urandom(16).hex()
        self.env["APP_API_TOKEN"] = os.urandom(16).hex()
        self.dapr_ports = {}   # bundle -> (http, grpc, internal)
        self.daprd = subprocess.run([os.path.join(chaos.ROOT, "scripts/install-daprd")], cwd=chaos.ROOT,
                                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is missing (scripts/bootstrap installs it)")

    def killable(self):
        return self.bundles + [b + SIDE for b in self.bundles]

    def start(self):
        self.redis_port = chaos.free_port()
        logf = open(os.path.join(self.workdir, "redis.log"), "a")
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", self.workdir],
                                      stdout=logf, stderr=logf)
        res = os.path.join(self.workdir, "resources")
        os.makedirs(res, exist_ok=True)
        secrets = os.path.join(self.workdir, "secrets.json")
        for f in sorted(os.listdir(os.path.join(chaos.ROOT, "dapr/local"))):
            if f.endswith(".yaml"):
                text = open(os.path.join(chaos.ROOT, "dapr/local", f)).read()
                text = text.replace("localhost:6379", "127.0.0.1:%d" % self.redis_port)
                text = text.replace(".data/dapr/secrets.json", secrets)
                open(os.path.join(res, f), "w").write(text)
        self.resources = res
        self.url = self.pg("start")
        self.env["DATABASE_URL"] = self.url
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"database-url": self.url, "webhook-signing-key": os.urandom(24).hex()}, f)
        subprocess.run([self.host, "migrate"] + ["services/" + b for b in self.bundles], env=self.env,
                       cwd=chaos.ROOT, check=True, capture_output=True)
        for b in self.bundles:
            self.ports[b] = chaos.free_port()
            self.dapr_ports[b] = (chaos.free_port(), chaos.free_port(), chaos.free_port())
            self.spawn(b)
            self.spawn(b + SIDE)
        for b in self.bundles:
            chaos.wait_until(lambda b=b: chaos.http_status("GET", self.ports[b], "/healthz") == 200, 30,
                             "bundle %s did not come up" % b)
            chaos.wait_until(lambda b=b: chaos.http_status("GET", self.dapr_ports[b][0], "/v1.0/healthz") == 204,
                             90, "daprd of %s did not come up" % b)
        chaos.threading.Thread(target=self.supervise, daemon=True).start()

    def spawn(self, name):
        b = name[:-len(SIDE)] if name.endswith(SIDE) else name
        http_port, grpc_port, internal_port = self.dapr_ports[b]
        env = dict(self.env, POD_NAME=b + "-0")
        logf = open(os.path.join(self.workdir, name + ".log"), "a")
        if name.endswith(SIDE):
            cmd = [self.daprd, "--app-id", b, "--app-port", str(self.ports[b]), "--app-protocol", "http",
                   "--app-channel-address", "127.0.0.1", "--dapr-http-port", str(http_port),
                   "--dapr-grpc-port", str(grpc_port), "--dapr-internal-grpc-port", str(internal_port),
                   "--dapr-listen-addresses", "127.0.0.1", "--enable-metrics=false", "--log-level", "info",
                   "--resources-path", self.resources]
        else:
            env.update(PORT=str(self.ports[b]), DAPR_HTTP_PORT=str(http_port))
            cmd = [self.host, "run", "services/" + b]
        self.procs[name] = subprocess.Popen(cmd, env=env, cwd=chaos.ROOT, stdout=logf, stderr=logf)

    def stop(self):
        super().stop()
        if getattr(self, "redis", None) and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    def lag(self):
        """What is not yet delivered: relay partitions behind, task events not yet in a group."""
        relay = self.sql("""SELECT count(*) FROM bus_cursors c JOIN bus_partitions p USING (topic, part)
            WHERE c.grp = 'relay' AND c.seq < p.last_seq""")[0][0]
        groups = self.sql("""SELECT count(*) FROM bus_outbox o WHERE o.topic = 'task-events' AND (
            NOT EXISTS (SELECT 1 FROM bus_inbox i WHERE i.grp = 'recurring-task' AND i.event_id = o.id)
            OR NOT EXISTS (SELECT 1 FROM task_history h WHERE h.event_id = o.id))""")[0][0]
        return int(relay), int(groups)
