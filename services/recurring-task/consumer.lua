--- The consumer of `task-events` (group "recurring-task"): a completed occurrence of a
-- series gets its next occurrence (tasks.spawn.after_completion). The event only says
-- which task was completed; the task is read again in the delivery's transaction, so an
-- occurrence reopened (or deleted, or no longer recurring) since then spawns nothing, and
-- the completion that stands is the one the next occurrence is computed from. The bundle
-- has no SQL of its own: the task domain is lua/tasks/.
-- @module recurring-task.consumer

local log = require "log"
local spawn = require "tasks.spawn"

local M = {}

local function has(list, name)
  if type(list) ~= "table" then return false end
  for _, v in ipairs(list) do
    if v == name then return true end
  end
  return false
end

local function is_uuid(s)
  return type(s) == "string" and s:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil and #s == 36
end

--- Whether an event is the completion of a recurring task (`task.completed`, or an
-- update that set `completed`, e.g. PATCH {"completed": true}).
-- @tparam table data the event's data
-- @treturn boolean
function M.is_completion(data)
  if type(data) ~= "table" then return false end
  local t = data.task_data
  if type(t) ~= "table" or t.completed ~= true then return false end
  if type(t.recurrence) ~= "table" or type(t.recurrence.rule) ~= "string" then return false end
  if data.event_type == "completed" then return true end
  return data.event_type == "updated" and has(data.changed, "completed")
end

--- Handle one event (see `bus.define`): runs inside the delivery's transaction `tx`.
-- @tparam table event the CloudEvent
-- @param tx the transaction
-- @return true, or nil and a message (retried)
function M.on_event(event, tx)
  local d = event.data
  if not M.is_completion(d) then return true end
  if type(d.user_id) ~= "string" or not is_uuid(d.task_id) then return true end
  local task, why, code = spawn.after_completion(tx, d.user_id, d.task_id)
  if task == nil then return nil, why end
  if task then
    log.info("recurring-task: next occurrence", { task_id = d.task_id, next_id = task.id, due_at = task.due_at,
      event_id = event.id })
  elseif code ~= "exists" and code ~= "count" and code ~= "ended" and code ~= "not_completed" then
    log.warn("recurring-task: no next occurrence", { task_id = d.task_id, reason = why, code = code,
      event_id = event.id })
  end
  return true
end

return M
