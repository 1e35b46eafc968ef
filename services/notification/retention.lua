--- Housekeeping beside the scheduler (every worker of every replica runs `run`):
-- notifications older than NOTIFICATION_RETENTION_DAYS (default 30) and finished
-- deliveries (delivered or failed, with their attempts) older than
-- NOTIFICATION_DELIVERY_RETENTION_DAYS (default 30) are deleted, so are reminder rows
-- that will never fire again (`reminder_schedule`: fired, or skipped) once their time
-- is older than NOTIFICATION_RETENTION_DAYS (an event redelivered that late does not
-- happen: the row is kept that long so that one cannot re-arm it), and webhook secrets
-- still in plain text or under the previous key are sealed under the current one
-- (notification.secret_box). 0 days keeps rows for ever. Deleting a notification deletes
-- its deliveries; one with a delivery still pending is kept until that one ends.
-- Deletes go in batches of NOTIFICATION_PRUNE_BATCH (default 500) rows, each its own
-- short statement over rows picked with SKIP LOCKED (no long lock, no two workers on the
-- same rows), every NOTIFICATION_PRUNE_INTERVAL_SECONDS (default 600; the first pass a
-- few seconds after start).
-- @module notification.retention

local pg = require "pg"
local task = require "task"
local log = require "log"
local clock = require "notification.clock"
local secret_box = require "notification.secret_box"

local M = {}

-- A whole number >= 0 from the environment, else the default (with a warning).
local function setting(name, default)
  local raw = os.getenv(name)
  if raw == nil or raw == "" then return default end
  local v = tonumber(raw)
  if not v or v < 0 or v ~= math.floor(v) then
    log.warn("notification: " .. name .. " must be a whole number >= 0; using " .. default, { value = raw })
    return default
  end
  return math.tointeger(v)
end

--- Read the settings (at start; specs call it again).
function M.configure()
  M.NOTIFICATION_DAYS = setting("NOTIFICATION_RETENTION_DAYS", 30)
  M.DELIVERY_DAYS = setting("NOTIFICATION_DELIVERY_RETENTION_DAYS", 30)
  M.BATCH = math.max(1, setting("NOTIFICATION_PRUNE_BATCH", 500))
  M.INTERVAL = math.max(1, setting("NOTIFICATION_PRUNE_INTERVAL_SECONDS", 600))
end
M.configure()

local PRUNE_DELIVERIES = [[
  WITH gone AS (
    DELETE FROM notification_deliveries WHERE id IN (
      SELECT id FROM notification_deliveries
      WHERE state <> 'pending' AND created_at < $1::timestamptz
      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
  ) SELECT count(*)::integer AS n FROM gone]]

local PRUNE_NOTIFICATIONS = [[
  WITH gone AS (
    DELETE FROM notifications WHERE id IN (
      SELECT n.id FROM notifications n
      WHERE n.created_at < $1::timestamptz
        AND NOT EXISTS (SELECT 1 FROM notification_deliveries d
                        WHERE d.notification_id = n.id AND d.state = 'pending')
      ORDER BY n.created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
  ) SELECT count(*)::integer AS n FROM gone]]

local PRUNE_SCHEDULE = [[
  WITH gone AS (
    DELETE FROM reminder_schedule WHERE id IN (
      SELECT id FROM reminder_schedule
      WHERE state <> 'scheduled' AND coalesce(fired_at, remind_at) < $1::timestamptz
      ORDER BY coalesce(fired_at, remind_at) LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
  ) SELECT count(*)::integer AS n FROM gone]]

local function prune(sql, days)
  if days == 0 then return 0 end
  local rows, err = pg.query(sql, clock.iso(clock.now() - days * 86400), M.BATCH)
  if not rows then return nil, err end
  return rows[1].n
end

--- One pass: batches until a batch comes back short (a pause between batches lets
-- other work in). Returns `{notifications =, deliveries =, schedule =, sealed =}` counts,
-- or nil, err.
function M.pass()
  local done = { notifications = 0, deliveries = 0, schedule = 0, sealed = 0 }
  for _, step in ipairs {
    { "deliveries", function() return prune(PRUNE_DELIVERIES, M.DELIVERY_DAYS) end },
    { "notifications", function() return prune(PRUNE_NOTIFICATIONS, M.NOTIFICATION_DAYS) end },
    { "schedule", function() return prune(PRUNE_SCHEDULE, M.NOTIFICATION_DAYS) end },
    { "sealed", function() return secret_box.reseal_batch(M.BATCH) end },
  } do
    repeat
      local n, err = step[2]()
      if not n then return nil, step[1] .. ": " .. tostring(err) end
      done[step[1]] = done[step[1]] + n
      if n >= M.BATCH then task.wait(0.05) end
    until n < M.BATCH or task.stopping()
  end
  return done
end

--- The housekeeping loop (a background task; returns when the bundle stops).
function M.run()
  task.wait(1 + math.random() * 2)
  while not task.stopping() do
    local ok, done, err = pcall(M.pass)
    if not ok or not done then
      log.warn("notification: housekeeping pass failed", { error = tostring(ok and err or done) })
    elseif done.notifications + done.deliveries + done.schedule + done.sealed > 0 then
      log.info("notification: housekeeping", done)
    end
    task.wait(M.INTERVAL)
  end
end

return M
