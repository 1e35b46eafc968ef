-- The spec helpers' process hygiene: a handle that was stopped and spawned again is
-- stopped by its next stop() (chat_spec's restart once left `todo-host run` processes
-- behind after every suite), and a psql session never makes anyone wait for psql, even
-- when a host started after it inherited its pipe (make test once hung in a pclose).
local h = require "spec.helpers"

local function alive(pid)
  return (select(2, h.sh("kill -0 " .. pid .. " 2>/dev/null")))
end

describe("spec helpers", function()
  it("stop() after stop() and spawn() stops the respawned process", function()
    local host = h.start({ bundles = { "services/api" } })
    local first = host.pid
    host:stop()
    assert.is_falsy(alive(first))
    host:spawn()
    assert.is_true(host:wait_ready(15))
    local second = host.pid
    assert.is_truthy(alive(second))
    assert.equal(0, host:stop())
    assert.is_falsy(alive(second))
  end)

  it("a psql session closes at once while a host started after it still runs", function()
    local db = h.new_database()
    local session = h.psql_session(db)
    assert.equal("2", session.query("SELECT 1 + 1"))
    local host = h.start({ bundles = { "services/api" }, database_url = db })
    finally(function() host:stop() end)
    local t0 = require("socket").gettime()
    session.close()
    assert.is_true(require("socket").gettime() - t0 < 2)
    assert.is_truthy(h.eventually(function() return not alive(session.pid) end, 5))
    assert.is_truthy(alive(host.pid))
  end)

  it("an unclosed psql session is ended when collected, without waiting", function()
    local db = h.new_database()
    local session = h.psql_session(db)
    local pid = session.pid
    assert.equal("3", session.query("SELECT 1 + 2"))
    local host = h.start({ bundles = { "services/api" }, database_url = db })
    finally(function() host:stop() end)
    session = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_truthy(h.eventually(function() return not alive(pid) end, 5))
  end)
end)
