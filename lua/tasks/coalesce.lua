--- The hot routes' database work, coalesced: task reads, creations and complete /
-- reopen that arrive in the same loop turn go to PostgreSQL as one statement (reads) or
-- one transaction (writes) for all of them (the `batch` facade). The answers are the
-- ones tasks.store gives for each request alone. Internal to lua/tasks: tasks.repo calls
-- it (get, create, set_completed), so every caller of the repository is coalesced alike.
--
-- Scoping: every statement joins each item's task id with that item's own user id, and
-- each answer goes back to the item whose (id, user) produced it, so one user's batch
-- companion can never see or change the other's task.
-- All or nothing per request: a batched write that fails (any error, from any item) is
-- rolled back whole and every item is then run alone through tasks.store, which gives
-- each request its own answer or error. An item the batch did not change (task missing,
-- another user's, already in that state, or named twice in one batch) is also answered
-- by tasks.store alone, after the batch committed.
-- Accounting (core/lua/batch.lua): a batch's statement runs in the coroutine of the request
-- that opened it, and its Lua time is then shared evenly among the requests it served (each
-- is charged its share, against its own CPU budget and in its access-log `cpu_ms`); its log
-- lines (a rolled-back batch's, say) carry `request_ids`, every request's id. An item the
-- batch leaves to run alone (a rolled-back batch, an item it did not change) is run by its
-- own request's coroutine, under its own budget and request id.
-- @module tasks.coalesce

local pg = require "pg"
local crypto = require "crypto"
local batch = require "batch"
local log = require "log"
local store = require "tasks.store"
local events = require "tasks.events"

local M = {}

local COLUMNS = store.COLUMNS

-- A positive integer setting from the environment.
local function setting(name, default)
  local v = os.getenv(name)
  local n = v and math.tointeger(tonumber(v))
  if v and (not n or n < 1) then error(name .. " must be a positive integer, got '" .. v .. "'") end
  return n or default
end

--- Items per statement at most (a turn with more starts further batches);
-- API_BATCH_MAX=1 turns coalescing off (every request alone, as tasks.store).
M.MAX = setting("API_BATCH_MAX", 64)
--- Read statements in flight at once per loader (per worker), API_BATCH_READS. One: while
-- it runs the next requests gather into a larger batch; on 2 cores 1 gave more reads and a
-- shorter tail than 4 (17.6-18.8k req/s, p99 6.0-6.8 ms against 16.5-17.9k, 7.5-10.9 ms).
M.READS = setting("API_BATCH_READS", 1)
--- Write transactions in flight at once per loader (per worker), API_BATCH_WRITES:
-- fewer and larger transactions contend less for the outbox's partition rows.
M.WRITES = setting("API_BATCH_WRITES", 2)

local function key(id, user) return id .. " " .. user end

-- A batch's answer for an item it leaves to its own request: `call` then runs the item
-- alone in the caller's coroutine.
local ALONE = {}

-- A loader's answer for one item: the store's return values (the batch's, or `alone(item)`'s
-- for an item left to run alone), or nil, err of the batch.
local function call(loader, item, alone)
  local r, err = loader(item)
  if not r then return nil, err end
  if r == ALONE then r = alone(item) end
  return r[1], r[2], r[3], r[4]
end

-- Every item of a batch left to run alone (a batch that rolled back).
local function all_alone(items)
  local out = {}
  for i = 1, #items do out[i] = ALONE end
  return out
end

-- A batch transaction failed and rolled back (a value PostgreSQL refused in one item, a
-- deadlock, a lost connection): say so, then each item runs alone (in its own request).
local function batch_failed(what, items, err, state)
  log.info("tasks: a coalesced " .. what .. " failed; its items run alone",
    { items = #items, error = tostring(err), sqlstate = state })
end

-- Reads ---------------------------------------------------------------------------------

local GET_MANY = "SELECT " .. COLUMNS .. [[, k.kuser AS batch_user
  FROM unnest($1::uuid[], $2::text[]) AS k(kid, kuser)
  JOIN tasks t ON t.id = k.kid AND t.user_id = k.kuser]]

local function get_many(items)
  if #items == 1 then
    local task, err, state = store.get(items[1].user, items[1].id)
    return { { task, err, state } }
  end
  local ids, users = {}, {}
  for i, it in ipairs(items) do ids[i], users[i] = it.id, it.user end
  local rows, err, state = pg.query(GET_MANY, pg.array(ids), pg.array(users))
  local out = {}
  if not rows then
    for i = 1, #items do out[i] = { nil, err, state } end
    return out
  end
  local found = {}
  for _, row in ipairs(rows) do found[key(row.id, row.batch_user)] = row end
  for i, it in ipairs(items) do
    local row = found[key(it.id, it.user)]
    out[i] = { row and store.to_task(row) or false }
  end
  return out
end

local load_task = batch.new(get_many, { max = M.MAX, concurrency = M.READS })

--- Fetch one of the user's tasks (`tasks.store.get`, coalesced).
-- @tparam string user
-- @tparam string id a lower-case UUID
-- @return the task, false when there is none, or nil, err, sqlstate
function M.get(user, id)
  return call(load_task, { user = user, id = id })
end

-- Creations -----------------------------------------------------------------------------

local function create_alone(it)
  local task, err, state, constraint = store.create(it.user, it.fields, it.id)
  if not task and state == "23505" then
    -- The batch did commit after all (its COMMIT's answer was lost): the task with this
    -- request's own id is there, events and all.
    local found = store.get(it.user, it.id)
    if found then return { found } end
  end
  return { task, err, state, constraint }
end

local function create_many(items)
  if #items == 1 then return { create_alone(items[1]) } end
  local res, fail_err, fail_state = store.in_tx(function(tx)
    local by_id, err, state, constraint = store.insert(tx, items)
    if not by_id then return nil, err, state, constraint end
    local tasks, changes = {}, {}
    for i, it in ipairs(items) do
      local row = by_id[it.id]
      if not row then return nil, "batch: a created row is missing" end
      tasks[i] = store.to_task(row)
      changes[i] = { user = it.user, kind = "created", task = tasks[i] }
    end
    -- The outbox statement takes the partition rows that every writer needs; COMMIT goes
    -- with it so that they are held for one round trip less.
    tx:commit_with_next()
    local ok, perr = events.record_changes(tx, changes)
    if not ok then return nil, perr end
    return tasks
  end)
  if not res then
    -- The batch rolled back: each creation alone (same ids: nothing is created twice).
    batch_failed("creation", items, fail_err, fail_state)
    return all_alone(items)
  end
  local out = {}
  for i, task in ipairs(res) do out[i] = { task } end
  return out
end

local create = batch.new(create_many, { max = M.MAX, concurrency = M.WRITES })

--- Create a task (`tasks.store.create`, coalesced).
-- @tparam string user
-- @tparam table f clean fields from `schema.task_input(body, "create")`
-- @return the task, or nil, message, sqlstate, constraint
function M.create(user, f)
  return call(create, { user = user, fields = f, id = crypto.uuid_v4() }, create_alone)
end

-- Complete / reopen ---------------------------------------------------------------------

-- `locked` takes the rows' locks in id order before the UPDATE touches any of them (a
-- locking CTE is materialized, and the UPDATE changes only rows it has returned). The
-- UPDATE's own scan order depends on the plan (a small table is read sequentially, in
-- the order of the row versions each transaction sees), so two batches sharing tasks
-- could otherwise lock them in opposite orders and deadlock (measured: 7 in 8 s under
-- load, each costing deadlock_timeout and a rerun of every item alone).
local SET_COMPLETED_MANY = [[
  WITH k AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::boolean[]) AS k(kid, kuser, c)),
  locked AS (SELECT t.id FROM tasks t WHERE (t.id, t.user_id) IN (SELECT kid, kuser FROM k)
              ORDER BY t.id FOR UPDATE)
  UPDATE tasks t
     SET completed = k.c, completed_at = CASE WHEN k.c THEN coalesce(t.completed_at, now()) END,
         version = t.version + 1, updated_at = now()
    FROM k
   WHERE t.id = k.kid AND t.user_id = k.kuser AND t.completed IS DISTINCT FROM k.c
     AND t.id IN (SELECT id FROM locked)
  RETURNING ]] .. COLUMNS .. ", k.kuser AS batch_user, k.c AS batch_completed"

local CHANGED = {
  [true] = events.changed_fields { completed = true },
  [false] = events.changed_fields { completed = false },
}

-- Complete or reopen one task alone (tasks.store.update: a task already in that state
-- is left as it is).
local function set_completed_alone(user, id, completed, versions)
  return store.update(user, id, { completed = completed }, versions, completed and "completed" or "reopened")
end

local function set_alone(it)
  return { set_completed_alone(it.user, it.id, it.completed) }
end

local function set_completed_many(items)
  if #items == 1 then return { set_alone(items[1]) } end
  local ids, users, states = {}, {}, {}
  for i, it in ipairs(items) do ids[i], users[i], states[i] = it.id, it.user, it.completed end
  local res, fail_err, fail_state = store.in_tx(function(tx)
    local rows, err, state = tx:query(SET_COMPLETED_MANY, pg.array(ids), pg.array(users), pg.array(states))
    if not rows then return nil, err, state end
    local done, changes = {}, {}
    for _, row in ipairs(rows) do
      local task = store.to_task(row)
      done[key(row.id, row.batch_user)] = { task = task, completed = row.batch_completed }
      changes[#changes + 1] = {
        user = row.batch_user, kind = row.batch_completed and "completed" or "reopened",
        task = task, changed = CHANGED[row.batch_completed],
      }
    end
    if #changes > 0 then
      tx:commit_with_next()
      local ok, perr = events.record_changes(tx, changes)
      if not ok then return nil, perr end
    end
    return done
  end)
  if not res then batch_failed("complete/reopen", items, fail_err, fail_state) end
  local out = {}
  for i, it in ipairs(items) do
    local d = res and res[key(it.id, it.user)]
    if d and d.completed == it.completed then
      out[i] = { { task = d.task } }
      res[key(it.id, it.user)] = nil -- the same task twice in a batch: the second goes alone
    else
      out[i] = ALONE
    end
  end
  return out
end

local set_completed = batch.new(set_completed_many, { max = M.MAX, concurrency = M.WRITES })

--- Complete or reopen a task (`tasks.store.update` with only `completed`). A task
-- already in that state is answered as it is. Without
-- `versions` (If-Match) the request is coalesced; with them it runs alone.
-- @tparam[opt] table versions from If-Match
-- @return `{task = t}`, `{missing = true}`, `{conflict = true, version = n}`, or nil, err, sqlstate
function M.set_completed(user, id, completed, versions)
  if versions ~= nil then return set_completed_alone(user, id, completed == true, versions) end
  return call(set_completed, { user = user, id = id, completed = completed == true }, set_alone)
end

if M.MAX == 1 then
  -- Coalescing off: every request alone, straight through tasks.store.
  M.get = store.get
  M.create = function(user, f) return store.create(user, f) end
  M.set_completed = function(user, id, completed, versions)
    return set_completed_alone(user, id, completed == true, versions)
  end
end

--- Counters of the three loaders (`batch` loader:stats()): `{get =, create =, set_completed =}`.
function M.stats()
  return { get = load_task:stats(), create = create:stats(), set_completed = set_completed:stats() }
end

return M
