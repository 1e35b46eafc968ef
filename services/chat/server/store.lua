--- The conversations of the chat assistant in PostgreSQL (migrations/001): the only
-- code that writes SQL for chat_conversations and chat_messages. Every statement is
-- scoped to the user; an id that is not a UUID, or another user's, is "not found".
-- Failures return `nil, message, code` with code `not_found`, `unavailable` or `internal`.
-- @module chat.server.store

local pg = require "pg"
local json = require "json"

local M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- Characters of the first message kept as a conversation's title.
M.TITLE_MAX = 80

local function db_fail(err, state)
  if err == "pool timeout" or (type(state) == "string" and state:sub(1, 2) == "08") then
    return nil, "database unavailable: " .. tostring(err), "unavailable"
  end
  return nil, tostring(err) .. " (" .. tostring(state) .. ")", "internal"
end

local function valid_id(id) return type(id) == "string" and id:match(UUID) ~= nil end

local CONV = "id, title, tz, context, created_at, updated_at"

local function conversation(row)
  local ctx = row.context
  if type(ctx) ~= "table" then ctx = {} end
  return { id = row.id, title = row.title, tz = row.tz ~= pg.null and row.tz or nil, context = ctx,
    created_at = row.created_at, updated_at = row.updated_at }
end

--- A new conversation.
function M.create(user, tz)
  local rows, err, state = pg.query("INSERT INTO chat_conversations (user_id, tz) VALUES ($1, $2) RETURNING " .. CONV,
    user, tz)
  if not rows then return db_fail(err, state) end
  return conversation(rows[1])
end

--- One of the user's conversations.
function M.get(user, id)
  if not valid_id(id) then return nil, "conversation not found", "not_found" end
  local rows, err, state = pg.query("SELECT " .. CONV .. " FROM chat_conversations WHERE id = $1 AND user_id = $2",
    id, user)
  if not rows then return db_fail(err, state) end
  if not rows[1] then return nil, "conversation not found", "not_found" end
  return conversation(rows[1])
end

--- The zone of the user's most recent conversation that has one.
function M.last_tz(user)
  local rows, err, state = pg.query("SELECT tz FROM chat_conversations WHERE user_id = $1 AND tz IS NOT NULL "
    .. "ORDER BY updated_at DESC LIMIT 1", user)
  if not rows then return db_fail(err, state) end
  return rows[1] and rows[1].tz or nil
end

--- The user's conversations, most recently active first.
function M.list(user, limit)
  local rows, err, state = pg.query("SELECT id, title, tz, created_at, updated_at FROM chat_conversations "
    .. "WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2", user, limit)
  if not rows then return db_fail(err, state) end
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { id = r.id, title = r.title, tz = r.tz, created_at = r.created_at, updated_at = r.updated_at }
  end
  return out
end

--- The messages of one of the user's conversations, oldest first (the last `limit`).
function M.messages(user, id, limit)
  local conv, msg, code = M.get(user, id)
  if not conv then return nil, msg, code end
  local rows, err, state = pg.query("SELECT id, role, content, tool_calls, created_at FROM ("
    .. "SELECT m.id, m.role, m.content, m.tool_calls, m.created_at FROM chat_messages m "
    .. "JOIN chat_conversations c ON c.id = m.conversation_id "
    .. "WHERE m.conversation_id = $1 AND c.user_id = $2 ORDER BY m.id DESC LIMIT $3) last ORDER BY id",
    id, user, limit)
  if not rows then return db_fail(err, state) end
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { id = r.id, role = r.role, content = r.content,
      tool_calls = r.tool_calls ~= pg.null and r.tool_calls or json.array({}), created_at = r.created_at }
  end
  return out
end

--- Delete one of the user's conversations with its messages.
function M.delete(user, id)
  if not valid_id(id) then return nil, "conversation not found", "not_found" end
  local rows, err, state = pg.query("DELETE FROM chat_conversations WHERE id = $1 AND user_id = $2 RETURNING id",
    id, user)
  if not rows then return db_fail(err, state) end
  if not rows[1] then return nil, "conversation not found", "not_found" end
  return true
end

local function title_of(text)
  local t = text:gsub("%s+", " "):gsub("^ ", "")
  if utf8.len(t) and utf8.len(t) > M.TITLE_MAX then t = t:sub(1, utf8.offset(t, M.TITLE_MAX + 1) - 1) .. "…" end
  return t
end

--- Record a turn: the user's message, the answer with its tool calls, the new context
-- and zone. One statement (the conversation's update and the two messages commit
-- together, in one round trip); nothing is written when the conversation is not the
-- user's.
-- @treturn[1] true
-- @treturn[2] nil, message, code
function M.save_turn(user, id, message, answer, tool_calls, context, tz)
  local rows, err, state = pg.query("WITH conv AS (UPDATE chat_conversations SET context = $3::jsonb, "
    .. "tz = coalesce($4, tz), updated_at = now(), title = CASE WHEN title = '' THEN $5 ELSE title END "
    .. "WHERE id = $1 AND user_id = $2 RETURNING id) "
    .. "INSERT INTO chat_messages (conversation_id, role, content, tool_calls) "
    .. "SELECT conv.id, m.role, m.content, m.tool_calls FROM conv, (VALUES (1, 'user', $6, NULL::jsonb), "
    .. "(2, 'assistant', $7, $8::jsonb)) AS m (n, role, content, tool_calls) ORDER BY m.n RETURNING conversation_id",
    id, user, context, tz, title_of(message), message, answer, tool_calls)
  if not rows then return db_fail(err, state) end
  if not rows[1] then return nil, "conversation not found", "not_found" end
  return true
end

return M
