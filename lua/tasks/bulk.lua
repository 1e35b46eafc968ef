--- Validation of `POST /api/tasks/bulk` bodies: one action over a list of ids or over a
-- filter. Pure Lua; failures come back as `nil, message, code, field` (as tasks.schema).
--
--     {"action": "complete" | "reopen" | "delete"
--                | "update"      (with "changes": {same fields as PATCH})
--                | "reschedule"  (with "time": "14:00" and/or "shift": {"days","hours","minutes"},
--                                 optional "tz" for tasks that have none),
--      "ids": ["<uuid>", ...]  or  "filter": {"status", "priority", "tag", "tags_mode",
--                                             "due_before", "due_after", "overdue", "q"},
--      "all": true}   (required when the filter names no condition, or there is none:
--                      the request then targets every task of the user)
-- @module tasks.bulk

local schema = require "tasks.schema"
local printable = require("web.errors").printable

local M = {}

M.IDS_MAX = 1000

local ACTIONS = { complete = true, reopen = true, delete = true, update = true, reschedule = true }
local KEYS = {
  complete = {}, reopen = {}, delete = {},
  update = { changes = true },
  reschedule = { time = true, shift = true, tz = true },
}
local FILTER_KEYS = {
  status = true, priority = true, tag = true, tags_mode = true, due_before = true,
  due_after = true, overdue = true, q = true,
}
local SHIFT_LIMITS = { days = 3660, hours = 87840, minutes = 5270400 }

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- True when s looks like a UUID.
function M.is_uuid(s)
  return type(s) == "string" and s:match(UUID) ~= nil
end

local function whole(v, limit)
  if type(v) ~= "number" or v ~= v or v ~= math.floor(v) or math.abs(v) > limit then return nil end
  return math.tointeger(v)
end

local function parse_filter(f)
  if type(f) ~= "table" or schema.is_array(f) then
    return nil, "filter must be an object (got " .. schema.kind_of(f) .. ")", "invalid_field", "filter"
  end
  for k in pairs(f) do
    if not FILTER_KEYS[k] then
      return nil, "unknown filter " .. printable(k)
        .. "; allowed: status, priority, tag, tags_mode, due_before, due_after, overdue, q",
          "unknown_field", "filter." .. tostring(k)
    end
  end
  local bad
  local function get(name)
    local v = f[name]
    if v == nil or v == schema.NULL then return nil end
    if name == "overdue" and type(v) == "boolean" then return v end
    if type(v) ~= "string" then bad = bad or name end
    return v
  end
  local function list(name)
    local v = f[name]
    if v == nil or v == schema.NULL then return {} end
    if type(v) == "string" then v = { v } end
    if type(v) ~= "table" then bad = bad or name; return {} end
    local out = {}
    for _, item in ipairs(v) do
      if type(item) ~= "string" then bad = bad or name; return {} end
      out[#out + 1] = item
    end
    return out
  end
  for _, name in ipairs({ "status", "tags_mode", "due_before", "due_after", "q" }) do
    local v = f[name]
    if v ~= nil and v ~= schema.NULL then
      if type(v) ~= "string" then return nil, name .. " must be a string", "invalid_field", "filter." .. name end
      local _, msg = schema.check_text(v, 0, 1000)
      if msg then return nil, name .. " " .. msg, "invalid_field", "filter." .. name end
    end
  end
  local out, msg, code, field = schema.filter(get, list)
  if bad then return nil, bad .. " has the wrong type", "invalid_field", "filter." .. bad end
  if not out then return nil, msg, code, "filter." .. field end
  return out
end

--- True when a parsed filter (tasks.schema.filter) narrows nothing: every task matches.
function M.filter_is_empty(f)
  return f.status == "all" and #f.priorities == 0 and #f.tags == 0 and f.due_before == nil
    and f.due_after == nil and f.overdue == nil and f.q == nil
end

--- Validate a bulk request body.
-- @return `{action, ids | filter, fields, time, shift, tz}`, or nil, message, code, field
function M.parse(body)
  if type(body) ~= "table" or schema.is_array(body) then
    return nil, "the body must be a JSON object (got " .. schema.kind_of(body) .. ")", "invalid_body", nil
  end
  local action = body.action
  if action == nil then return nil, "action is required", "required", "action" end
  if type(action) ~= "string" or not ACTIONS[action] then
    return nil, "action must be one of complete, reopen, delete, update, reschedule", "invalid_field", "action"
  end
  local keys = {}
  for k in pairs(body) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if k ~= "action" and k ~= "ids" and k ~= "filter" and k ~= "all" and not KEYS[action][k] then
      return nil, "unknown field " .. printable(k) .. " for action "
        .. action, "unknown_field", k
    end
  end
  local b = { action = action }
  local all = body.all
  if all ~= nil and type(all) ~= "boolean" then
    return nil, "all must be true or false (got " .. schema.kind_of(all) .. ")", "invalid_field", "all"
  end
  if all == true and body.ids ~= nil then
    return nil, "all goes with a filter (or none), not with ids", "invalid_field", "all"
  end

  if body.ids ~= nil and body.filter ~= nil then
    return nil, "send either ids or filter, not both", "invalid_field", "ids"
  elseif body.ids ~= nil then
    local ids = body.ids
    if type(ids) ~= "table" or not schema.is_array(ids) then
      return nil, "ids must be a non-empty array of task ids", "invalid_field", "ids"
    end
    if #ids > M.IDS_MAX then return nil, "at most " .. M.IDS_MAX .. " ids per request", "invalid_field", "ids" end
    b.ids = {}
    local seen = {}
    for i, id in ipairs(ids) do
      if type(id) ~= "string" then return nil, "ids[" .. i .. "] must be a string", "invalid_field", "ids" end
      if not M.is_uuid(id) then
        return nil, "task not found: " .. printable(id), "not_found", "ids"
      end
      id = id:lower()
      if not seen[id] then
        seen[id] = true
        b.ids[#b.ids + 1] = id
      end
    end
  elseif body.filter ~= nil then
    local f, msg, code, field = parse_filter(body.filter)
    if not f then return nil, msg, code, field end
    b.filter = f
  elseif all == true then
    b.filter = parse_filter({})
  else
    return nil, "send ids (a list of task ids) or filter (an object)", "required", "ids"
  end
  -- A filter without a condition targets every task: a mistake unless said explicitly
  -- (issue 19: `{"action": "delete", "filter": {}}` deleted every task of its user).
  if b.filter and all ~= true and M.filter_is_empty(b.filter) then
    return nil, "the filter names no condition, so the " .. action .. " would apply to every task: "
      .. "narrow the filter, or send \"all\": true to mean every task", "required", "all"
  end

  if action == "update" then
    if body.changes == nil then return nil, "changes is required for update", "required", "changes" end
    local fields, msg, code, field = schema.task_input(body.changes, "patch")
    if not fields then
      return nil, msg, code, field and ("changes." .. field) or "changes"
    end
    if next(fields) == nil then return nil, "changes must name at least one field", "invalid_field", "changes" end
    b.fields = fields
  elseif action == "reschedule" then
    if body.time == nil and body.shift == nil then
      return nil, "reschedule needs time (like 14:00) or shift (like {\"days\": 1})", "required", "time"
    end
    if body.time ~= nil then
      b.time = schema.time_of_day(body.time)
      if not b.time then return nil, "time must be a time of day like 14:00 or 14:00:00", "invalid_field", "time" end
    end
    if body.shift ~= nil then
      local s = body.shift
      if type(s) ~= "table" or schema.is_array(s) then
        return nil, "shift must be an object like {\"days\": 1, \"hours\": -2}", "invalid_field", "shift"
      end
      b.shift = { days = 0, hours = 0, minutes = 0 }
      for k, v in pairs(s) do
        if not SHIFT_LIMITS[k] then
          return nil, "shift takes days, hours and minutes", "unknown_field", "shift." .. tostring(k)
        end
        local n = whole(v, SHIFT_LIMITS[k])
        if not n then
          return nil, k .. " must be a whole number from -" .. SHIFT_LIMITS[k]
            .. " to " .. SHIFT_LIMITS[k], "invalid_field", "shift." .. k
        end
        b.shift[k] = n
      end
    end
    if body.tz ~= nil then
      local zone, msg = schema.field.tz(body.tz)
      if zone == nil then return nil, msg, "invalid_field", "tz" end
      if zone ~= schema.NULL then b.tz = zone end
    end
  end
  return b
end

return M
