--- A task row and its events, shared by every bundle that writes tasks (services/api,
-- services/recurring-task): the column list every statement returns, the row -> task
-- conversion (the JSON shape of the API and of `task_data` in events), and
-- `record_event`, the one place where task events are written to the outbox.
-- Moved here from services/api/tasks/repo.lua (which re-exports it) so that the
-- recurring-task bundle creates tasks and publishes their events exactly like the API.
-- @module tasks.row

local json = require "json"
local bus = require "bus"
local cloudevents = require "bus.cloudevents"
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

--- Topics every task change is published on: `task-events` (consumers: history,
-- recurring tasks, reminders) and `task-updates` (what connected clients must see).
M.EVENT_TOPICS = { "task-events", "task-updates" }

--- Fields every task has, in the order `changed` lists them for a creation.
M.FIELDS = { "title", "description", "completed", "completed_at", "priority", "tags", "due_at", "tz",
  "recurrence", "reminders" }

--- The fields a change to `f` (clean writable fields) touches.
-- @tparam table f
-- @treturn table names (a JSON array)
function M.changed_fields(f)
  local out = {}
  for _, name in ipairs(M.FIELDS) do
    if f[name] ~= nil then out[#out + 1] = name end
    if name == "completed" and f.completed ~= nil then out[#out + 1] = "completed_at" end
  end
  return json.array(out)
end

-- The events of one change, appended to `list` (for bus.publish_many).
local function add_events(list, user, kind, task, changed)
  if changed == nil then changed = kind == "created" and M.FIELDS or {} end
  local data = {
    event_type = kind,
    task_id = task.id,
    task_data = task,
    user_id = user,
    timestamp = cloudevents.timestamp(),
    changed = json.array(changed),
    version = task.version,
  }
  for _, topic in ipairs(M.EVENT_TOPICS) do
    list[#list + 1] = { topic = topic, type = "task." .. kind, data = data, key = user, subject = task.id }
  end
end

--- Publish the events of one task change, inside its transaction `tx`: one CloudEvent
-- `task.<kind>` on each of `M.EVENT_TOPICS`, partition key the user id, subject the task
-- id. `data` has the origin design's fields (`event_type`, `task_id`, `task_data` = the
-- task after the change, or as it was for `deleted`; `user_id`, `timestamp`) plus
-- `changed` (field names) and `version`. A failed publish fails the query on `tx`, so the
-- whole change rolls back. Every event is written by one statement (`bus.publish_many`).
-- @param tx the change's `pg.tx`
-- @tparam string user
-- @tparam string kind `created`, `updated`, `completed`, `reopened` or `deleted`
-- @tparam table task
-- @tparam[opt] table changed field names (default: every field for `created`, none else)
-- @return true, or nil and a message
function M.record_event(tx, user, kind, task, changed)
  return M.record_events(tx, user, kind, { task }, changed)
end

--- Publish the events of several changes of one kind (`record_event` for each task, in
-- order), all in one statement.
-- @param tx the change's `pg.tx`
-- @tparam string user
-- @tparam string kind
-- @tparam table tasks array of tasks
-- @tparam[opt] table changed field names, shared by every task
-- @return true, or nil and a message
function M.record_events(tx, user, kind, tasks, changed)
  local list = {}
  for _, task in ipairs(tasks) do add_events(list, user, kind, task, changed) end
  local ok, err = bus.publish_many(tx, list)
  if not ok then return nil, err end
  return true
end

--- Publish the events of several changes of any kinds and users (`record_event` for
-- each, in order), all in one statement: the coalesced writes of tasks.coalesce.
-- @param tx the changes' `pg.tx`
-- @tparam table changes array of `{user =, kind =, task =, changed =}`
-- @return true, or nil and a message
function M.record_changes(tx, changes)
  local list = {}
  for _, c in ipairs(changes) do add_events(list, c.user, c.kind, c.task, c.changed) end
  local ok, err = bus.publish_many(tx, list)
  if not ok then return nil, err end
  return true
end

return M
