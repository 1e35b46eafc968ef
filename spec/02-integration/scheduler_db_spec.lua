-- The scheduler with real database waits: many requests, each waiting on
-- PostgreSQL, interleave on one loop and each gets its own answer; a pool
-- smaller than the load queues work instead of failing; database errors reach
-- Lua as values.
local h = require "spec.helpers"

describe("scheduler with database waits", function()
  local host
  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/dbwait" }, env = { PG_POOL_SIZE = 4, PG_POOL_TIMEOUT_MS = 10000 } }
  end)
  lazy_teardown(function() host:stop() end)

  it("interleaves 32 requests that each wait 200 ms on the database", function()
    local results = h.concurrent(host.port, 32, "GET", function(i) return "/db/sleep/r" .. i .. "?ms=200" end)
    local slowest = 0
    for i, r in ipairs(results) do
      assert.are.equal(200, r.status, r.body)
      assert.truthy(r.body:find('"id":"r' .. i .. '"', 1, true), "answer " .. i .. " is " .. r.body)
      slowest = math.max(slowest, r.at)
    end
    -- 4 connections, 32 waits of 200 ms: 8 rounds, about 1.6 s; serial would be 6.4 s
    assert.is_true(slowest < 4, "slowest answer after " .. slowest .. " s")
    assert.is_true(slowest >= 1.5, "the pool of 4 did not bound concurrency (" .. slowest .. " s)")
  end)

  it("reports pool gauges", function()
    local _, metrics = host:request("GET", "/metrics")
    local idle = tonumber(metrics:match('todo_host_pg_pool_connections{worker="%d+",state="idle"} (%d+)'))
    assert.is_true(idle >= 1 and idle <= 4)
  end)

  it("returns database errors as values with their SQLSTATE", function()
    local status, body = host:request("GET", "/db/error")
    assert.are.equal(200, status)
    assert.are.equal("42P01", body.code)
    assert.truthy(body.err:find("no_such_table", 1, true))
  end)

  it("turns /readyz to 503 when the database is unreachable", function()
    local other = h.start { bundles = { "spec/fixtures/dbwait" }, wait = true,
      database_url = "postgresql://postgres@127.0.0.1:1/none", skip_migrate = true }
    finally(function() other:stop() end)
    local status = h.eventually(function()
      local s = other:request("GET", "/readyz")
      return s == 503 and s
    end, 8)
    assert.are.equal(503, status)
  end)
end)
