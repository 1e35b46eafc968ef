--- HTTP handlers of the Task API: each takes an authenticated request (`req.user` set by
-- `http.guard.authenticated`), validates its input once through `tasks.schema` /
-- `tasks.bulk`, calls `tasks.repo`, and answers status, body, headers.
-- @module tasks.handlers

local errors = require "http.errors"
local guard = require "http.guard"
local query = require "http.query"
local schema = require "tasks.schema"
local bulk = require "tasks.bulk"
local repo = require "tasks.repo"
local coalesce = require "tasks.coalesce"
local series_delete = require "recurrence.delete"

local M = {}

local function etag(task) return '"' .. tostring(task.version) .. '"' end

local function task_headers(task, extra)
  local h = extra or {}
  h["ETag"] = etag(task)
  return h
end

-- A database failure: bad values PostgreSQL refused (class 22, check violations) are the
-- caller's (422); an unreachable database (class 08, pool timeout) is 503 with
-- Retry-After; anything else is ours (500, logged with the request id).
local function db_error(req, err, state)
  if state == "23514" and tostring(err):find("tasks_recurrence_needs_due", 1, true) then
    return errors.invalid("due_at", "a recurring task needs a due_at (its first occurrence): keep due_at, "
      .. "or clear recurrence too", "recurrence_needs_due")
  end
  if type(state) == "string" and (state:sub(1, 2) == "22" or state == "23514") then
    return errors.invalid(nil, "a value is out of range or malformed (dates must stay within years 1 to 9999)",
      "invalid_value")
  end
  if err == "pool timeout" or (type(state) == "string" and state:sub(1, 2) == "08") then
    return errors.unavailable(req, tostring(err) .. " (" .. tostring(state) .. ")")
  end
  return errors.internal(req, tostring(err) .. " (" .. tostring(state) .. ")")
end

-- A validation failure from tasks.schema / tasks.bulk (an impossible id is a 404).
local function invalid(field, msg, code)
  if code == "not_found" then return errors.not_found("task", field) end
  return errors.invalid(field, msg, code)
end

-- The task id of the path; an id that cannot exist answers 404 like an unknown one.
local function task_id(req)
  local id = req.params and req.params.id
  if not bulk.is_uuid(id) then return nil end
  return id:lower()
end

--- Versions named by If-Match: nil when absent or `*`, else an array (maybe empty,
-- which matches nothing).
function M.if_match(headers)
  local h = headers and headers["if-match"]
  if h == nil or h:match("^%s*%*%s*$") then return nil end
  local versions = {}
  for item in h:gmatch("[^,]+") do
    local v = item:match('^%s*W?/?"(%d+)"%s*$') or item:match("^%s*(%d+)%s*$")
    if v and #v <= 9 then versions[#versions + 1] = math.tointeger(tonumber(v)) end
  end
  return versions
end

-- Map a repo change result to a response.
local function change_response(req, res, err, state, status)
  if not res then return db_error(req, err, state) end
  if res.missing then return errors.not_found("task") end
  if res.conflict then return errors.precondition_failed(res.version) end
  if status == 204 then return 204, nil, task_headers(res.task) end
  return status or 200, res.task, task_headers(res.task)
end

--- POST /api/tasks
function M.create(req)
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local fields, field, msg, code = schema.task_input(body, "create")
  if not fields then return invalid(field, msg, code) end
  local res, err, state = coalesce.create(req.user, fields)
  if not res then return db_error(req, err, state) end
  local task = res.task
  return 201, task, task_headers(task, { ["Location"] = "/api/tasks/" .. task.id })
end

--- GET /api/tasks
function M.list(req)
  local o, field, msg, code = schema.list_options(req)
  if not o then return invalid(field, msg, code) end
  local res, err, state = repo.list(req.user, o)
  if not res then
    if err == "cursor" then return errors.invalid("cursor", state, "invalid_cursor") end
    return db_error(req, err, state)
  end
  return 200, res
end

--- GET /api/tasks/:id (answers 304 to a matching If-None-Match)
function M.get(req)
  local id = task_id(req)
  if not id then return errors.not_found("task") end
  local task, err, state = coalesce.get(req.user, id)
  if task == nil then return db_error(req, err, state) end
  if not task then return errors.not_found("task") end
  local inm = req.headers and req.headers["if-none-match"]
  if inm then
    for item in inm:gmatch("[^,]+") do
      local v = item:match('^%s*W?/?"(%d+)"%s*$')
      if item:match("^%s*%*%s*$") or (v and tonumber(v) == task.version) then
        return 304, nil, task_headers(task)
      end
    end
  end
  return 200, task, task_headers(task)
end

--- PATCH /api/tasks/:id (honours If-Match)
function M.patch(req)
  local id = task_id(req)
  if not id then return errors.not_found("task") end
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local fields, field, msg, code = schema.task_input(body, "patch")
  if not fields then return invalid(field, msg, code) end
  local res, err, state = repo.update(req.user, id, fields, M.if_match(req.headers))
  return change_response(req, res, err, state)
end

--- DELETE /api/tasks/:id?scope=occurrence|series (honours If-Match; 204). See
-- recurrence.delete: an open occurrence is skipped, scope=series stops the series.
function M.delete(req)
  local id = task_id(req)
  if not id then return errors.not_found("task") end
  local scope, st, b, h = series_delete.scope(req)
  if not scope then return st, b, h end
  local res, err, state
  if scope == "series" then
    res, err, state = series_delete.series(req.user, id, M.if_match(req.headers))
  else
    res, err, state = repo.delete(req.user, id, M.if_match(req.headers), series_delete.skip)
  end
  return change_response(req, res, err, state, 204)
end

local function set_completed(req, completed)
  local id = task_id(req)
  if not id then return errors.not_found("task") end
  -- The body, if any, must be an empty JSON object.
  if req.body and req.body:match("%S") then
    local body, st, b, h = guard.json_body(req)
    if body == nil then return st, b, h end
    local fields, field, msg, code = schema.task_input(body, "patch")
    if not fields then return invalid(field, msg, code) end
    if next(fields) ~= nil then
      local k = next(fields)
      return errors.invalid(k, "this route takes no fields; use PATCH /api/tasks/{id}", "unknown_field")
    end
  end
  local res, err, state = coalesce.set_completed(req.user, id, completed, M.if_match(req.headers))
  return change_response(req, res, err, state)
end

--- POST /api/tasks/:id/complete (a completed task stays as it is)
function M.complete(req) return set_completed(req, true) end

--- POST /api/tasks/:id/reopen
function M.reopen(req) return set_completed(req, false) end

--- POST /api/tasks/bulk
function M.bulk(req)
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local parsed, field, msg, code = bulk.parse(body)
  if not parsed then return invalid(field, msg, code) end
  local res, err, state = repo.bulk(req.user, parsed)
  if not res then return db_error(req, err, state) end
  if res.missing then
    return errors.not_found("task " .. res.missing, "ids")
  end
  if res.too_many then
    return errors.invalid("filter", "the filter matches more than " .. repo.BULK_MAX
      .. " tasks; narrow it down", "too_many")
  end
  return 200, res
end

--- GET /api/tags
function M.tags(req)
  local name = query.names(req)[1]
  if name ~= nil then
    return errors.invalid(name, "GET /api/tags takes no query parameters", "unknown_field")
  end
  local items, err, state = repo.tags(req.user)
  if not items then return db_error(req, err, state) end
  return 200, { items = items }
end

return M
