--- Repository answers as HTTP responses: maps the codes of tasks.repo (`nil, message,
-- code, detail`) to the one error shape (web.errors), and a task to its ETag.
-- @module api.tasks.reply

local errors = require "web.errors"

local M = {}

--- The ETag of a task: its version.
function M.etag(task) return '"' .. tostring(task.version) .. '"' end

--- Headers of a task response (ETag), added to `extra`.
function M.task_headers(task, extra)
  local h = extra or {}
  h["ETag"] = M.etag(task)
  return h
end

--- The response for a repository failure.
-- @tparam table req the request (its id goes into 5xx logs)
-- @tparam string message
-- @tparam string code tasks.repo's code
-- @param detail the field, the current version, or the SQLSTATE (by code)
function M.failure(req, message, code, detail)
  if code == "not_found" then return errors.response(404, "not_found", message, detail) end
  if code == "version_conflict" then return errors.precondition_failed(detail) end
  if code == "cannot_undo" then return errors.response(409, "cannot_undo", message) end
  if code == "unavailable" then return errors.unavailable(req, message) end
  if code == "internal" or code == nil then return errors.internal(req, message) end
  return errors.invalid(detail, message, code)
end

return M
