--- Task events: what a task change publishes, and `record`, the one place where task
-- events are written to the outbox (bus.publish_many), always inside the change's own
-- transaction so that the event exists if and only if the change commits.
-- @module tasks.events

local json = require "json"
local bus = require "bus"
local cloudevents = require "bus.cloudevents"

local M = {}

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
function M.record(tx, user, kind, task, changed)
  return M.record_many(tx, user, kind, { task }, changed)
end

--- Publish the events of several changes of one kind (`record` for each task, in
-- order), all in one statement.
-- @param tx the change's `pg.tx`
-- @tparam string user
-- @tparam string kind
-- @tparam table tasks array of tasks
-- @tparam[opt] table changed field names, shared by every task
-- @return true, or nil and a message
function M.record_many(tx, user, kind, tasks, changed)
  local list = {}
  for _, task in ipairs(tasks) do add_events(list, user, kind, task, changed) end
  local ok, err = bus.publish_many(tx, list)
  if not ok then return nil, err end
  return true
end

--- Publish the events of several changes of any kinds and users (`record` for
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
