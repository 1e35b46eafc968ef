--- Query-string parsing for HTTP handlers: every reader validates one parameter and
-- returns its value, or nil plus an error response (422 naming the parameter).
-- Repeated parameters (`?tag=a&tag=b`) and comma lists (`?tag=a,b`) are equivalent.
-- @module http.query

local errors = require "http.errors"

local M = {}

--- Reject parameters not in `allowed`.
-- @tparam table req the request
-- @tparam table allowed set: name -> true
-- @return true, or nil plus an error response
function M.only(req, allowed)
  local names = {}
  for name in pairs(req.query_all or req.query or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if not allowed[name] then
      local list = {}
      for k in pairs(allowed) do list[#list + 1] = k end
      table.sort(list)
      return nil, errors.invalid(name, "unknown query parameter " .. errors.printable(name)
        .. "; allowed: " .. table.concat(list, ", "), "unknown_field")
    end
  end
  return true
end

--- Check that a text value is valid UTF-8 without NUL bytes and at most `max` characters.
-- @return true, or nil plus a message
function M.check_text(s, max)
  if s:find("\0", 1, true) then return nil, "must not contain NUL bytes" end
  local n = utf8.len(s)
  if not n then return nil, "must be valid UTF-8" end
  if max and n > max then return nil, "must be at most " .. max .. " characters" end
  return true
end

--- Every value of a parameter, repeated or comma-separated, without empty items.
-- @treturn table array of strings (empty when absent)
function M.list(req, name)
  local raw = (req.query_all and req.query_all[name])
  if raw == nil and req.query and req.query[name] ~= nil then raw = { req.query[name] } end
  local out = {}
  for _, v in ipairs(raw or {}) do
    for item in tostring(v):gmatch("[^,]+") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then out[#out + 1] = item end
    end
  end
  return out
end

--- The single value of a parameter (the first when repeated), or nil.
function M.one(req, name)
  local v = req.query and req.query[name]
  if v == nil and req.query_all and req.query_all[name] then v = req.query_all[name][1] end
  return v
end

--- A value from a fixed set.
-- @tparam table req
-- @tparam string name
-- @tparam table values array of allowed strings
-- @param default returned when the parameter is absent
function M.enum(req, name, values, default)
  local v = M.one(req, name)
  if v == nil or v == "" then return default end
  for _, allowed in ipairs(values) do
    if v == allowed then return v end
  end
  return nil, errors.invalid(name, name .. " must be one of " .. table.concat(values, ", "))
end

--- Several values, each from a fixed set.
-- @treturn table array (empty when absent)
function M.enum_list(req, name, values)
  local set = {}
  for _, allowed in ipairs(values) do set[allowed] = true end
  local out = M.list(req, name)
  for _, v in ipairs(out) do
    if not set[v] then
      return nil, errors.invalid(name, name .. " must be one or more of "
        .. table.concat(values, ", ") .. " (got " .. errors.printable(v) .. ")")
    end
  end
  return out
end

--- A decimal integer within [min, max].
function M.integer(req, name, min, max, default)
  local v = M.one(req, name)
  if v == nil or v == "" then return default end
  local digits = v:match("^%s*(%d+)%s*$")
  local n = digits and #digits <= 9 and tonumber(digits)
  if not n or n < min or n > max then
    return nil, errors.invalid(name, name .. " must be a whole number from " .. min .. " to " .. max)
  end
  return math.tointeger(n)
end

--- A boolean written `true`/`false` (also `1`/`0`).
function M.boolean(req, name, default)
  local v = M.one(req, name)
  if v == nil or v == "" then return default end
  if v == "true" or v == "1" then return true end
  if v == "false" or v == "0" then return false end
  return nil, errors.invalid(name, name .. " must be true or false")
end

--- Free text of at most `max` characters (valid UTF-8, no NUL).
function M.text(req, name, max)
  local v = M.one(req, name)
  if v == nil then return nil end
  local ok, msg = M.check_text(v, max)
  if not ok then return nil, errors.invalid(name, name .. " " .. msg) end
  return v
end

return M
