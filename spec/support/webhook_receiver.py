#!/usr/bin/env python3
"""A webhook receiver for the notification specs (a real HTTP server in its own process).

Usage: webhook_receiver.py PORT LOG PLAN [SECRET_FILE]
Each request is appended to LOG as one JSON line {"t": arrival time, "headers": {...},
"body": "...", "verified": bool|null}; the n-th request (1-based) is answered by the n-th
item of PLAN (the last item repeats): a status code ("500", "200", "404") or "sleep:S"
(wait S seconds, then 200: longer than the sender's timeout, so the sender gives up).
When SECRET_FILE exists, each request's signature is checked with `verify`, the receiver
example of docs/api.md, and the result recorded as "verified".
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log_path, plan = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
secret_file = sys.argv[4] if len(sys.argv) > 4 else None
count = 0
lock = threading.Lock()


def verify(secret: str, headers, raw_body: bytes, tolerance=300) -> bool:
    """The receiver check of docs/api.md, as documented."""
    ts = headers["X-Todo-Timestamp"]
    if abs(time.time() - int(ts)) > tolerance:
        return False  # a replay of an old request
    mac = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v1=" + mac, headers["X-Todo-Signature"])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        verified = None
        if secret_file and os.path.exists(secret_file):
            with open(secret_file) as f:
                verified = verify(f.read().strip(), self.headers, body)
        with lock:
            count += 1
            step = plan[min(count, len(plan)) - 1]
            with open(log_path, "a") as f:
                f.write(json.dumps({"t": time.time(), "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body.decode(), "verified": verified}) + "\n")
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
