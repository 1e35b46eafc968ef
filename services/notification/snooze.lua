--- POST /api/tasks/:id/snooze: re-arm a reminder of the task that fired.
-- Body: `{"for": "PT10M"}` (an ISO 8601 duration from now, up to a year) or
-- `{"until": "<RFC 3339>"}` (an instant ahead, within a year). The task must be the
-- caller's (else 404), not completed (409 task_completed), and one of its reminders must
-- have fired (409 nothing_to_snooze). The snooze is the task's `snooze` row of the
-- schedule: snoozing again moves it; completing or deleting the task removes it.
-- @module notification.snooze

local pg = require "pg"
local errors = require "web.errors"
local guard = require "web.guard"
local duration = require "reminders.duration"
local reminders = require "reminders"
local clock = require "notification.clock"
local schedule = require "notification.schedule"
local scheduler = require "notification.scheduler"
local handlers = require "notification.handlers"

local M = {}

local YEAR = 366 * 86400

-- The instant a body names, or nil, field, message.
local function target(body, now)
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

--- POST /api/tasks/:id/snooze
function M.snooze(req)
  local id = req.params.id
  if not handlers.is_uuid(id) then return errors.not_found("task") end
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local now = clock.now()
  local at, field, msg = target(body, now)
  if not at then return errors.invalid(field, msg) end
  local result
  local ok, err, state = pg.tx(function(tx)
    local rows, e, s = tx:query([[
      SELECT t.completed,
             EXISTS (SELECT 1 FROM notifications n WHERE n.task_id = t.id AND n.user_id = t.user_id) AS fired
      FROM tasks t WHERE t.id = $1::uuid AND t.user_id = $2 FOR SHARE]], id, req.user)
    if not rows then return nil, e, s end
    local t = rows[1]
    if not t then result = { errors.not_found("task") } return true end
    if t.completed then
      result = { errors.response(409, "task_completed", "the task is completed; reopen it to snooze its reminder") }
      return true
    end
    if not t.fired then
      result = { errors.response(409, "nothing_to_snooze", "no reminder of this task has fired yet; "
        .. "set a reminder instead (reminders on the task)") }
      return true
    end
    rows, e, s = tx:query([[
      WITH put AS (
        INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state)
        VALUES ($2, $1::uuid, 'snooze', $3::timestamptz, 'scheduled')
        ON CONFLICT (task_id, rkey) DO UPDATE SET remind_at = excluded.remind_at, state = 'scheduled', fired_at = NULL
        RETURNING remind_at
      ) SELECT remind_at, (SELECT count(pg_notify(']] .. schedule.CHANNEL .. [[', ''))
                           WHERE $3::timestamptz < $4::timestamptz) AS woke FROM put]],
      id, req.user, clock.iso(at), clock.iso(now + schedule.MAX_SLEEP))
    if not rows then return nil, e, s end
    result = { 200, { task_id = id, remind_at = rows[1].remind_at } }
    return true
  end)
  if not ok then return handlers.db_error(req, err, state) end
  if result[1] == 200 then scheduler.waker.poke(at) end
  return table.unpack(result)
end

return M
