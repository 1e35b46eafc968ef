--- The history routes of the Task API (the data and undo are lua/tasks/history.lua):
--   GET  /api/tasks/:id/history    the task's changes, newest first
--   GET  /api/activity             the user's recent changes, newest first
--   POST /api/activity/:id/undo    revert one change (412 when the task changed since)
-- @module api.tasks.history

local errors = require "web.errors"
local query = require "web.query"
local history = require "tasks.history"
local reply = require "api.tasks.reply"

local M = {}

M.LIMIT_DEFAULT, M.LIMIT_MAX = 50, 200

-- The one query parameter of the two history lists (anything else answers 422, as on
-- every other route).
local function limit_of(req)
  local q = req.query or {}
  for _, name in ipairs(query.names(req)) do
    if name ~= "limit" then
      return nil, errors.invalid(name, "unknown query parameter " .. errors.printable(name) .. "; allowed: limit",
        "unknown_field")
    end
  end
  local n = q.limit and math.tointeger(tonumber(q.limit))
  if q.limit and (not n or n < 1 or n > M.LIMIT_MAX) then
    return nil, errors.invalid("limit", "limit must be an integer from 1 to " .. M.LIMIT_MAX)
  end
  return n or M.LIMIT_DEFAULT
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- GET /api/tasks/:id/history
function M.task_history(req)
  local id = req.params and req.params.id
  if type(id) ~= "string" or not id:match(UUID) then return errors.not_found("task") end
  local limit, s, b, h = limit_of(req)
  if not limit then return s, b, h end
  local items, err, code, detail = history.for_task(req.user, id, limit)
  if not items then return reply.failure(req, err, code, detail) end
  return 200, { items = items }
end

--- GET /api/activity
function M.activity(req)
  local limit, s, b, h = limit_of(req)
  if not limit then return s, b, h end
  local items, err, code, detail = history.activity(req.user, limit)
  if not items then return reply.failure(req, err, code, detail) end
  return 200, { items = items }
end

--- POST /api/activity/:id/undo
function M.undo(req)
  local id = math.tointeger(tonumber(req.params and req.params.id or ""))
  if not id then return errors.not_found("change") end
  local res, err, code, detail = history.undo(req.user, id)
  -- Undo takes no If-Match: its 412 names no header (reply.failure's would).
  if code == "version_conflict" then return errors.response(412, "version_conflict", err) end
  if not res then return reply.failure(req, err, code, detail) end
  return 200, res
end

return M
