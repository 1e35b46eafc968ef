-- Fuzz driver of the WebSocket bundle's client messages (fuzz_ws_message.c): one input is
-- what a client sends on one connection, one text frame per line (the first line also
-- once as a binary frame). Each frame goes to the real handler the host dispatches a
-- frame to, `on_message` of services/websocket's manifest (websocket.session: parse,
-- resume replay, ping), on a connection as on_open leaves it (events held, hello sent).
--
-- Doubles (no database and no socket here):
--   * `websocket.log`, the event log's SQL, is an in-memory log of a few events (ids
--     3..9, 1..2 pruned; pages of 2 rows so that a replay pages);
--   * the connection is a table with the host connection's methods and their argument
--     checks (core/src/ws/prim_ws.c): `send` encodes a table as JSON and raises when it
--     cannot, `close` takes only the codes the host takes, `replay_end` an integer.
-- Every message sent must be one JSON object with a string `type` (the protocol,
-- spec/contracts/websocket.md); an `error` has a code and a message; the events a replay
-- sends come in increasing event_id order, each at most once, within the log, and the
-- `resumed` that ends it names an id no lower than the last one sent.
local check = require "fuzz_check"
local json = require "json"

local PRUNED, NEWEST = 2, 9
local TASK = { id = "00000000-0000-4000-8000-000000000001", title = "Buy milk", version = 2 }
local EVENTS = {}
for id = PRUNED + 1, NEWEST do
  local kind = id % 4
  if kind == 0 then
    EVENTS[#EVENTS + 1] = { event_id = id, type = "task.updated",
      data = { task_data = TASK, version = 2, changed = json.array { "title" } } }
  elseif kind == 1 then
    EVENTS[#EVENTS + 1] = { event_id = id, type = "reminder.due",
      data = { task_id = TASK.id, title = TASK.title, due_at = "2026-05-04T09:00:00Z",
               remind_at = "2026-05-04T08:45:00Z" } }
  elseif kind == 2 then
    EVENTS[#EVENTS + 1] = { event_id = id, type = "notification", data = { channel = "webhook", status = "sent" } }
  else
    EVENTS[#EVENTS + 1] = { event_id = id, type = "task.audit", data = {} } -- a type clients do not get
  end
end

-- Test double of websocket.log.
package.loaded["websocket.log"] = {
  WINDOW = 7 * 24 * 3600,
  PAGE = 2,
  position = function() return NEWEST, PRUNED end,
  page = function(_, after, upto, limit)
    check.that(math.type(after) == "integer" and math.type(upto) == "integer", "log.page(%s, %s)", tostring(after),
      tostring(upto))
    local rows = {}
    for _, e in ipairs(EVENTS) do
      if e.event_id > after and e.event_id <= upto and #rows < (limit or 2) then rows[#rows + 1] = e end
    end
    return rows
  end,
  ids = function() return {} end,
  prune = function() return 0 end,
}

local manifest = require "websocket.service"
local on_message = manifest.websocket.on_message
local on_rate_limited = manifest.websocket.on_rate_limited

local CLOSE_CODES = { [1000] = true, [1008] = true, [1011] = true }

-- Test double of a host connection (the checks of core/src/ws/prim_ws.c).
local Conn = {}
Conn.__index = Conn
function Conn:send(message, seq)
  local text
  if type(message) == "string" then
    text = message
  else
    check.that(type(message) == "table", "conn:send of a %s", type(message))
    text = check.encodes("a message", message)
  end
  check.that(seq == nil or (math.type(seq) == "integer" and seq > 0), "conn:send seq %s", tostring(seq))
  local msg = json.decode(text)
  check.that(type(msg) == "table" and type(msg.type) == "string", "a message without a type: %s", text)
  if msg.type == "error" then
    check.that(type(msg.code) == "string" and type(msg.message) == "string", "an error without code/message: %s", text)
  end
  if msg.type:match("^task%.") or msg.type == "reminder.due" or msg.type == "notification" then
    check.that(math.type(msg.event_id) == "integer" and msg.event_id > self.last_event
      and msg.event_id > PRUNED and msg.event_id <= NEWEST,
      "event %s sent after %d (log %d..%d)", tostring(msg.event_id), self.last_event, PRUNED + 1, NEWEST)
    self.last_event = msg.event_id
  elseif msg.type == "resumed" then
    check.that(math.type(msg.event_id) == "integer" and msg.event_id >= self.last_event,
      "resumed at %s after event %d", tostring(msg.event_id), self.last_event)
  end
  self.sent[#self.sent + 1] = msg
  if not self.open then return nil, "closed" end
  return true
end
function Conn:close(code, reason)
  code = code or 1000
  check.that(math.type(code) == "integer" and (CLOSE_CODES[code] or (code >= 3000 and code <= 4999)),
    "conn:close(%s)", tostring(code))
  check.that(reason == nil or type(reason) == "string", "conn:close reason %s", type(reason))
  self.open = false
end
function Conn:replay_begin() self.replaying = true end
function Conn:replay_end(last)
  check.that(math.type(last) == "integer", "conn:replay_end(%s)", tostring(last))
  self.replaying = false
end

return function(data)
  local conn = setmetatable({ user = "fuzz-user", id = 1, open = true, sent = {}, last_seq = NEWEST,
    last_event = 0 }, Conn)
  -- as on_open leaves it: hello sent, live events held until the first message
  conn:replay_begin()
  conn.held_open, conn.base = true, NEWEST
  local lines = check.lines(data)
  on_message(conn, lines[1], true)
  for _, text in ipairs(lines) do
    if not conn.open then break end
    on_message(conn, text, false)
  end
  on_rate_limited(conn)
end
