-- A host whose database cannot be reached: requests that need it answer 503 (code
-- `unavailable`, Retry-After) within the pool timeout, and the host does not spin
-- retrying connections: attempts back off (core/src/prim/pg/pool.c, th__pg_connect_backoff), so the
-- process stays nearly idle while the event consumers and requests keep asking.
local h = require "spec.helpers"
local socket = require "socket"

-- CPU seconds (user + system) the process has used so far.
local function cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("a")
  f:close()
  local fields = {}
  for v in stat:gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = v end
  -- after "pid (comm) ": field 12 is utime, 13 stime (clock ticks, 100 per second here)
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

describe("a host whose database went down", function()
  local host, pgdir

  setup(function()
    -- A cluster of its own (scripts/pg), so that it can be stopped under the host.
    pgdir = h.sh("mktemp -d /tmp/todo-spec-pgdown.XXXXXX")
    local out, ok = h.sh("PG_THROWAWAY=1 scripts/pg start " .. h.sh_quote(pgdir))
    assert(ok, "scripts/pg start failed: " .. out)
    -- The URL is the last line (as root, the postgres user's tools may warn first, e.g.
    -- that they cannot enter a working directory only root may read).
    local url = assert(out:match("(postgresql://%S+)%s*$"), "no URL from scripts/pg: " .. out)
    local log, migrated = h.sh("env DATABASE_URL=" .. h.sh_quote(url) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/api")
    assert(migrated, "migrate failed: " .. log)
    host = h.start({
      bundles = { "services/api", "services/recurring-task" },
      database_url = url, skip_migrate = true,
      env = { PG_POOL_TIMEOUT_MS = 1000 },
    })
    -- Up and serving first: the consumers and their LISTEN connections are running.
    local token = h.token("down-user")
    assert(h.eventually(function()
      return h.request("GET", "/api/tasks", { port = host.port, token = token }) == 200
    end, 10))
    assert(h.request("POST", "/api/tasks", { port = host.port, token = token, body = { title = "before" } }) == 201)
    h.sh("scripts/pg stop " .. h.sh_quote(pgdir))
    h.sleep(0.5)
  end)

  teardown(function()
    if host then host:stop() end
    if pgdir then
      h.sh("scripts/pg stop " .. h.sh_quote(pgdir))
      h.sh("rm -rf " .. h.sh_quote(pgdir))
    end
  end)

  it("answers 503 unavailable with Retry-After, within the pool timeout", function()
    local token = h.token("down-user")
    for _, path in ipairs({ "/api/tasks", "/api/tasks/6f1c1c1e-5b7e-4c43-9a3e-0a4a8e7f0b11" }) do
      local t0 = os.time()
      local status, body, headers = h.request("GET", path, { port = host.port, token = token, timeout = 10 })
      assert.are.equal(503, status, path)
      assert.are.equal("unavailable", body.error.code)
      assert.are.equal("1", headers["retry-after"])
      assert.is_true(os.time() - t0 <= 3, "took more than the pool timeout")
    end
    local status, body = h.request("POST", "/api/tasks", { port = host.port, token = token, body = { title = "x" } })
    assert.are.equal(503, status)
    assert.are.equal("unavailable", body.error.code)
  end)

  it("logs each 503 once, as a JSON line with one request_id", function()
    local status, _, headers = h.request("GET", "/api/tasks",
      { port = host.port, token = h.token("down-user"), timeout = 10 })
    assert.are.equal(503, status)
    local id = headers["x-request-id"]
    local line = h.eventually(function()
      for l in host:log():gmatch("[^\n]+") do
        if l:find(id, 1, true) and l:find("database unavailable", 1, true) then return l end
      end
    end)
    assert.truthy(line, "no log line for request " .. tostring(id))
    local _, count = line:gsub('"request_id":', "")
    assert.are.equal(1, count, line)
    assert.truthy(line:find('"cause":', 1, true), line)
  end)

  it("backs off instead of spinning on connection attempts", function()
    local before = cpu_seconds(host.pid)
    local lines_before = #host:log_lines()
    h.sleep(3)
    local used = cpu_seconds(host.pid) - before
    assert.is_true(used < 0.5, "the host used " .. used .. " s of CPU in 3 s with its database down")
    local attempts = 0
    for i, line in ipairs(host:log_lines()) do
      local msg = type(line.msg) == "string" and line.msg or ""
      if i > lines_before and msg:find("connection failed", 1, true) then attempts = attempts + 1 end
    end
    assert.is_true(attempts > 0, "no connection attempt in 3 s")
    assert.is_true(attempts < 60, attempts .. " connection attempts in 3 s")
  end)

  -- Last: it brings the database back. The connection backoff is capped (pool.c), so the
  -- host uses a database that returns within a second; scripts/chaos measures it under load.
  it("serves again within a second of the database's return", function()
    h.sleep(2.5) -- long enough down for the backoff to have reached its cap
    local out, ok = h.sh("PG_THROWAWAY=1 scripts/pg start " .. h.sh_quote(pgdir))
    assert(ok, "scripts/pg start failed: " .. out)
    local back = socket.gettime()
    local token = h.token("down-user")
    local status
    repeat
      status = h.request("GET", "/api/tasks", { port = host.port, token = token, timeout = 5 })
    until status == 200 or socket.gettime() - back > 5
    local took = socket.gettime() - back
    assert.are.equal(200, status)
    assert.is_true(took <= 1, ("serving again took %.2f s after the database returned"):format(took))
    local created = h.request("POST", "/api/tasks", { port = host.port, token = token, body = { title = "after" } })
    assert.are.equal(201, created)
  end)
end)
