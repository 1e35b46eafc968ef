--- Task input validation: the one place where request bodies and list parameters are
-- checked and turned into clean values for the repository. Pure Lua, no I/O.
-- Failures come back as `nil, message, code, field` (code: invalid_field, unknown_field,
-- read_only_field, required, invalid_body, recurrence_needs_due), for a 422 naming the field.
-- @module tasks.schema

local json = require "json"
local query = require "web.query"
local printable = require("web.errors").printable

local NULL = json.null

local M = {}

M.NULL = NULL
M.TITLE_MAX = 200
M.DESCRIPTION_MAX = 4000
M.TAGS_MAX = 20
M.TAG_MAX = 32
M.TZ_MAX = 64
M.JSON_MAX_DEPTH = 8
M.JSON_MAX_BYTES = 16384
M.Q_MAX = 200

--- Priorities in order of meaning; the stored value is the index minus one.
M.PRIORITIES = { "none", "low", "medium", "high" }
local PRIORITY_VALUE = { none = 0, low = 1, medium = 2, high = 3 }

--- Stored integer for a priority name (nil when unknown).
function M.priority_value(name) return PRIORITY_VALUE[name] end

--- Priority name for a stored integer.
function M.priority_name(n) return M.PRIORITIES[(tonumber(n) or 0) + 1] or "none" end

--- The fields a client may write, with the kind each expects.
M.WRITABLE = {
  title = true, description = true, completed = true, priority = true, tags = true,
  due_at = true, tz = true, recurrence = true, reminders = true,
}
local READ_ONLY = {
  id = true, completed_at = true, created_at = true, updated_at = true, version = true,
  user_id = true, series_id = true, occurrence_index = true, spawned_from = true,
}

-- Text ---------------------------------------------------------------------------------

--- Check text: valid UTF-8, no NUL byte, length in characters within [min, max].
-- @return the length, or nil and a message
function M.check_text(s, min, max)
  if s:find("\0", 1, true) then return nil, "must not contain NUL bytes" end
  local n = utf8.len(s)
  if not n then return nil, "must be valid UTF-8" end
  if min and n < min then
    return nil, min == 1 and "must not be empty" or ("must be at least " .. min .. " characters")
  end
  if max and n > max then return nil, "must be at most " .. max .. " characters" end
  return n
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
M.trim = trim

-- Lower-case letters of the common alphabets (ASCII, Latin-1, Latin Extended-A, Greek,
-- Cyrillic) so that tags compare the same whatever the database locale.
local function lower_cp(c)
  if c >= 0x41 and c <= 0x5A then return c + 32 end
  if c < 0xC0 then return c end
  if c <= 0xDE and c ~= 0xD7 then return c + 32 end
  if c >= 0x100 and c <= 0x137 then return c | 1 end
  if c >= 0x139 and c <= 0x148 then return (c % 2 == 1) and c + 1 or c end
  if c >= 0x14A and c <= 0x177 then return c | 1 end
  if c == 0x178 then return 0xFF end
  if c >= 0x179 and c <= 0x17E then return (c % 2 == 1) and c + 1 or c end
  if c >= 0x391 and c <= 0x3AB and c ~= 0x3A2 then return c + 32 end
  if c >= 0x400 and c <= 0x40F then return c + 80 end
  if c >= 0x410 and c <= 0x42F then return c + 32 end
  return c
end

--- Lower-case a valid UTF-8 string (letters of the common alphabets).
function M.lower(s)
  -- Pure ASCII (most tags): string.lower (the host runs in the C locale, which lowers
  -- A-Z only) instead of a table of code points.
  if not s:find("[\128-\255]") then return s:lower() end
  local out = {}
  for _, c in utf8.codes(s) do out[#out + 1] = utf8.char(lower_cp(c)) end
  return table.concat(out)
end

-- Times -------------------------------------------------------------------------------

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- The supported range of instants (recurrence.EPOCH_MIN / EPOCH_MAX), for messages.
M.RANGE_TEXT = "from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"

--- Check an RFC 3339 instant with an explicit offset (`2026-05-01T09:00:00+02:00`, `...Z`)
-- within the supported range (years 1 to 9999 in UTC).
-- @treturn[1] string the input
-- @treturn[2] nil when it is not one
-- @treturn[2] string `"range"` when it is one, outside the supported range
function M.rfc3339(s)
  local ok = M.rfc3339_syntax(s)
  if not ok then return nil end
  local recurrence = require "recurrence"
  local t = require("tz").parse_rfc3339(s)
  if not t or t < recurrence.EPOCH_MIN or t > recurrence.EPOCH_MAX then return nil, "range" end
  return s
end

--- Check the syntax of an RFC 3339 instant with an explicit offset (not its range).
-- @treturn string|nil the input, or nil when it is not one
function M.rfc3339_syntax(s)
  if type(s) ~= "string" or #s > 40 then return nil end
  local y, mo, d, h, mi, sec, rest =
    s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local frac, zone = rest:match("^(%.%d+)(.*)$")
  if frac then
    if #frac > 10 then return nil end
    rest = zone
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if y < 1 or mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or sec > 59 then return nil end
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  if d > DAYS[mo] or (mo == 2 and d == 29 and not leap) then return nil end
  if rest == "Z" or rest == "z" then return s end
  local oh, om = rest:match("^[+-](%d%d):(%d%d)$")
  if not oh or tonumber(oh) > 23 or tonumber(om) > 59 then return nil end
  return s
end

--- Check a time of day `HH:MM` or `HH:MM:SS`.
-- @treturn string|nil `HH:MM:SS`
function M.time_of_day(s)
  if type(s) ~= "string" then return nil end
  local h, m, sec = s:match("^(%d%d):(%d%d)$")
  if not h then h, m, sec = s:match("^(%d%d):(%d%d):(%d%d)$") end
  if not h then return nil end
  sec = sec or "00"
  if tonumber(h) > 23 or tonumber(m) > 59 or tonumber(sec) > 59 then return nil end
  return h .. ":" .. m .. ":" .. sec
end

--- Check an IANA zone name against the system tz database (through the `tz` primitive).
function M.valid_zone(name)
  if type(name) ~= "string" or #name == 0 or #name > M.TZ_MAX then return false end
  if not name:match("^[%w_+%-/]+$") or name:find("..", 1, true) or name:sub(1, 1) == "/" then
    return false
  end
  local ok, tz = pcall(require, "tz")
  if not ok or type(tz) ~= "table" or not tz.valid then return false end
  return tz.valid(name) == true
end

-- Nested JSON (recurrence, reminders) -------------------------------------------------

--- True when t is a JSON array: marked with json.array, or keys exactly 1..n (n > 0).
-- (The decoder does not mark arrays, so an empty `[]` reads as an empty object.)
function M.is_array(t)
  if type(t) ~= "table" then return false end
  if json.is_array and json.is_array(t) then return true end
  local mt = getmetatable(t)
  if mt and mt.__jsontype == "array" then return true end
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

-- Every string valid UTF-8 without NUL, every number finite, bounded depth and size.
local function check_json(v, depth, budget)
  local kind = type(v)
  budget.n = budget.n + 1
  if budget.n > 1000 then return nil, "is too large" end
  if kind == "string" then
    budget.bytes = budget.bytes + #v
    if budget.bytes > M.JSON_MAX_BYTES then return nil, "is too large" end
    local ok, msg = M.check_text(v)
    if not ok then return nil, "has a text value that " .. msg end
    return true
  elseif kind == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "has a number out of range" end
    return true
  elseif kind == "boolean" or v == NULL then
    return true
  elseif kind == "table" then
    if depth >= M.JSON_MAX_DEPTH then return nil, "is nested too deeply" end
    for k, item in pairs(v) do
      if type(k) == "string" then
        local ok, msg = check_json(k, depth + 1, budget)
        if not ok then return nil, msg end
      elseif math.type(k) ~= "integer" then
        return nil, "has an invalid key"
      end
      local ok, msg = check_json(item, depth + 1, budget)
      if not ok then return nil, msg end
    end
    return true
  end
  return nil, "has a value of an unsupported type"
end

--- Check a JSON value for storage as jsonb.
function M.check_json(v)
  return check_json(v, 0, { n = 0, bytes = 0 })
end

-- Field validators: each returns the clean value, or nil, message -------------------

local function kind_of(v)
  if v == NULL then return "null" end
  if M.is_array(v) then return "array" end
  if type(v) == "table" then return "object" end
  return type(v)
end
M.kind_of = kind_of

local field = {}

function field.title(v)
  if type(v) ~= "string" then return nil, "title must be a string (got " .. kind_of(v) .. ")" end
  local t = trim(v)
  local n, msg = M.check_text(t, 1, M.TITLE_MAX)
  if not n then
    if msg:find("characters", 1, true) or msg:find("empty", 1, true) then
      msg = msg .. " (after trimming spaces)"
    end
    return nil, "title " .. msg
  end
  return t
end

function field.description(v)
  if v == NULL then return NULL end
  if type(v) ~= "string" then
    return nil, "description must be a string or null (got " .. kind_of(v) .. ")"
  end
  local _, msg = M.check_text(v, 0, M.DESCRIPTION_MAX)
  if msg then return nil, "description " .. msg end
  return v
end

function field.completed(v)
  if type(v) ~= "boolean" then return nil, "completed must be true or false (got " .. kind_of(v) .. ")" end
  return v
end

function field.priority(v)
  local p = type(v) == "string" and PRIORITY_VALUE[v]
  if not p then return nil, "priority must be one of none, low, medium, high" end
  return p
end

function field.tags(v)
  if type(v) ~= "table" or (next(v) ~= nil and not M.is_array(v)) then
    return nil, "tags must be an array of strings (got " .. kind_of(v) .. ")"
  end
  if #v > M.TAGS_MAX then return nil, "tags may hold at most " .. M.TAGS_MAX .. " tags" end
  local out, seen = {}, {}
  for i, tag in ipairs(v) do
    if type(tag) ~= "string" then return nil, "tags[" .. i .. "] must be a string" end
    local t = trim(tag)
    local _, msg = M.check_text(t, 1, M.TAG_MAX)
    if msg then return nil, "tags[" .. i .. "] " .. msg end
    if t:find("[%c,]") then return nil, "tags[" .. i .. "] must not contain commas or control characters" end
    t = M.lower(t)
    if not seen[t] then
      seen[t] = true
      out[#out + 1] = t
    end
  end
  return out
end

function field.due_at(v)
  if v == NULL then return NULL end
  local ok, why = M.rfc3339(v)
  if why == "range" then return nil, "due_at must be within the supported range, " .. M.RANGE_TEXT end
  if not ok then
    return nil, "due_at must be an RFC 3339 instant with an offset, like 2026-05-01T09:00:00+02:00, or null"
  end
  return v
end

function field.tz(v)
  if v == NULL then return NULL end
  if not M.valid_zone(v) then return nil, require("recurrence.input").zone_problem("tz", v) end
  return v
end

-- The shape and the rule are checked by recurrence.input (issue 5); the fourth value
-- names the part at fault (recurrence.rule, recurrence.tz ...).
function field.recurrence(v)
  if v == NULL then return NULL end
  if type(v) ~= "table" or M.is_array(v) then return nil, require("recurrence.input").not_an_object(v) end
  local ok, msg = M.check_json(v)
  if not ok then return nil, "recurrence " .. msg end
  return require("recurrence.input").field(v)
end

-- `[{"at": RFC 3339} | {"before": ISO 8601 duration}]`, at most 10 (lua/reminders); a
-- failure names the part at fault (reminders[2].before). Whether an offset has a due
-- time is checked in task_input (the body) and by the database (constraint
-- tasks_reminders_need_due, for a PATCH of a task that has none).
function field.reminders(v)
  if v == NULL then return NULL end
  if type(v) ~= "table" or (next(v) ~= nil and not M.is_array(v)) then
    return nil, "reminders must be an array of {\"at\": ...} or {\"before\": ...} objects, or null (got "
      .. kind_of(v) .. ")"
  end
  local ok, msg = M.check_json(v)
  if not ok then return nil, "reminders " .. msg end
  local clean, why, code, part = require("reminders").check(v, nil)
  if not clean then return nil, why, code, part end
  return json.array(clean) -- stored as a JSON array, also when empty
end

--- Per-field validators; other issues (recurrence) may replace one with a stricter check.
M.field = field

-- Field order for deterministic error reporting.
local ORDER = { "title", "description", "completed", "priority", "tags", "due_at", "tz",
  "recurrence", "reminders" }

--- Validate a task body.
-- @tparam any body the decoded JSON body
-- @tparam string mode `"create"` (title required) or `"patch"` (any subset)
-- @return a table of clean fields (NULL for cleared ones), or nil, message, code, field
function M.task_input(body, mode)
  if type(body) ~= "table" or M.is_array(body) then
    return nil, "the body must be a JSON object (got " .. kind_of(body) .. ")", "invalid_body", nil
  end
  local keys = {}
  for k in pairs(body) do
    if type(k) ~= "string" then
      return nil, "the body must be a JSON object", "invalid_body", nil
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if READ_ONLY[k] then
      return nil, k .. " is read-only", "read_only_field", k
    elseif not M.WRITABLE[k] then
      return nil, "unknown field " .. printable(k) .. "; writable fields: "
        .. table.concat(ORDER, ", "), "unknown_field", k
    end
  end
  if mode == "create" and body.title == nil then
    return nil, "title is required", "required", "title"
  end
  local out = {}
  for _, k in ipairs(ORDER) do
    local v = body[k]
    if v ~= nil then
      local clean, msg, code, part = field[k](v)
      if clean == nil then return nil, msg, code or "invalid_field", part or k end
      out[k] = clean
    end
  end
  -- A recurring task needs a due time (its first occurrence); the database checks the
  -- cases a body alone cannot show (constraint tasks_recurrence_needs_due).
  if out.recurrence ~= nil and out.recurrence ~= NULL
    and (out.due_at == NULL or (mode == "create" and out.due_at == nil)) then
    return nil, "a recurring task needs a due_at (its first occurrence); send due_at too",
      "recurrence_needs_due", "due_at"
  end
  -- A reminder {"before": ...} needs a due time: one in the body, or (PATCH) the task's own.
  local offset = type(out.reminders) == "table" and require("reminders").needs_due(out.reminders)
  if offset and (out.due_at == NULL or (mode == "create" and out.due_at == nil)) then
    return nil, "reminders[" .. offset .. "].before needs a due time: send due_at too, or use {\"at\": ...}",
      "reminder_needs_due", "reminders[" .. offset .. "].before"
  end
  -- ... and, with the due time in the body, must stay within the supported range (a
  -- PATCH leaving the due time as it is: the schedule skips such an instant).
  if offset and type(out.due_at) == "string" then
    local zone = type(out.tz) == "string" and out.tz or nil
    local bad = require("reminders").out_of_range(out.reminders, out.due_at, zone)
    if bad then
      return nil, "reminders[" .. bad .. "].before puts the reminder before 0001-01-01T00:00:00Z, the start of "
        .. "the supported range: use a shorter offset or {\"at\": ...}", "invalid_field",
        "reminders[" .. bad .. "].before"
    end
  end
  return out
end

-- List parameters ---------------------------------------------------------------------

M.SORTS = { "due", "priority", "created", "updated", "title", "relevance" }
M.DEFAULT_ORDER = { due = "asc", priority = "desc", created = "desc", updated = "desc",
  title = "asc", relevance = "desc" }
M.LIST_PARAMS = {
  status = true, priority = true, tag = true, tags_mode = true, due_before = true,
  due_after = true, overdue = true, q = true, sort = true, order = true, limit = true,
  cursor = true,
}

--- Parse the filters of a list (also the `filter` object of a bulk request).
-- `get(name)` returns a string, `list(name)` an array of strings.
-- @return filter table, or nil, message, code, field
function M.filter(get, list)
  local f = {}
  f.status = get("status") or "all"
  if f.status ~= "all" and f.status ~= "pending" and f.status ~= "completed" then
    return nil, "status must be one of all, pending, completed", "invalid_field", "status"
  end
  f.priorities = {}
  for _, p in ipairs(list("priority")) do
    local v = PRIORITY_VALUE[p]
    if not v then return nil, "priority must be one or more of none, low, medium, high", "invalid_field", "priority" end
    f.priorities[#f.priorities + 1] = v
  end
  f.tags = {}
  for i, t in ipairs(list("tag")) do
    if i > M.TAGS_MAX then return nil, "at most " .. M.TAGS_MAX .. " tags per filter", "invalid_field", "tag" end
    local _, msg = M.check_text(t, 1, M.TAG_MAX)
    if msg then return nil, "tag " .. msg, "invalid_field", "tag" end
    f.tags[#f.tags + 1] = M.lower(t)
  end
  f.tags_mode = get("tags_mode") or "any"
  if f.tags_mode ~= "any" and f.tags_mode ~= "all" then
    return nil, "tags_mode must be any or all", "invalid_field", "tags_mode"
  end
  for _, name in ipairs({ "due_before", "due_after" }) do
    local v = get(name)
    if v ~= nil then
      local ok, why = M.rfc3339(v)
      if why == "range" then
        return nil, name .. " must be within the supported range, " .. M.RANGE_TEXT, "invalid_field", name
      end
      if not ok then
        return nil, name .. " must be an RFC 3339 instant with an offset, like 2026-05-01T00:00:00Z",
          "invalid_field", name
      end
      f[name] = v
    end
  end
  local overdue = get("overdue")
  if overdue ~= nil then
    if overdue == "true" or overdue == true then f.overdue = true
    elseif overdue == "false" or overdue == false then f.overdue = false
    else return nil, "overdue must be true or false", "invalid_field", "overdue" end
  end
  local q = get("q")
  if q ~= nil then
    if type(q) ~= "string" then return nil, "q must be a string", "invalid_field", "q" end
    local _, msg = M.check_text(q, 0, M.Q_MAX)
    if msg then return nil, "q " .. msg, "invalid_field", "q" end
    if q:match("%S") then f.q = q end
  end
  return f
end

--- Parse the list parameters of `GET /api/tasks`.
-- @tparam table req the request (query, query_all)
-- @return options table, or nil, message, code, field
function M.list_options(req)
  for _, name in ipairs(query.names(req)) do
    if not M.LIST_PARAMS[name] then
      return nil, "unknown query parameter " .. printable(name) .. "; allowed: status, priority, tag, "
        .. "tags_mode, due_before, due_after, overdue, q, sort, order, limit, cursor", "unknown_field", name
    end
    -- Every value must be valid text before anything else looks at it.
    for _, v in ipairs(req.query_all and req.query_all[name] or { query.one(req, name) }) do
      local _, msg = M.check_text(v, 0, name == "cursor" and 2048 or 1000)
      if msg then return nil, name .. " " .. msg, "invalid_field", name end
    end
  end
  local function get(name)
    local v = query.one(req, name)
    if v == "" then return nil end
    return v
  end
  local f, msg, code, field_name = M.filter(get, function(name) return query.list(req, name) end)
  if not f then return nil, msg, code, field_name end
  local o = { filter = f }
  o.sort = get("sort") or (f.q and "relevance" or "created")
  local ok_sort = false
  for _, s in ipairs(M.SORTS) do if s == o.sort then ok_sort = true end end
  if not ok_sort then
    return nil, "sort must be one of due, priority, created, updated, title (or relevance with q)",
      "invalid_field", "sort"
  end
  if o.sort == "relevance" and not f.q then
    return nil, "sort=relevance needs a search text in q", "invalid_field", "sort"
  end
  o.order = get("order") or M.DEFAULT_ORDER[o.sort]
  if o.order ~= "asc" and o.order ~= "desc" then
    return nil, "order must be asc or desc", "invalid_field", "order"
  end
  local limit = get("limit")
  if limit == nil then
    o.limit = 50
  else
    local digits = limit:match("^%d+$")
    local n = digits and #digits <= 4 and tonumber(digits)
    if not n or n < 1 or n > 200 then
      return nil, "limit must be a whole number from 1 to 200", "invalid_field", "limit"
    end
    o.limit = math.tointeger(n)
  end
  o.cursor = get("cursor")
  return o
end

return M
