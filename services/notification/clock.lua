--- The notification bundle's clock: wall-clock time plus a fixed offset read once from
-- NOTIFY_CLOCK_OFFSET_SECONDS (default 0). Tests move the scheduler's "now" to a chosen
-- instant (a daylight-saving change, a reminder long past) without sleeping; production
-- leaves it unset. Every time the bundle compares with a reminder comes from here.
-- @module notification.clock

local timer = require "timer"

local M = {}

local offset = tonumber(os.getenv("NOTIFY_CLOCK_OFFSET_SECONDS") or "") or 0

--- Seconds since the epoch (fractional), offset applied.
function M.now() return timer.now() + offset end

--- The offset in seconds.
function M.offset() return offset end

--- RFC 3339 UTC text with milliseconds of an instant (default: now).
function M.iso(t)
  t = t or M.now()
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", math.floor((t - s) * 1000))
end

return M
