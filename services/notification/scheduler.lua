--- The reminder scheduler: fires due reminders within a second of their time, once.
-- Each worker of each replica runs `run` (a background task). It claims the earliest
-- due rows of `reminder_schedule` (`FOR UPDATE SKIP LOCKED`: a row is claimed by one
-- scheduler, the others skip it), and in the same transaction marks them fired, writes
-- the notification rows, queues channel deliveries (notification.channels) and publishes
-- `reminder.due` on `reminders` through the outbox (bus.publish_many, key the user id):
-- all of it commits together or not at all, so a crash before the commit leaves the
-- reminder to fire after restart and a crash after it cannot fire it again.
-- The task is read again when firing: a reminder of a task completed or deleted
-- meanwhile is dropped, never fired. A reminder that fires more than NOTIFY_LATE_MS
-- (default 1000) after its time is marked `late`, with how late.
-- Between firings it sleeps until the next reminder is due (at most
-- NOTIFY_MAX_SLEEP_SECONDS), woken early by `todo_reminders` notifications, which the
-- schedule consumer sends when it schedules something sooner (notification.schedule).
-- @module notification.scheduler

local pg = require "pg"
local bus = require "bus"
local task = require "task"
local crypto = require "crypto"
local log = require "log"
local clock = require "notification.clock"
local schedule = require "notification.schedule"
local channels = require "notification.channels"
local wake = require "notification.wake"

local M = {}

--- At most this many reminders per firing transaction.
M.BATCH = tonumber(os.getenv("NOTIFY_BATCH") or "") or 500
M.LATE_MS = tonumber(os.getenv("NOTIFY_LATE_MS") or "") or 1000

--- The scheduler's waker (the schedule's NOTIFYs and local changes poke it).
M.waker = wake.new()

local CLAIM = [[
  SELECT s.id::text AS id, s.user_id, s.task_id::text AS task_id, s.remind_at,
         extract(epoch FROM s.remind_at)::float8 AS at_epoch,
         t.title, t.due_at, (t.id IS NOT NULL AND NOT t.completed) AS live
  FROM reminder_schedule s
  LEFT JOIN tasks t ON t.id = s.task_id AND t.user_id = s.user_id
  WHERE s.state = 'scheduled' AND s.remind_at <= $1::timestamptz
  ORDER BY s.remind_at
  LIMIT $2
  FOR UPDATE OF s SKIP LOCKED]]

local FIRE = [[
  WITH done AS (
    UPDATE reminder_schedule SET state = 'fired', fired_at = $1::timestamptz WHERE id = ANY($2::uuid[])
  ), dead AS (
    DELETE FROM reminder_schedule WHERE id = ANY($3::uuid[])
  )
  INSERT INTO notifications (id, user_id, task_id, title, due_at, remind_at, created_at, late, late_ms,
                             schedule_id)
  SELECT n.id, n.user_id, n.task_id, n.title, n.due_at, n.remind_at, $1::timestamptz,
         n.late_ms > $10::bigint, n.late_ms, n.schedule_id
  FROM unnest($4::uuid[], $5::text[], $6::uuid[], $7::text[], $8::timestamptz[], $9::timestamptz[],
              $11::bigint[], $2::uuid[]) AS n(id, user_id, task_id, title, due_at, remind_at, late_ms,
                                             schedule_id)
  ON CONFLICT (schedule_id, remind_at) DO NOTHING
  RETURNING id::text AS id]]

-- Claim and fire one batch. Returns the number claimed (fired or dropped), or nil, err.
local function fire_batch()
  local now = clock.now()
  local now_iso = clock.iso(now)
  local claimed, fired = 0, {}
  local ok, err = pg.tx(function(tx)
    local rows, qerr = tx:query(CLAIM, now_iso, M.BATCH)
    if not rows then return nil, qerr end
    claimed = #rows
    if claimed == 0 then return true end
    local live, dead = {}, {}
    local ids, users, tasks, titles, dues, ats, lates = {}, {}, {}, {}, {}, {}, {}
    local by_id = {}
    for _, r in ipairs(rows) do
      if r.live then
        local n = #live + 1
        live[n] = r.id
        ids[n] = crypto.uuid_v7()
        users[n], tasks[n], titles[n] = r.user_id, r.task_id, r.title
        dues[n] = r.due_at or pg.null
        ats[n] = r.remind_at
        lates[n] = math.max(0, math.floor((now - r.at_epoch) * 1000))
        by_id[ids[n]] = { row = r, late_ms = lates[n] }
      else
        dead[#dead + 1] = r.id
      end
    end
    local out, ferr = tx:query(FIRE, now_iso, pg.array(live), pg.array(dead), pg.array(ids), pg.array(users),
      pg.array(tasks), pg.array(titles), pg.array(dues), pg.array(ats), M.LATE_MS, pg.array(lates))
    if not out then return nil, ferr end
    if #out == 0 then return true end
    local events, made = {}, {}
    for i, o in ipairs(out) do
      local f = by_id[o.id]
      local r = f.row
      local late = f.late_ms > M.LATE_MS
      local note = {
        id = o.id, user_id = r.user_id, task_id = r.task_id, title = r.title, due_at = r.due_at or pg.null,
        remind_at = r.remind_at, created_at = now_iso, late = late, late_ms = f.late_ms,
      }
      made[i] = note
      events[i] = {
        topic = "reminders", type = "reminder.due", key = r.user_id, subject = r.task_id,
        data = {
          task_id = r.task_id, title = r.title, due_at = note.due_at, remind_at = r.remind_at,
          user_id = r.user_id, notification_id = o.id, late = late, late_seconds = f.late_ms / 1000,
        },
      }
    end
    local queued, cerr = channels.enqueue(tx, made)
    if queued == nil then return nil, cerr end
    local pub, perr = bus.publish_many(tx, events)
    if not pub then return nil, perr end
    fired = made
    return true
  end)
  if not ok then return nil, err end
  for _, n in ipairs(fired) do
    log.info("notification: reminder fired", { notification_id = n.id, task_id = n.task_id,
      late_ms = n.late_ms })
  end
  if #fired > 0 then channels.poke() end
  return claimed
end

--- Fire everything due now (batch after batch).
-- @return the number of reminders claimed, or nil and a message
function M.fire_due()
  local total = 0
  repeat
    local n, err = fire_batch()
    if not n then return nil, err end
    total = total + n
  until n < M.BATCH or task.stopping()
  return total
end

-- Seconds since the epoch of the earliest scheduled reminder, or nil.
local function next_due()
  local rows, err = pg.query([[SELECT extract(epoch FROM min(remind_at))::float8 AS at
    FROM reminder_schedule WHERE state = 'scheduled']])
  if not rows then return nil, err end
  local at = rows[1] and rows[1].at
  if at == pg.null then at = nil end
  return at, nil
end

-- Listen on todo_reminders and poke the scheduler on every notification. The wait is cut
-- into 1 s slices so the task notices the bundle stopping (a wait costs no query).
local function listen()
  local core = require "pg.core"
  local l
  while not task.stopping() do
    if not l then
      local conn = core.acquire()
      if conn then
        local ok = conn:query("LISTEN " .. schedule.CHANNEL)
        if ok then
          conn:rows()
          l = core.listener(conn)
          M.listening = true
          M.waker.poke() -- anything scheduled while nobody listened
        else
          conn:release()
        end
      end
      if not l then task.wait(1) end
    else
      local got, err = l:wait(1, l:generation())
      if got then
        M.waker.poke()
      elseif got == nil then
        log.warn("notification: LISTEN connection lost", { error = tostring(err) })
        l:close()
        l, M.listening = nil, false
      end
    end
  end
  if l then l:close() end
end

-- One turn: fire what is due, then sleep until the next reminder or a poke.
local function turn()
  local seen = M.waker.pokes()
  local claimed, err = M.fire_due()
  local now = clock.now()
  if not claimed then
    log.warn("notification: firing failed", { error = tostring(err) })
    M.waker.sleep_until(now + 1)
  else
    local at
    at, err = next_due()
    -- Without a listener, wake every second (a query a second) rather than miss a
    -- reminder scheduled by another replica.
    local max_sleep = M.listening and schedule.MAX_SLEEP or 1
    local deadline = now + max_sleep
    if err then
      deadline = now + 1
    elseif at then
      -- Due but claimed by another scheduler (skip locked): look again shortly.
      if at <= now then at = now + 0.1 end
      deadline = math.min(deadline, at)
    end
    M.waker.sleep_until(deadline, seen)
  end
end

--- The scheduler loop (a background task; returns when the bundle stops). A turn that
-- raises is logged and the loop goes on a second later: the scheduler never dies.
function M.run()
  task.spawn(listen)
  while not task.stopping() do
    local ok, err = pcall(turn)
    if not ok then
      log.error("notification: scheduler turn failed", { error = tostring(err) })
      task.wait(1)
    end
  end
end

return M
