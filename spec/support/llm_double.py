#!/usr/bin/env python3
"""A TEST DOUBLE of an OpenAI-compatible chat-completions API with tool calling, for
the chat bundle's language-model mode (spec/02-integration/chat_llm_spec.lua).

It is not a language model: it answers from scripts keyed on the last user message, in
the response shape of POST /v1/chat/completions (choices[0].message with content and/or
tool_calls of type "function" whose arguments are a JSON string). After a "tool"
message it answers with text saying how many tool results it read.

  "add <title>"        one add_task call with that title
  "delete everything"  one delete_task call per task id listed in the system message
  "hello"              text only, no tool call
  "bad args"           an add_task call whose arguments are not JSON
  "slow"               answers after 3 s (the spec sets a shorter timeout)
  "error", or any text with "[fail]"   HTTP 500
  "garbage"            HTTP 200 with a body that is not JSON
  anything else        text "double: no script"

Every request is recorded (headers and body) and readable at GET /double/requests.
Requests without "Authorization: Bearer <--key>" get 401.

usage: llm_double.py --port P --key K
"""
import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) \| pending", re.M)


def completion(message):
    return {"id": "chatcmpl-double", "object": "chat.completion", "created": int(time.time()),
            "model": "double", "choices": [{"index": 0, "message": message,
                                            "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}]}


def tool_call(n, name, arguments):
    return {"id": "call_%d" % n, "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = []
    lock = threading.Lock()
    key = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/double/requests":
            with self.lock:
                self.send(200, list(self.requests))
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self.lock:
            self.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                  "body": body})
        if self.path != "/v1/chat/completions":
            return self.send(404, {"error": {"message": "unknown path"}})
        if self.headers.get("Authorization") != "Bearer " + self.key:
            return self.send(401, {"error": {"message": "invalid api key"}})
        messages = (body or {}).get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            n = sum(1 for m in messages if m.get("role") == "tool")
            return self.send(200, completion({"role": "assistant", "content": "double: read %d tool results" % n}))
        text = (last.get("content") or "").strip()
        low = text.lower()
        if "[fail]" in low:
            return self.send(500, {"error": {"message": "the double failed on purpose"}})
        if low.startswith("add "):
            return self.send(200, completion({"role": "assistant", "content": None,
                                              "tool_calls": [tool_call(1, "add_task", {"title": text[4:]})]}))
        if low == "delete everything":
            system = messages[0].get("content", "") if messages else ""
            ids = UUID.findall(system)
            calls = [tool_call(i, "delete_task", {"id": x}) for i, x in enumerate(ids)]
            return self.send(200, completion({"role": "assistant", "content": None, "tool_calls": calls}))
        if low == "hello":
            return self.send(200, completion({"role": "assistant", "content": "Hello from the double"}))
        if low == "bad args":
            return self.send(200, completion({"role": "assistant", "content": None,
                                              "tool_calls": [tool_call(1, "add_task", "{not json")]}))
        if low == "slow":
            time.sleep(3)
            return self.send(200, completion({"role": "assistant", "content": "too late"}))
        if low == "error":
            return self.send(500, {"error": {"message": "the double failed on purpose"}})
        if low == "garbage":
            return self.send(200, b"<html>not json</html>", "text/html")
        return self.send(200, completion({"role": "assistant", "content": "double: no script"}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    Handler.key = args.key
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
