--- The reminder schedule, kept from `task-events` (consumer group "notification"): each
-- task change recomputes the task's reminder rows in `reminder_schedule`. A creation or
-- an edit (due time, zone, reminders) adds, moves or removes rows; completion and
-- deletion remove them all (with any snooze); reopening schedules again what is still
-- ahead. A reminder whose instant had already passed when it was set is kept as
-- `skipped` (it never fires); one that came due while nothing ran stays `scheduled` and
-- fires late. Idempotent and order-proof: `reminder_tasks` remembers the last version
-- applied, and an event for an older version changes nothing.
-- When a row is scheduled soon, the transaction NOTIFYs `todo_reminders` (delivered on
-- commit) so that every replica's scheduler recomputes its sleep.
-- @module notification.schedule

local pg = require "pg"
local reminders = require "reminders"
local clock = require "notification.clock"

local M = {}

--- The NOTIFY channel of schedule changes.
M.CHANNEL = "todo_reminders"

--- A scheduler sleeps at most this long, so only rows due sooner need a NOTIFY.
M.MAX_SLEEP = tonumber(os.getenv("NOTIFY_MAX_SLEEP_SECONDS") or "") or 30

local RELEVANT = { due_at = true, tz = true, reminders = true, completed = true }

local function is_uuid(s)
  return type(s) == "string" and #s == 36 and s:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil
end

-- Whether an event can change the task's reminder rows at all.
local function relevant(d, task)
  local kind = d.event_type
  if kind == "completed" or kind == "reopened" or kind == "deleted" then return true end
  if kind == "created" then return type(task.reminders) == "table" and next(task.reminders) ~= nil end
  if type(d.changed) ~= "table" then return true end
  for _, name in ipairs(d.changed) do
    if RELEVANT[name] then return true end
  end
  return false
end

-- Record the version; false when an event for this or a newer version was applied.
local function claim_version(tx, task_id, user, version, gone)
  local rows, err = tx:query([[
    INSERT INTO reminder_tasks (task_id, user_id, version, gone) VALUES ($1::uuid, $2, $3::integer, $4::boolean)
    ON CONFLICT (task_id) DO UPDATE SET version = excluded.version, gone = excluded.gone
      WHERE excluded.version > reminder_tasks.version
         OR (excluded.version = reminder_tasks.version AND excluded.gone AND NOT reminder_tasks.gone)
    RETURNING 1 AS ok]], task_id, user, version, gone)
  if not rows then return nil, err end
  return rows[1] ~= nil
end

--- Bring a task's reminder rows in line with the task as an event carries it.
-- @param tx the delivery's transaction
-- @tparam string user
-- @tparam table task the task after the change
-- @tparam boolean gone the task was deleted
-- @tparam number changed_at when the change happened (epoch seconds)
-- @return true, or nil and a message
function M.sync(tx, user, task, gone, changed_at)
  if gone or task.completed == true then
    local ok, err = tx:query("DELETE FROM reminder_schedule WHERE task_id = $1::uuid AND user_id = $2", task.id, user)
    if not ok then return nil, err end
    return true
  end
  local keys, ats = {}, {}
  for i, r in ipairs(reminders.instants(task)) do
    keys[i] = r.key
    ats[i] = clock.iso(r.at)
  end
  -- One statement: drop reminders no longer named (a snooze stays), add new ones, move
  -- those whose instant changed (re-armed), and NOTIFY when one is due soon.
  local rows, err = tx:query([[
    WITH want AS (
      SELECT * FROM unnest($3::text[], $4::timestamptz[]) AS w(rkey, remind_at)
    ), gone AS (
      DELETE FROM reminder_schedule s WHERE s.task_id = $1::uuid AND s.user_id = $2 AND s.rkey <> 'snooze'
        AND NOT EXISTS (SELECT 1 FROM want w WHERE w.rkey = s.rkey)
    ), put AS (
      INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state)
      SELECT $2, $1::uuid, w.rkey, w.remind_at,
             CASE WHEN w.remind_at < $5::timestamptz THEN 'skipped' ELSE 'scheduled' END
      FROM want w
      ON CONFLICT (task_id, rkey) DO UPDATE
        SET remind_at = excluded.remind_at, state = excluded.state, fired_at = NULL
        WHERE reminder_schedule.remind_at IS DISTINCT FROM excluded.remind_at
      RETURNING remind_at, state
    )
    SELECT count(pg_notify(']] .. M.CHANNEL .. [[', '')) AS woke
    FROM (SELECT 1 FROM put WHERE state = 'scheduled' AND remind_at < $6::timestamptz LIMIT 1) soon]],
    task.id, user, pg.array(keys), pg.array(ats), clock.iso(changed_at),
    clock.iso(clock.now() + M.MAX_SLEEP))
  if not rows then return nil, err end
  return true
end

--- Handle one `task-events` event (see `bus.define`), inside the delivery's transaction.
-- @tparam table event the CloudEvent
-- @param tx the transaction
-- @return true, or nil and a message (retried)
function M.on_event(event, tx)
  local d = event.data
  if type(d) ~= "table" or type(d.task_data) ~= "table" then return true end
  local task, user = d.task_data, d.user_id
  if type(user) ~= "string" or user == "" or not is_uuid(d.task_id) or task.id ~= d.task_id then return true end
  local version = math.tointeger(d.version or task.version)
  if not version then return true end
  if not relevant(d, task) then return true end
  local gone = d.event_type == "deleted"
  local fresh, err = claim_version(tx, d.task_id, user, version, gone)
  if fresh == nil then return nil, err end
  if not fresh then return true end
  local changed_at = reminders.epoch_of(d.timestamp) or reminders.epoch_of(event.time) or clock.now()
  return M.sync(tx, user, task, gone, changed_at)
end

return M
