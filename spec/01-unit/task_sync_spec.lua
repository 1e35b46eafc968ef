-- task.defer and task.event (core/src/prim/task_sync.c): the order in which coroutines
-- of one loop turn run, one-shot events with several waiters, and the errors raised
-- outside a unit of work. The spec itself runs in the script's coroutine, so it can wait.
local task = require "task"
local timer = require "timer"

local group = require("spec.support.group").new

describe("task.defer", function()
  it("goes on only after the other coroutines started in the same turn ran", function()
    local log = {}
    local g = group()
    g.spawn(function()
      log[#log + 1] = "a1"
      task.defer()
      log[#log + 1] = "a2"
    end)
    g.spawn(function() log[#log + 1] = "b" end)
    g.spawn(function()
      log[#log + 1] = "c1"
      task.defer()
      log[#log + 1] = "c2"
    end)
    log[#log + 1] = "spawner"
    assert.are.same({ "a1", "b", "c1", "spawner" }, log) -- nobody went on yet
    g.wait()
    -- Deferred coroutines go on in the order they deferred.
    assert.are.same({ "a1", "b", "c1", "spawner", "a2", "c2" }, log)
  end)

  it("lets every coroutine woken in this turn run before one that deferred in it", function()
    local gate = task.event()
    local log = {}
    local g = group()
    for i = 1, 3 do
      g.spawn(function()
        gate:wait()
        log[#log + 1] = "w" .. i
        if i == 1 then
          task.defer()
          log[#log + 1] = "w1 after defer"
        end
      end)
    end
    gate:set()
    g.wait()
    assert.are.same({ "w1", "w2", "w3", "w1 after defer" }, log)
  end)

  it("resumes in the same order a batch of deferrers arrived, across turns", function()
    local log = {}
    local g = group()
    for i = 1, 4 do
      g.spawn(function()
        for round = 1, 3 do
          task.defer()
          log[#log + 1] = round .. ":" .. i
        end
      end)
    end
    g.wait()
    assert.are.same({ "1:1", "1:2", "1:3", "1:4", "2:1", "2:2", "2:3", "2:4", "3:1", "3:2", "3:3", "3:4" }, log)
  end)

  it("works in the spec's own coroutine and does not wait for a pending timer", function()
    local log = {}
    local g = group()
    g.spawn(function()
      timer.sleep(0.2)
      log[#log + 1] = "slept"
    end)
    local t0 = timer.monotonic()
    for _ = 1, 20 do task.defer() end
    local took = timer.monotonic() - t0
    log[#log + 1] = "deferred"
    assert.are.same({ "deferred" }, log) -- the 200 ms sleep has not ended yet
    assert.is_true(took < 0.15, "20 defers took " .. took .. " s")
    g.wait()
    assert.are.same({ "deferred", "slept" }, log)
  end)

  it("raises a clear error in a coroutine of one's own (not a unit of work)", function()
    local ok, err = coroutine.wrap(function() return pcall(task.defer) end)()
    assert.is_false(ok)
    assert.matches("task.defer can only wait inside a request, event, job or script coroutine", err, 1, true)
    -- The failed call left nothing queued: a real defer afterwards still works.
    task.defer()
  end)
end)

describe("task.event", function()
  it("starts unset and stays set", function()
    local ev = task.event()
    assert.is_false(ev:is_set())
    ev:set()
    assert.is_true(ev:is_set())
    ev:set() -- setting again does nothing
    assert.is_true(ev:is_set())
    assert.is_false(task.event():is_set()) -- events are independent
  end)

  it("wakes every waiter at the end of the turn in which it was set, in the order they waited", function()
    local ev = task.event()
    local woke = {}
    local g = group()
    for i = 1, 4 do
      g.spawn(function()
        ev:wait()
        woke[#woke + 1] = i
      end)
    end
    task.defer()
    assert.are.same({}, woke) -- nobody goes on before set
    ev:set()
    assert.are.same({}, woke) -- set() resumes nobody from inside the caller
    g.wait()
    assert.are.same({ 1, 2, 3, 4 }, woke)
  end)

  it("returns at once from wait when it was set before", function()
    local ev = task.event()
    ev:set()
    local log = {}
    local g = group()
    g.spawn(function()
      ev:wait()
      log[#log + 1] = "waiter"
    end)
    log[#log + 1] = "spawner"
    -- The waiter ran on without yielding: it logged before its spawner went on.
    assert.are.same({ "waiter", "spawner" }, log)
    g.wait()
    -- Without yielding, so even in a coroutine of one's own.
    assert.are.equal("went on", coroutine.wrap(function()
      ev:wait()
      return "went on"
    end)())
  end)

  it("raises a clear error when waiting on an unset event outside a unit of work", function()
    local ev = task.event()
    local ok, err = coroutine.wrap(function() return pcall(ev.wait, ev) end)()
    assert.is_false(ok)
    assert.matches("event:wait can only wait inside a request, event, job or script coroutine", err, 1, true)
    -- No waiter was left behind: the event still works for a real one.
    local g = group()
    local woke = false
    g.spawn(function()
      ev:wait()
      woke = true
    end)
    ev:set()
    g.wait()
    assert.is_true(woke)
  end)

  it("refuses what is not an event", function()
    local ev = task.event()
    assert.has_error(function() ev.wait({}) end)
    assert.has_error(function() ev.set(nil) end)
    assert.has_error(function() ev.is_set("x") end)
  end)
end)
