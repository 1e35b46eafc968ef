--- The Dapr backend of `state` (BUS=dapr): the sidecar's state API,
-- `/v1.0/state/<store>` (contract section 8). The store is a component named by
-- DAPR_STATESTORE ("statestore"; dapr/local/statestore.yaml, the chart's template);
-- it must support ETags and TTL (state.redis does). The sidecar address and token are
-- the bus driver's settings (DAPR_HOST, DAPR_HTTP_PORT, DAPR_API_TOKEN).
-- daprd answers 409 to a mismatch of a given etag, 204 to a GET of an absent key.
-- @module state.dapr
local http = require "http"
local json = require "json"
local timer = require "timer"

local M = { name = "dapr" }

local function settings()
  local c = require("bus.drivers.dapr").config
  local store = os.getenv("DAPR_STATESTORE")
  if store == nil or store == "" then store = "statestore" end
  return c, store
end

local function call(method, path, body, headers)
  local c, store = settings()
  local h = headers or {}
  if c.api_token then h["dapr-api-token"] = c.api_token end
  if body then h["content-type"] = "application/json" end
  local url = string.format("http://%s:%d/v1.0/state/%s%s", c.host, c.http_port,
    require("bus.drivers.dapr").urlencode(store), path)
  local res, msg = http.request { method = method, url = url, headers = h, body = body, timeout = c.timeout }
  if not res then return nil, "state store: " .. tostring(msg), "unavailable" end
  return res
end

-- `create_only`: a first-write save without an etag. state.redis refuses one over an
-- existing key from inside its Lua script and daprd answers that as a plain 500 (only a
-- mismatch of a given etag becomes 409), so such a script refusal is a conflict too.
local function refused(res, create_only)
  if res.status == 409 then return nil, "state: etag mismatch", "conflict" end
  local decoded = res.body ~= "" and json.decode(res.body)
  local detail = type(decoded) == "table" and decoded.message or res.body:sub(1, 200)
  if create_only and res.status == 500 and tostring(detail):find("user_script", 1, true) then
    return nil, "state: the key exists (first-write)", "conflict"
  end
  -- 400 is a bad etag for this store (Redis etags are numbers): a mismatch for the caller.
  if res.status == 400 and tostring(decoded and decoded.errorCode):find("ETAG", 1, true) then
    return nil, "state: etag mismatch", "conflict"
  end
  local kind = res.status >= 500 and "unavailable" or "invalid"
  return nil, string.format("state store: %d %s", res.status, tostring(detail)), kind
end

local function path_key(key) return "/" .. require("bus.drivers.dapr").urlencode(key) end

function M.get(key)
  local res, msg, kind = call("GET", path_key(key) .. "?consistency=strong")
  if not res then return nil, msg, kind end
  if res.status == 204 or (res.status == 200 and res.body == "") then return nil end
  if res.status ~= 200 then return refused(res) end
  local value = json.decode(res.body)
  if value == nil then return nil, "state store: the stored value is not JSON", "invalid" end
  return value, res.headers["etag"]
end

local function save(key, value, o)
  local item = { key = key, value = value, etag = o.etag,
    options = { concurrency = o.concurrency, consistency = "strong" } }
  if o.ttl then item.metadata = { ttlInSeconds = tostring(o.ttl) } end
  local res, msg, kind = call("POST", "", json.encode { item })
  if not res then return nil, msg, kind end
  if res.status ~= 204 and res.status ~= 200 then
    return refused(res, o.concurrency == "first-write" and o.etag == nil)
  end
  return true
end

-- daprd's save answers no etag: read it back (another writer may have written in
-- between; the etag answered is then theirs, and the caller's next write conflicts,
-- which is the safe side).
function M.set(key, value, o)
  local ok, msg, kind = save(key, value, o)
  if not ok then return nil, msg, kind end
  local _, etag = M.get(key)
  return etag or ""
end

function M.delete(key, o)
  local headers = o.etag and { ["if-match"] = o.etag } or nil
  local q = o.concurrency == "first-write" and "?concurrency=first-write" or ""
  local res, msg, kind = call("DELETE", path_key(key) .. q, nil, headers)
  if not res then return nil, msg, kind end
  if res.status ~= 204 and res.status ~= 200 then return refused(res) end
  return true
end

-- Dapr has no increment: read, then write with the etag read (first-write), and
-- start again when another replica won the race.
function M.incr(key, ttl)
  for attempt = 1, 20 do
    local value, etag_or_msg, kind = M.get(key)
    if value == nil and kind then return nil, etag_or_msg, kind end
    local n = math.tointeger(value) or 0
    local o = { concurrency = "first-write", etag = value ~= nil and etag_or_msg or nil }
    -- sent with every write (a write without it would make the key permanent)
    o.ttl = ttl
    local ok, msg, k = save(key, n + 1, o)
    if ok then return n + 1 end
    if k ~= "conflict" then return nil, msg, k end
    timer.sleep(0.001 * attempt)
  end
  return nil, "state: too many concurrent updates of " .. key, "conflict"
end

return M
