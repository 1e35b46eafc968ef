--- The outbox relay of BUS=dapr: moves committed events from bus_outbox to the
-- sidecar's publish API, in order per partition.
--
-- Owns: the relay loop. The relay is a consumer group ("relay") over the
-- outbox log, like the postgres driver's groups: one cursor per (topic,
-- partition) in bus_cursors, claimed with FOR UPDATE SKIP LOCKED while a batch
-- of that partition is published, so every replica can relay and a partition
-- (one key) is still published by one at a time, in commit order. A failed
-- publish stops its partition and sets the cursor's next attempt (backoff);
-- other partitions go on. Events are never dropped here: a permanent refusal
-- (wrong token, unknown pubsub, scoping) is logged and retried every few
-- seconds until an operator fixes the configuration. At least once: a crash
-- between publish and commit publishes again (consumers are idempotent).
-- The relay also runs the bus's retention chores (`bus.drivers.postgres.clean`).
--
-- On shutdown the relay keeps publishing while the host drains (handlers still
-- in flight may commit events), until the outbox has been quiet for half a
-- second or DAPR_RELAY_DRAIN_SECONDS pass. The sidecar must keep its publish API
-- up meanwhile: `dapr.io/block-shutdown-duration` (see dapr/README.md).
--
-- Settings: DAPR_RELAY ("off": no relay in this bundle), DAPR_RELAY_BATCH (100),
-- DAPR_RELAY_CONCURRENCY (2), DAPR_RELAY_POLL_SECONDS (1; NOTIFY wakes the relay
-- sooner), DAPR_RELAY_DRAIN_SECONDS (5).
-- @module bus.dapr_relay
local pg = require "pg"
local task = require "task"
local timer = require "timer"
local log = require "log"
local dapr = require "bus.drivers.dapr"
local wakeup = require "bus.wakeup"

local M = {}

local function num_env(name, default)
  return tonumber(os.getenv(name) or "") or default
end

M.BATCH = num_env("DAPR_RELAY_BATCH", 100)
M.CONCURRENCY = num_env("DAPR_RELAY_CONCURRENCY", 2)
M.POLL = num_env("DAPR_RELAY_POLL_SECONDS", 1)
M.DRAIN = num_env("DAPR_RELAY_DRAIN_SECONDS", 5)
M.GROUP = "relay"
-- Hand over to a fresh task after a slice of CPU time (as the postgres driver
-- does; the host's budget for background tasks is per slice).
local SLICE = num_env("CPU_BUDGET_MS", 1000) / 1000 * 0.25
local CLEAN_EVERY = num_env("BUS_CLEAN_EVERY_SECONDS", 60)

-- New partitions get a relay cursor at 0: everything retained is published.
local ENSURE = [[
  INSERT INTO bus_cursors (grp, topic, part)
  SELECT $1, p.topic, p.part FROM bus_partitions p
   WHERE NOT EXISTS (SELECT 1 FROM bus_cursors c WHERE c.grp = $1 AND c.topic = p.topic AND c.part = p.part)
  ON CONFLICT DO NOTHING]]

local CLAIM = [[
  SELECT c.topic, c.part, c.seq, c.attempts FROM bus_cursors c
    JOIN bus_partitions p ON p.topic = c.topic AND p.part = c.part
   WHERE c.grp = $1 AND p.last_seq > c.seq AND c.next_attempt_at <= now()
   ORDER BY c.next_attempt_at, random()
   LIMIT 1 FOR UPDATE OF c SKIP LOCKED]]

local FETCH = [[
  SELECT seq, key, event FROM bus_outbox WHERE topic = $1 AND part = $2 AND seq > $3 ORDER BY seq LIMIT $4]]

local ADVANCE = [[
  UPDATE bus_cursors SET seq = $4, attempts = $5, last_error = $7, seen_at = now(),
         next_attempt_at = CASE WHEN $6::float8 IS NULL THEN '-infinity'::timestamptz
                                ELSE now() + make_interval(secs => $6::float8) END
   WHERE grp = $1 AND topic = $2 AND part = $3]]

--- Whether some committed event has not been published yet.
-- @treturn boolean
function M.pending()
  local rows = pg.query([[SELECT 1 AS x FROM bus_cursors c JOIN bus_partitions p
    ON p.topic = c.topic AND p.part = c.part WHERE c.grp = $1 AND p.last_seq > c.seq LIMIT 1]], M.GROUP)
  return rows ~= nil and rows[1] ~= nil
end

--- Seconds before a failed partition is tried again.
-- @tparam string kind "transient" or "permanent"
-- @tparam integer attempts failures in a row
-- @treturn number
function M.backoff(kind, attempts)
  if kind == "permanent" then return 5 end
  return math.min(0.1 * 2 ^ (attempts - 1), 5)
end

--- Create the relay cursors of partitions that appeared since the last call.
-- @return true | nil, message
function M.ensure_cursors()
  return pg.query(ENSURE, M.GROUP)
end

--- Claim one partition with unpublished events and publish a batch of it.
-- @tparam[opt] table opts `attempts` per publish call (default the driver's)
-- @treturn integer events published
-- @treturn string "idle" (no partition has work for now), "more", "failed"
--   (a publish failed; its partition waits) or "error" (database)
function M.flush(opts)
  opts = opts or {}
  local published, state = 0, "idle"
  local ok, err = pg.tx(function(tx)
    local rows, e = tx:query(CLAIM, M.GROUP)
    if not rows then return nil, e end
    local c = rows[1]
    if not c then return true end
    state = "more"
    local evs
    evs, e = tx:query(FETCH, c.topic, c.part, c.seq, M.BATCH)
    if not evs then return nil, e end
    local seq, attempts, retry_in, last_error = c.seq, c.attempts, nil, nil
    for _, row in ipairs(evs) do
      local sent, perr, kind = dapr.publish(c.topic, row.event, { key = row.key, attempts = opts.attempts })
      if not sent then
        attempts = attempts + 1
        retry_in, last_error, state = M.backoff(kind, attempts), perr, "failed"
        log.warn("dapr relay: publish failed, will retry", { topic = c.topic, part = c.part, seq = row.seq,
          event_id = row.event and row.event.id, kind = kind, attempts = attempts, retry_in = retry_in,
          error = perr })
        break
      end
      seq, attempts = row.seq, 0
      published = published + 1
    end
    local r
    r, e = tx:query(ADVANCE, M.GROUP, c.topic, c.part, seq, attempts, retry_in or pg.null, last_error or pg.null)
    if not r then return nil, e end
    return true
  end)
  if not ok then
    log.warn("dapr relay: database error", { error = tostring(err) })
    return published, "error"
  end
  return published, state
end

--- One relay pump: publish until the bundle stops, then drain. Runs as a
-- chain of background tasks (see the CPU slice above).
function M.pump()
  local c0 = os.clock()
  while not task.stopping() do
    local l = wakeup.listener()
    local gen = wakeup.generation(l) -- before looking: a NOTIFY meanwhile is not lost
    local _, state = M.flush()
    if state == "error" then
      -- the database is away: look again soon (a NOTIFY cannot wake us meanwhile), so
      -- that events committed once it is back are published within a moment
      if task.wait(0.25) then break end
    elseif state ~= "more" then
      if wakeup.wait(l, gen, M.POLL) then break end
    end
    if os.clock() - c0 > SLICE and not task.stopping() then
      task.spawn(M.pump)
      return
    end
  end
  M.drain()
end

-- Cursors for new partitions, and the retention chores, once in a while.
local function chores()
  local c0, last_clean = os.clock(), os.time()
  while not task.stopping() do
    M.ensure_cursors()
    if os.time() - last_clean >= CLEAN_EVERY then
      last_clean = os.time()
      require("bus.drivers.postgres").clean()
    end
    if task.wait(math.min(M.POLL, 1)) then return end
    if os.clock() - c0 > SLICE then
      task.spawn(chores)
      return
    end
  end
end

--- After the stop signal: keep publishing while requests still in flight may
-- commit events, until everything is published and the outbox has been quiet
-- for half a second, or DAPR_RELAY_DRAIN_SECONDS pass.
function M.drain()
  local deadline = timer.monotonic() + M.DRAIN
  local quiet = 0
  while timer.monotonic() < deadline do
    M.ensure_cursors()
    local n, state = M.flush { attempts = 2 }
    if n == 0 and state == "idle" and not M.pending() then
      quiet = quiet + 1
      if quiet >= 5 then break end
    else
      quiet = 0
    end
    if state ~= "more" then timer.sleep(0.1) end
  end
  wakeup.close()
end

--- Start the relay of a bundle (from its on_start, through the driver):
-- DAPR_RELAY_CONCURRENCY pumps and the chores task.
function M.start()
  local v = os.getenv("DAPR_RELAY")
  if v == "off" or v == "0" or v == "false" then return end
  task.spawn(function()
    M.ensure_cursors()
    for _ = 1, M.CONCURRENCY do task.spawn(M.pump) end
    chores()
  end)
end

return M
