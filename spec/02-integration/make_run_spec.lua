-- `make run` twice (issue 19): a second `make run` whose port is taken is refused
-- and never stops the PostgreSQL cluster the first, still running, instance uses;
-- two instances on different ports share the cluster and only the last one out
-- stops it; the banner is printed only once the server answers. Runs scripts/run
-- itself (every bundle of services/, a real cluster) in a throwaway data directory.
local h = require "spec.helpers"
local socket = require "socket"

local q = h.sh_quote

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local Run = {}
Run.__index = Run

-- Start scripts/run in the background with its output in a file.
local function start(data, port, extra_env)
  local self = setmetatable({ port = port, dir = h.sh("mktemp -d /tmp/todo-makerun.XXXXXX") }, Run)
  self.out = self.dir .. "/out"
  local cmd = string.format(
    "env -u DATABASE_URL TODO_DATA_DIR=%s PORT=%d WORKERS=1 %s scripts/run >%s 2>&1 & "
      .. "echo $! >%s/pid; wait $!; echo $? >%s/exit",
    q(data), port, extra_env or "", q(self.out), self.dir, self.dir)
  os.execute("setsid sh -c " .. q(cmd) .. " >/dev/null 2>&1 &")
  self.pid = h.eventually(function() return tonumber(read(self.dir .. "/pid")) end, 5)
  return self
end

function Run:exit_code() return tonumber(read(self.dir .. "/exit")) end
function Run:output() return read(self.out) end

function Run:wait_exit(timeout)
  return h.eventually(function() return self:exit_code() end, timeout or 30)
end

function Run:stop()
  if self.pid and not self:exit_code() then os.execute("kill -TERM " .. self.pid .. " 2>/dev/null") end
  return self:wait_exit(30)
end

-- Wait for the banner; the moment it is there, the server must answer.
function Run:wait_banner(timeout)
  local deadline = socket.gettime() + (timeout or 60)
  while socket.gettime() < deadline do
    if self:output():find("todo-chatbot: http://localhost:" .. self.port, 1, true) then
      return h.request("GET", "/healthz", { port = self.port, timeout = 2 })
    end
    if self:exit_code() then return nil end
    h.sleep(0.05)
  end
end

local function ready(port)
  local status, body = h.request("GET", "/readyz", { port = port, timeout = 5 })
  return status == 200 and body.database == true
end

local function cluster_running(data)
  local _, ok = h.sh("runuser -u postgres -- $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl -D "
    .. q(data .. "/pg/data") .. " status")
  return ok
end

describe("make run twice", function()
  local data, runs = nil, {}

  lazy_setup(function()
    data = h.sh("mktemp -d /tmp/todo-makerun-data.XXXXXX")
    os.execute("chmod 755 " .. q(data)) -- the cluster's owner (postgres) walks into it
  end)
  lazy_teardown(function()
    for _, r in ipairs(runs) do r:stop() end
    h.sh("scripts/pg stop " .. q(data .. "/pg"))
    os.execute("rm -rf " .. q(data))
  end)

  it("refuses a second instance on a taken port and keeps the first one's database", function()
    local port = h.free_port()
    local first = start(data, port)
    runs[#runs + 1] = first
    assert.are.equal(200, first:wait_banner(), first:output())
    assert.is_true(ready(port))

    local second = start(data, port)
    runs[#runs + 1] = second
    assert.are.equal(1, second:wait_exit(30), second:output())
    assert.truthy(second:output():find("port " .. port .. " is already in use", 1, true), second:output())
    assert.falsy(second:output():find("todo-chatbot: http", 1, true), "the refused instance printed the banner")

    -- the first still has its database, a moment later too
    h.sleep(0.5)
    assert.is_true(cluster_running(data))
    assert.is_true(ready(port))
    assert.is_nil(first:exit_code())
  end)

  it("lets two instances share the cluster; only the last one out stops it", function()
    local first = runs[1]
    local port2 = h.free_port()
    local other = start(data, port2)
    runs[#runs + 1] = other
    assert.are.equal(200, other:wait_banner(), other:output())
    assert.are.equal(0, other:stop())
    assert.is_true(cluster_running(data), "the second instance stopped the shared cluster")
    assert.is_true(ready(first.port))

    assert.are.equal(0, first:stop(), first:output())
    assert.truthy(h.eventually(function() return not cluster_running(data) end, 10),
      "the last instance left the cluster running")
  end)

  it("exits with the host's failure when the host cannot start, leaving nothing running", function()
    local port = h.free_port()
    local bad = start(data, port, "WORKERS=2 PORT=0")
    runs[#runs + 1] = bad
    assert.are.equal(2, bad:wait_exit(60), bad:output())
    assert.falsy(bad:output():find("todo-chatbot: http", 1, true))
    assert.truthy(h.eventually(function() return not cluster_running(data) end, 10))
  end)
end)
