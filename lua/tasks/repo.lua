--- The task repository: THE way to a user's tasks for every bundle (the REST API, a chat
-- assistant's tools, a notification handler). Each function takes the user id first,
-- validates its input (tasks.schema, tasks.bulk) exactly as the REST API does, scopes
-- every statement to that user, and writes a change and its events (tasks.events) in one
-- transaction. `get`, `create` and `set_completed` are coalesced with the same calls of
-- other requests in the loop turn (tasks.coalesce, when API_BATCH_MAX > 1); the answer is
-- the one the call would get alone.
--
-- Input is what a client sends, as decoded JSON (`{title = "...", priority = "high"}`);
-- tasks come back in the API's JSON shape (tasks.row.to_task).
--
-- Wrong arguments (a user id that is not a non-empty string) raise. Every other failure
-- returns `nil, message, code[, detail]` (CONTRIBUTING.md, "Errors"):
--
--     code                    detail              when
--     invalid_field, unknown_field, invalid_value, recurrence_needs_due, reminder_needs_due, too_many,
--     invalid_cursor, ...     the field at fault  the input is refused (message says why)
--     not_found                                   no such task for this user
--     version_conflict        the current version `versions` (If-Match) did not match
--     unavailable             the SQLSTATE        the database cannot be reached, or no answer (retry)
--     internal                the SQLSTATE        anything else (a bug or a broken database)
-- @module tasks.repo

local schema = require "tasks.schema"
local bulk_input = require "tasks.bulk"
local store = require "tasks.store"
local coalesce = require "tasks.coalesce"
local series_delete = require "tasks.series_delete"

local M = {}

--- Tasks one bulk request may change at most (a filter matching more is refused).
M.BULK_MAX = store.BULK_MAX

local function check_user(user)
  if type(user) ~= "string" or user == "" then
    error("tasks.repo: the user id must be a non-empty string, got " .. type(user), 3)
  end
end

--- Map a database failure (`message, sqlstate, constraint` from the pg primitive) to the
-- repository's codes: values PostgreSQL refused are the caller's, an unreachable
-- database is `unavailable`, the rest `internal`.
-- @return nil, message, code, detail
function M.db_failure(err, state, constraint)
  if constraint == "tasks_recurrence_needs_due" then
    return nil, "a recurring task needs a due_at (its first occurrence): keep due_at, or clear recurrence too",
      "recurrence_needs_due", "due_at"
  end
  if constraint == "tasks_reminders_need_due" then
    return nil, "a reminder {\"before\": ...} needs a due_at: keep due_at, or change those reminders to "
      .. "{\"at\": ...}", "reminder_needs_due", "due_at"
  end
  if type(state) == "string" and (state:sub(1, 2) == "22" or state == "23514") then
    return nil, "a value is out of range or malformed (dates must stay within years 1 to 9999)",
      "invalid_value", nil
  end
  local message = tostring(err) .. " (" .. tostring(state) .. ")"
  -- The pg primitive gives no SQLSTATE (nil or "") when the query never reached the server
  -- (pool timeout: pg.tx's acquire answers nil; shutting down) and class 08 when the
  -- connection failed; the server ends its sessions with 57P01..57P03 (shutdown, crash,
  -- starting up): all are retryable.
  if state == nil or state == ""
    or (type(state) == "string" and (state:sub(1, 2) == "08" or state:match("^57P0[123]$"))) then
    return nil, message, "unavailable", state
  end
  return nil, message, "internal", state
end
local db_failure = M.db_failure

local NOT_FOUND = "task not found"

-- A change result of tasks.store (`{task =}`, `{missing =}`, `{conflict =, version =}`).
local function changed(res, err, state, constraint)
  if not res then return db_failure(err, state, constraint) end
  if res.missing then return nil, NOT_FOUND, "not_found" end
  if res.conflict then
    return nil, "the task was changed by someone else (current version " .. tostring(res.version) .. ")",
      "version_conflict", res.version
  end
  return res.task
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- A task id, lower-cased; nil for one that cannot exist (answered like an unknown id).
local function task_id(id)
  if type(id) ~= "string" or not id:match(UUID) then return nil end
  return id:lower()
end

--- One of the user's tasks.
-- @tparam string user
-- @tparam string id
-- @return the task, or nil, message, code
function M.get(user, id)
  check_user(user)
  id = task_id(id)
  if not id then return nil, NOT_FOUND, "not_found" end
  local task, err, state, constraint = coalesce.get(user, id)
  if task == nil then return db_failure(err, state, constraint) end
  if not task then return nil, NOT_FOUND, "not_found" end
  return task
end

--- Create a task.
-- @tparam string user
-- @tparam table input the fields, as a client sends them (`title` required)
-- @return the new task, or nil, message, code, field
function M.create(user, input)
  check_user(user)
  local fields, msg, code, field = schema.task_input(input, "create")
  if not fields then return nil, msg, code, field end
  local task, err, state, constraint = coalesce.create(user, fields)
  if not task then return db_failure(err, state, constraint) end
  return task
end

--- Change some fields of a task (a PATCH).
-- @tparam string user
-- @tparam string id
-- @tparam table input the fields to change, as a client sends them
-- @tparam[opt] table opts `versions`: the task must have one of these versions (If-Match;
--   an empty list matches nothing)
-- @return the task after the change, or nil, message, code, detail
function M.update(user, id, input, opts)
  check_user(user)
  id = task_id(id)
  if not id then return nil, NOT_FOUND, "not_found" end
  local fields, msg, code, field = schema.task_input(input, "patch")
  if not fields then return nil, msg, code, field end
  return changed(store.update(user, id, fields, opts and opts.versions))
end

--- Complete (`completed` true) or reopen a task; a task already in that state is
-- returned as it is (no new version, no event).
-- @tparam string user
-- @tparam string id
-- @tparam boolean completed
-- @tparam[opt] table opts `versions` (If-Match)
-- @return the task, or nil, message, code, detail
function M.set_completed(user, id, completed, opts)
  check_user(user)
  id = task_id(id)
  if not id then return nil, NOT_FOUND, "not_found" end
  return changed(coalesce.set_completed(user, id, completed == true, opts and opts.versions))
end

--- Delete a task. `scope = "occurrence"` (default): an open occurrence of a series is
-- skipped (the series goes on with the next occurrence); `scope = "series"`: the task and
-- every open occurrence of its series go, and the series stops.
-- @tparam string user
-- @tparam string id
-- @tparam[opt] table opts `versions` (If-Match), `scope`
-- @return the task as it was, or nil, message, code, detail
function M.delete(user, id, opts)
  check_user(user)
  opts = opts or {}
  id = task_id(id)
  if not id then return nil, NOT_FOUND, "not_found" end
  local scope = opts.scope or "occurrence"
  if not series_delete.SCOPES[scope] then
    return nil, "scope must be occurrence (this task only, the default) or series "
      .. "(this task and the open occurrences of its series)", "invalid_field", "scope"
  end
  if scope == "series" then return changed(series_delete.series(user, id, opts.versions)) end
  return changed(store.delete(user, id, opts.versions, series_delete.skip))
end

--- Apply one action to many tasks, all or nothing (`POST /api/tasks/bulk`'s body:
-- `{action =, ids = {...} | filter = {...}, changes =, time =, shift =, tz =}`).
-- @tparam string user
-- @tparam table input
-- @return `{action =, matched =, changed =, items = | ids =}`, or nil, message, code, detail
function M.bulk(user, input)
  check_user(user)
  local parsed, msg, code, field = bulk_input.parse(input)
  if not parsed then
    if code == "not_found" then return nil, NOT_FOUND, "not_found", field end
    return nil, msg, code, field
  end
  local res, err, state, constraint = store.bulk(user, parsed)
  if not res then return db_failure(err, state, constraint) end
  if res.missing then return nil, "task " .. res.missing .. " not found", "not_found", "ids" end
  if res.too_many then
    return nil, "the filter matches more than " .. M.BULK_MAX .. " tasks; narrow it down", "too_many", "filter"
  end
  return res
end

-- A query table (`name = value` or `name = {values}`) as the request shape of tasks.schema.
local function as_request(query)
  local one, all = {}, {}
  for name, v in pairs(query or {}) do
    if type(v) == "table" then
      all[name], one[name] = v, v[1]
    else
      all[name], one[name] = { tostring(v) }, tostring(v)
    end
  end
  return { query = one, query_all = all }
end

--- List the user's tasks: filters, sort, keyset pages.
-- @tparam string user
-- @tparam[opt] table query the list's parameters as `GET /api/tasks` takes them
--   (`{status = "pending", tag = {"a", "b"}, sort = "due", limit = "20", cursor = ...}`),
--   or a request (a table with `query` / `query_all`)
-- @return `{items = {...}, next_cursor = string | json.null}`, or nil, message, code, field
function M.list(user, query)
  check_user(user)
  local req = query
  if not (query and (query.query_all or query.query)) then req = as_request(query) end
  local o, msg, code, field = schema.list_options(req)
  if not o then return nil, msg, code, field end
  if o.cursor then
    local after, why = store.after(user, o)
    if not after then return nil, why, "invalid_cursor", "cursor" end
    o.after = after
  end
  local page, err, state, constraint = store.list(user, o)
  if not page then return db_failure(err, state, constraint) end
  return page
end

--- The user's tags with the number of tasks carrying each, most used first.
-- @tparam string user
-- @return array of `{tag =, count =}`, or nil, message, code
function M.tags(user)
  check_user(user)
  local items, err, state, constraint = store.tags(user)
  if not items then return db_failure(err, state, constraint) end
  return items
end

return M
