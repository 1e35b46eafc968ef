--- The rate limits of the guarded routes (issue 19), both counted per one-second
-- window in the shared state store (lua/state: Dapr's Redis store with BUS=dapr, else
-- PostgreSQL), so every worker and replica counts against the same budget:
--
--   RATE_LIMIT_PER_ADDRESS_PER_SECOND  requests per client address, checked before the
--       token is (anonymous, bad-token and authenticated requests alike: a flood of
--       forged tokens from one address is refused before any verification work).
--       The address is `req.client_address` (the host's http/client_addr.c): the socket
--       peer, or X-Forwarded-For's nearest untrusted hop only when the peer is one of
--       TRUSTED_PROXIES (any client can write that header).
--   RATE_LIMIT_PER_SECOND              requests per authenticated user.
--
-- Over a limit: 429 with `Retry-After: 1` and the usual error body (code
-- `rate_limited`). One counter per key per second (`state.incr`, expiring after two
-- seconds): one upsert per request and limit under the limit. Once this process has
-- seen a key over its limit in a window, it refuses the rest of that window without
-- asking the store (the count only grows within a window), so a flood costs no store
-- calls. The built-in endpoints (/healthz, /readyz, /metrics) never reach Lua and are
-- not limited, nor are routes that are not behind web.guard.
--
-- A setting unset or 0: that limit is off, nothing is counted (the default on one
-- machine, where `make bench` drives one user as fast as it can; the chart sets both).
-- When the store cannot be reached the request goes through (logged): a broken counter
-- must not take the API down with it.
-- @module web.ratelimit
local errors = require "web.errors"
local log = require "log"

local M = {}

local function setting(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return 0 end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then error(name .. " must be a whole number >= 0, not " .. v) end
  return n
end

--- Requests per user per second (0: off). Read when the module loads; `configure` changes it.
M.limit = setting("RATE_LIMIT_PER_SECOND")
--- Requests per client address per second (0: off).
M.address_limit = setting("RATE_LIMIT_PER_ADDRESS_PER_SECOND")

--- Set the limits (specs).
-- @tparam integer n per user
-- @tparam[opt] integer per_address per client address (unchanged when nil)
function M.configure(n, per_address)
  M.limit = n
  if per_address ~= nil then M.address_limit = per_address end
end

-- A user id may hold anything but the state keys refuse "||": escape "|" and "%".
local function escape(s)
  return (s:gsub("[%%|]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function refused(limit, per)
  return errors.response(429, "rate_limited", string.format(
    "too many requests: at most %d per second per %s; retry after the time in Retry-After", limit, per),
    nil, { ["retry-after"] = "1" })
end

-- Keys this process saw over their limit in window `over_window` (one table for both
-- limits: their keys have different prefixes).
local over, over_window = {}, nil

-- Count one request under `key`; nil when it may go on, else the 429 response.
local function count(key, limit, per)
  if limit <= 0 then return nil end
  local window = os.time()
  if over_window ~= window then over, over_window = {}, window end
  if over[key] then return refused(limit, per) end
  local n, err = require("state").incr(key .. ":" .. window, 2)
  if not n then
    log.warn("rate limit not counted", { error = err })
    return nil
  end
  if n > limit then
    -- the window may have turned while the store answered; remember it for its own one
    if over_window == window then over[key] = true end
    return refused(limit, per)
  end
  return nil
end

--- Count one request of `user`; nil when it may go on, else the 429 response.
-- @tparam string user the authenticated subject
-- @return nil, or status, body, headers
function M.check(user)
  return count("rl:" .. escape(user), M.limit, "user")
end

--- Count one request from a client address; nil when it may go on, else the 429 response.
-- @tparam string address `req.client_address` (an IP address in text form)
-- @return nil, or status, body, headers
function M.check_address(address)
  if address == nil or address == "" then return nil end
  return count("rla:" .. escape(address), M.address_limit, "client address")
end

return M
