#!/usr/bin/env python3
"""A webhook receiver for the notification specs (a real HTTP server in its own process).

Usage: webhook_receiver.py PORT LOG PLAN
Each request is appended to LOG as one JSON line {"t": arrival time, "headers": {...},
"body": "..."}; the n-th request (1-based) is answered by the n-th item of PLAN (the last
item repeats): a status code ("500", "200", "404") or "sleep:S" (wait S seconds, then 200:
longer than the sender's timeout, so the sender gives up). The receiver only records;
the spec verifies signatures itself.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log_path, plan = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
count = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count += 1
            step = plan[min(count, len(plan)) - 1]
            with open(log_path, "a") as f:
                f.write(json.dumps({"t": time.time(), "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body.decode()}) + "\n")
        status = 200
        if step.startswith("sleep:"):
            time.sleep(float(step[6:]))
        else:
            status = int(step)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
