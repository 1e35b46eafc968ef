--- Recurring tasks, the database part: creating the next occurrence of a series, and
-- stopping a series. Used by the recurring-task bundle (on a completed occurrence) and
-- by the API (deleting one occurrence skips it; deleting the series stops it).
--
-- Exactly one next occurrence per occurrence: the spawn first claims the source in
-- task_series_spawns (primary key = source id, migration 010_series.sql) and inserts the
-- new task in the same statement, only when the claim is new. A replayed event, a second
-- replica, a retry after a crash or a second completion all find the claim and create
-- nothing. Everything runs in the caller's transaction, with the new task's
-- `task.created` event (tasks.events.record).
-- @module tasks.spawn

local pg = require "pg"
local tz = require "tz"
local timer = require "timer"
local row = require "tasks.row"
local events = require "tasks.events"
local series = require "tasks.series"

local M = {}

local NULL = pg.null

local CLAIM_AND_INSERT = [[
  WITH claim AS (
    INSERT INTO task_series_spawns (source_id, user_id, series_id, task_id, reason)
    VALUES ($1::uuid, $2, $3::uuid, gen_random_uuid(), $4)
    ON CONFLICT (source_id) DO NOTHING
    RETURNING task_id)
  INSERT INTO tasks (id, user_id, title, description, priority, tags, due_at, tz, recurrence,
                     reminders, series_id, occurrence_index, spawned_from)
  SELECT claim.task_id, $2, $5::text, $6::text, $7::smallint, $8::text[], $9::timestamptz, $10::text,
         $11::jsonb, $12::jsonb, $3::uuid, $13::integer, $1::uuid
    FROM claim
  RETURNING ]] .. row.COLUMNS

local CLAIM_END = [[
  INSERT INTO task_series_spawns (source_id, user_id, series_id, task_id, reason)
  VALUES ($1::uuid, $2, $3::uuid, NULL, $4) ON CONFLICT (source_id) DO NOTHING]]

local function value(v)
  if v == nil or v == NULL then return nil end
  return v
end

--- The series of a task row (its own id when it starts one).
function M.series_of(src)
  return value(src.series_id) or src.id
end

--- Create the occurrence that follows `src`, inside `tx`.
-- @param tx a `pg.tx` transaction
-- @tparam string user the owner
-- @tparam table src the source task as a row (`tasks.row.COLUMNS`, values as stored)
-- @tparam string reason `completed` (src was completed) or `skipped` (src was deleted)
-- @tparam[opt] integer now epoch seconds, the completion time when src has none
-- @treturn[1] table the new task (API shape)
-- @treturn[2] false nothing was created (not a failure)
-- @treturn[2] string why, for a person
-- @treturn[2] string code: `exists` (already spawned, or stopped), or a code of
--   `tasks.series.next_due` (`count`, `ended`, `out_of_range`, `not_recurring`, `no_due`,
--   `invalid_rule`); the first three end the series there (a claim with no task)
-- @treturn[3] nil a database failure
-- @treturn[3] string its message
-- @treturn[3] string its SQLSTATE
function M.next(tx, user, src, reason, now)
  now = now or math.floor(timer.now())
  local sid = M.series_of(src)
  local due, why, code = series.next_due(src, now)
  if not due then
    if code == "count" or code == "ended" or code == "out_of_range" then
      local ok, err, state = tx:query(CLAIM_END, src.id, user, sid, "ended")
      if not ok then return nil, err, state end
    end
    return false, why, code
  end
  local old_due = tz.parse_rfc3339(src.due_at)
  local rows, err, state = tx:query(CLAIM_AND_INSERT, src.id, user, sid, reason, src.title,
    src.description, src.priority, pg.array(value(src.tags) or {}), tz.format(due, "UTC"), src.tz,
    series.stored(src.recurrence), series.shift_reminders(src.reminders, due - old_due),
    (math.tointeger(src.occurrence_index) or 1) + 1)
  if not rows then return nil, err, state end
  if not rows[1] then return false, "the next occurrence exists already (or the series stopped)", "exists" end
  local task = row.to_task(rows[1])
  local ok, perr, pstate = events.record(tx, user, "created", task)
  if not ok then return nil, perr, pstate end
  return task
end

--- The next occurrence after a completion, inside `tx` (the recurring-task consumer's
-- delivery): the task is read again in `tx`, so an occurrence reopened, deleted
-- or no longer recurring since its event spawns nothing.
-- @param tx a `pg.tx` transaction
-- @tparam string user
-- @tparam string task_id the completed occurrence (a UUID)
-- @return as `M.next` (`false, message, "not_completed"` when the task is gone or open)
function M.after_completion(tx, user, task_id)
  local rows, err, state = tx:query("SELECT " .. row.COLUMNS
    .. " FROM tasks WHERE id = $1::uuid AND user_id = $2", task_id, user)
  if not rows then return nil, err, state end
  local src = rows[1]
  if not src or src.completed ~= true then
    return false, "the task is no longer a completed occurrence", "not_completed"
  end
  return M.next(tx, user, src, "completed")
end

--- Stop a series: every occurrence of it that has not made its next one yet never will.
-- Run it before deleting the series' open occurrences (a concurrent spawn then either
-- finished first, and its new occurrence is deleted with the others, or finds the stop).
-- @param tx a `pg.tx` transaction
-- @tparam string user
-- @tparam string series_id
-- @return true, or nil, message, sqlstate
function M.stop(tx, user, series_id)
  local ok, err, state = tx:query([[
    INSERT INTO task_series_spawns (source_id, user_id, series_id, task_id, reason)
    SELECT id, user_id, $2::uuid, NULL, 'stopped' FROM tasks
     WHERE user_id = $1 AND (series_id = $2::uuid OR id = $2::uuid)
     ORDER BY id
    ON CONFLICT (source_id) DO NOTHING]], user, series_id)
  if not ok then return nil, err, state end
  return true
end

return M
