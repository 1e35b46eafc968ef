--- Query-string access for HTTP handlers: the single value of a parameter, and the
-- list of values of a repeatable one, where `?tag=a&tag=b` and `?tag=a,b` are the same.
-- Validation of the values belongs to the caller's schema.
-- @module web.query

local M = {}

--- The names of the parameters present, sorted (so that the first one at fault is
-- always the same whatever the hash order: routes refuse unknown names with it).
-- @tparam table req the request (`query`, `query_all`)
-- @treturn table array of strings
function M.names(req)
  local names = {}
  for name in pairs(req.query_all or req.query or {}) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- The value of a parameter (the first when repeated), or nil when absent.
-- @tparam table req the request (`query`, `query_all`)
-- @tparam string name
-- @treturn string|nil
function M.one(req, name)
  local v = req.query and req.query[name]
  if v == nil and req.query_all and req.query_all[name] then v = req.query_all[name][1] end
  return v
end

--- Every value of a parameter, repeated or comma-separated, trimmed, without empty items.
-- @tparam table req the request (`query`, `query_all`)
-- @tparam string name
-- @treturn table array of strings (empty when absent)
function M.list(req, name)
  local raw = req.query_all and req.query_all[name]
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

return M
