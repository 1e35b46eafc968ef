-- The http client's `deny_private` option: private, loopback, link-local and reserved
-- addresses refused at connect time, whatever name resolved to them. Names are pinned to
-- addresses with the `resolve` option (CURLOPT_RESOLVE), so no DNS server and no
-- /etc/hosts edit is needed: a refused address is never connected to, so the addresses
-- need not exist. Allowed connections go to a local python3 server started here.
local http = require "http"

local SERVER = [=[
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/to":
            self.send_response(302)
            self.send_header("Location", parse_qs(u.query)["u"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print(os.getpid(), srv.server_address[1], flush=True)
srv.serve_forever()
]=]

describe("http client deny_private", function()
  local proc, pid, port, script

  setup(function()
    script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(SERVER)
    f:close()
    proc = assert(io.popen("exec python3 " .. script, "r"))
    local line = assert(proc:read("l"), "test server did not start")
    pid, port = line:match("^(%d+) (%d+)$")
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid) end
    if proc then proc:close() end
    if script then os.remove(script) end
  end)

  -- GET http://<name>:<port>/ with the name pinned to `address`
  local function via(name, address, opts)
    local o = { timeout = 3, resolve = { name .. ":" .. port .. ":" .. address } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return http.get("http://" .. name .. ":" .. port .. "/", o)
  end

  it("refuses every private, loopback, link-local and reserved range, for a host name", function()
    local refused = {
      "127.0.0.1", "127.9.9.9", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.1", "192.168.1.1",
      "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255",
      "198.18.0.1", "[::1]", "[::]", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[febf::1]", "[ff02::1]",
      "[::ffff:127.0.0.1]", "[::ffff:10.1.2.3]", "[::ffff:169.254.169.254]", "[64:ff9b::a00:1]",
      "[2002:a00:1::1]",
    }
    for i, address in ipairs(refused) do
      local name = "r" .. i .. ".rebind.test"
      local res, err, code = via(name, address, { deny_private = true })
      assert.is_nil(res, address)
      assert.are.equal("refused", code, address .. ": " .. tostring(err))
      assert.truthy(err:find("refused to connect to", 1, true), err)
      assert.truthy(err:find("private, loopback", 1, true), err)
    end
  end)

  it("connects to the same pinned loopback name without deny_private, or with allow_loopback", function()
    local res = assert(via("ok.rebind.test", "127.0.0.1"))
    assert.are.equal(200, res.status)
    res = assert(via("lo.rebind.test", "127.0.0.1", { deny_private = true, allow_loopback = true }))
    assert.are.equal(200, res.status)
    -- allow_loopback lets loopback through, nothing else
    local _, _, code = via("ten.rebind.test", "10.0.0.1", { deny_private = true, allow_loopback = true })
    assert.are.equal("refused", code)
    _, _, code = via("meta.rebind.test", "[::ffff:169.254.169.254]", { deny_private = true, allow_loopback = true })
    assert.are.equal("refused", code)
  end)

  it("refuses localhost as the system resolver answers it", function()
    local res, err, code = http.get("http://localhost:" .. port .. "/", { deny_private = true, timeout = 3 })
    assert.is_nil(res)
    assert.are.equal("refused", code, tostring(err))
  end)

  it("refuses a kept-alive connection opened earlier without the option", function()
    local url = "http://127.0.0.1:" .. port .. "/"
    assert.are.equal(200, assert(http.get(url)).status)
    local res, err, code = http.get(url, { deny_private = true, timeout = 3 })
    assert.is_nil(res)
    assert.are.equal("refused", code, tostring(err))
    assert.truthy(err:find("127.0.0.1", 1, true), err)
  end)

  it("checks every redirect hop", function()
    local hop = "http://inner.rebind.test:" .. port .. "/"
    local res, err, code = http.get("http://127.0.0.1:" .. port .. "/to?u=" .. hop, {
      deny_private = true, allow_loopback = true, follow_redirects = true, timeout = 3,
      resolve = { "inner.rebind.test:" .. port .. ":10.9.8.7" },
    })
    assert.is_nil(res)
    assert.are.equal("refused", code, tostring(err))
    assert.truthy(err:find("10.9.8.7", 1, true), err)
  end)

  it("raises on a resolve option that is not a list of strings", function()
    assert.has_error(function() http.get("http://x.test/", { resolve = { 42 } }) end)
    assert.has_error(function() http.get("http://x.test/", { resolve = "x.test:80:127.0.0.1" }) end)
  end)
end)
