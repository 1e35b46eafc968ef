--- A task row: the column list every task statement returns and the row -> task
-- conversion (the JSON shape of the API and of `task_data` in events). Pure Lua.
-- @module tasks.row

local json = require "json"
local series = require "tasks.series"

local M = {}

--- The columns every task statement returns (`RETURNING` / `SELECT`).
M.COLUMNS = [[id::text AS id, title, description, completed, completed_at, priority, tags,
  due_at, tz, recurrence, reminders, created_at, updated_at, version,
  series_id::text AS series_id, occurrence_index, spawned_from::text AS spawned_from]]

--- Priorities in order of meaning; the stored value is the index minus one.
M.PRIORITIES = { "none", "low", "medium", "high" }

--- Priority name for a stored integer.
function M.priority_name(n) return M.PRIORITIES[(tonumber(n) or 0) + 1] or "none" end

--- Turn a row (M.COLUMNS) into the task the API returns.
-- @tparam table row
-- @treturn table the task
function M.to_task(row)
  local tags = row.tags
  if type(tags) ~= "table" then tags = {} end
  return {
    id = row.id,
    title = row.title,
    description = row.description,
    completed = row.completed,
    completed_at = row.completed_at,
    priority = M.priority_name(row.priority),
    tags = json.array(tags),
    due_at = row.due_at,
    tz = row.tz,
    recurrence = series.present(row.recurrence, row.tz),
    reminders = row.reminders,
    created_at = row.created_at,
    updated_at = row.updated_at,
    version = row.version,
    series_id = row.series_id or json.null,
    occurrence_index = row.occurrence_index or 1,
    spawned_from = row.spawned_from or json.null,
  }
end

return M
