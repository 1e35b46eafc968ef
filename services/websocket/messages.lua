--- The messages of the protocol (spec/contracts/websocket.md): server messages built
-- from bus events, and the checking of client messages. Pure functions.
-- @module websocket.messages

local json = require "json"

local M = {}

local TASK_TYPES = {
  ["task.created"] = true, ["task.updated"] = true, ["task.completed"] = true,
  ["task.reopened"] = true, ["task.deleted"] = true,
}

--- The message for an event of the log (CloudEvent type and data) with its id.
-- @tparam string type CloudEvent type
-- @tparam table data CloudEvent data
-- @tparam integer event_id
-- @treturn table|nil the message (nil: a type clients do not get)
function M.event(type, data, event_id)
  if TASK_TYPES[type] then
    return { type = type, event_id = event_id, task = data.task_data, version = data.version,
             changed = data.changed or json.array {} }
  elseif type == "reminder.due" then
    return { type = type, event_id = event_id,
             reminder = { task_id = data.task_id, title = data.title, due_at = data.due_at,
                          remind_at = data.remind_at } }
  elseif type == "notification" then
    return { type = type, event_id = event_id, notification = data }
  end
  return nil
end

--- An `error` message.
function M.error(code, message) return { type = "error", code = code, message = message } end

--- Check a client message (text of one frame).
-- @tparam string text
-- @tparam boolean binary
-- @return table the message | nil, error message table
function M.parse(text, binary)
  if binary then return nil, M.error("bad_json", "send text frames holding JSON objects") end
  local msg = json.decode(text)
  if type(msg) ~= "table" or msg[1] ~= nil then
    return nil, M.error("bad_json", "a message must be a JSON object")
  end
  if msg.type == "ping" then
    local id = msg.id
    if id ~= nil and not (math.type(id) == "integer" or (type(id) == "string" and #id <= 64)) then
      return nil, M.error("bad_message", "ping.id must be an integer or a string of at most 64 characters")
    end
    return msg
  elseif msg.type == "resume" then
    if math.type(msg.after) ~= "integer" or msg.after < 0 then
      return nil, M.error("bad_message", "resume.after must be an integer >= 0 (the last event_id applied)")
    end
    return msg
  end
  return nil, M.error("bad_message", "type must be \"resume\" or \"ping\"")
end

return M
