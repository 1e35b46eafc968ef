--- The consumer of `task-events` (group "recurring-task"): a completed occurrence of a
-- series gets its next occurrence (tasks.spawn). The event only says which task was
-- completed; the task is read again in the delivery's transaction, so an occurrence
-- reopened (or deleted, or no longer recurring) since then spawns nothing, and the
-- completion that stands is the one the next occurrence is computed from.
-- @module recurring-task.consumer

local log = require "log"
local row = require "tasks.row"
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
  local rows, err = tx:query("SELECT " .. row.COLUMNS .. " FROM tasks WHERE id = $1::uuid AND user_id = $2",
    d.task_id, d.user_id)
  if not rows then return nil, err end
  local src = rows[1]
  if not src or src.completed ~= true then return true end
  local task, why = spawn.next(tx, d.user_id, src, "completed")
  if task == nil then return nil, why end
  if task then
    log.info("recurring-task: next occurrence", { task_id = src.id, next_id = task.id, due_at = task.due_at,
      event_id = event.id })
  elseif why ~= "exists" and why ~= "count" and why ~= "ended" then
    log.warn("recurring-task: no next occurrence", { task_id = src.id, reason = why, event_id = event.id })
  end
  return true
end

return M
