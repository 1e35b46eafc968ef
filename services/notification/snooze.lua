--- POST /api/tasks/:id/snooze: re-arm a reminder of the task that fired.
-- Body: `{"for": "PT10M"}` or `{"until": "<RFC 3339>"}`. The rules and the write are
-- reminders.snooze (lua/reminders/snooze.lua), shared with the chat's `snooze_reminder`
-- tool; this route maps its answers to HTTP (404, 409 task_completed or
-- nothing_to_snooze, 422) and wakes this process's scheduler at once.
-- @module notification.snooze

local errors = require "web.errors"
local guard = require "web.guard"
local shared = require "reminders.snooze"
local scheduler = require "notification.scheduler"
local handlers = require "notification.handlers"

local M = {}

--- POST /api/tasks/:id/snooze
function M.snooze(req)
  local id = req.params.id
  if not handlers.is_uuid(id) then return errors.not_found("task") end
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local out, p = shared.snooze(req.user, id, body)
  if not out then
    if p.db then return handlers.db_error(req, p.err, p.state) end
    if p.status == 404 then return errors.not_found("task") end
    if p.status == 422 then return errors.invalid(p.field, p.message) end
    return errors.response(p.status, p.code, p.message)
  end
  scheduler.waker.poke(out.at)
  return 200, { task_id = out.task_id, remind_at = out.remind_at }
end

return M
