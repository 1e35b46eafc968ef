--- The one JSON error shape of every HTTP API: `{"error": {"code", "message", "field"}}`.
-- Handlers return `errors.xxx(...)` directly: each helper answers status, body, headers.
-- Messages are for the person calling the API: say what is wrong and what to send instead.
-- @module web.errors

local M = {}

--- Make text safe to echo back inside an error message (valid UTF-8, no control bytes, short).
-- @tparam any s a value taken from the request (a field name, say)
-- @treturn string
function M.printable(s)
  s = tostring(s)
  if #s > 64 then s = s:sub(1, 64) end
  if not utf8.len(s) then
    s = s:gsub("[\128-\255]", "?")
  end
  return (s:gsub("%c", "?"))
end

--- Build an error response.
-- @tparam integer status HTTP status
-- @tparam string code machine-readable code (snake_case)
-- @tparam string message what went wrong, for a person
-- @tparam[opt] string field the input field at fault
-- @tparam[opt] table headers extra response headers
-- @return status, body, headers
function M.response(status, code, message, field, headers)
  local err = { code = code, message = message }
  if field ~= nil then err.field = M.printable(field) end
  return status, { error = err }, headers
end

--- 400: the body is not valid JSON.
function M.bad_json(detail)
  return M.response(400, "malformed_json",
    "the request body is not valid JSON" .. (detail and (": " .. M.printable(detail)) or ""))
end

--- 400: a generic bad request.
function M.bad_request(message, field)
  return M.response(400, "bad_request", message, field)
end

--- 401 with `WWW-Authenticate` (RFC 6750).
-- @tparam[opt] string detail why the token was refused; nil when there was no token
function M.unauthorized(detail)
  local challenge = 'Bearer realm="todo"'
  local message = "a bearer token is required: send Authorization: Bearer <token>"
  if detail then
    challenge = challenge .. ', error="invalid_token", error_description="'
      .. M.printable(detail):gsub('["\\]', "'") .. '"'
    message = "the bearer token was refused: " .. M.printable(detail)
  end
  return M.response(401, "unauthorized", message, nil, { ["WWW-Authenticate"] = challenge })
end

--- 404: unknown resource, or one that belongs to someone else (we never say which).
function M.not_found(what, field)
  return M.response(404, "not_found", (what or "resource") .. " not found", field)
end

--- 412: the resource changed since the version named in If-Match.
function M.precondition_failed(current_version)
  return M.response(412, "version_conflict",
    "the task was changed by someone else (current version " .. tostring(current_version)
      .. "); fetch it again and retry with the new ETag", "If-Match")
end

--- 415: the body is not JSON.
function M.unsupported_media_type(got)
  return M.response(415, "unsupported_media_type",
    "send the body as application/json" .. (got and (" (got " .. M.printable(got) .. ")") or ""),
    "Content-Type")
end

--- 422: a field is unknown, of the wrong type or out of range.
-- @tparam string field the field at fault
-- @tparam string message what to send instead
-- @tparam[opt="invalid_field"] string code
function M.invalid(field, message, code)
  return M.response(422, code or "invalid_field", message, field)
end

-- Log why a request failed, with its id (the cause is never sent to the client).
local function log_cause(level, msg, req, cause)
  local ok, log = pcall(require, "log")
  if ok and log and log[level] then
    log[level](msg, { request_id = req and req.id, cause = tostring(cause) })
  end
end

--- 503: the database cannot be reached right now (connection refused or lost, pool
-- timeout); the client may retry. The cause is logged, never sent.
-- @tparam table req the request (for its id)
-- @tparam any cause logged with the request id
function M.unavailable(req, cause)
  log_cause("warn", "database unavailable", req, cause)
  return M.response(503, "unavailable", "the service cannot reach its database right now; retry shortly",
    nil, { ["Retry-After"] = "1" })
end

--- 500: something broke on our side; the cause is logged, never sent.
-- @tparam table req the request (for its id)
-- @tparam any cause logged with the request id
function M.internal(req, cause)
  log_cause("error", "internal error", req, cause)
  return M.response(500, "internal_error",
    "something went wrong on our side; quote request id " .. tostring(req and req.id or "?"))
end

return M
