--- Snoozing a reminder that fired: the one code behind `POST /api/tasks/:id/snooze`
-- (notification bundle) and the `snooze_reminder` tool (chat and MCP).
-- A snooze is `{"for": ISO 8601 duration}` (from now, up to a year) or
-- `{"until": RFC 3339}` (ahead, within a year). The task must be the user's (else
-- not_found), not completed (task_completed), and one of its reminders must have fired
-- (nothing_to_snooze). The snooze is the task's `snooze` row of `reminder_schedule`:
-- snoozing again moves it; completing or deleting the task removes it. When it is due
-- sooner than a scheduler's longest sleep, the transaction NOTIFYs the schedule channel
-- (delivered on commit), so every replica's scheduler wakes in time.
-- @module reminders.snooze

local pg = require "pg"
local errors = require "web.errors"
local duration = require "reminders.duration"
local reminders = require "reminders"
local clock = require "reminders.clock"

local M = {}

local YEAR = 366 * 86400

local function is_uuid(s)
  return type(s) == "string" and #s == 36 and s:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil
end

--- The instant a snooze body names.
-- @param body the decoded JSON body (`{"for": ...}` or `{"until": ...}`)
-- @tparam number now epoch seconds
-- @treturn[1] number epoch seconds
-- @treturn[2] nil
-- @treturn[2] string|nil the field at fault
-- @treturn[2] string the message
function M.target(body, now)
  if type(body) ~= "table" or #body > 0 then
    return nil, nil, "the body must be a JSON object: {\"for\": \"PT10M\"} or {\"until\": RFC 3339}"
  end
  for k in pairs(body) do
    if k ~= "for" and k ~= "until" then
      return nil, k, "unknown field " .. errors.printable(k) .. "; send {\"for\": \"PT10M\"} or {\"until\": RFC 3339}"
    end
  end
  if (body["for"] == nil) == (body["until"] == nil) then
    return nil, nil, "send exactly one of \"for\" (an ISO 8601 duration like PT10M) or \"until\" (an RFC 3339 instant)"
  end
  if body["for"] ~= nil then
    local d, why = duration.parse(body["for"])
    if not d then return nil, "for", "for " .. why end
    if duration.approx_seconds(d) == 0 then return nil, "for", "for must be longer than zero" end
    return duration.shift(now, d, 1, "UTC")
  end
  local at = reminders.epoch_of(body["until"])
  if not at then
    return nil, "until", "until must be an RFC 3339 instant with an offset, like 2026-05-01T09:00:00+02:00"
  end
  if at <= now then return nil, "until", "until must be in the future" end
  if at > now + YEAR then return nil, "until", "until must be within a year" end
  return at
end

local function refused(status, code, message, field)
  return nil, { status = status, code = code, message = message, field = field }
end

--- Snooze the user's task's reminder.
-- @tparam string user the authenticated user
-- @param id the task id (anything: a non-UUID is not_found)
-- @param body the snooze (`{"for": ...}` or `{"until": ...}`)
-- @treturn[1] table `{task_id, remind_at = text from the database, at = epoch seconds}`
-- @treturn[2] nil
-- @treturn[2] table the problem: `{status, code, message, field}` (404 not_found, 409
--   task_completed or nothing_to_snooze, 422 invalid_field, 503 reminders_unavailable), or
--   `{db = true, err, state}` when the database failed
function M.snooze(user, id, body)
  if not is_uuid(id) then return refused(404, "not_found", "task not found") end
  local now = clock.now()
  local at, field, msg = M.target(body, now)
  if not at then return refused(422, "invalid_field", msg, field) end
  local result, problem
  local ok, err, state = pg.tx(function(tx)
    local rows, e, s = tx:query([[
      SELECT t.completed,
             EXISTS (SELECT 1 FROM notifications n WHERE n.task_id = t.id AND n.user_id = t.user_id) AS fired
      FROM tasks t WHERE t.id = $1::uuid AND t.user_id = $2 FOR SHARE]], id, user)
    if not rows then return nil, e, s end
    local t = rows[1]
    if not t then
      problem = { status = 404, code = "not_found", message = "task not found" }
      return true
    end
    if t.completed then
      problem = { status = 409, code = "task_completed",
        message = "the task is completed; reopen it to snooze its reminder" }
      return true
    end
    if not t.fired then
      problem = { status = 409, code = "nothing_to_snooze", message = "no reminder of this task has fired yet; "
        .. "set a reminder instead (reminders on the task)" }
      return true
    end
    rows, e, s = tx:query([[
      WITH put AS (
        INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state)
        VALUES ($2, $1::uuid, 'snooze', $3::timestamptz, 'scheduled')
        ON CONFLICT (task_id, rkey) DO UPDATE SET remind_at = excluded.remind_at, state = 'scheduled', fired_at = NULL
        RETURNING remind_at
      ) SELECT remind_at, (SELECT count(pg_notify(']] .. reminders.CHANNEL .. [[', ''))
                           WHERE $3::timestamptz < $4::timestamptz) AS woke FROM put]],
      id, user, clock.iso(at), clock.iso(now + reminders.MAX_SLEEP))
    if not rows then return nil, e, s end
    result = { task_id = id, remind_at = rows[1].remind_at, at = at }
    return true
  end)
  if not ok then
    if tostring(state) == "42P01" then
      -- the notification bundle's tables are not here: this deployment runs no reminders
      return refused(503, "reminders_unavailable", "reminders are not enabled on this server")
    end
    return nil, { db = true, err = err, state = state }
  end
  if problem then return nil, problem end
  return result
end

return M
