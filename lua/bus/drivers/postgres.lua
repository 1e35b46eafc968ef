--- BUS=postgres: the outbox table is the log (one machine: `make run`, the tests).
--
-- Each subscription group keeps one cursor per partition of its topic (bus_cursors).
-- A consumer ("pump", `concurrency` of them per subscription and process) claims up to
-- BUS_CLAIM_PARTITIONS (default 16) partitions that have work with `FOR UPDATE SKIP
-- LOCKED` on their cursor rows and, in that same transaction, runs the handler on each
-- partition's next events in order with their (group, event id) records, then advances
-- every claimed cursor and commits (a failing handler: that partition again event by
-- event, each under a savepoint).
-- Effects, idempotency record and cursor commit together; a crash before the commit
-- redelivers, and two replicas never hold one partition (so one key) at once.
-- A failing event does not block its partition (which hashes many keys together): it
-- is parked aside (bus_parked, migration 030) with the later events of its key, so that
-- key keeps its order, while the partition's other keys go on; each key's parked events
-- are retried in order after a backoff and dead-lettered after max_attempts.
-- Pumps sleep on LISTEN todo_bus (woken by the publishers' NOTIFY) with
-- a polling timeout as a safety net. One pump per state also removes events every
-- group has processed once they are older than BUS_RETENTION_SECONDS (default 3600).
-- @module bus.drivers.postgres

local pg = require "pg"
local task = require "task"
local log = require "log"
local timer = require "timer"
local crypto = require "crypto"
local outbox = require "bus.outbox"
local consumer = require "bus.consumer"
local wakeup = require "bus.wakeup"

local M = {}

local function num_env(name, default)
  return tonumber(os.getenv(name) or "") or default
end

-- Loops hand over to a fresh task after a slice of CPU time, a second line of defence
-- under the host's per-slice CPU budget for background tasks.
local SLICE = num_env("CPU_BUDGET_MS", 1000) / 1000 * 0.25
local POLL = num_env("BUS_POLL_SECONDS", 1)
local RETENTION = num_env("BUS_RETENTION_SECONDS", 3600)
local CLEAN_EVERY = num_env("BUS_CLEAN_EVERY_SECONDS", 60)
local STALE_BROADCAST = 600
-- partitions with work a pump claims in one fast-path transaction
local CLAIM_PARTITIONS = num_env("BUS_CLAIM_PARTITIONS", 16)
-- how often a busy pump looks for parked events whose retry is due (seconds)
local PARKED_EVERY = 0.1

--- Run `step()` until the state stops, in a chain of background tasks.
-- `step` returns nothing; it waits itself when idle.
-- @tparam function step
function M.forever(step)
  local function body()
    local c0 = os.clock()
    while not task.stopping() do
      local ok, err = pcall(step)
      if not ok then
        log.error("bus: consumer step failed", { error = tostring(err) })
        if task.wait(1) then return end
      end
      if os.clock() - c0 > SLICE then
        if not task.stopping() then task.spawn(body) end
        return
      end
    end
  end
  task.spawn(body)
end

-- "Has work" is the partition's counter ahead of the cursor: bus_partitions.last_seq is
-- bumped by the statement that writes the events, so a snapshot that sees it sees them.
-- (Not EXISTS over bus_outbox: planned while the table looked empty, that became a scan of
-- every event of the topic per cursor row, tens of ms per claim under load.)
local CLAIM = [[
  SELECT c.part, c.seq, c.attempts, c.parked FROM bus_cursors c
    JOIN bus_partitions p ON p.topic = c.topic AND p.part = c.part
   WHERE c.grp = $1 AND c.topic = $2 AND c.next_attempt_at <= now() AND ($5::integer IS NULL OR c.part = $5)
     AND p.last_seq > c.seq
   ORDER BY (c.part + $3) % $4
   LIMIT 1 FOR UPDATE OF c SKIP LOCKED]]

local FETCH = [[
  SELECT seq, key, event FROM bus_outbox WHERE topic = $1 AND part = $2 AND seq > $3 ORDER BY seq LIMIT $4]]

local ADVANCE = [[
  UPDATE bus_cursors SET seq = $4, attempts = 0, last_error = NULL, seen_at = now(),
         next_attempt_at = '-infinity'::timestamptz, parked = $5
   WHERE grp = $1 AND topic = $2 AND part = $3]]

local CLAIM_MANY = [[
  SELECT c.part, c.seq, c.attempts, c.parked, p.last_seq FROM bus_cursors c
    JOIN bus_partitions p ON p.topic = c.topic AND p.part = c.part
   WHERE c.grp = $1 AND c.topic = $2 AND c.next_attempt_at <= now() AND p.last_seq > c.seq
   ORDER BY (c.part + $3) % $4
   LIMIT $5 FOR UPDATE OF c SKIP LOCKED]]

-- the next events of several partitions, by partition then seq (at most $4 each)
local FETCH_MANY = [[
  SELECT c.part, o.seq, o.key, o.event FROM unnest($2::integer[], $3::bigint[]) AS c(part, seq)
   CROSS JOIN LATERAL (SELECT seq, key, event FROM bus_outbox o
                        WHERE o.topic = $1 AND o.part = c.part AND o.seq > c.seq ORDER BY o.seq LIMIT $4) o
   ORDER BY c.part, o.seq]]

local ADVANCE_MANY = [[
  UPDATE bus_cursors c SET seq = v.seq, attempts = 0, last_error = NULL, seen_at = now(),
         next_attempt_at = '-infinity'::timestamptz
    FROM unnest($3::integer[], $4::bigint[]) AS v(part, seq)
   WHERE c.grp = $1 AND c.topic = $2 AND c.part = v.part]]

local FRESH = [[
  INSERT INTO bus_inbox (grp, event_id) SELECT $1, unnest($2::uuid[])
  ON CONFLICT DO NOTHING RETURNING event_id::text AS id]]

-- The fast path: one transaction for up to CLAIM_PARTITIONS partitions with work (so an
-- event does not wait for its pump to visit the other busy partitions one transaction
-- at a time), their idempotency records in one statement (none for an `idempotent`
-- subscription), no savepoints, every claimed
-- cursor advanced in one statement; with a `batch_handler`, one call per partition for
-- its fresh events. Handlers run partition by partition, each partition in seq order.
-- A partition with parked events (or a failing head, attempts > 0, left by an older
-- version) is left to the careful path; any failure rolls it all back and answers "slow"
-- with the partition.
local function fast(sub)
  local handled, slow_part = 0, nil
  local ok, err = pg.tx(function(tx)
    local rows, e = tx:query(CLAIM_MANY, sub.group, sub.topic, math.random(0, outbox.PARTITIONS - 1),
      outbox.PARTITIONS, CLAIM_PARTITIONS)
    if not rows then return nil, e end
    local parts, seqs, lasts = {}, {}, {}
    for _, c in ipairs(rows) do
      if c.attempts > 0 or c.parked > 0 then -- parked keys: the careful path, after this
        slow_part = slow_part or c.part
      else
        parts[#parts + 1], seqs[#parts + 1], lasts[#parts + 1] = c.part, c.seq, c.last_seq
      end
    end
    if #parts == 0 then
      if slow_part then return nil, "slow" end
      return true
    end
    local evs
    evs, e = tx:query(FETCH_MANY, sub.topic, pg.array(parts), pg.array(seqs), sub.batch)
    if not evs then return nil, e end
    local is_fresh = {}
    if sub.idempotent then
      -- the handler's writes make a redelivery harmless: no records to keep
      for _, row in ipairs(evs) do is_fresh[row.event.id] = true end
    else
      local ids = {}
      for i, row in ipairs(evs) do ids[i] = row.event.id end
      local fresh
      fresh, e = tx:query(FRESH, sub.group, pg.array(ids))
      if not fresh then return nil, e end
      for _, r in ipairs(fresh) do is_fresh[r.id] = true end
    end
    -- the events of each claimed partition, in order
    local by_part = {}
    for _, row in ipairs(evs) do
      local list = by_part[row.part]
      if not list then list = {}; by_part[row.part] = list end
      list[#list + 1] = row
    end
    local done_seq, c0, stopped = {}, os.clock(), false
    for i, part in ipairs(parts) do
      local list = by_part[part] or {}
      local seq = seqs[i]
      -- nothing left up to last_seq: removed (retention) before this group got there
      if #list == 0 then seq = lasts[i] end
      if not stopped and #list > 0 then
        if sub.batch_handler then
          local events, metas = {}, {}
          for _, row in ipairs(list) do
            if is_fresh[row.event.id] then
              events[#events + 1] = row.event
              metas[#events] = { topic = sub.topic, key = row.key }
            end
          end
          if #events > 0 and consumer.call_batch(tx, sub, events, metas) then
            slow_part = part
            return nil, "slow"
          end
          seq, handled = list[#list].seq, handled + #list
        else
          for _, row in ipairs(list) do
            if is_fresh[row.event.id] then
              if M.call_handler(tx, sub, row) then
                slow_part = part
                return nil, "slow"
              end
            end
            seq, handled = row.seq, handled + 1
            if os.clock() - c0 > SLICE then break end
          end
        end
        if os.clock() - c0 > SLICE then stopped = true end
      end
      done_seq[i] = seq
    end
    -- records of events past the stop points are rolled back with nothing else: drop them
    local rest = {}
    for i, part in ipairs(parts) do
      for _, row in ipairs(by_part[part] or {}) do
        if row.seq > done_seq[i] then rest[#rest + 1] = row.event.id end
      end
    end
    if #rest > 0 and not sub.idempotent then
      tx:query("DELETE FROM bus_inbox WHERE grp = $1 AND event_id = ANY($2::uuid[])", sub.group, pg.array(rest))
    end
    local r
    r, e = tx:query(ADVANCE_MANY, sub.group, sub.topic, pg.array(parts), pg.array(done_seq))
    if not r then return nil, e end
    return true
  end)
  if not ok and slow_part then return nil, slow_part end
  if not ok then
    log.warn("bus: consumer transaction failed", { group = sub.group, topic = sub.topic, error = tostring(err) })
    return 0, nil, 1
  end
  return handled, slow_part -- a partition with a failing head event, for the careful path
end

--- Call the handler of `sub` on an outbox row (no savepoint); the failure or nil.
function M.call_handler(tx, sub, row)
  return consumer.call(tx, sub, row.event, { topic = sub.topic, key = row.key })
end

-- Parking (bus_parked): a failing event, and every later event of its key while the key
-- has parked events, leave the partition's log for this table.
local PARK = [[
  INSERT INTO bus_parked (grp, topic, part, seq, key, event, attempts, next_attempt_at, last_error)
  VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now() + make_interval(secs => $8::float8), $9)
  ON CONFLICT DO NOTHING]]

local PARKED_KEYS = "SELECT DISTINCT key FROM bus_parked WHERE grp = $1 AND topic = $2 AND part = $3"

-- The first parked event of each key whose retry is due (the later ones wait behind it).
local PARKED_DUE = [[
  SELECT part, key FROM (SELECT DISTINCT ON (part, key) part, key, next_attempt_at FROM bus_parked
                          WHERE grp = $1 AND topic = $2 ORDER BY part, key, seq) h
   WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1]]

-- Seconds until the next parked retry (nil: nothing parked).
local PARKED_NEXT = [[
  SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 AS wait
    FROM (SELECT DISTINCT ON (part, key) next_attempt_at FROM bus_parked
           WHERE grp = $1 AND topic = $2 ORDER BY part, key, seq) h]]

-- The careful path: a savepoint per event, so that a failing event is parked (retried
-- later, then dead-lettered) while the events around it commit and the cursor goes on.
local function careful(sub, part)
  local handled = 0
  local ok, err = pg.tx(function(tx)
    local rows, e = tx:query(CLAIM, sub.group, sub.topic, 0, outbox.PARTITIONS, part)
    if not rows then return nil, e end
    local c = rows[1]
    if not c then return true end
    local evs
    evs, e = tx:query(FETCH, sub.topic, c.part, c.seq, sub.batch)
    if not evs then return nil, e end
    local parked_keys, parked = {}, c.parked
    if parked > 0 then
      local keys
      keys, e = tx:query(PARKED_KEYS, sub.group, sub.topic, c.part)
      if not keys then return nil, e end
      for _, k in ipairs(keys) do parked_keys[k.key] = true end
    end
    local function park(row, attempts, retry_in, why)
      local r, pe = tx:query(PARK, sub.group, sub.topic, c.part, row.seq, row.key, row.event, attempts,
        retry_in, why or pg.null)
      if not r then return nil, pe end
      parked_keys[row.key], parked = true, parked + 1
      return true
    end
    local seq = c.seq
    local c0 = os.clock()
    for _, row in ipairs(evs) do
      if parked_keys[row.key] then
        -- an earlier event of this key is parked: this one waits behind it, in order
        local r, pe = park(row, 0, 0)
        if not r then return nil, pe end
      else
        local done, herr = consumer.deliver(tx, sub, row.event, { topic = sub.topic, key = row.key })
        if not done and sub.max_attempts <= 1 then
          local dl, de = consumer.dead_letter(tx, sub, row.event, herr, 1)
          if not dl then return nil, de end
        elseif not done then
          local retry_in = consumer.backoff(sub, 1)
          log.warn("bus: handler failed, event parked (its key waits, the partition goes on)", {
            group = sub.group, topic = sub.topic, event_id = row.event.id, attempts = 1, retry_in = retry_in,
            error = herr })
          local r, pe = park(row, 1, retry_in, herr)
          if not r then return nil, pe end
        end
      end
      seq, handled = row.seq, handled + 1
      if os.clock() - c0 > SLICE then break end
    end
    local r
    r, e = tx:query(ADVANCE, sub.group, sub.topic, c.part, seq, parked)
    if not r then return nil, e end
    return true
  end)
  if not ok then
    log.warn("bus: consumer transaction failed", { group = sub.group, topic = sub.topic, error = tostring(err) })
    return 0, 1
  end
  return handled, nil
end

--- Retry the parked events of one key whose turn has come, in order, under the lock of
-- its partition's cursor (so that no new event of the key is parked meanwhile): each
-- success (or dead letter after max_attempts) lets the next go; a failure waits its
-- backoff again.
-- @tparam table sub the subscription
-- @treturn integer events that left the parked table
-- @treturn ?number seconds until the next parked retry is due (nil: nothing parked)
function M.retry_parked(sub)
  local rows = pg.query(PARKED_NEXT, sub.group, sub.topic)
  local wait = rows and rows[1] and rows[1].wait
  if wait == nil or wait == pg.null then return 0, nil end
  if wait > 0 then return 0, wait end
  local handled = 0
  local ok, err = pg.tx(function(tx)
    local due, e = tx:query(PARKED_DUE, sub.group, sub.topic)
    if not due then return nil, e end
    if not due[1] then return true end
    local part, key = due[1].part, due[1].key
    local cur
    cur, e = tx:query([[SELECT parked FROM bus_cursors WHERE grp = $1 AND topic = $2 AND part = $3
      FOR UPDATE SKIP LOCKED]], sub.group, sub.topic, part)
    if not cur then return nil, e end
    if not cur[1] then return true end -- the partition is being processed: next time
    local list
    list, e = tx:query([[SELECT seq, event, attempts, next_attempt_at <= now() AS due FROM bus_parked
      WHERE grp = $1 AND topic = $2 AND part = $3 AND key = $4 ORDER BY seq]], sub.group, sub.topic, part, key)
    if not list then return nil, e end
    local c0 = os.clock()
    for i, row in ipairs(list) do
      if i == 1 and not row.due then break end
      local done, herr = consumer.deliver(tx, sub, row.event, { topic = sub.topic, key = key })
      local gone = done ~= nil
      if not done then
        local attempts = row.attempts + 1
        if attempts >= sub.max_attempts then
          local dl, de = consumer.dead_letter(tx, sub, row.event, herr, attempts)
          if not dl then return nil, de end
          gone = true
        else
          local retry_in = consumer.backoff(sub, attempts)
          log.warn("bus: parked event failed again, will retry", { group = sub.group, topic = sub.topic,
            event_id = row.event.id, attempts = attempts, retry_in = retry_in, error = herr })
          local r, ue = tx:query([[UPDATE bus_parked SET attempts = $5, last_error = $6,
              next_attempt_at = now() + make_interval(secs => $7::float8)
            WHERE grp = $1 AND topic = $2 AND part = $3 AND seq = $4]],
            sub.group, sub.topic, part, row.seq, attempts, herr, retry_in)
          if not r then return nil, ue end
        end
      end
      if not gone then break end
      local r, de = tx:query("DELETE FROM bus_parked WHERE grp = $1 AND topic = $2 AND part = $3 AND seq = $4",
        sub.group, sub.topic, part, row.seq)
      if not r then return nil, de end
      handled = handled + 1
      if os.clock() - c0 > SLICE then
        -- the rest of the key goes on at the next turn: its new first event is due now
        tx:query([[UPDATE bus_parked SET next_attempt_at = now() WHERE grp = $1 AND topic = $2 AND part = $3
          AND key = $4 AND seq = (SELECT min(seq) FROM bus_parked WHERE grp = $1 AND topic = $2 AND part = $3
          AND key = $4)]], sub.group, sub.topic, part, key)
        break
      end
    end
    if handled > 0 then
      local r, ue = tx:query([[UPDATE bus_cursors SET parked = greatest(parked - $4, 0)
        WHERE grp = $1 AND topic = $2 AND part = $3]], sub.group, sub.topic, part, handled)
      if not r then return nil, ue end
    end
    return true
  end)
  if not ok then
    log.warn("bus: consumer transaction failed", { group = sub.group, topic = sub.topic, error = tostring(err) })
    return 0, 1
  end
  if handled > 0 then return handled, 0 end
  rows = pg.query(PARKED_NEXT, sub.group, sub.topic)
  wait = rows and rows[1] and rows[1].wait
  if wait == nil or wait == pg.null then return 0, nil end
  return 0, math.max(wait, 0.05)
end

--- Claim partitions with work and process a batch of each: all at once when every
-- handler succeeds, else the failing partition again event by event under savepoints
-- (retries, dead letters).
-- @tparam table sub the subscription
-- @treturn integer events handled (0: nothing to do)
-- @treturn ?number seconds until a failed event is due again
function M.process(sub)
  local handled, part, retry_in = fast(sub)
  if handled and part then -- the other claimed partitions committed; now the failing one
    local n
    n, retry_in = careful(sub, part)
    return handled + n, retry_in
  end
  if handled then return handled, retry_in end
  return careful(sub, part)
end

--- Create the group's cursors (a new broadcast group starts at the end of the log, a new
-- work group at the beginning of what is retained).
function M.init_cursors(sub)
  return pg.query([[
    INSERT INTO bus_cursors (grp, topic, part, seq, broadcast)
    SELECT $1, $2, g, CASE WHEN $3::boolean THEN coalesce((SELECT last_seq FROM bus_partitions p
                                WHERE p.topic = $2 AND p.part = g), 0) ELSE 0 END, $3::boolean
      FROM generate_series(0, $4::integer - 1) AS g
    ON CONFLICT (grp, topic, part) DO UPDATE SET seen_at = now()]],
    sub.group, sub.topic, sub.broadcast, outbox.PARTITIONS)
end

--- Remove what every group is done with (one process at a time).
function M.clean()
  return pg.tx(function(tx)
    local got = tx:query("SELECT pg_try_advisory_xact_lock(7166716874616c6c) AS ok")
    if not (got and got[1] and got[1].ok) then return true end
    tx:query([[DELETE FROM bus_cursors WHERE broadcast AND seen_at < now() - make_interval(secs => $1)]],
      STALE_BROADCAST)
    -- parked events of a group that is gone (a stopped broadcast replica)
    tx:query([[DELETE FROM bus_parked b WHERE NOT EXISTS (SELECT 1 FROM bus_cursors c
      WHERE c.grp = b.grp AND c.topic = b.topic AND c.part = b.part)]])
    tx:query([[DELETE FROM bus_outbox WHERE ctid = ANY(ARRAY(
      SELECT o.ctid FROM bus_outbox o
       WHERE o.created_at < now() - make_interval(secs => $1::float8)
         AND NOT EXISTS (SELECT 1 FROM bus_cursors c
                          WHERE c.topic = o.topic AND c.part = o.part AND c.seq < o.seq)
       LIMIT 10000))]], RETENTION)
    tx:query([[DELETE FROM bus_inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM bus_inbox
      WHERE processed_at < now() - make_interval(secs => $1::float8) LIMIT 10000))]], RETENTION)
    return true
  end)
end

local function pump(sub, index)
  local last_chores, last_parked = 0, 0
  return function()
    local l = wakeup.listener()
    local gen = wakeup.generation(l)
    local n, retry_in = M.process(sub)
    -- parked events: looked at when idle, and every PARKED_EVERY while busy
    local parked_in
    if n == 0 or timer.now() - last_parked >= PARKED_EVERY then
      last_parked = timer.now()
      local p
      p, parked_in = M.retry_parked(sub)
      n = n + p
    end
    if n > 0 then return end
    if parked_in then retry_in = math.min(retry_in or POLL, math.max(parked_in, 0.01)) end
    if index == 1 and os.time() - last_chores >= 1 then
      last_chores = os.time()
      consumer.replay_requested(sub)
      if sub.broadcast then
        pg.query("UPDATE bus_cursors SET seen_at = now() WHERE grp = $1 AND seen_at < now() - interval '60 s'",
          sub.group)
      end
    end
    wakeup.wait(l, gen, math.min(POLL, retry_in or POLL))
  end
end

--- Start the consumers of a bundle (called from its on_start, see `bus.define`).
-- @tparam table ctx `bundle`, `subscriptions` (normalized by bus.define)
function M.start(ctx)
  if #ctx.subscriptions == 0 then return end
  local node = (os.getenv("HOSTNAME") or "local") .. "-" .. crypto.hex(crypto.random_bytes(4))
  for _, sub in ipairs(ctx.subscriptions) do
    if sub.broadcast then sub.group = sub.group .. "@" .. node end
    local ok, err
    for _ = 1, 30 do
      ok, err = M.init_cursors(sub)
      if ok or task.wait(1) then break end
    end
    if not ok then
      log.error("bus: cannot start the consumer", { group = sub.group, topic = sub.topic, error = tostring(err) })
    else
      for i = 1, sub.concurrency do M.forever(pump(sub, i)) end
    end
  end
  local last_clean = 0
  M.forever(function()
    if os.time() - last_clean >= CLEAN_EVERY then
      last_clean = os.time()
      M.clean()
    end
    task.wait(math.min(CLEAN_EVERY, 5))
  end)
end

return M
