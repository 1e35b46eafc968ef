-- The http client primitive against a local python3 HTTP/1.1 server started
-- by this spec (it runs inside the host: requests yield to the loop).
local http = require "http"

local SERVER = [=[
import json, sys, time, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def handle_any(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        conn = "%s:%s" % self.client_address
        if u.path == "/echo":
            out = {"method": self.command, "path": self.path, "body": body.decode(),
                   "headers": {k.lower(): v for k, v in self.headers.items()}, "conn": conn}
            self.send(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
        elif u.path == "/slow":
            time.sleep(int(q["ms"][0]) / 1000)
            self.send(200, b"slow")
        elif u.path == "/big":
            self.send(200, b"x" * int(q["n"][0]))
        elif u.path.startswith("/status/"):
            self.send(int(u.path[8:]), b"status")
        elif u.path == "/headers":
            self.send(200, b"", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Mixed-Case", " v ")])
        elif u.path == "/redirect":
            self.send(302, b"", [("Location", "/echo")])
        else:
            self.send(404, b"not found")
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
srv.handle_error = lambda *a: None
print(os.getpid(), srv.server_address[1], flush=True)
srv.serve_forever()
]=]

local function decode_json(s)
  local ok, json = pcall(require, "json")
  if not ok or type(json) ~= "table" or not json.decode then json = require "cjson" end
  return json.decode(s)
end

describe("http client", function()
  local proc, pid, base, script

  setup(function()
    script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(SERVER)
    f:close()
    proc = assert(io.popen("exec python3 " .. script, "r"))
    local line = assert(proc:read("l"), "test server did not start")
    local port
    pid, port = line:match("^(%d+) (%d+)$")
    base = "http://127.0.0.1:" .. port
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid) end
    if proc then proc:close() end
    if script then os.remove(script) end
  end)

  it("GETs a URL and returns status, lowercase headers and body", function()
    local res = assert(http.get(base .. "/echo?x=1"))
    assert.are.equal(200, res.status)
    assert.are.equal("application/json", res.headers["content-type"])
    local echo = decode_json(res.body)
    assert.are.equal("GET", echo.method)
    assert.are.equal("/echo?x=1", echo.path)
    assert.matches("^todo%-host/", echo.headers["user-agent"])
  end)

  it("POSTs a body with headers, without Expect: 100-continue", function()
    local body = string.rep("b", 5000)
    local res = assert(http.post(base .. "/echo", body,
      { headers = { ["content-type"] = "text/plain", ["X-Num"] = 42 } }))
    local echo = decode_json(res.body)
    assert.are.equal("POST", echo.method)
    assert.are.equal(body, echo.body)
    assert.are.equal("text/plain", echo.headers["content-type"])
    assert.are.equal("42", echo.headers["x-num"])
    assert.is_nil(echo.headers.expect)
  end)

  it("sends other methods, with and without a body", function()
    local echo = decode_json(assert(http.request { method = "put", url = base .. "/echo",
      body = "{}" }).body)
    assert.are.equal("PUT", echo.method)
    echo = decode_json(assert(http.request { method = "DELETE", url = base .. "/echo" }).body)
    assert.are.equal("DELETE", echo.method)
    local res = assert(http.request { method = "HEAD", url = base .. "/big?n=10" })
    assert.are.equal(200, res.status)
    assert.are.equal("", res.body)
  end)

  it("treats HTTP error statuses as responses", function()
    assert.are.equal(503, assert(http.get(base .. "/status/503")).status)
    assert.are.equal(404, assert(http.get(base .. "/nope")).status)
  end)

  it("joins repeated headers and trims values", function()
    local res = assert(http.get(base .. "/headers"))
    assert.are.equal("a=1, b=2", res.headers["set-cookie"])
    assert.are.equal("v", res.headers["x-mixed-case"])
  end)

  it("follows redirects only when asked", function()
    assert.are.equal(302, assert(http.get(base .. "/redirect")).status)
    local res = assert(http.get(base .. "/redirect", { follow_redirects = true }))
    assert.are.equal(200, res.status)
    assert.are.equal("GET", decode_json(res.body).method)
  end)

  it("reuses the kept-alive connection", function()
    local a = decode_json(assert(http.get(base .. "/echo")).body).conn
    local b = decode_json(assert(http.get(base .. "/echo")).body).conn
    assert.are.equal(a, b)
  end)

  it("times out", function()
    local res, err, code = http.get(base .. "/slow?ms=1500", { timeout = 0.2 })
    assert.is_nil(res)
    assert.is_string(err)
    assert.are.equal("timeout", code)
  end)

  it("limits the body size", function()
    local res = assert(http.get(base .. "/big?n=100000"))
    assert.are.equal(100000, #res.body)
    local _, err, code = http.get(base .. "/big?n=100000", { max_body = 1000 })
    assert.is_string(err)
    assert.are.equal("too_large", code)
  end)

  it("reports connection failures", function()
    local res, err, code = http.get("http://127.0.0.1:1/", { timeout = 2 })
    assert.is_nil(res)
    assert.is_string(err)
    assert.are.equal("connect", code)
  end)

  it("raises on wrong arguments", function()
    assert.has_error(function() http.request "x" end)
    assert.has_error(function() http.get("ftp://example.test/") end)
    assert.has_error(function() http.request { url = base, method = "BREW" } end)
    assert.has_error(function() http.request { url = base, body = 5 } end)
    assert.has_error(function() http.get(base, { headers = { ["x\r\ny"] = "1" } }) end)
    assert.has_error(function() http.get(base, { headers = { x = "a\r\nb: c" } }) end)
  end)
end)
