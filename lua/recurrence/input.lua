--- Validation of a task's `recurrence` (issue 5): the one check behind
-- `tasks.schema.field.recurrence`. Accepts null or an object
-- `{rule = RRULE | phrase = "every weekday", tz = zone, from = "due"|"completion"}`
-- and returns what is stored: `{rule = canonical RRULE, tz = zone or absent, from}`.
-- The API's responses add `description` (tasks.series.present), which a client may send
-- back unchanged: it is ignored. Pure Lua (the tz check uses the tz primitive).
-- Failures: `nil, message, code, field` where field names the part (`recurrence.rule` ...).
-- @module recurrence.input

local json = require "json"
local recurrence = require "recurrence"
local errors = require "web.errors"

local NULL = json.null

local M = {}

M.RULE_MAX = 500
M.PHRASE_MAX = 200
M.KEYS = { rule = true, phrase = true, tz = true, from = true, description = true }

local function is_array(v)
  return type(v) == "table" and (json.is_array(v) or (next(v) ~= nil and #v > 0))
end

local function kind_of(v)
  if v == NULL then return "null" end
  if type(v) == "table" then return is_array(v) and "array" or "object" end
  return type(v)
end

local function text_ok(s, max)
  if s:find("\0", 1, true) or not utf8.len(s) then return nil, "must be valid UTF-8 text" end
  if #s > max then return nil, "must be at most " .. max .. " characters" end
  if not s:match("%S") then return nil, "must not be empty" end
  return true
end

local function valid_zone(name)
  if type(name) ~= "string" or #name == 0 or #name > 64 or not name:match("^[%w_+%-/]+$")
    or name:find("..", 1, true) or name:sub(1, 1) == "/" then
    return false
  end
  return require("tz").valid(name) == true
end
M.valid_zone = valid_zone

-- A client's text as a JSON string for a message: bounded, control characters shown as ?.
local function quoted(v)
  return json.encode(errors.printable(v))
end

--- The message for a zone that is not an IANA name (`tz`, `recurrence.tz`, a preview's tz).
-- @tparam string field the field's name
-- @param v what was sent
-- @treturn string e.g. `unknown time zone "+01:00": use an IANA name such as Europe/Berlin`
function M.zone_problem(field, v)
  if type(v) ~= "string" then
    return field .. " must be an IANA time zone name such as Europe/Berlin, or null (got " .. kind_of(v) .. ")"
  end
  local where = field == "tz" and "" or (" in " .. field)
  local hint = ""
  if v:match("^%s*[+-]%d") or v:upper():match("^%s*UTC%s*[+-]") or v:upper():match("^%s*GMT%s*[+-]") then
    hint = " (a zone, not an offset: the offset follows the zone's daylight saving time)"
  end
  return "unknown time zone " .. quoted(v) .. where .. ": use an IANA name such as Europe/Berlin" .. hint
end

--- The message for a `recurrence` that is not an object: what to send instead, with the
-- client's own text when it sent one (`"every day"` → `{"phrase": "every day"}`).
-- @param v what was sent
-- @treturn string
function M.not_an_object(v)
  if type(v) == "string" and v:match("%S") then
    local key = (v:upper():match("^%s*RRULE:") or v:upper():match("^%s*FREQ=")) and "rule" or "phrase"
    return "recurrence must be an object, not a string: send {\"" .. key .. "\": " .. quoted(v)
      .. "} (or null for none)"
  end
  return "recurrence must be an object such as {\"phrase\": \"every day\"} or {\"rule\": \"FREQ=DAILY\"}, "
    .. "with optional tz and from, or null (got " .. kind_of(v) .. ")"
end

--- Check a rule given as RRULE text or as an English phrase.
-- @tparam[opt] any rule
-- @tparam[opt] any phrase
-- @treturn[1] string the canonical rule
-- @treturn[2] nil
-- @treturn[2] string message
-- @treturn[2] string code (`invalid_field`)
-- @treturn[2] string the field (`rule` or `phrase`, unprefixed)
function M.rule(rule, phrase)
  if rule ~= nil and phrase ~= nil then
    return nil, "give either rule or phrase, not both", "invalid_field", "rule"
  end
  if phrase ~= nil then
    if type(phrase) ~= "string" then
      return nil, "phrase must be a string like \"every weekday\"", "invalid_field", "phrase"
    end
    local ok, msg = text_ok(phrase, M.PHRASE_MAX)
    if not ok then return nil, "phrase " .. msg, "invalid_field", "phrase" end
    local canonical, err = recurrence.parse_phrase(phrase)
    if not canonical then
      return nil, "phrase " .. errors.printable(phrase) .. " is not understood: " .. tostring(err),
        "invalid_field", "phrase"
    end
    return canonical
  end
  if rule == nil then
    return nil, "rule is required: an RFC 5545 RRULE like FREQ=WEEKLY;BYDAY=MO,TH "
      .. "(or a phrase like \"every weekday\")", "invalid_field", "rule"
  end
  if type(rule) ~= "string" then return nil, "rule must be a string like FREQ=DAILY", "invalid_field", "rule" end
  local ok, msg = text_ok(rule, M.RULE_MAX)
  if not ok then return nil, "rule " .. msg, "invalid_field", "rule" end
  local canonical, err = recurrence.validate(rule)
  if not canonical then return nil, "rule is not a valid RRULE: " .. tostring(err), "invalid_field", "rule" end
  return canonical
end

--- Validate the `recurrence` field of a task body.
-- @param v the decoded value
-- @treturn[1] table|json.null the value to store
-- @treturn[2] nil
-- @treturn[2] string message (starting with the field's name)
-- @treturn[2] string code (`invalid_field`)
-- @treturn[2] string the field, e.g. `recurrence.rule`
function M.field(v)
  if v == NULL then return NULL end
  if type(v) ~= "table" or is_array(v) then
    return nil, M.not_an_object(v), "invalid_field", "recurrence"
  end
  local keys = {}
  for k in pairs(v) do
    if type(k) ~= "string" then return nil, "recurrence must be an object", "invalid_field", "recurrence" end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not M.KEYS[k] then
      local name = "recurrence." .. errors.printable(k)
      return nil, name .. " is not a recurrence field; send rule (or phrase), tz, from", "invalid_field", name
    end
  end
  local rule, msg, code, part = M.rule(v.rule, v.phrase)
  if not rule then return nil, "recurrence." .. msg, code, "recurrence." .. part end
  local out = { rule = rule }
  if v.tz ~= nil and v.tz ~= NULL then
    if not valid_zone(v.tz) then
      return nil, M.zone_problem("recurrence.tz", v.tz) .. " (or leave it out: the task's tz, else UTC)",
        "invalid_field", "recurrence.tz"
    end
    out.tz = v.tz
  end
  local from = v.from
  if from == nil or from == NULL then from = "due" end
  if from ~= "due" and from ~= "completion" then
    return nil, "recurrence.from must be due (the next occurrence follows the due time) or completion "
      .. "(it follows the completion time)", "invalid_field", "recurrence.from"
  end
  out.from = from
  return out
end

return M
