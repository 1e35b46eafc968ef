--- Coalescing: the calls that many units of work make during one loop turn become one
-- call of a batch function (the DataLoader pattern, on `task.defer` and `task.event`).
--
-- Requests that arrive together (in one turn of the loop) and each need, say, one row
-- by key can be answered by one query for all of their keys: the database does the
-- fixed work of a statement once, not once per request. Nothing waits for a timer:
-- the first caller of a turn defers to the end of the turn, runs the batch function
-- for every item added meanwhile (itself included), and wakes the others. A call made
-- while that batch runs starts the next batch, so at most one turn of latency is added
-- and a lone request is a batch of one.
--
--     local load = batch.new(function(items) ... return results end, { max = 64 })
--     local result = load(item)   -- results[i] for this call's item i
--
-- The batch function runs in the first caller's coroutine and may yield (query, tx).
-- It returns an array with one result per item, in order; when it raises or returns
-- `nil, message`, every caller of that batch gets `nil, message`.
--
-- Accounting: a batch is work done for every caller, so each is charged its share.
-- The Lua time the batch function took in the leader (`task.cpu_used`) is divided
-- evenly among the callers: the leader is given back all but its share and every
-- other caller is charged its share when it wakes (`task.charge_cpu`: it counts
-- against that request's CPU budget). While the batch runs, the leader's log lines
-- carry `request_ids`, the ids of every caller (`task.log_context`), beside its own
-- `request_id`. The leader's budget still bounds the batch while it runs.
-- @module batch

local task = require "task"
local json_array = require("json").array

local batch = {}

local pcall, setmetatable, type = pcall, setmetatable, type
local cpu_used, charge_cpu, request_id, log_context =
  task.cpu_used, task.charge_cpu, task.request_id, task.log_context

local loader_mt = {}
loader_mt.__index = loader_mt

--- Make a loader.
-- @tparam function run `run(items)` returns the array of results
-- @tparam[opt] table opts `max`: items per batch at most (default 64); `concurrency`:
--   batches running at once at most (default 4); while that many run, new calls gather
--   into the next batch
-- @return a loader: call it as `loader(item)`
function batch.new(run, opts)
  if type(run) ~= "function" then error("batch.new: function expected, got " .. type(run), 2) end
  local max = opts and opts.max or 64
  if math.type(max) ~= "integer" or max < 1 then error("batch.new: opts.max must be a positive integer", 2) end
  local concurrency = opts and opts.concurrency or 4
  if math.type(concurrency) ~= "integer" or concurrency < 1 then
    error("batch.new: opts.concurrency must be a positive integer", 2)
  end
  return setmetatable({
    run = run, max = max, concurrency = concurrency, running = 0, batches = 0, items = 0,
  }, loader_mt)
end

local function lead(self, b)
  local deferred, why = pcall(task.defer)
  if not deferred then -- not in a unit of work: nobody else joined
    if self.pending == b then self.pending = nil end
    error(why, 0)
  end
  -- Every slot busy: this batch keeps taking items until one frees (group commit).
  while self.running >= self.concurrency do
    local freed = self.freed
    if not freed then
      freed = task.event()
      self.freed = freed
    end
    freed:wait()
  end
  if self.pending == b then self.pending = nil end
  self.running = self.running + 1
  local n = #b.items
  self.batches, self.items = self.batches + 1, self.items + n
  local started
  if n > 1 then
    log_context { request_ids = b.ids }
    started = cpu_used()
  end
  local ok, results, err = pcall(self.run, b.items)
  if n > 1 then
    log_context(nil)
    -- The leader keeps one share; the others take theirs when they wake.
    local spent = cpu_used() - started
    b.share = spent // n
    charge_cpu(b.share - spent)
  end
  self.running = self.running - 1
  local freed = self.freed
  if freed then
    self.freed = nil
    freed:set()
  end
  if not ok then
    b.err = results
  elseif type(results) ~= "table" then
    b.err = err or "batch: the batch function returned no results"
  else
    b.results = results
  end
  b.done:set()
end

--- Counters of this loader: batches run, items they carried, batches running now.
-- @treturn table `{batches =, items =, running =}`
function loader_mt:stats()
  return { batches = self.batches, items = self.items, running = self.running }
end

--- Add an item to this turn's batch and wait for its result.
-- @param item any value (not nil)
-- @return the batch function's result for the item, or nil, message
function loader_mt:__call(item)
  if item == nil then error("batch: item must not be nil", 2) end
  local b = self.pending
  local leader = b == nil
  if leader then
    b = { items = {}, ids = json_array(), done = task.event() }
    self.pending = b
  end
  local i = #b.items + 1
  b.items[i] = item
  b.ids[i] = request_id() or ""
  if i >= self.max and self.pending == b then self.pending = nil end
  if leader then
    lead(self, b)
  else
    b.done:wait()
    if b.share then charge_cpu(b.share) end
  end
  if b.err then return nil, b.err end
  return b.results[i]
end

return batch
