--- Running one handler on one event, the driver-independent part of consuming:
-- idempotency (bus_inbox), isolation of a failing handler (a savepoint), the retry
-- backoff and the dead-letter table. Drivers call these inside their own `pg.tx`.
-- @module bus.consumer

local json = require "json"
local log = require "log"

local M = {}

-- After ROLLBACK TO SAVEPOINT the transaction is usable again, but the pg facade
-- remembers the failed query (tx.err) and would refuse everything after it: forget it.
local function rollback_to(tx, name)
  tx.err, tx.sqlstate = nil, nil
  return tx:query("ROLLBACK TO SAVEPOINT " .. name)
end

local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "table" then return json.encode(e) or tostring(e) end
  return tostring(e)
end

--- Call the handler on `tx` (no savepoint, no idempotency record: the caller's job).
-- @treturn ?string nil on success, else what failed (a raise, `nil, message`, or a
--   query of the handler that failed)
function M.call(tx, sub, event, meta)
  local res = table.pack(pcall(sub.handler, event, tx, meta or { topic = sub.topic }))
  if not res[1] then return describe(res[2]) end
  if (res[2] == nil or res[2] == false) and res.n >= 3 and res[3] ~= nil then return describe(res[3]) end
  if tx.err then return "a query failed: " .. tostring(tx.err) end
  return nil
end

--- Call `sub.batch_handler(events, tx, metas)` on `tx` (like `M.call`, for the events of
-- one partition in order; no savepoint, no idempotency records: the caller's job).
-- @treturn ?string nil on success, else what failed
function M.call_batch(tx, sub, events, metas)
  local res = table.pack(pcall(sub.batch_handler, events, tx, metas))
  if not res[1] then return describe(res[2]) end
  if (res[2] == nil or res[2] == false) and res.n >= 3 and res[3] ~= nil then return describe(res[3]) end
  if tx.err then return "a query failed: " .. tostring(tx.err) end
  return nil
end

--- Run `sub.handler(event, tx, meta)` once, inside `tx`, recording (group, event id).
-- A savepoint isolates it: when the handler fails, its writes are undone and `tx`
-- stays usable (the caller then records the failure on its cursor).
-- @param tx a `pg.tx` transaction
-- @tparam table sub the subscription (`group`, `handler`)
-- @tparam table event the CloudEvent
-- @tparam[opt] table meta `topic`, `key` of the event when the driver knows them
-- @treturn[1] string "done" or "duplicate" (already processed by this group: nothing ran)
-- @treturn[2] nil
-- @treturn[2] string the handler's error (or a database error)
function M.deliver(tx, sub, event, meta)
  local ok, err = tx:query("SAVEPOINT bus_delivery")
  if not ok then return nil, err end
  local rows
  rows, err = tx:query([[INSERT INTO bus_inbox (grp, event_id) VALUES ($1, $2::uuid)
    ON CONFLICT DO NOTHING RETURNING 1 AS fresh]], sub.group, event.id)
  if not rows then
    rollback_to(tx, "bus_delivery")
    return nil, err
  end
  if #rows == 0 then
    tx:query("RELEASE SAVEPOINT bus_delivery")
    return "duplicate"
  end
  local failure = M.call(tx, sub, event, meta)
  if failure then
    rollback_to(tx, "bus_delivery")
    return nil, failure
  end
  ok, err = tx:query("RELEASE SAVEPOINT bus_delivery")
  if not ok then return nil, err end
  return "done"
end

--- Seconds to wait before attempt `attempts + 1` (exponential, capped).
-- @tparam table sub `backoff` (first delay, seconds) and `backoff_max`
-- @tparam integer attempts failures so far (>= 1)
-- @treturn number
function M.backoff(sub, attempts)
  return math.min(sub.backoff * 2 ^ (attempts - 1), sub.backoff_max)
end

--- Move an event to the dead-letter table (inside `tx`).
-- @return true | nil, message, sqlstate
function M.dead_letter(tx, sub, event, err, attempts)
  log.warn("bus: event dead-lettered", { group = sub.group, topic = sub.topic, event_id = event.id,
    attempts = attempts, error = err })
  local rows, e, s = tx:query([[INSERT INTO bus_dead_letters (grp, topic, event_id, event, error, attempts)
    VALUES ($1, $2, $3::uuid, $4::jsonb, $5, $6)]], sub.group, sub.topic, event.id, event, err, attempts)
  if not rows then return nil, e, s end
  return true
end

--- Replay the dead letters of `sub.group` that `todo-host events retry` asked for: each
-- runs the handler again (idempotently); success marks it replayed, failure keeps it
-- dead with the new error. Runs its own transactions.
-- @treturn integer how many were replayed successfully
function M.replay_requested(sub)
  local pg = require "pg"
  local rows = pg.query([[SELECT id FROM bus_dead_letters WHERE grp = $1 AND topic = $2
    AND retry_requested_at IS NOT NULL AND replayed_at IS NULL ORDER BY id LIMIT 20]], sub.group, sub.topic)
  local n = 0
  for _, row in ipairs(rows or {}) do
    local ok = pg.tx(function(tx)
      local r = tx:query([[SELECT event FROM bus_dead_letters WHERE id = $1 AND replayed_at IS NULL
        AND retry_requested_at IS NOT NULL FOR UPDATE SKIP LOCKED]], row.id)
      if not r or not r[1] then return false end
      tx:query("DELETE FROM bus_inbox WHERE grp = $1 AND event_id = $2::uuid", sub.group, r[1].event.id)
      local done, err = M.deliver(tx, sub, r[1].event)
      if done then
        tx:query("UPDATE bus_dead_letters SET replayed_at = now(), retry_requested_at = NULL WHERE id = $1", row.id)
        return true
      end
      tx:query([[UPDATE bus_dead_letters SET error = $2, attempts = attempts + 1, retry_requested_at = NULL
        WHERE id = $1]], row.id, err)
      return false
    end)
    if ok then n = n + 1 end
  end
  return n
end

--- One delivery from an external broker (BUS=dapr): run the handler in its own
-- transaction with its idempotency record; count failures in bus_attempts and
-- dead-letter the event after `max_attempts` (BUS_MAX_ATTEMPTS, default 5).
-- @tparam string group the consumer group (for broadcast: one per replica)
-- @tparam function handler `handler(event, tx)`
-- @tparam table event the CloudEvent
-- @tparam[opt] table opts `topic`, `max_attempts`, `idempotent` (a fast path: see inside)
-- @treturn string "done", "duplicate", "retry" (try again later) or "drop" (dead-lettered)
-- @treturn ?string the error, for "retry" and "drop"
function M.handle(group, handler, event, opts)
  local pg = require "pg"
  local timer = require "timer"
  opts = opts or {}
  local sub = {
    group = group, handler = handler, topic = opts.topic or event.topic or "unknown",
    max_attempts = opts.max_attempts or tonumber(os.getenv("BUS_MAX_ATTEMPTS") or "") or 5,
  }
  -- The fast path of an `idempotent` subscription (its own writes make a redelivery
  -- harmless, as in the postgres driver): the handler alone in one transaction, with no
  -- savepoint and no (group, event id) record: two round trips to the database instead
  -- of five. With daprd delivering one event at a time (`concurrency: 1`), those round
  -- trips bound a topic's throughput: the websocket group's deliveries fell behind the
  -- writes on a loaded machine and `make chaos DAPR=1` saw the first task after a
  -- database outage reach WebSocket clients 2-4 s late, behind the backlog. A failure
  -- (or an outage) takes the careful path below: the handler runs again with its record,
  -- the attempt is counted and the event dead-lettered after max_attempts.
  if opts.idempotent then
    local fast = pg.tx(function(tx)
      local herr = M.call(tx, sub, event)
      if herr then return nil, herr end
      return true
    end)
    if fast then return "done" end
  end
  local outcome, failure
  local function attempt()
    outcome, failure = nil, nil
    return pg.tx(function(tx)
      local done, herr = M.deliver(tx, sub, event)
      if done then
        outcome = done
        return true
      end
      failure = herr
      local rows, e = tx:query([[INSERT INTO bus_attempts AS a (grp, event_id, attempts, last_error)
        VALUES ($1, $2::uuid, 1, $3) ON CONFLICT (grp, event_id)
        DO UPDATE SET attempts = a.attempts + 1, last_error = $3, updated_at = now()
        RETURNING attempts]], group, event.id, herr)
      if not rows then return nil, e end
      if rows[1].attempts < sub.max_attempts then
        outcome = "retry"
        return true
      end
      local dl, de = M.dead_letter(tx, sub, event, herr, rows[1].attempts)
      if not dl then return nil, de end
      -- a redelivery of a dead-lettered event is a duplicate
      tx:query("INSERT INTO bus_inbox (grp, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING", group, event.id)
      outcome = "drop"
      return true
    end)
  end
  -- The transaction itself failed: the database is unreachable (a handler's failure is
  -- counted above). Answering "retry" at once let the broker's retry backoff grow while
  -- the database was down (daprd's policy reaches 15 s), and the deliveries queued behind
  -- this one waited for it: `make chaos DAPR=1` saw events reach WebSocket clients 2 s
  -- after a 3 s outage. So hold the delivery while the database is down and try again the
  -- moment it answers, for up to M.DB_WAIT seconds (under daprd's delivery timeout).
  local deadline = timer.monotonic() + M.DB_WAIT
  while true do
    local ok, err = attempt()
    if ok then return outcome, failure end
    if pg.query("SELECT 1 AS up") then return "retry", err end -- not an outage
    repeat
      timer.sleep(0.1)
      if timer.monotonic() >= deadline then return "retry", err end
    until pg.query("SELECT 1 AS up")
  end
end

--- Seconds `handle` holds a delivery while the database is unreachable
-- (BUS_DB_WAIT_SECONDS, default 10).
M.DB_WAIT = tonumber(os.getenv("BUS_DB_WAIT_SECONDS") or "") or 10

return M
