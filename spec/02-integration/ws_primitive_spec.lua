-- The host's WebSocket primitive (core/src/ws/, core/lua/ws.lua) through a fixture
-- bundle (spec/fixtures/ws-echo) with real clients (python3-websockets): the handshake
-- on the HTTP port (token, Origin, sub-protocol), the limits (1008 for a client that
-- does not read while another is unaffected, 1009, the rate limit, the idle timeout),
-- sends to every connection of a user, sequenced sends, /metrics, SIGTERM -> 1001.
local h = require "spec.helpers"
local wsc = require "spec.support.wsclient"

local metric = h.metric

local function texts(messages)
  local out = {}
  for _, m in ipairs(messages) do out[#out + 1] = type(m) == "string" and m or "<json>" end
  return out
end

describe("ws primitive", function()
  local host
  setup(function()
    host = h.start { bundles = { "spec/fixtures/ws-echo" }, no_database = true,
      env = { WS_ALLOWED_ORIGINS = "https://good.example", WS_MAX_MESSAGE_BYTES = 4096,
              WS_SEND_QUEUE_BYTES = 65536, WS_RATE_PER_SECOND = 5, WS_RATE_BURST = 5 } }
  end)
  teardown(function() if host then host:stop() end end)

  local function open(opts)
    opts.port = host.port
    opts.path = opts.path or "/echo"
    opts.protocols = opts.protocols or { "echo.v1" }
    return wsc.open(opts)
  end

  it("upgrades on the HTTP port and answers the offered sub-protocol", function()
    local c = open { token = h.token("alice"), send = { "echo hi" }, stop_on = "hi" }
    assert.are.same({ "open alice", "hi" }, c:wait_count(2))
    assert.are.equal("echo.v1", c:wait_record("subprotocol").subprotocol)
    -- the same port still serves HTTP
    assert.are.equal(200, (host:request("GET", "/healthz")))
  end)

  it("takes the token from the access_token query parameter too", function()
    local c = open { query_token = h.token("carol"), protocols = {}, stop_on = "open" }
    assert.are.same({ "open carol" }, c:wait_count(1))
  end)

  it("refuses a missing or bad token with 401 before any upgrade", function()
    local none = open {}
    local bad = open { token = h.token("alice", { secret = "another-secret" }) }
    local expired = open { token = h.token("alice", { exp = os.time() - 3600 }) }
    for _, c in ipairs { none, bad, expired } do
      local r = c:wait_record("refused")
      assert.is_truthy(r, c:stderr())
      assert.are.equal(401, r.refused)
    end
  end)

  it("refuses an Origin outside WS_ALLOWED_ORIGINS with 403 and accepts a listed one", function()
    local evil = open { token = h.token("alice"), origin = "https://evil.example" }
    assert.are.equal(403, evil:wait_record("refused").refused)
    local good = open { token = h.token("alice"), origin = "https://good.example", stop_on = "open" }
    assert.are.same({ "open alice" }, good:wait_count(1))
  end)

  it("answers 400 when the client offers sub-protocols but not the endpoint's, 426 without Upgrade", function()
    local c = open { token = h.token("alice"), protocols = { "other.v9" } }
    assert.are.equal(400, c:wait_record("refused").refused)
    local status = host:request("GET", "/echo")
    assert.are.equal(426, status)
  end)

  it("closes with 1009 a message over WS_MAX_MESSAGE_BYTES", function()
    local c = open { token = h.token("alice"), send_size = 5000 }
    local closed = c:wait_record("closed")
    assert.is_truthy(closed, c:stderr())
    assert.are.equal(1009, closed.closed)
  end)

  it("cuts off a client that does not read (1008) while another one's echoes stay fast", function()
    local before = metric(host, "todo_host_ws_queue_overflows_total")
    local sends = {}
    for i = 1, 40 do sends[i] = "echo " .. i end
    local other = open { token = h.token("bob"), send = sends, gap = 0.05, seconds = 6 }
    local stalled = open { token = h.token("slow"), stall = true, send = { "flood 400 16384" }, seconds = 3 }
    assert.is_truthy(h.eventually(function()
      return metric(host, "todo_host_ws_queue_overflows_total") > before
    end, 10), "no queue overflow counted")
    local closed = stalled:wait_record("closed", 10)
    assert.is_truthy(closed, stalled:stderr())
    -- The close frame may not fit in a socket the client never drains: 1008 or no frame.
    assert.is_true(closed.closed == 1008 or closed.closed == nil)
    assert.is_true(metric(host, "todo_host_ws_closes_total", 'code="1008"') >= 1)
    -- the other client got every echo, each quickly
    local got = other:wait_count(41, 10)
    assert.is_truthy(got, "echoes missing: " .. #other:messages())
    local sent_at, worst = {}, 0
    for _, r in ipairs(other:records()) do
      if r.sent then sent_at[r.sent:match("%d+")] = r.t end
      if type(r.msg) == "string" and sent_at[r.msg] then worst = math.max(worst, r.t - sent_at[r.msg]) end
    end
    assert.is_true(worst < 0.5, "an echo took " .. worst .. " s")
  end)

  it("rate-limits client messages and keeps the connection", function()
    local sends = {}
    for i = 1, 15 do sends[i] = "echo r" .. i end
    local c = open { token = h.token("rater"), send = sends, gap = 0.001 }
    local got = c:wait(function(m)
      local limited = 0
      for _, t in ipairs(m) do if t == "rate-limited" then limited = limited + 1 end end
      return limited >= 5
    end)
    assert.is_truthy(got, table.concat(texts(c:messages()), ","))
    local echoed = 0
    for _, t in ipairs(got) do if t:match("^r%d+$") then echoed = echoed + 1 end end
    assert.is_true(echoed >= 5 and echoed < 15, "echoed " .. echoed)
  end)

  it("sends to every connection of a user and to no one else", function()
    local a1 = open { token = h.token("dora"), stop_on = "to-dora" }
    local a2 = open { token = h.token("dora"), stop_on = "to-dora" }
    local b = open { token = h.token("eve"), seconds = 3 }
    assert.is_truthy(a1:wait_count(1) and a2:wait_count(1) and b:wait_count(1))
    local sender = open { token = h.token("dora"), send = { "user to-dora" }, stop_on = "to-dora" }
    for _, c in ipairs { a1, a2, sender } do
      assert.is_truthy(c:wait(function(m) return m[#m] == "to-dora" end), table.concat(texts(c:messages()), ","))
    end
    h.sleep(0.3)
    assert.are.same({ "open eve" }, b:messages())
  end)

  it("delivers a sequenced send at most once and in order", function()
    local c = open { token = h.token("seqy"), send = { "seq 5 a", "seq 3 b", "seq 5 c", "seq 6 d" }, stop_on = "d" }
    assert.are.same({ "open seqy", "a", "d" }, c:wait(function(m) return m[#m] == "d" end))
  end)
end)

describe("ws primitive lifecycle", function()
  it("drops a connection that answers no ping within WS_IDLE_TIMEOUT_SECONDS", function()
    local host = h.start { bundles = { "spec/fixtures/ws-echo" }, no_database = true,
      env = { WS_PING_SECONDS = 1, WS_IDLE_TIMEOUT_SECONDS = 2 } }
    finally(function() host:stop() end)
    local c = wsc.open { port = host.port, path = "/echo", protocols = { "echo.v1" }, token = h.token("idle"),
      stall = true, seconds = 8 }
    assert.is_truthy(c:wait_count(1))
    assert.are.equal(1, metric(host, "todo_host_ws_connections"))
    assert.is_truthy(h.eventually(function() return metric(host, "todo_host_ws_connections") == 0 end, 8),
      "the silent connection was not dropped")
  end)

  it("answers 503 at the handshake over WS_MAX_CONNECTIONS in a worker", function()
    local host = h.start { bundles = { "spec/fixtures/ws-echo" }, no_database = true,
      env = { WS_MAX_CONNECTIONS = 2 } }
    finally(function() host:stop() end)
    local open = {}
    for i = 1, 2 do
      open[i] = wsc.open { port = host.port, path = "/echo", protocols = { "echo.v1" }, token = h.token("cap"),
        seconds = 5 }
      assert.is_truthy(open[i]:wait_count(1))
    end
    local third = wsc.open { port = host.port, path = "/echo", protocols = { "echo.v1" }, token = h.token("cap") }
    assert.are.equal(503, third:wait_record("refused").refused)
  end)

  it("closes every connection with 1001 on SIGTERM", function()
    local host = h.start { bundles = { "spec/fixtures/ws-echo" }, no_database = true }
    local c = wsc.open { port = host.port, path = "/echo", protocols = { "echo.v1" }, token = h.token("term"),
      seconds = 10 }
    assert.is_truthy(c:wait_count(1))
    assert.are.equal(0, host:stop())
    local closed = c:wait_record("closed")
    assert.is_truthy(closed)
    assert.are.equal(1001, closed.closed)
  end)
end)
