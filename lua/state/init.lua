--- Short-lived state that every replica shares (rate-limit counters, and anything
-- else that may be lost without harm): get/set/delete with ETag concurrency and TTL,
-- one Lua API over two backends.
--
--   BUS=dapr      Dapr's state API through the sidecar (`state.dapr`; in the cluster a
--                 Redis-compatible `state.redis` component named by DAPR_STATESTORE)
--   otherwise     the table `state_entries` in PostgreSQL (`state.postgres`; its
--                 migration is services/api/migrations/040_state.sql)
--
-- Semantics (Dapr's, which the PostgreSQL backend copies):
--   * values are JSON values; `get` answers `value, etag` or `nil` when absent/expired;
--   * `set(key, value, {etag=, concurrency=, ttl=})`: "last-write" (the default) writes
--     unconditionally, etag or not (daprd ignores it); "first-write" writes only if the
--     stored etag still matches the one given, or, without one, only creates; use one
--     mode per key (state.redis remembers a first-write key and then refuses writes
--     without its etag, whatever their mode);
--   * `delete(key, {etag=})`: with an etag only if it matches;
--   * `ttl` in whole seconds; an expired entry reads as absent;
--   * `incr(key, ttl)`: add one to a counter, answering the new count; the counter
--     lives at least `ttl` seconds (PostgreSQL counts them from its creation, Dapr from
--     its last write), so key a counter by its window (as web.ratelimit does).
-- Failures answer `nil, message, kind` with kind "conflict" (etag mismatch or, for
-- first-write, an existing entry), "invalid" (bad key, value, etag or ttl) or
-- "unavailable" (the store could not be reached).
-- @module state
local M = {}

local MAX_KEY = 512

local function backend_name()
  local b = os.getenv("STATE_BACKEND")
  if b == nil or b == "" then b = (os.getenv("BUS") == "dapr") and "dapr" or "postgres" end
  return b
end

local backend

--- The backend in use (chosen once, from STATE_BACKEND, else BUS).
-- @treturn table the backend module
function M.backend()
  if not backend then
    local name = backend_name()
    if name ~= "dapr" and name ~= "postgres" then
      error("STATE_BACKEND must be dapr or postgres, not " .. name)
    end
    backend = require("state." .. name)
  end
  return backend
end

--- Force a backend (specs).
-- @tparam table b a backend module
function M.use(b) backend = b end

local function check_key(key)
  if type(key) ~= "string" or key == "" or #key > MAX_KEY or key:find("||", 1, true) then
    return nil, "state: the key must be a non-empty string of at most " .. MAX_KEY ..
      " bytes without '||'", "invalid"
  end
  return true
end

local function check_opts(opts)
  opts = opts or {}
  local c = opts.concurrency or "last-write"
  if c ~= "last-write" and c ~= "first-write" then
    return nil, "state: concurrency must be first-write or last-write", "invalid"
  end
  if opts.etag ~= nil and (type(opts.etag) ~= "string" or opts.etag == "") then
    return nil, "state: the etag must be a non-empty string", "invalid"
  end
  if opts.ttl ~= nil and (math.type(opts.ttl) ~= "integer" or opts.ttl < 1) then
    return nil, "state: ttl must be a positive whole number of seconds", "invalid"
  end
  return { etag = opts.etag, concurrency = c, ttl = opts.ttl }
end

--- Read an entry.
-- @tparam string key
-- @return value, etag (string); or nil when absent; or nil, message, kind
function M.get(key)
  local ok, msg, kind = check_key(key)
  if not ok then return nil, msg, kind end
  return M.backend().get(key)
end

--- Write an entry.
-- @tparam string key
-- @param value any JSON value (not nil)
-- @tparam[opt] table opts `etag`, `concurrency` ("last-write" | "first-write"), `ttl` (s)
-- @treturn string the new etag; or nil, message, kind
function M.set(key, value, opts)
  local ok, msg, kind = check_key(key)
  if not ok then return nil, msg, kind end
  if value == nil then return nil, "state: the value must not be nil (use delete)", "invalid" end
  local o
  o, msg, kind = check_opts(opts)
  if not o then return nil, msg, kind end
  return M.backend().set(key, value, o)
end

--- Delete an entry (absent is fine without an etag).
-- @tparam string key
-- @tparam[opt] table opts `etag`
-- @treturn boolean true; or nil, message, kind
function M.delete(key, opts)
  local ok, msg, kind = check_key(key)
  if not ok then return nil, msg, kind end
  local o
  o, msg, kind = check_opts(opts)
  if not o then return nil, msg, kind end
  return M.backend().delete(key, o)
end

--- Add one to a counter that expires `ttl` seconds after it was created.
-- @tparam string key
-- @tparam integer ttl seconds
-- @treturn integer the count after this call; or nil, message, kind
function M.incr(key, ttl)
  local ok, msg, kind = check_key(key)
  if not ok then return nil, msg, kind end
  if math.type(ttl) ~= "integer" or ttl < 1 then
    return nil, "state: ttl must be a positive whole number of seconds", "invalid"
  end
  return M.backend().incr(key, ttl)
end

return M
