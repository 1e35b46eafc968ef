--- HTTP handlers of the chat bundle: `POST /api/chat`, the conversations, and
-- `POST /api/parse` (the quick-add phrase parser, for the front end). Input is checked
-- here, once, with messages a user can act on; every route runs as `req.user`.
-- @module chat.server.handlers

local errors = require "web.errors"
local guard = require "web.guard"
local query = require "web.query"
local json = require "json"
local timer = require "timer"
local schema = require "tasks.schema"
local parse = require "chat.parse"
local turn = require "chat.server.turn"
local store = require "chat.server.store"

local M = {}

--- Longest message accepted, in bytes (longer ones are refused with 422; the assistant
-- itself answers "too long" above chat.parse.MAX_BYTES).
M.MESSAGE_MAX = 10000
M.PARSE_MAX = 1000

local function failure(req, message, code)
  if code == "not_found" then return errors.not_found("conversation") end
  if code == "unavailable" then return errors.unavailable(req, message) end
  return errors.internal(req, message)
end

local function check_fields(body, allowed)
  if type(body) ~= "table" or body[1] ~= nil then
    return errors.invalid(nil, "the body must be a JSON object", "invalid_body")
  end
  for k in pairs(body) do
    if type(k) ~= "string" or not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      return errors.invalid(k, "unknown field " .. errors.printable(k) .. "; send " .. table.concat(names, ", "),
        "unknown_field")
    end
  end
  return nil
end

local function check_text(v, field, max)
  if type(v) ~= "string" then return errors.invalid(field, field .. " must be a string") end
  if #v > max then return errors.invalid(field, field .. " must be at most " .. max .. " bytes") end
  if v:find("\0", 1, true) or not utf8.len(v) then
    return errors.invalid(field, field .. " must be valid UTF-8 text without NUL bytes")
  end
  if not v:match("%S") then return errors.invalid(field, field .. " must not be empty") end
  return nil
end

-- The task domain's own check (and message) for a zone, so chat and REST agree.
local function check_tz(v)
  if v == nil or v == json.null then return nil end
  local ok, why = schema.field.tz(v)
  if not ok then return errors.invalid("tz", why) end
  return nil
end

--- POST /api/chat {message, conversation_id?, tz?}
function M.chat(req)
  local body, status, eb, eh = guard.json_body(req)
  if body == nil then return status, eb, eh end
  local s, b, h = check_fields(body, { message = true, conversation_id = true, tz = true })
  if s then return s, b, h end
  s, b, h = check_text(body.message, "message", M.MESSAGE_MAX)
  if s then return s, b, h end
  s, b, h = check_tz(body.tz)
  if s then return s, b, h end
  local cid = body.conversation_id
  if cid == json.null then cid = nil end
  if cid ~= nil and type(cid) ~= "string" then
    return errors.invalid("conversation_id", "conversation_id must be a conversation's id (a string) or null")
  end
  local tz = body.tz ~= json.null and body.tz or nil
  local out, msg, code = turn.chat(req.user, { message = body.message, conversation_id = cid, tz = tz })
  if not out then return failure(req, msg, code) end
  return 200, out
end

local function limit_of(req, default, max)
  local v = query.one(req, "limit")
  if v == nil or v == "" then return default end
  local n = v:match("^%d+$") and #v <= 4 and tonumber(v)
  if not n or n < 1 or n > max then return nil end
  return math.tointeger(n)
end

--- GET /api/conversations?limit=
function M.conversations(req)
  local limit = limit_of(req, 50, 200)
  if not limit then return errors.invalid("limit", "limit must be a whole number from 1 to 200") end
  local items, msg, code = store.list(req.user, limit)
  if not items then return failure(req, msg, code) end
  return 200, { items = json.array(items) }
end

--- GET /api/conversations/:id/messages?limit=
function M.messages(req)
  local limit = limit_of(req, 100, 500)
  if not limit then return errors.invalid("limit", "limit must be a whole number from 1 to 500") end
  local items, msg, code = store.messages(req.user, req.params.id, limit)
  if not items then return failure(req, msg, code) end
  return 200, { items = json.array(items) }
end

--- DELETE /api/conversations/:id
function M.delete(req)
  local ok, msg, code = store.delete(req.user, req.params.id)
  if not ok then return failure(req, msg, code) end
  return 204, ""
end

--- POST /api/parse {text, tz?}: the task the phrase describes, not created.
function M.parse(req)
  local body, status, eb, eh = guard.json_body(req)
  if body == nil then return status, eb, eh end
  local s, b, h = check_fields(body, { text = true, tz = true })
  if s then return s, b, h end
  s, b, h = check_text(body.text, "text", M.PARSE_MAX)
  if s then return s, b, h end
  s, b, h = check_tz(body.tz)
  if s then return s, b, h end
  local zone = (body.tz ~= json.null and body.tz) or "UTC"
  local f, err = parse.quick_add(body.text, math.floor(timer.now()), zone)
  if not f then return errors.invalid("text", err) end
  local task = { title = f.title, priority = f.priority or "none", tags = json.array(f.tags or {}),
    due_at = f.due_at or json.null, tz = (f.due_at or f.recurrence) and zone or json.null,
    recurrence = json.null, reminders = f.reminders and json.array(f.reminders) or json.null }
  if f.recurrence then
    local recurrence = require "recurrence"
    task.recurrence = { rule = f.recurrence, tz = zone, from = "due", description = recurrence.describe(f.recurrence) }
  end
  return 200, { task = task }
end

return M
