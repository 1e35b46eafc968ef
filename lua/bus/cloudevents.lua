--- CloudEvents 1.0 (JSON format) for the bus: building an event and checking the
-- required context attributes. Owns nothing else; the payload schemas of our events
-- live in spec/contracts/events/.
-- @module bus.cloudevents

local crypto = require "crypto"
local timer = require "timer"

local M = {}

M.SPECVERSION = "1.0"
M.CONTENT_TYPE = "application/json"

--- RFC 3339 UTC time with milliseconds, e.g. `2026-11-25T18:37:20.123Z`.
-- @tparam[opt] number t seconds since the epoch (default: now)
-- @treturn string
function M.timestamp(t)
  t = t or timer.now()
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", ms)
end

--- Build a CloudEvent.
-- @tparam table t `source`, `type`, `data` (required); `subject`, `id` (default a UUIDv7),
--   `time` (default now) optional
-- @treturn table the event (`specversion`, `id`, `source`, `type`, `subject`, `time`,
--   `datacontenttype`, `data`)
function M.new(t)
  if type(t) ~= "table" then error("cloudevents.new: table expected", 2) end
  if type(t.source) ~= "string" or t.source == "" then error("cloudevents.new: source must be a string", 2) end
  if type(t.type) ~= "string" or t.type == "" then error("cloudevents.new: type must be a string", 2) end
  if t.subject ~= nil and type(t.subject) ~= "string" then error("cloudevents.new: subject must be a string", 2) end
  return {
    specversion = M.SPECVERSION,
    id = t.id or crypto.uuid_v7(),
    source = t.source,
    type = t.type,
    subject = t.subject,
    time = t.time or M.timestamp(),
    datacontenttype = M.CONTENT_TYPE,
    data = t.data,
  }
end

--- Check the required attributes of a received event.
-- @tparam table ev
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] string what is wrong
function M.check(ev)
  if type(ev) ~= "table" then return nil, "an event must be a JSON object" end
  if ev.specversion ~= M.SPECVERSION then return nil, "specversion must be 1.0" end
  for _, k in ipairs { "id", "source", "type" } do
    if type(ev[k]) ~= "string" or ev[k] == "" then return nil, k .. " must be a non-empty string" end
  end
  return true
end

return M
