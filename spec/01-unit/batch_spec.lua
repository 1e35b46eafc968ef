-- The batch facade (core/lua/batch.lua): calls made by many coroutines in one loop turn
-- become one call of the batch function; results go back by position; failures reach
-- every caller of the batch; `max` splits batches; `concurrency` makes late callers
-- gather into the next batch.
local task = require "task"
local batch = require "batch"

local group = require("spec.support.group").new

local function copy(t) return table.move(t, 1, #t, 1, {}) end

-- A loader whose batch function records the items of each call and answers
-- `answer(item, i)` for each (default: "<item>#<position>"), after `before(items)`.
local function recording(opts, answer, before)
  local calls = {}
  local load = batch.new(function(items)
    calls[#calls + 1] = copy(items)
    if before then before(items) end
    local out = {}
    for i, item in ipairs(items) do out[i] = answer and answer(item, i) or (tostring(item) .. "#" .. i) end
    return out
  end, opts)
  return load, calls
end

describe("batch", function()
  it("turns the calls of one turn into one call of the batch function, in call order", function()
    local load, calls = recording(nil, function(item) return { doubled = item * 2 } end)
    local items = { 7, 3, 9, 1, 5 }
    local got = {}
    local g = group()
    for i, item in ipairs(items) do g.spawn(function() got[i] = load(item) end) end
    g.wait()
    assert.are.same({ { 7, 3, 9, 1, 5 } }, calls)
    for i, item in ipairs(items) do assert.are.same({ doubled = item * 2 }, got[i]) end
    assert.are.same({ batches = 1, items = 5, running = 0 }, load:stats())
  end)

  it("answers each caller by its position, also when two callers pass the same item", function()
    local load, calls = recording()
    local got = {}
    local g = group()
    for i, item in ipairs({ "x", "y", "x" }) do g.spawn(function() got[i] = load(item) end) end
    g.wait()
    assert.are.same({ { "x", "y", "x" } }, calls)
    assert.are.same({ "x#1", "y#2", "x#3" }, got)
  end)

  it("runs the batch function in the first caller's coroutine", function()
    local ran_in
    local load = batch.new(function(items)
      ran_in = coroutine.running()
      return items
    end)
    local first
    local g = group()
    g.spawn(function()
      first = coroutine.running()
      load(1)
    end)
    g.spawn(function() load(2) end)
    g.wait()
    assert.is_not_nil(first)
    assert.are.equal(first, ran_in)
  end)

  it("makes a lone call a batch of one (also from the spec's own coroutine)", function()
    local load, calls = recording()
    assert.are.equal("solo#1", load("solo"))
    assert.are.same({ { "solo" } }, calls)
    assert.are.same({ batches = 1, items = 1, running = 0 }, load:stats())
    -- The next turn starts a new batch.
    assert.are.equal("again#1", load("again"))
    assert.are.same({ { "solo" }, { "again" } }, calls)
  end)

  it("splits a turn's calls into batches of at most max items", function()
    local load, calls = recording({ max = 3 })
    local got = {}
    local g = group()
    for i = 1, 7 do g.spawn(function() got[i] = load(i) end) end
    g.wait()
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 }, { 7 } }, calls)
    assert.are.same({ "1#1", "2#2", "3#3", "4#1", "5#2", "6#3", "7#1" }, got)
    assert.are.same({ batches = 3, items = 7, running = 0 }, load:stats())
  end)

  it("gives every caller nil and the message when the batch function raises, and goes on working", function()
    local fail = true
    local load, calls = recording(nil, nil, function()
      if fail then error("kaput", 0) end
    end)
    local got = {}
    local g = group()
    for i = 1, 3 do g.spawn(function() got[i] = table.pack(load(i)) end) end
    g.wait()
    assert.are.equal(1, #calls)
    for i = 1, 3 do
      assert.are.equal(2, got[i].n)
      assert.is_nil(got[i][1])
      assert.are.equal("kaput", got[i][2])
    end
    assert.are.same({ batches = 1, items = 3, running = 0 }, load:stats())
    -- The next turn's batch works.
    fail = false
    got = {}
    g = group()
    for i = 1, 2 do g.spawn(function() got[i] = load("ok" .. i) end) end
    g.wait()
    assert.are.same({ { 1, 2, 3 }, { "ok1", "ok2" } }, calls)
    assert.are.same({ "ok1#1", "ok2#2" }, got)
    assert.are.same({ batches = 2, items = 5, running = 0 }, load:stats())
  end)

  it("keeps the position of an error raised with one", function()
    local load = batch.new(function() error("with position") end)
    local r, err = load(1)
    assert.is_nil(r)
    assert.matches("batch_spec.lua:%d+: with position$", err)
  end)

  it("gives every caller nil, message when the batch function returns nil, message", function()
    local load = batch.new(function() return nil, "boom" end)
    local got = {}
    local g = group()
    for i = 1, 3 do g.spawn(function() got[i] = table.pack(load(i)) end) end
    g.wait()
    for i = 1, 3 do
      assert.are.equal(2, got[i].n)
      assert.is_nil(got[i][1])
      assert.are.equal("boom", got[i][2])
    end
    assert.are.same({ batches = 1, items = 3, running = 0 }, load:stats())
  end)

  it("gives every caller nil, message when the batch function returns no results", function()
    local load = batch.new(function() end)
    local r, err = load(1)
    assert.is_nil(r)
    assert.are.equal("batch: the batch function returned no results", err)
  end)

  it("gathers the calls arriving while `concurrency` batches run into one next batch", function()
    local gate = task.event()
    local active, most = 0, 0
    local load, calls = recording({ concurrency = 1 }, nil, function(items)
      active = active + 1
      most = math.max(most, active)
      if items[1] == "a1" then gate:wait() else task.defer() end
      active = active - 1
    end)
    local got = {}
    local g = group()
    local function call(item) g.spawn(function() got[item] = load(item) end) end
    call("a1")
    call("a2")
    task.defer() -- the end of the turn: the first batch starts and waits on the gate
    assert.are.same({ { "a1", "a2" } }, calls)
    assert.are.same({ batches = 1, items = 2, running = 1 }, load:stats())
    call("b1")
    call("b2")
    call("b3")
    task.defer() -- b1 leads the next batch, which waits for a free slot
    task.defer()
    call("b4") -- later turns: still gathered into b1's batch
    task.defer()
    call("b5")
    assert.are.same({ batches = 1, items = 2, running = 1 }, load:stats())
    gate:set()
    g.wait()
    assert.are.same({ { "a1", "a2" }, { "b1", "b2", "b3", "b4", "b5" } }, calls)
    assert.are.equal(1, most) -- never two batches at once
    assert.are.same({ a1 = "a1#1", a2 = "a2#2", b1 = "b1#1", b2 = "b2#2", b3 = "b3#3", b4 = "b4#4", b5 = "b5#5" },
      got)
    assert.are.same({ batches = 2, items = 7, running = 0 }, load:stats())
  end)

  it("runs up to `concurrency` batches at once", function()
    local gate = task.event()
    local active, most = 0, 0
    local load, calls = recording({ max = 2, concurrency = 2 }, nil, function()
      active = active + 1
      most = math.max(most, active)
      gate:wait()
      active = active - 1
    end)
    local got = {}
    local g = group()
    for i = 1, 6 do g.spawn(function() got[i] = load(i) end) end
    task.defer()
    -- Batches {1,2} and {3,4} run; {5,6} waits for a slot.
    assert.are.same({ { 1, 2 }, { 3, 4 } }, calls)
    assert.are.equal(2, load:stats().running)
    gate:set()
    g.wait()
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, calls)
    assert.are.equal(2, most)
    assert.are.same({ "1#1", "2#2", "3#1", "4#2", "5#1", "6#2" }, got)
  end)

  it("charges every caller its share of the batch's CPU time, not all to the one that ran it", function()
    local BURN = 40 * 1000000 -- ns of Lua time the batch function takes
    local burned, leader
    local load = batch.new(function(items)
      leader = coroutine.running()
      local t0, x = task.cpu_used(), 0
      while task.cpu_used() - t0 < BURN do
        for i = 1, 1000 do x = x + i end
      end
      burned = task.cpu_used() - t0
      return items
    end)
    local spent, who = {}, {}
    local g = group()
    for i = 1, 4 do
      g.spawn(function()
        who[i] = coroutine.running()
        local before = task.cpu_used()
        load(i)
        spent[i] = task.cpu_used() - before
      end)
    end
    g.wait()
    local share = burned // 4
    local total = 0
    for i = 1, 4 do
      total = total + spent[i]
      assert.is_true(spent[i] >= share, "caller " .. i .. " was charged " .. spent[i] .. " ns, its share is " .. share)
      if who[i] == leader then
        -- its own share and its bookkeeping, not the whole batch
        assert.is_true(spent[i] < share + BURN // 4, "the leader kept " .. spent[i] .. " ns of " .. burned)
      end
    end
    assert.is_true(total >= burned)
  end)

  it("gives back nothing and charges nothing for a batch of one", function()
    local load = batch.new(function(items)
      local t0, x = task.cpu_used(), 0
      while task.cpu_used() - t0 < 5000000 do x = x + 1 end
      return items
    end)
    local before = task.cpu_used()
    load("solo")
    assert.is_true(task.cpu_used() - before >= 5000000)
  end)

  it("lets the units account for themselves: cpu_used grows, charge_cpu adds and gives back", function()
    local a = task.cpu_used()
    assert.are.equal("integer", math.type(a))
    task.charge_cpu(7000000)
    local b = task.cpu_used()
    assert.is_true(b - a >= 7000000)
    task.charge_cpu(-(b + 1000000000)) -- never below zero
    assert.is_true(task.cpu_used() < 50000000) -- only the time since the credit (wall clock: a loaded machine)
    assert.has_error(function() task.charge_cpu(1.5) end)
  end)

  it("raises outside a unit of work and leaves no batch behind", function()
    local load, calls = recording()
    local ok, err = coroutine.wrap(function() return pcall(load, "lost") end)()
    assert.is_false(ok)
    assert.matches("task.defer can only wait inside", err, 1, true)
    assert.are.same({}, calls)
    assert.are.equal("next#1", load("next"))
    assert.are.same({ { "next" } }, calls)
  end)

  it("refuses bad arguments", function()
    local function run(items) return items end
    assert.has_error(function() batch.new() end, "batch.new: function expected, got nil")
    assert.has_error(function() batch.new({}) end, "batch.new: function expected, got table")
    for _, max in ipairs({ 0, -1, 1.5, "3" }) do
      assert.has_error(function() batch.new(run, { max = max }) end, "batch.new: opts.max must be a positive integer")
    end
    for _, c in ipairs({ 0, -2, 2.5, "1" }) do
      assert.has_error(function() batch.new(run, { concurrency = c }) end,
        "batch.new: opts.concurrency must be a positive integer")
    end
    local load = batch.new(run)
    assert.has_error(function() load(nil) end, "batch: item must not be nil")
    assert.has_error(function() load() end, "batch: item must not be nil")
  end)
end)
