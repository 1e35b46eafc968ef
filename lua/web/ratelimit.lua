--- The per-user rate limit of the authenticated routes (issue 19): at most
-- RATE_LIMIT_PER_SECOND requests per user in each one-second window, counted in the
-- shared state store (lua/state: Dapr's Redis store with BUS=dapr, else PostgreSQL), so
-- every replica counts against the same budget. Over it: 429 with `Retry-After: 1` and
-- the usual error body. One counter per user per second (`state.incr`, expiring after
-- two seconds): one upsert per request under the limit. Once this process has seen a
-- user over the limit in a window, it refuses the rest of that window without asking
-- the store (the count only grows within a window), so a flood costs no store calls.
--
-- RATE_LIMIT_PER_SECOND unset or 0: no limit and no counting (the default on one
-- machine, where `make bench` drives one user as fast as it can; the chart sets it).
-- When the store cannot be reached the request goes through (logged): a broken counter
-- must not take the API down with it.
-- @module web.ratelimit
local errors = require "web.errors"
local log = require "log"

local M = {}

local function setting()
  local v = os.getenv("RATE_LIMIT_PER_SECOND")
  if v == nil or v == "" then return 0 end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then error("RATE_LIMIT_PER_SECOND must be a whole number >= 0, not " .. v) end
  return n
end

--- Requests per user per second (0: off). Read when the module loads; `configure` changes it.
M.limit = setting()

--- Set the limit (specs).
-- @tparam integer n
function M.configure(n) M.limit = n end

-- A user id may hold anything but the state keys refuse "||": escape "|" and "%".
local function key_for(user, window)
  return "rl:" .. user:gsub("[%%|]", function(c) return string.format("%%%02X", c:byte()) end) .. ":" .. window
end

local function refused(limit)
  return errors.response(429, "rate_limited", string.format(
    "too many requests: at most %d per second per user; retry after the time in Retry-After", limit),
    nil, { ["retry-after"] = "1" })
end

-- Users this process saw over the limit in window `over_window`.
local over, over_window = {}, nil

--- Count one request of `user`; nil when it may go on, else the 429 response.
-- @tparam string user the authenticated subject
-- @return nil, or status, body, headers
function M.check(user)
  local limit = M.limit
  if limit <= 0 then return nil end
  local window = os.time()
  if over_window ~= window then over, over_window = {}, window end
  if over[user] then return refused(limit) end
  local count, err = require("state").incr(key_for(user, window), 2)
  if not count then
    log.warn("rate limit not counted", { error = err })
    return nil
  end
  if count > limit then
    -- the window may have turned while the store answered; remember it for its own one
    if over_window == window then over[user] = true end
    return refused(limit)
  end
  return nil
end

return M
