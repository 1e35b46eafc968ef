--- The oracle shared by the fuzz drivers (core/tests/fuzz/lua/*.lua, run by
-- core/tests/fuzz/lua_target.h): checks that an answer follows the project's error
-- convention (CONTRIBUTING.md, "Errors"), that a response is a 2xx/4xx with an `error`
-- body, and that what is stored or sent encodes as JSON. A broken check raises: the
-- harness reports it with its traceback and aborts, like any uncaught error.
-- @module fuzz_check

local json = require "json"

local M = {}

--- Raise (a finding) unless cond holds.
function M.that(cond, fmt, ...)
  if not cond then error("fuzz check failed: " .. string.format(fmt, ...), 2) end
  return cond
end

--- The lines of an input ("\n"-separated; a final empty line is dropped).
function M.lines(data)
  local out = {}
  for line in (data .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  if #out > 1 and out[#out] == "" then out[#out] = nil end
  return out
end

--- A line as an optional parameter: nil when absent or empty.
function M.opt(line)
  if line == nil or line == "" then return nil end
  return line
end

--- The answer of a function under the convention: a value, or nil, message[, code[, detail]]
-- with a string message and a string code. Returns the first value.
function M.convention(what, v, message, code)
  if v ~= nil and v ~= false then return v end
  M.that(type(message) == "string" and #message > 0, "%s failed without a message (got %s)", what,
    tostring(message))
  M.that(code == nil or type(code) == "string", "%s: the code is a %s, not a string", what, type(code))
  return v
end

--- JSON text of v; a value that cannot be encoded is a finding (it was to be stored or sent).
function M.encodes(what, v)
  local ok, text = pcall(json.encode, v)
  M.that(ok, "%s cannot be encoded as JSON: %s", what, tostring(text))
  return text
end

--- A handler's answer: 2xx or 4xx (a 5xx to bad input is a finding), a 4xx with
-- `{error = {code, message}}`, and a body that encodes.
function M.response(what, status, body)
  M.that(math.type(status) == "integer", "%s answered a status of type %s", what, math.type(status) or type(status))
  M.that(status >= 200 and status < 500, "%s answered %d to client input: %s", what, status,
    type(body) == "table" and type(body.error) == "table" and tostring(body.error.message) or "")
  if status >= 400 then
    M.that(type(body) == "table" and type(body.error) == "table", "%s: a %d without an error body", what, status)
    M.that(type(body.error.code) == "string" and type(body.error.message) == "string",
      "%s: a %d error without code and message", what, status)
  end
  if body ~= nil then M.encodes(what .. "'s body", body) end
  return status, body
end

return M
