-- A WebSocket connection storm (docs/benchmarks.md, "never received hello"), through the
-- real services/api and services/websocket on PostgreSQL, with the benchmark's own client
-- (bench/ws/ws_load.c, compiled here):
--   * every one of a few hundred connections opened at once gets its hello;
--   * a client that goes away while its on_open waits for the database (what a storm's
--     client that gave up on its handshake does) leaves no failed handler behind, and the
--     next connection is greeted;
--   * ws_load counts a handshake that never gets its 101 as failed once its handshake
--     timeout passes (libwebsockets 4.1 drops such a connection without telling it: the
--     storms that "never received hello" were ws_load waiting for those for ever).
local h = require "spec.helpers"
local socket = require "socket"
local wsc = require "spec.support.wsclient"

local CONNECTIONS = 400 -- under the default 1,024 descriptors of the host and the client

local metric = h.metric

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local dir, ws_load

-- Run ws_load in the background; returns a handle with ready() ("hellos failed" once
-- every connection is done, else nil), stop() and summary() (its closing line).
local function load(port, tokens_file, n, extra)
  local run = h.sh("mktemp -d " .. dir .. "/run.XXXXXX")
  local cmd = string.format("%s --port %d --tokens %s --connections %d --ready %s/ready --out /dev/null %s",
    ws_load, port, tokens_file, n, run, extra or "")
  os.execute("sh -c " .. h.sh_quote(cmd .. " 2>" .. run .. "/err & echo $! >" .. run .. "/pid")
    .. " >/dev/null 2>&1")
  local self = {}
  function self.ready()
    local s = read_file(run .. "/ready")
    return s and s:match("^(%d+ %d+)")
  end
  function self.stop()
    local pid = read_file(run .. "/pid")
    if pid then os.execute("kill " .. pid:gsub("%s", "") .. " 2>/dev/null") end
    h.eventually(function() return (read_file(run .. "/err") or ""):find("ws_load:", 1, true) end, 5)
  end
  function self.summary() return read_file(run .. "/err") or "" end
  return self
end

describe("ws connection storm", function()
  local host
  setup(function()
    dir = h.sh("mktemp -d /tmp/todo-spec-storm.XXXXXX")
    ws_load = dir .. "/ws_load"
    local out, ok = h.sh("cc -O2 -o " .. ws_load .. " bench/ws/ws_load.c $(pkg-config --cflags --libs libwebsockets)")
    assert(ok, "cannot compile bench/ws/ws_load.c: " .. out)
    host = h.start { bundles = { "services/api", "services/websocket" }, env = { ACCESS_LOG = "off" } }
  end)
  teardown(function()
    if host then host:stop() end
    if dir then os.execute("rm -rf " .. h.sh_quote(dir)) end
  end)

  it("greets every one of " .. CONNECTIONS .. " connections opened at once", function()
    local tokens = dir .. "/tokens"
    local f = assert(io.open(tokens, "w"))
    for i = 1, 40 do f:write(h.token("storm-" .. i), "\n") end
    f:close()
    local l = load(host.port, tokens, CONNECTIONS, "--handshake-timeout 60")
    local ready = h.eventually(function() return l.ready() end, 90)
    l.stop()
    assert.is_truthy(ready, "not every connection got its hello or failed in 90 s: " .. l.summary())
    assert.are.equal(CONNECTIONS .. " 0", l.ready(), l.summary())
    assert.is_nil(host:log():find("websocket handler failed", 1, true), host:log())
  end)

  it("leaves no failed handler behind a client that went away while on_open waited", function()
    -- hold on_open's query (the positions of ws_log_users) behind a lock
    local db = h.psql_session(host.database_url)
    db.query("BEGIN")
    db.query("LOCK TABLE ws_log_users IN ACCESS EXCLUSIVE MODE")
    local waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
      .. " AND query LIKE '%ws_log_users%' AND pid <> pg_backend_pid()"
    local before = metric(host, "todo_host_ws_connections")
    local c = wsc.open { port = host.port, token = h.token("storm-leaver"), seconds = 30 }
    assert.is_truthy(c:wait_record("subprotocol", 10), c:stderr())
    assert.is_truthy(h.eventually(function() return h.psql(waiting, host.database_url) ~= "0" end, 10),
      "on_open's query is not waiting on the lock")
    c:kill()
    assert.is_truthy(h.eventually(function() return metric(host, "todo_host_ws_connections") == before end, 10),
      "the host did not see the client go")
    db.query("ROLLBACK")
    db.close()
    assert.is_truthy(h.eventually(function() return h.psql(waiting, host.database_url) == "0" end, 10))
    -- the next connection is greeted (its hello comes after the held handler went on)
    local next = wsc.open { port = host.port, token = h.token("storm-next"), seconds = 10 }
    assert.is_truthy(next:wait_count(1), next:stderr())
    assert.are.equal("hello", next:messages()[1].type)
    h.sleep(0.3)
    assert.is_nil(host:log():find("websocket handler failed", 1, true), host:log())
  end)

  it("counts a handshake that never gets its 101 as failed (ws_load)", function()
    -- a listener that never accepts: the kernel completes the TCP handshake, nobody answers
    local silent = assert(socket.bind("127.0.0.1", 0))
    local _, port = silent:getsockname()
    local tokens = dir .. "/one"
    local f = assert(io.open(tokens, "w"))
    f:write("not-a-token\n")
    f:close()
    local l = load(tonumber(port), tokens, 3, "--handshake-timeout 1")
    local ready = h.eventually(function() return l.ready() end, 10)
    l.stop()
    silent:close()
    assert.is_truthy(ready, "ws_load never gave up on the silent handshakes: " .. l.summary())
    assert.are.equal("0 3", l.ready())
    assert.is_truthy(l.summary():find("3 without a 101 within 1 s", 1, true), l.summary())
  end)
end)
