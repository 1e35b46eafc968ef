#!/usr/bin/env python3
"""A TEST DOUBLE of the Dapr sidecar (daprd), HTTP only, for the contract specs.

It is not Dapr. It reproduces the parts of daprd's behaviour our app depends on,
as the Dapr HTTP contract describes it for 1.14-1.16 (publish API, GET
/dapr/subscribe, delivery answers, tokens; summed up in dapr/README.md):

  start-up   dials the app port every 100 ms until a TCP connect succeeds, then
             calls GET /dapr/subscribe once (with dapr-api-token when --app-token
             is set) and never again; a non-200, non-404 answer or a body that is
             not a list of {pubsubname, topic, route|routes.default} with string
             metadata values means "no subscriptions" (as daprd).
  publish    POST /v1.0/publish/<pubsub>/<topic>[?metadata.k=v]: 401 "invalid api
             token" without the right dapr-api-token (--api-token), 404
             ERR_PUBSUB_NOT_FOUND for an unknown component, otherwise records the
             call and answers 204 (or the next scripted failure).
  delivery   on request of the spec, POSTs a CloudEvent to the subscribed route
             like daprd: Content-Type application/cloudevents+json, pubsubName and
             traceparent headers, dapr-api-token, Content-Length or chunked body;
             reads the answer as daprd does (2xx + SUCCESS/no status/empty body =
             ack; RETRY or any other status string = retry; DROP = drop; 404 =
             drop; any other status = retry) and retries up to max_attempts.

Control API (the spec's side, same port, under /double/):
  GET  /double/state               {"subscribe": {...}, "published": [...]}
  POST /double/publish-failures    {"statuses": [500, 503]} answer the next publishes so
  POST /double/deliver             {"pubsub", "topic", "event" | "body", "chunked",
                                    "max_attempts", "token", "content_type"}
                                   -> {"outcome", "attempts": [{"status", "body"}]}
  POST /double/reset               forget published calls and scripted failures

usage: dapr_double.py --port P --app-port A [--app-token T] [--api-token T]
                      [--pubsubs pubsub,pubsub-broadcast]
"""
import argparse
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {
    "subscribe": {"calls": 0, "status": None, "headers": None, "body": None, "error": None,
                  "subscriptions": []},
    "published": [],
}
failures = []
args = None


def valid_subscriptions(body):
    """daprd's decoding of the /dapr/subscribe answer (GetSubscriptionsHTTP)."""
    try:
        subs = json.loads(body)
    except ValueError as e:
        return None, "not JSON: %s" % e
    if not isinstance(subs, list):
        return None, "not a JSON array"
    out = []
    for s in subs:
        if not isinstance(s, dict):
            return None, "an entry is not an object"
        md = s.get("metadata")
        if md is not None:
            if not isinstance(md, dict) or any(not isinstance(v, str) for v in md.values()):
                # map[string]string: one non-string value fails the whole decode
                return None, "metadata values must be strings"
        route = None
        routes = s.get("routes")
        if isinstance(routes, dict) and routes.get("default"):
            route = routes["default"]
        elif s.get("route"):
            route = s["route"]
        if not route:
            continue  # daprd drops an entry without a route, with a warning
        out.append({"pubsubname": s.get("pubsubname"), "topic": s.get("topic"),
                    "route": route, "metadata": md or {}})
    return out, None


def subscribe_at_startup():
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", args.app_port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    headers = {"Content-Type": "application/json"}
    if args.app_token:
        headers["dapr-api-token"] = args.app_token
    sub = state["subscribe"]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", args.app_port, timeout=10)
        conn.request("GET", "/dapr/subscribe", headers=headers)
        res = conn.getresponse()
        body = res.read().decode("utf-8", "replace")
        conn.close()
    except OSError as e:
        with lock:
            sub["calls"] += 1
            sub["error"] = "transport: %s" % e
        return
    with lock:
        sub["calls"] += 1
        sub["status"] = res.status
        sub["body"] = body
        sub["headers"] = {k.lower(): v for k, v in res.getheaders()}
        if res.status == 404:
            sub["subscriptions"] = []
        elif res.status != 200:
            sub["error"] = "status %d: no subscriptions, not asked again" % res.status
        else:
            subs, err = valid_subscriptions(body)
            if err:
                sub["error"] = err
            else:
                sub["subscriptions"] = subs


def deliver_once(route, body, pubsub, chunked, token, content_type):
    headers = {
        "Content-Type": content_type,
        "pubsubName": pubsub,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    if token:
        headers["dapr-api-token"] = token
    conn = http.client.HTTPConnection("127.0.0.1", args.app_port, timeout=30)
    try:
        if chunked:
            data = body.encode()
            parts = [data[i:i + 7] for i in range(0, len(data), 7)]
            headers["Transfer-Encoding"] = "chunked"
            conn.request("POST", route, body=iter(parts), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", route, body=body.encode(), headers=headers)
        res = conn.getresponse()
        text = res.read().decode("utf-8", "replace")
        return res.status, text
    except OSError as e:
        return None, "transport: %s" % e
    finally:
        conn.close()


def verdict(status, text):
    """What daprd does with the app's answer (publishMessageHTTP)."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        if not text.strip():
            return "SUCCESS"
        try:
            doc = json.loads(text)
        except ValueError:
            return "SUCCESS"
        if not isinstance(doc, dict) or "status" not in doc or doc["status"] in ("", "SUCCESS"):
            return "SUCCESS"
        if doc["status"] == "DROP":
            return "DROP"
        return "retry"  # RETRY, and any other string (values are case-sensitive)
    if status == 404:
        return "DROPPED_404"
    return "retry"


def deliver(req):
    pubsub, topic = req.get("pubsub", "pubsub"), req["topic"]
    with lock:
        subs = list(state["subscribe"]["subscriptions"])
    route = next((s["route"] for s in subs if s["pubsubname"] == pubsub and s["topic"] == topic), None)
    if route is None:
        return {"outcome": "NO_SUBSCRIPTION", "attempts": []}
    if not route.startswith("/"):
        route = "/" + route
    if "body" in req:
        body = req["body"]
    else:
        ev = dict(req["event"])
        ev.setdefault("topic", topic)
        ev.setdefault("pubsubname", pubsub)
        body = json.dumps(ev)
    token = req["token"] if "token" in req else args.app_token
    attempts = []
    outcome = "RETRY"
    for _ in range(int(req.get("max_attempts", 1))):
        status, text = deliver_once(route, body, pubsub, req.get("chunked", False), token,
                                    req.get("content_type", "application/cloudevents+json"))
        attempts.append({"status": status, "body": text})
        v = verdict(status, text)
        if v != "retry":
            outcome = v
            break
        time.sleep(float(req.get("interval", 0.05)))
    return {"outcome": outcome, "attempts": attempts}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("dapr-double: " + (fmt % a) + "\n")

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, doc=None, text=None, ctype="application/json"):
        data = b""
        if doc is not None:
            data = json.dumps(doc).encode()
        elif text is not None:
            data, ctype = text.encode(), "text/plain"
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/double/state":
            with lock:
                return self.answer(200, state)
        if path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
            return self.answer(204)
        return self.answer(404, {"errorCode": "ERR_DIRECT_INVOKE", "message": "not in the double"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path == "/double/reset":
            with lock:
                state["published"].clear()
                failures.clear()
            return self.answer(204)
        if url.path == "/double/publish-failures":
            with lock:
                failures.extend(json.loads(raw)["statuses"])
            return self.answer(204)
        if url.path == "/double/deliver":
            return self.answer(200, deliver(json.loads(raw)))
        parts = url.path.split("/")
        if len(parts) == 5 and parts[1] == "v1.0" and parts[2] == "publish":
            return self.publish(urllib.parse.unquote(parts[3]), urllib.parse.unquote(parts[4]),
                                url.query, raw)
        return self.answer(404, {"errorCode": "ERR_NOT_FOUND", "message": "not in the double"})

    def publish(self, pubsub, topic, query, raw):
        if args.api_token and self.headers.get("dapr-api-token") != args.api_token:
            return self.answer(401, text="invalid api token")
        if pubsub not in args.pubsubs:
            return self.answer(404, {"errorCode": "ERR_PUBSUB_NOT_FOUND",
                                     "message": "pubsub %s not found" % pubsub})
        if not topic:
            return self.answer(404, {"errorCode": "ERR_TOPIC_NAME_EMPTY", "message": "topic is empty"})
        metadata = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if k.startswith("metadata.") and k[9:] not in metadata:  # first value wins
                metadata[k[9:]] = v
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        call = {"pubsub": pubsub, "topic": topic, "metadata": metadata, "raw": text, "body": body,
                "content_type": self.headers.get("Content-Type"),
                "token": self.headers.get("dapr-api-token")}
        with lock:
            status = failures.pop(0) if failures else 204
            call["answered"] = status
            state["published"].append(call)
        if status == 204:
            return self.answer(204)
        return self.answer(status, {"errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
                                    "message": "scripted failure of the double"})


def main():
    global args
    p = argparse.ArgumentParser(description="a test double of daprd's HTTP contract")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--app-port", type=int, required=True)
    p.add_argument("--app-token", default=None)
    p.add_argument("--api-token", default=None)
    p.add_argument("--pubsubs", default="pubsub,pubsub-broadcast")
    args = p.parse_args()
    args.pubsubs = set(args.pubsubs.split(","))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=subscribe_at_startup, daemon=True).start()
    sys.stderr.write("dapr-double: listening on %d, app on %d\n" % (args.port, args.app_port))
    server.serve_forever()


if __name__ == "__main__":
    main()
