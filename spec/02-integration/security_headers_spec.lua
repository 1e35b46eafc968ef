-- Security headers on every response (issue 19; docs/api.md, "Headers"): Lua routes,
-- built-in endpoints and the server's own errors all carry X-Content-Type-Options:
-- nosniff, Cache-Control: no-store, X-Frame-Options: DENY and Referrer-Policy:
-- no-referrer, each exactly once; a header the handler set itself is kept instead.
local h = require "spec.helpers"
local socket = require "socket"

-- the raw head of the one response to `bytes`
local function head_of(port, bytes)
  local conn = socket.tcp()
  conn:settimeout(5)
  assert(conn:connect("127.0.0.1", port))
  conn:send(bytes)
  local lines = {}
  while true do
    local line = conn:receive("*l")
    if not line or line == "" then break end
    lines[#lines + 1] = line
  end
  conn:close()
  return table.concat(lines, "\n")
end

local function count(head, name, value)
  local n = 0
  for line in head:gmatch("[^\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == name:lower() and (not value or v == value) then n = n + 1 end
  end
  return n
end

local DEFAULTS = {
  { "X-Content-Type-Options", "nosniff" }, { "Cache-Control", "no-store" },
  { "X-Frame-Options", "DENY" }, { "Referrer-Policy", "no-referrer" },
}

describe("security headers", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true, env = { MAX_BODY_BYTES = 64,
      MAX_HEADER_BYTES = 2048, HEADER_TIMEOUT_MS = 300 } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  local cases = {
    { "a Lua route (text)", "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200 },
    { "a Lua route (JSON)", "GET /echo/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200 },
    { "a Lua route (HTML, own Content-Type)", "POST /custom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        .. "Content-Length: 0\r\n\r\n", 201 },
    { "a failing handler", "GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 500 },
    { "/healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200 },
    { "/metrics", "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200 },
    { "an unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404 },
    { "a wrong method", "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405 },
    { "a body too large", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n", 413 },
    { "malformed HTTP", "GET /hello HTTP/1.1\r\n\r\n", 400 },
    { "headers over the limit", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: " .. string.rep("a", 4000)
        .. "\r\n\r\n", 431 },
    { "headers not complete in time", "GET /hello HTTP/1.1\r\nHost: x\r\n", 408 },
    { "an unknown transfer coding", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
    { "an unsupported version", "GET /hello HTTP/1.2\r\nHost: x\r\n\r\n", 505 },
    { "an unknown expectation", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        .. "Expect: teapot\r\n\r\nab", 417 },
  }
  for _, case in ipairs(cases) do
    it("are on " .. case[1], function()
      local head = head_of(host.port, case[2])
      assert.are.equal(case[3], tonumber(head:match("^HTTP/1%.1 (%d+)")), head)
      for _, d in ipairs(DEFAULTS) do
        assert.are.equal(1, count(head, d[1], d[2]), d[1] .. " in\n" .. head)
        assert.are.equal(1, count(head, d[1]), d[1] .. " twice in\n" .. head)
      end
    end)
  end

  it("keep what the handler set instead of the default", function()
    local head = head_of(host.port, "GET /cached HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.are.equal(1, count(head, "Cache-Control"), head)
    assert.are.equal(1, count(head, "Cache-Control", "max-age=60"), head)
    assert.are.equal(1, count(head, "X-Frame-Options"), head)
    assert.are.equal(1, count(head, "X-Frame-Options", "SAMEORIGIN"), head)
    assert.are.equal(1, count(head, "X-Content-Type-Options", "nosniff"), head)
  end)
end)
