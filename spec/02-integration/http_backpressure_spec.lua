-- Backpressure (issue 19): a client that pipelines requests and never reads the
-- answers must not make the worker queue them without bound. Once a connection's
-- unsent output passes MAX_PENDING_OUTPUT_BYTES the server stops reading it, for
-- built-in routes (/healthz), unmatched paths (404) and Lua routes alike; other
-- clients are still served meanwhile. Measured on the worker's resident memory
-- (/proc/PID/status), with a generous bound: without backpressure each flood
-- below grows the worker by well over 100 MB.
local h = require "spec.helpers"
local socket = require "socket"

local function rss_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Pipeline `request` until `total` bytes are sent or the server has stopped
-- taking them for `stall` seconds (1); returns the connection, the bytes sent and
-- whether the server closed it meanwhile.
local function flood(port, request, total, stall)
  local conn = socket.tcp()
  assert(conn:connect("127.0.0.1", port))
  conn:settimeout(0.2)
  local chunk = string.rep(request, math.max(1, 65536 // #request))
  local sent, stalled_since = 0, nil
  while sent < total do
    local last, err, partial = conn:send(chunk)
    local n = last or partial or 0
    sent = sent + n
    if err == "timeout" and n == 0 then
      stalled_since = stalled_since or socket.gettime()
      if socket.gettime() - stalled_since > (stall or 1) then break end
    elseif err == "closed" then
      return conn, sent, true
    elseif err and err ~= "timeout" then
      error("flood connection failed: " .. err)
    else
      stalled_since = nil
    end
    if n > 0 and n < #chunk then chunk = chunk:sub(n + 1) .. chunk:sub(1, n) end
  end
  return conn, sent
end

-- Under ASan the allocator's quarantine keeps freed memory (the Lua garbage of every
-- request served before the connection stalled) resident for a while: a looser bound.
local MAX_GROWTH_MB = os.getenv("ASAN_OPTIONS") and 96 or 24

describe("a pipelining client that never reads", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                     env = { ACCESS_LOG = 0 } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  local cases = {
    { name = "a built-in route", request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", total = 48 << 20 },
    { name = "an unknown path", request = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", total = 32 << 20 },
    { name = "a Lua route", request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", total = 32 << 20 },
  }
  for _, case in ipairs(cases) do
    it("does not grow the worker on " .. case.name .. ", and others are still served", function()
      local before = rss_kb(host.pid)
      local conn, sent = flood(host.port, case.request, case.total)
      local grown_mb = (rss_kb(host.pid) - before) / 1024
      -- others are served while the flood connection is stalled
      local status = host:request("GET", "/healthz", { timeout = 5 })
      assert.are.equal(200, status)
      status = host:request("GET", "/hello", { timeout = 5 })
      assert.are.equal(200, status)
      conn:close()
      assert.is_true(grown_mb < MAX_GROWTH_MB, string.format("the worker grew by %.1f MB", grown_mb))
      assert.is_true(sent < case.total, string.format(
        "the server read all %d bytes of a client that never read an answer", sent))
      -- the flood connection's answers are dropped with it; the worker goes on
      assert.are.equal(200, (host:request("GET", "/healthz")))
    end)
  end

  it("answers every pipelined request to a client that reads slowly", function()
    local n = 20000
    local conn = socket.tcp()
    assert(conn:connect("127.0.0.1", host.port))
    conn:settimeout(10)
    local one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    -- send everything first from a coroutine-free loop in slices, reading in between
    local got, sent = 0, 0
    while got < n do
      if sent < n then
        local k = math.min(500, n - sent)
        assert(conn:send(string.rep(one, k)))
        sent = sent + k
      end
      local status = h.read_response(conn)
      assert.are.equal(200, status)
      got = got + 1
    end
    conn:close()
    assert.are.equal(n, got)
  end)
end)

describe("a stalled non-reader", function()
  -- (a slow reader that keeps taking its answers is kept: core/tests/test_http.c,
  -- deep_pipelining, reads 20000 answers byte by byte under the ASan build)
  it("is closed once its answers stop moving", function()
    local host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                           env = { ACCESS_LOG = 0, KEEPALIVE_TIMEOUT_MS = 300, SEND_TIMEOUT_MS = 300 } }
    finally(function() host:stop() end)
    local request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    local stalled, _, closed_early = flood(host.port, request, 48 << 20, 0.05)
    h.sleep(1.5) -- five timer periods
    -- the stalled one, read only now, ends: the server closed it
    stalled:settimeout(2)
    local closed = closed_early
    while not closed do
      local _, err = stalled:receive(65536)
      if err == "closed" then closed = true break end
      if err == "timeout" then break end
    end
    stalled:close()
    assert.is_true(closed, "the server kept a connection whose answers never moved")
  end)
end)
