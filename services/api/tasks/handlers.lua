--- HTTP handlers of the Task API: each takes an authenticated request (`req.user` set by
-- `web.guard.authenticated`), turns it into one call of the repository (tasks.repo, which
-- validates, scopes to the user, writes the change and its events), and answers status,
-- body, headers (api.tasks.reply maps the repository's error codes).
-- @module api.tasks.handlers

local errors = require "web.errors"
local guard = require "web.guard"
local query = require "web.query"
local repo = require "tasks.repo"
local schema = require "tasks.schema"
local bulk = require "tasks.bulk"
local reply = require "api.tasks.reply"

local M = {}

local task_headers = reply.task_headers

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

local function task_response(req, status, task, err, code, detail)
  if not task then return reply.failure(req, err, code, detail) end
  if status == 204 then return 204, nil, task_headers(task) end
  return status, task, task_headers(task)
end

--- POST /api/tasks
function M.create(req)
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local task, err, code, detail = repo.create(req.user, body)
  if not task then return reply.failure(req, err, code, detail) end
  return 201, task, task_headers(task, { ["Location"] = "/api/tasks/" .. task.id })
end

--- GET /api/tasks
function M.list(req)
  local page, err, code, detail = repo.list(req.user, req)
  if not page then return reply.failure(req, err, code, detail) end
  return 200, page
end

--- GET /api/tasks/:id (answers 304 to a matching If-None-Match)
function M.get(req)
  local task, err, code, detail = repo.get(req.user, req.params and req.params.id)
  if not task then return reply.failure(req, err, code, detail) end
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
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  return task_response(req, 200,
    repo.update(req.user, req.params and req.params.id, body, { versions = M.if_match(req.headers) }))
end

--- DELETE /api/tasks/:id?scope=occurrence|series (honours If-Match; 204). An open
-- occurrence of a series is skipped, scope=series stops the series (tasks.repo.delete).
function M.delete(req)
  local scope = query.one(req, "scope")
  if scope == "" then scope = nil end
  return task_response(req, 204, repo.delete(req.user, req.params and req.params.id,
    { versions = M.if_match(req.headers), scope = scope }))
end

local function set_completed(req, completed)
  local id = req.params and req.params.id
  if not bulk.is_uuid(id) then return errors.not_found("task") end
  -- The body, if any, must be an empty JSON object.
  if req.body and req.body:match("%S") then
    local body, st, b, h = guard.json_body(req)
    if body == nil then return st, b, h end
    local fields, msg, code, field = schema.task_input(body, "patch")
    if not fields then return errors.invalid(field, msg, code) end
    if next(fields) ~= nil then
      local k = next(fields)
      return errors.invalid(k, "this route takes no fields; use PATCH /api/tasks/{id}", "unknown_field")
    end
  end
  return task_response(req, 200, repo.set_completed(req.user, id, completed,
    { versions = M.if_match(req.headers) }))
end

--- POST /api/tasks/:id/complete (a completed task stays as it is)
function M.complete(req) return set_completed(req, true) end

--- POST /api/tasks/:id/reopen
function M.reopen(req) return set_completed(req, false) end

--- POST /api/tasks/bulk
function M.bulk(req)
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  local res, err, code, detail = repo.bulk(req.user, body)
  if not res then return reply.failure(req, err, code, detail) end
  return 200, res
end

--- GET /api/tags
function M.tags(req)
  local name = query.names(req)[1]
  if name ~= nil then
    return errors.invalid(name, "GET /api/tags takes no query parameters", "unknown_field")
  end
  local items, err, code, detail = repo.tags(req.user)
  if not items then return reply.failure(req, err, code, detail) end
  return 200, { items = items }
end

return M
